//! The emulator's page, opened in headless Chromium (Debian's `chromium`): it shows the channel as
//! a person reads it — the alert, its thread with our reply's blocks and buttons, reactions — and
//! renders message text as text, never as HTML.

#![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]

use std::net::SocketAddr;

use hyper_util::client::legacy::connect::HttpConnector;
use slack_emulator::EmulatorConfig;
use slack_morphism::prelude::*;
use test_support::http_post_json;

/// A valid 1×1 PNG.
const ONE_PIXEL_PNG: &[u8] = &[
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0,
    0, 0, 31, 21, 196, 137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 218, 99, 252, 207, 192, 80, 15, 0, 4,
    133, 1, 128, 132, 169, 140, 33, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

/// The page's DOM after its scripts ran, as headless Chromium sees it.
fn rendered_dom(url: &str) -> String {
    test_support::rendered_dom(url).unwrap()
}

async fn post(addr: SocketAddr, path: &'static str, body: serde_json::Value) -> serde_json::Value {
    let (status, answer) =
        tokio::task::spawn_blocking(move || http_post_json(addr, path, &body.to_string()).unwrap())
            .await
            .unwrap();
    assert_eq!(status, 200, "{answer}");
    serde_json::from_str(&answer).unwrap()
}

#[tokio::test]
async fn the_page_shows_the_alert_and_its_threaded_reply() {
    let config = EmulatorConfig::default();
    let token = config.bot_token.clone();
    let emulator = slack_emulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = emulator.addr();

    let alert = post(
        addr,
        "/control/post",
        serde_json::json!({
            "channel": "C0ALERTS", "bot_id": "B0AMGR", "username": "Alertmanager",
            "attachments": [{"title": "[FIRING:1] HighCPU checkout (page)", "color": "danger"}]
        }),
    )
    .await;
    let alert_ts = alert["ts"].as_str().unwrap().to_owned();
    let reply = post(addr, "/api/chat.postMessage", serde_json::json!({
        "token": token, "channel": "C0ALERTS", "thread_ts": alert_ts, "text": "fallback only",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "HighCPU on checkout"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "<script>alert(1)</script> parse_json: 62% of CPU"}},
            {"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Silence 1h"}, "action_id": "silence_1h"}
            ]}
        ]
    }))
    .await;
    assert_eq!(reply["ok"], true, "{reply}");
    post(addr, "/api/reactions.add", serde_json::json!({"token": token, "channel": "C0ALERTS", "timestamp": alert_ts, "name": "eyes"})).await;
    post(addr, "/api/chat.postEphemeral", serde_json::json!({"token": token, "channel": "C0ALERTS", "user": "U0ONCALL", "text": "You may not silence this alert"})).await;

    let url = format!("http://{addr}/");
    let dom = tokio::task::spawn_blocking(move || rendered_dom(&url))
        .await
        .unwrap();

    let position = |needle: &str| {
        dom.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not on the page:\n{dom}"))
    };
    let alert_title = position("[FIRING:1] HighCPU checkout (page)");
    let thread = position("class=\"thread\"");
    let header = position("HighCPU on checkout");
    assert!(
        alert_title < thread && thread < header,
        "the reply is shown inside the alert's thread"
    );
    position("Alertmanager");
    position(">flamethread<");
    position("1 reply");
    position("👀 1");
    let only_you = position("Only visible to U0ONCALL");
    assert!(position("You may not silence this alert") > only_you);
    position("data-action-id=\"silence_1h\"");
    // Message text is text: the script arrives escaped, and the fallback text is not shown
    // next to blocks, as in Slack.
    position("&lt;script&gt;alert(1)&lt;/script&gt; parse_json: 62% of CPU");
    assert!(
        !dom.contains("<script>alert(1)"),
        "message text was interpreted as HTML"
    );
    assert!(
        !dom.contains("fallback only"),
        "text is shown only when there are no blocks"
    );
}

#[tokio::test]
async fn the_page_renders_slack_markup_as_slack_does_and_hostile_text_stays_text() {
    let config = EmulatorConfig::default();
    let token = config.bot_token.clone();
    let emulator = slack_emulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = emulator.addr();
    let alert = post(addr, "/control/post", serde_json::json!({"channel": "C0ALERTS", "user": "U0ONCALL", "text": "checkout is *slow*"})).await;
    let alert_ts = alert["ts"].as_str().unwrap().to_owned();
    // A PNG uploaded into the thread (the v2 flow, through slack-morphism), then shown again by
    // an image block.
    let client = SlackClient::new(
        SlackClientHyperConnector::with_connector(HttpConnector::new())
            .with_slack_api_url(&emulator.api_base()),
    );
    let bot = SlackApiToken::new(token.clone().into());
    let session = client.open_session(&bot);
    let upload = session
        .get_upload_url_external(&SlackApiFilesGetUploadUrlExternalRequest::new(
            "chart.png".into(),
            ONE_PIXEL_PNG.len(),
        ))
        .await
        .unwrap();
    session
        .files_upload_via_url(&SlackApiFilesUploadViaUrlRequest::new(
            upload.upload_url.clone(),
            ONE_PIXEL_PNG.to_vec(),
            "image/png".into(),
        ))
        .await
        .unwrap();
    session
        .files_complete_upload_external(
            &SlackApiFilesCompleteUploadExternalRequest::new(vec![
                SlackApiFilesComplete::new(upload.file_id.clone()).with_title("CPU chart".into()),
            ])
            .with_channel_id("C0ALERTS".into())
            .with_thread_ts(alert_ts.clone().into()),
        )
        .await
        .unwrap();
    let file_id = upload.file_id.to_string();
    let reply = post(addr, "/api/chat.postMessage", serde_json::json!({
        "token": token, "channel": "C0ALERTS", "thread_ts": alert_ts, "text": "fallback",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Status* _firing_ ~gone~ `parse_json` <https://example.com/flame?a=1&amp;b=2|Flamegraph> <@U0ONCALL> :fire: since <!date^1700000000^{date_num} {time}|2023-11-14 22:13 UTC>\n```let x = 1 < 2;```\n&gt; quoted"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "<javascript:alert(1)|click me> <img src=x onerror=alert(2)> *<b>not bold tag</b>* <https://example.com/a|`code` label>"}},
            {"type": "image", "alt_text": "CPU chart", "slack_file": {"id": file_id}},
            {"type": "data_visualization", "title": "cpu (cores)", "chart": {"type": "line",
                "series": [{"name": "now", "data": [{"label": "10:00", "value": 0.4}, {"label": "10:05", "value": 1.8}]}],
                "axis_config": {"categories": ["10:00", "10:05"], "y_label": "cores"}}}
        ]
    }))
    .await;
    assert_eq!(reply["ok"], true, "{reply}");

    let url = format!("http://{addr}/");
    // On a busy machine Chromium can dump the DOM before the image's load event (once in CI);
    // the page is the same each time, so it is read again, at most three times, and the
    // assertions below judge the last reading.
    let mut dom = String::new();
    for _ in 0..3 {
        let url = url.clone();
        dom = tokio::task::spawn_blocking(move || rendered_dom(&url))
            .await
            .unwrap();
        if dom.contains("data-loaded=\"1x1\"") {
            break;
        }
    }
    let has = |needle: &str| assert!(dom.contains(needle), "{needle:?} not on the page:\n{dom}");
    has("checkout is <b>slow</b>");
    has("<b>Status</b> <i>firing</i> <s>gone</s> <code>parse_json</code>");
    has("href=\"https://example.com/flame?a=1&amp;b=2\"");
    has(">Flamegraph</a>");
    // A link's label may hold code, and the link stays a link.
    has("href=\"https://example.com/a\"");
    has("@U0ONCALL</span>");
    has("🔥");
    has("2023-11-14");
    has("<pre>let x = 1 &lt; 2;</pre>");
    has("<blockquote>quoted</blockquote>");
    // Hostile markup stays text; a link to anything but http(s) is not a link.
    has("&lt;javascript:alert(1)|click me&gt;");
    has("&lt;img src=x onerror=alert(2)&gt;");
    has("&lt;b&gt;not bold tag&lt;/b&gt;");
    assert!(!dom.contains("<b>not bold"), "{dom}");
    assert!(!dom.contains("href=\"javascript"), "{dom}");
    assert!(!dom.contains("<img src=\"x\""), "{dom}");
    for raw in ["*Status*", "<https://", "&lt;https://", ":fire:"] {
        assert!(!dom.contains(raw), "raw markup {raw:?} is visible:\n{dom}");
    }
    // The uploaded image is shown twice (as the file reply and by the image block), loaded
    // from the emulator's token-free route, and the chart block is drawn.
    let image_src = format!("/control/files/{file_id}");
    assert_eq!(dom.matches(&image_src).count(), 2, "{dom}");
    assert!(
        dom.contains("data-loaded=\"1x1\""),
        "the image loaded: {dom}"
    );
    has("<polyline");
    has("cpu (cores)");
}

/// `GET /json/list` from Chromium's DevTools server, which keeps the connection open: the body is
/// read by its `Content-Length`.
fn devtools_targets(devtools: SocketAddr) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(devtools).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .ok()?;
    // Chromium builds the page's WebSocket URL from the Host header.
    stream
        .write_all(format!("GET /json/list HTTP/1.1\r\nHost: {devtools}\r\n\r\n").as_bytes())
        .ok()?;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).ok()?;
        if read == 0 {
            return None;
        }
        received.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())
                    .flatten()
            })?;
            if body.len() >= length {
                return Some(body[..length].to_owned());
            }
        }
    }
}

/// Chromium with its DevTools protocol open, showing `url`; killed on drop.
struct Browser {
    child: std::process::Child,
    page_socket: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn open(url: &str) -> Browser {
        use std::io::{BufRead as _, BufReader};
        let profile = tempfile::tempdir().unwrap();
        let mut child = test_support::headless_chromium(profile.path())
            .args([
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(url)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/…"
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let port: u16 = stderr
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                let rest = line.split("DevTools listening on ws://127.0.0.1:").nth(1)?;
                rest.split('/').next()?.parse().ok()
            })
            .expect("chromium announces its DevTools port");
        // Keep draining chromium's log so that it never blocks on a full pipe.
        std::thread::spawn(move || stderr.map_while(Result::ok).for_each(drop));
        let devtools = SocketAddr::from(([127, 0, 0, 1], port));
        let page_socket = (0..100)
            .find_map(|_| {
                let listed = devtools_targets(devtools)
                    .and_then(|list| serde_json::from_str::<serde_json::Value>(&list).ok())
                    .and_then(|targets| {
                        targets.as_array()?.iter().find_map(|target| {
                            (target["type"] == "page")
                                .then(|| target["webSocketDebuggerUrl"].as_str().map(str::to_owned))
                                .flatten()
                        })
                    });
                if listed.is_none() {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                listed
            })
            .expect("the page is listed");
        Browser {
            child,
            page_socket,
            _profile: profile,
        }
    }

    /// The page's visible text right now (`document.body.innerText`).
    async fn text(&self) -> String {
        use futures_util::{SinkExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::Message;
        let connected = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tokio_tungstenite::connect_async(self.page_socket.as_str()),
        )
        .await;
        let (mut socket, _) = connected
            .unwrap()
            .unwrap_or_else(|err| panic!("{}: {err}", self.page_socket));
        let request = serde_json::json!({"id": 1, "method": "Runtime.evaluate", "params": {"expression": "document.body.innerText", "returnByValue": true}});
        socket
            .send(Message::Text(request.to_string().into()))
            .await
            .unwrap();
        while let Ok(Some(Ok(frame))) =
            tokio::time::timeout(std::time::Duration::from_secs(5), socket.next()).await
        {
            if let Message::Text(text) = frame {
                let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
                if answer["id"] == 1 {
                    return answer["result"]["result"]["value"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                }
            }
        }
        String::new()
    }
}

#[tokio::test]
async fn the_page_refreshes_by_itself() {
    let emulator = slack_emulator::start(
        EmulatorConfig::default(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let addr = emulator.addr();
    post(addr, "/control/post", serde_json::json!({"channel": "C0ALERTS", "user": "U0ONCALL", "text": "before the page opened"})).await;
    let url = format!("http://{addr}/");
    let browser = tokio::task::spawn_blocking(move || Browser::open(&url))
        .await
        .unwrap();
    test_support::wait_for(
        std::time::Duration::from_secs(20),
        "the first render",
        || async { browser.text().await.contains("before the page opened") },
    )
    .await
    .unwrap();

    // Nobody reloads the page: what is posted now appears by itself.
    post(addr, "/control/post", serde_json::json!({"channel": "C0ALERTS", "bot_id": "B0AMGR", "username": "Alertmanager", "attachments": [{"title": "[FIRING:1] PostedAfterOpening", "color": "danger"}]})).await;
    test_support::wait_for(
        std::time::Duration::from_secs(20),
        "the new alert on the open page",
        || async { browser.text().await.contains("PostedAfterOpening") },
    )
    .await
    .unwrap();
}
