//! The most honest alert source there is: a real Prometheus Alertmanager, with its own Slack
//! notifier, posting into the emulator's incoming webhook. What lands in `#alerts` is exactly what
//! Alertmanager posts into a real Slack, firing and then resolved. Bad webhook posts get Slack's
//! webhook answers.

#![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]

use std::{net::SocketAddr, time::Duration};

use slack_emulator::EmulatorConfig;
use test_support::{Alertmanager, http_get_async, http_post_json, wait_for};

const WEBHOOK: &str = "T0FLAME/B0AMGR/alertmanager";

fn alertmanager_config(webhook_url: &str) -> String {
    format!(
        r#"
route:
  receiver: slack
  group_by: ['alertname', 'service']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: slack
    slack_configs:
      - api_url: '{webhook_url}'
        channel: '#alerts'
        send_resolved: true
"#
    )
}

async fn alerts_channel(emulator: &slack_emulator::Running) -> serde_json::Value {
    let (status, body) = http_get_async(emulator.addr(), "/control/channels/C0ALERTS").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn alertmanagers_slack_notifier_posts_firing_then_resolved() {
    let emulator = slack_emulator::start(
        EmulatorConfig::default(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let alertmanager =
        Alertmanager::start(&alertmanager_config(&emulator.webhook_url(WEBHOOK))).unwrap();

    let alert = |ends_at: &str| {
        format!(
            r#"[{{"labels": {{"alertname": "HighCPU", "service": "checkout", "severity": "page"}},
                 "annotations": {{"summary": "CPU above 90% for 5m", "runbook_url": "https://runbooks/cpu"}},
                 "startsAt": "{}", {ends_at}
                 "generatorURL": "http://prometheus:9090/graph?g0.expr=cpu"}}]"#,
            chrono_now_minus_minutes(5)
        )
    };
    alertmanager.post_alerts(&alert("")).unwrap();
    wait_for(
        Duration::from_secs(30),
        "Alertmanager's firing message",
        || async {
            alerts_channel(&emulator).await["messages"]
                .as_array()
                .is_some_and(|m| !m.is_empty())
        },
    )
    .await
    .unwrap();

    let channel = alerts_channel(&emulator).await;
    let firing = &channel["messages"][0];
    assert_eq!(firing["subtype"], "bot_message");
    assert_eq!(firing["bot_id"], "B0AMGR");
    let attachment = &firing["attachments"][0];
    assert_eq!(attachment["title"], "[FIRING:1] HighCPU checkout (page)");
    assert_eq!(attachment["color"], "danger");
    assert!(
        attachment["title_link"]
            .as_str()
            .unwrap()
            .contains("/#/alerts?receiver=slack"),
        "{attachment}"
    );
    assert!(
        attachment["fallback"]
            .as_str()
            .unwrap()
            .starts_with("[FIRING:1] HighCPU checkout (page) | "),
        "{attachment}"
    );

    // The alert stops: Alertmanager posts [RESOLVED] as a new message (its notifier does not thread).
    alertmanager
        .post_alerts(&alert(&format!(
            r#""endsAt": "{}","#,
            chrono_now_minus_minutes(0)
        )))
        .unwrap();
    wait_for(
        Duration::from_secs(30),
        "Alertmanager's resolved message",
        || async {
            alerts_channel(&emulator).await["messages"]
                .as_array()
                .is_some_and(|m| m.len() >= 2)
        },
    )
    .await
    .unwrap();
    let channel = alerts_channel(&emulator).await;
    let resolved = &channel["messages"][1]["attachments"][0];
    assert_eq!(resolved["title"], "[RESOLVED] HighCPU checkout (page)");
    assert_eq!(resolved["color"], "good");
}

fn chrono_now_minus_minutes(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn bad_webhook_posts_get_slacks_answers() {
    let emulator = slack_emulator::start(
        EmulatorConfig::default(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let addr = emulator.addr();
    let post = |path: &'static str, body: &'static str| {
        tokio::task::spawn_blocking(move || http_post_json(addr, path, body).unwrap())
    };
    let hook = "/services/T0FLAME/B0AMGR/alertmanager";
    assert_eq!(
        post(hook, r#"{"text": "hello"}"#).await.unwrap(),
        (200, "ok".to_owned())
    );
    assert_eq!(
        post(hook, "{not json").await.unwrap(),
        (400, "invalid_payload".to_owned())
    );
    assert_eq!(
        post(hook, "[1, 2]").await.unwrap(),
        (400, "invalid_payload".to_owned())
    );
    assert_eq!(
        post(hook, r#"{"username": "x"}"#).await.unwrap(),
        (400, "no_text".to_owned())
    );
    assert_eq!(
        post("/services/T0FLAME/B0NOPE/guess", r#"{"text": "hi"}"#)
            .await
            .unwrap(),
        (404, "no_service".to_owned())
    );
    let channel = alerts_channel(&emulator).await;
    assert_eq!(
        channel["messages"].as_array().unwrap().len(),
        1,
        "only the valid post landed"
    );
    assert_eq!(channel["messages"][0]["username"], "Alertmanager");
}
