//! Files through the real slack-morphism client: the v2 upload flow into a thread (how the poster
//! will attach flamegraphs), `files.info`, and private downloads, which like Slack's answer an
//! HTML sign-in page instead of the file without the bot token. A person sharing a script lands as
//! a `file_share` message plus a `file_shared` event.

#![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]

use std::net::SocketAddr;

use http_body_util::BodyExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use slack_emulator::EmulatorConfig;
use slack_morphism::prelude::*;
use test_support::{http_get_async, http_post_json};

async fn get(url: &str, bearer: Option<&str>) -> (String, Vec<u8>) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Empty<bytes::Bytes>>(HttpConnector::new());
    let mut request = hyper::Request::get(url);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = client
        .request(request.body(http_body_util::Empty::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (
        content_type,
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

#[tokio::test]
async fn upload_into_a_thread_then_read_and_download_it() {
    let config = EmulatorConfig::default();
    let bot_token = config.bot_token.clone();
    let emulator = slack_emulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let client = SlackClient::new(
        SlackClientHyperConnector::with_connector(HttpConnector::new())
            .with_slack_api_url(&emulator.api_base()),
    );
    let token = SlackApiToken::new(bot_token.clone().into());
    let session = client.open_session(&token);

    let alert = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C0ALERTS".into(),
            SlackMessageContent::new().with_text("HighCPU".into()),
        ))
        .await
        .unwrap();
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><text>parse_json</text></svg>".to_vec();
    let upload = session
        .get_upload_url_external(&SlackApiFilesGetUploadUrlExternalRequest::new(
            "flame.svg".into(),
            svg.len(),
        ))
        .await
        .unwrap();
    session
        .files_upload_via_url(&SlackApiFilesUploadViaUrlRequest::new(
            upload.upload_url.clone(),
            svg.clone(),
            "image/svg+xml".into(),
        ))
        .await
        .unwrap();
    let completed = session
        .files_complete_upload_external(
            &SlackApiFilesCompleteUploadExternalRequest::new(vec![
                SlackApiFilesComplete::new(upload.file_id.clone())
                    .with_title("CPU flamegraph".into()),
            ])
            .with_channel_id("C0ALERTS".into())
            .with_thread_ts(alert.ts.clone())
            .with_initial_comment("flamegraph of checkout".into()),
        )
        .await
        .unwrap();
    assert_eq!(completed.files[0].id, upload.file_id);
    assert_eq!(completed.files[0].title.as_deref(), Some("CPU flamegraph"));

    let thread = session
        .conversations_replies(&SlackApiConversationsRepliesRequest::new(
            "C0ALERTS".into(),
            alert.ts.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(
        thread.messages.len(),
        2,
        "the file was shared into the thread"
    );
    assert_eq!(
        thread.messages[1].content.text.as_deref(),
        Some("flamegraph of checkout")
    );

    let info = session
        .files_info(&SlackApiFilesInfoRequest::new(upload.file_id.clone()))
        .await
        .unwrap();
    let download = info.file.url_private_download.unwrap().to_string();
    let (content_type, bytes) = get(&download, Some(&bot_token)).await;
    assert_eq!((content_type.as_str(), bytes), ("image/svg+xml", svg));
    let (content_type, bytes) = get(&download, None).await;
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(String::from_utf8(bytes).unwrap().contains("Sign in"));

    let err = session
        .files_info(&SlackApiFilesInfoRequest::new("F0NOPE".into()))
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("file_not_found"), "{err:?}");
}

#[tokio::test]
async fn a_person_shares_a_script() {
    let emulator = slack_emulator::start(
        EmulatorConfig::default(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let addr = emulator.addr();
    let share = serde_json::json!({
        "channel": "C0ALERTS", "user": "U0DEV", "name": "slow_report.py",
        "content": "def main():\n    sum(i * i for i in range(10**7))\n"
    });
    let (status, answer) = tokio::task::spawn_blocking(move || {
        http_post_json(addr, "/control/share", &share.to_string()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{answer}");

    let (_, channel) = http_get_async(addr, "/control/channels/C0ALERTS").await;
    let channel: serde_json::Value = serde_json::from_str(&channel).unwrap();
    let message = &channel["messages"][0];
    assert_eq!(message["subtype"], "file_share");
    assert_eq!(message["files"][0]["name"], "slow_report.py");
    assert_eq!(message["files"][0]["mimetype"], "text/x-python");

    let (_, deliveries) = http_get_async(addr, "/control/deliveries").await;
    let deliveries: serde_json::Value = serde_json::from_str(&deliveries).unwrap();
    assert_eq!(
        deliveries["deliveries"].as_array().unwrap().len(),
        2,
        "a message event and a file_shared event"
    );

    let bad = serde_json::json!({"channel": "C0ALERTS", "user": "U0NOBODY", "name": "x.py", "content": ""});
    let (status, answer) = tokio::task::spawn_blocking(move || {
        http_post_json(addr, "/control/share", &bad.to_string()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("user_not_found"), "{answer}");
}
