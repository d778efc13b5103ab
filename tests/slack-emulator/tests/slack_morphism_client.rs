//! The real `slack-morphism` client, pointed at the emulator by base URL, works unchanged: what it
//! sends is understood, what the emulator answers deserializes, and Slack's errors and rate
//! limits reach it as Slack's would.

#![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]

use std::{net::SocketAddr, time::Duration};

use hyper_util::client::legacy::connect::HttpConnector;
use slack_emulator::{EmulatorConfig, Running};
use slack_morphism::{errors::SlackClientError, prelude::*};

type Client = SlackClient<SlackClientHyperConnector<HttpConnector>>;

async fn emulator() -> (Running, Client) {
    let running = slack_emulator::start(
        EmulatorConfig::default(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let connector = SlackClientHyperConnector::with_connector(HttpConnector::new())
        .with_slack_api_url(&running.api_base());
    (running, SlackClient::new(connector))
}

fn bot_token() -> SlackApiToken {
    SlackApiToken::new(EmulatorConfig::default().bot_token.into())
}

fn api_error_code(err: SlackClientError) -> String {
    match err {
        SlackClientError::ApiError(api) => api.code,
        other => panic!("expected a Slack API error, got {other:?}"),
    }
}

#[tokio::test]
async fn auth_test_and_token_checks() {
    let (_running, client) = emulator().await;
    let identity = client.open_session(&bot_token()).auth_test().await.unwrap();
    assert_eq!(identity.team_id.to_string(), "T0FLAME");
    assert_eq!(identity.user_id.to_string(), "U0FLAMEBOT");
    assert_eq!(
        identity.bot_id.map(|id| id.to_string()).as_deref(),
        Some("B0FLAMEBOT")
    );

    let wrong = SlackApiToken::new("xoxb-wrong".into());
    let err = client.open_session(&wrong).auth_test().await.unwrap_err();
    assert_eq!(api_error_code(err), "invalid_auth");

    let app_token = SlackApiToken::new(EmulatorConfig::default().app_token.into());
    let err = client
        .open_session(&app_token)
        .auth_test()
        .await
        .unwrap_err();
    assert_eq!(api_error_code(err), "not_allowed_token_type");
}

#[tokio::test]
async fn a_threaded_reply_updated_in_place_with_a_reaction() {
    let (running, client) = emulator().await;
    let token = bot_token();
    let session = client.open_session(&token);

    // An alert posted by another integration, as Alertmanager's Slack notifier would.
    let alert: serde_json::Value = post_control(&running, serde_json::json!({
        "channel": "C0ALERTS", "bot_id": "B0AMGR", "username": "Alertmanager",
        "attachments": [{"title": "[FIRING:1] HighCPU checkout (prod)", "color": "danger",
                         "fallback": "[FIRING:1] HighCPU checkout (prod) | http://am:9093/#/alerts"}]
    }))
    .await;
    let alert_ts = SlackTs::new(alert["ts"].as_str().unwrap().to_owned());

    let reply = session
        .chat_post_message(
            &SlackApiChatPostMessageRequest::new(
                "C0ALERTS".into(),
                SlackMessageContent::new()
                    .with_text("Looking at checkout…".into())
                    .with_blocks(slack_blocks![
                        some_into(
                            SlackSectionBlock::new().with_text(md!("*HighCPU* on `checkout`"))
                        ),
                        some_into(SlackActionsBlock::new(slack_blocks![some_into(
                            SlackBlockButtonElement::new(pt!("Silence 1h"))
                                .with_action_id("silence_1h".into())
                        )]))
                    ]),
            )
            .with_thread_ts(alert_ts.clone()),
        )
        .await
        .unwrap();

    session
        .chat_update(&SlackApiChatUpdateRequest::new(
            "C0ALERTS".into(),
            SlackMessageContent::new().with_text("checkout: `parse_json` burns 62% of CPU".into()),
            reply.ts.clone(),
        ))
        .await
        .unwrap();
    session
        .reactions_add(&SlackApiReactionsAddRequest::new(
            "C0ALERTS".into(),
            "eyes".into(),
            alert_ts.clone(),
        ))
        .await
        .unwrap();
    let err = session
        .reactions_add(&SlackApiReactionsAddRequest::new(
            "C0ALERTS".into(),
            "eyes".into(),
            alert_ts.clone(),
        ))
        .await
        .unwrap_err();
    assert_eq!(api_error_code(err), "already_reacted");

    let history = session
        .conversations_history(
            &SlackApiConversationsHistoryRequest::new().with_channel("C0ALERTS".into()),
        )
        .await
        .unwrap();
    assert_eq!(
        history.messages.len(),
        1,
        "the reply is in the thread, not the channel"
    );
    let alert_message = &history.messages[0];
    assert_eq!(alert_message.origin.ts, alert_ts);
    assert_eq!(
        alert_message
            .sender
            .bot_id
            .as_ref()
            .map(|id| id.to_string())
            .as_deref(),
        Some("B0AMGR")
    );
    let title = alert_message
        .content
        .attachments
        .as_ref()
        .and_then(|a| a[0].title.clone());
    assert_eq!(title.as_deref(), Some("[FIRING:1] HighCPU checkout (prod)"));

    let thread = session
        .conversations_replies(&SlackApiConversationsRepliesRequest::new(
            "C0ALERTS".into(),
            alert_ts.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(thread.messages.len(), 2);
    assert_eq!(
        thread.messages[1].origin.ts, reply.ts,
        "updated in place: same ts"
    );
    assert_eq!(
        thread.messages[1].content.text.as_deref(),
        Some("checkout: `parse_json` burns 62% of CPU")
    );
}

async fn post_control(running: &Running, body: serde_json::Value) -> serde_json::Value {
    let url = format!("{}/post", running.control_base());
    let (status, answer) =
        raw_post(&url, "application/json", serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// A plain HTTP POST on the same hyper stack the client uses; returns the status and JSON body.
async fn raw_post(url: &str, content_type: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    use http_body_util::BodyExt as _;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Full<bytes::Bytes>>(HttpConnector::new());
    let request = hyper::Request::post(url)
        .header("content-type", content_type)
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn bad_requests_get_slacks_answers() {
    let (running, _client) = emulator().await;
    let api = |method: &str| format!("{}/{method}", running.api_base());
    let token = EmulatorConfig::default().bot_token;

    let (status, answer) = raw_post(
        &api("chat.postMessage"),
        "application/json",
        b"{\"channel\": ".to_vec(),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (200, Some("invalid_json"))
    );

    let (_, answer) = raw_post(
        &api("chat.postMessage"),
        "application/x-www-form-urlencoded",
        b"channel=C0ALERTS&text=hi".to_vec(),
    )
    .await;
    assert_eq!(answer["error"], "not_authed");

    // A form post with the token as a parameter, as curl and older clients send it.
    let form = format!(
        "token={token}&channel=C0ALERTS&text=from+a+form&attachments=%5B%7B%22title%22%3A%22t%22%7D%5D"
    );
    let (_, answer) = raw_post(
        &api("chat.postMessage"),
        "application/x-www-form-urlencoded",
        form.into_bytes(),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["message"]["text"], "from a form");
    assert_eq!(answer["message"]["attachments"][0]["title"], "t");

    let (_, answer) = raw_post(
        &api("chat.doesNotExist"),
        "application/x-www-form-urlencoded",
        format!("token={token}").into_bytes(),
    )
    .await;
    assert_eq!(answer["error"], "unknown_method");

    let control = format!("{}/post", running.control_base());
    let (status, answer) = raw_post(
        &control,
        "application/json",
        br#"{"channel":"C0ALERTS","text":"x"}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("give exactly one of user and bot_id"))
    );
    let (status, _) = raw_post(&control, "application/json", b"not json".to_vec()).await;
    assert_eq!(status, 400);
    let (status, answer) = raw_post(
        &control,
        "application/json",
        br#"{"channel":"C0NOPE","user":"U1","text":"x"}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("channel_not_found"))
    );
}

#[tokio::test]
async fn posting_too_fast_into_one_channel_gets_429_with_retry_after() {
    let (_running, client) = emulator().await;
    let token = bot_token();
    let session = client.open_session(&token);
    let post = |channel: &'static str| {
        let request = SlackApiChatPostMessageRequest::new(
            channel.into(),
            SlackMessageContent::new().with_text("update".into()),
        );
        let session = &session;
        async move { session.chat_post_message(&request).await }
    };
    // The burst (3) goes through; the fourth within the second is refused.
    for _ in 0..3 {
        post("C0ALERTS").await.unwrap();
    }
    match post("C0ALERTS").await.unwrap_err() {
        SlackClientError::RateLimitError(limit) => {
            assert_eq!(limit.retry_after, Some(Duration::from_secs(1)))
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    // The limit is per channel.
    post("C0GENERAL").await.unwrap();
    // And it refills: one post per second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    post("C0ALERTS").await.unwrap();
}

#[tokio::test]
async fn slacks_size_limits_reach_the_client_as_slacks_errors() {
    let (_running, client) = emulator().await;
    let token = bot_token();
    let session = client.open_session(&token);
    let blocks: Vec<SlackBlock> = (0..51)
        .map(|n| {
            SlackSectionBlock::new()
                .with_text(md!("block {}", n))
                .into()
        })
        .collect();
    let err = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C0ALERTS".into(),
            SlackMessageContent::new()
                .with_text("too many blocks".into())
                .with_blocks(blocks),
        ))
        .await
        .unwrap_err();
    assert_eq!(api_error_code(err), "invalid_blocks");

    let err = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C0NOSUCH".into(),
            SlackMessageContent::new().with_text("hello".into()),
        ))
        .await
        .unwrap_err();
    assert_eq!(api_error_code(err), "channel_not_found");
}

#[tokio::test]
async fn ephemeral_answers_and_user_lookups() {
    let (running, client) = emulator().await;
    let token = bot_token();
    let session = client.open_session(&token);

    session
        .chat_post_ephemeral(&SlackApiChatPostEphemeralRequest::new(
            "C0ALERTS".into(),
            "U0ONCALL".into(),
            SlackMessageContent::new().with_text("Only you may run slow_report.py".into()),
        ))
        .await
        .unwrap();
    let err = session
        .chat_post_ephemeral(&SlackApiChatPostEphemeralRequest::new(
            "C0ALERTS".into(),
            "U0NOBODY".into(),
            SlackMessageContent::new().with_text("hello".into()),
        ))
        .await
        .unwrap_err();
    assert_eq!(api_error_code(err), "user_not_found");

    let oncall = session
        .users_info(&SlackApiUsersInfoRequest::new("U0ONCALL".into()))
        .await
        .unwrap();
    assert_eq!(oncall.user.name.as_deref(), Some("oncall"));
    assert_eq!(oncall.user.flags.is_bot, Some(false));
    let err = session
        .users_info(&SlackApiUsersInfoRequest::new("U0NOBODY".into()))
        .await
        .unwrap_err();
    assert_eq!(api_error_code(err), "user_not_found");

    let (status, channel) =
        test_support::http_get_async(running.addr(), "/control/channels/C0ALERTS").await;
    assert_eq!(status, 200);
    let channel: serde_json::Value = serde_json::from_str(&channel).unwrap();
    assert!(
        channel["messages"].as_array().unwrap().is_empty(),
        "ephemeral messages are not channel messages"
    );
    assert_eq!(channel["ephemeral"][0]["user"], "U0ONCALL");
    assert_eq!(
        channel["ephemeral"][0]["text"],
        "Only you may run slow_report.py"
    );
}

/// A person runs a slash command in the emulator; returns its `trigger_id`.
async fn run_command(running: &Running) -> String {
    let addr = running.addr();
    let body = serde_json::json!({"channel": "C0ALERTS", "user": "U0ONCALL", "command": "/flamethread", "text": "help"});
    let (status, answer) = tokio::task::spawn_blocking(move || {
        test_support::http_post_json(addr, "/control/command", &body.to_string()).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    answer["trigger_id"].as_str().unwrap().to_owned()
}

fn modal(title: &str) -> SlackView {
    SlackView::Modal(SlackModalView::new(
        pt!(title),
        slack_blocks![some_into(
            SlackSectionBlock::new().with_text(md!("Profile which app?"))
        )],
    ))
}

#[tokio::test]
async fn views_open_takes_a_fresh_trigger_once() {
    let (running, client) = emulator().await;
    let token = bot_token();
    let session = client.open_session(&token);

    let trigger = run_command(&running).await;
    let opened = session
        .views_open(&SlackApiViewsOpenRequest::new(
            trigger.clone().into(),
            modal("Profile"),
        ))
        .await
        .unwrap();
    assert!(opened.view.state_params.id.to_string().starts_with('V'));
    assert_eq!(opened.view.state_params.team_id.to_string(), "T0FLAME");

    let reused = session
        .views_open(&SlackApiViewsOpenRequest::new(
            trigger.into(),
            modal("Profile"),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        api_error_code(reused),
        "invalid_trigger_id",
        "a trigger opens one view"
    );
    let unknown = session
        .views_open(&SlackApiViewsOpenRequest::new(
            "1.2.nope".into(),
            modal("Profile"),
        ))
        .await
        .unwrap_err();
    assert_eq!(api_error_code(unknown), "invalid_trigger_id");

    let stale = run_command(&running).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let expired = session
        .views_open(&SlackApiViewsOpenRequest::new(
            stale.into(),
            modal("Profile"),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        api_error_code(expired),
        "expired_trigger_id",
        "Slack gives 3 seconds"
    );

    let long_title = run_command(&running).await;
    let refused = session
        .views_open(&SlackApiViewsOpenRequest::new(
            long_title.into(),
            modal("A title far longer than Slack allows"),
        ))
        .await
        .unwrap_err();
    assert_eq!(api_error_code(refused), "invalid_arguments");
}

/// App Home through slack-morphism: `views.publish` of a `home` view for a person is kept as
/// their Home; Slack's refusals (a bot, a modal, a broken block, more than 100 blocks) reach the
/// client as Slack's errors.
#[tokio::test]
async fn views_publish_shows_a_persons_home_and_refuses_what_slack_refuses() {
    let (running, client) = emulator().await;
    let token = bot_token();
    let session = client.open_session(&token);
    let home = |blocks: Vec<SlackBlock>| SlackView::Home(SlackHomeView::new(blocks));
    let published = session
        .views_publish(&SlackApiViewsPublishRequest::new(
            "U0ONCALL".into(),
            home(slack_blocks![
                some_into(SlackHeaderBlock::new(pt!("flamethread"))),
                some_into(
                    SlackSectionBlock::new()
                        .with_text(md!("`checkout` · live"))
                        .with_accessory(
                            SlackBlockButtonElement::new(pt!("Profile now"))
                                .with_action_id("ft.profile_pick".into())
                                .with_value("checkout now".into())
                                .into()
                        )
                )
            ]),
        ))
        .await
        .unwrap();
    let id = published.view.state_params.id.to_string();
    let shown = control_get(&running, "/control/homes/U0ONCALL").await;
    assert_eq!(shown["view"]["id"], id.as_str());
    assert_eq!(
        shown["view"]["blocks"][1]["accessory"]["value"],
        "checkout now"
    );
    // Published again: the same view, replaced.
    let again = session
        .views_publish(&SlackApiViewsPublishRequest::new(
            "U0ONCALL".into(),
            home(slack_blocks![some_into(
                SlackSectionBlock::new().with_text(md!("nothing open"))
            )]),
        ))
        .await
        .unwrap();
    assert_eq!(again.view.state_params.id.to_string(), id);

    for (user, view, code) in [
        (
            "U0FLAMEBOT",
            home(slack_blocks![some_into(
                SlackSectionBlock::new().with_text(md!("x"))
            )]),
            "user_not_found",
        ),
        ("U0ONCALL", modal("Profile"), "invalid_arguments"),
        (
            "U0ONCALL",
            home(slack_blocks![some_into(SlackFileBlock::new("F1".into()))]),
            "invalid_blocks",
        ),
        (
            "U0ONCALL",
            home(slack_blocks![some_into(SlackHeaderBlock::new(pt!(
                &"h".repeat(151)
            )))]),
            "invalid_blocks",
        ),
        (
            "U0ONCALL",
            home(
                (0..101)
                    .map(|_| SlackBlock::Divider(SlackDividerBlock::new()))
                    .collect(),
            ),
            "invalid_arguments",
        ),
    ] {
        let refused = session
            .views_publish(&SlackApiViewsPublishRequest::new(user.into(), view))
            .await
            .unwrap_err();
        assert_eq!(api_error_code(refused), code, "{user}");
    }
}

async fn control_get(running: &Running, path: &str) -> serde_json::Value {
    let (status, body) = test_support::http_get_async(running.addr(), path).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}
