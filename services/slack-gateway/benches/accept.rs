//! What the gateway does to every Slack payload before publishing it: decide and build the
//! message (`cargo bench -p slack-gateway --bench accept`). Parsing the JSON is included, as the
//! gateway does it once per payload.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use proto::slack::SlackTransport;
use serde_json::{Value, json};
use slack_gateway::accept::{self, Filter};

fn filter() -> Filter {
    Filter {
        identity: slack::Identity {
            team_id: "T0FLAME".into(),
            user_id: "U0FLAMEBOT".into(),
            bot_id: Some("B0FLAMEBOT".into()),
            workspace_url: "https://flamethread.slack.com/".into(),
        },
        channels: ["C0ALERTS".to_owned()].into_iter().collect(),
    }
}

/// An Alertmanager notification for a group of 5 alerts, as Slack delivers it.
fn alertmanager_callback() -> String {
    json!({
        "type": "event_callback", "team_id": "T0FLAME", "event_id": "Ev0BENCH", "event_time": 1_700_000_000,
        "event": {
            "type": "message", "subtype": "bot_message", "bot_id": "B0AMGR", "username": "Alertmanager",
            "channel": "C0ALERTS", "ts": "1700000000.000100", "text": "",
            "attachments": [{
                "color": "danger",
                "title": "[FIRING:5] HighCPU checkout (prod eu-west-1)",
                "title_link": "http://alertmanager:9093/#/alerts?receiver=slack",
                "fallback": "[FIRING:5] HighCPU checkout | http://alertmanager:9093/#/alerts?receiver=slack",
                "text": (0..5).map(|i| format!("*Alert:* CPU above 90% on checkout-{i}\n*Labels:* instance=10.0.0.{i}:8080 job=checkout")).collect::<Vec<_>>().join("\n"),
                "footer": "Alertmanager"
            }]
        }
    })
    .to_string()
}

fn benchmarks(c: &mut Criterion) {
    let filter = filter();
    let now = chrono::Utc::now();
    let alert = alertmanager_callback();
    c.bench_function("accept/alertmanager_message", |b| {
        b.iter(|| {
            let payload: Value = serde_json::from_str(black_box(&alert)).expect("JSON");
            accept::event_callback(&payload, SlackTransport::SocketMode, now, &filter)
        })
    });
    let own = json!({"type": "event_callback", "event_id": "Ev0OWN", "event": {"type": "message", "channel": "C0ALERTS", "ts": "1.2", "user": "U0FLAMEBOT", "bot_id": "B0FLAMEBOT", "text": "our own reply"}}).to_string();
    c.bench_function("accept/own_message_dropped", |b| {
        b.iter(|| {
            let payload: Value = serde_json::from_str(black_box(&own)).expect("JSON");
            accept::event_callback(&payload, SlackTransport::SocketMode, now, &filter)
        })
    });
    let click = json!({
        "type": "block_actions", "trigger_id": "t1", "user": {"id": "U0ONCALL"},
        "container": {"type": "message", "message_ts": "1.4", "channel_id": "C0ALERTS"},
        "channel": {"id": "C0ALERTS"}, "message": {"ts": "1.4", "thread_ts": "1.2"},
        "response_url": "https://hooks.slack.com/actions/1",
        "actions": [{"action_id": "ft.silence_1h", "value": "inc-1", "type": "button"}]
    })
    .to_string();
    c.bench_function("accept/button_click", |b| {
        b.iter(|| {
            let payload: Value = serde_json::from_str(black_box(&click)).expect("JSON");
            accept::interaction(&payload, SlackTransport::SocketMode, now)
        })
    });
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
