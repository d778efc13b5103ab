//! The emulator's page, opened in headless Chromium (Debian's `chromium`): it shows the channel as
//! a person reads it — the alert, its thread with our reply's blocks and buttons, reactions — and
//! renders message text as text, never as HTML.

#![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]

use std::{net::SocketAddr, path::PathBuf, process::Command};

use slack_emulator::EmulatorConfig;
use test_support::http_post_json;

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// The page's DOM after its scripts ran, as headless Chromium sees it.
fn rendered_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=4000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run {}: {err} (tests/run.sh installs chromium)",
                chromium().display()
            )
        });
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
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
    position(":eyes: 1");
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
