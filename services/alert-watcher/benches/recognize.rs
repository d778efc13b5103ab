//! Recognition throughput (`cargo bench -p alert-watcher --bench recognize`): one Slack message
//! event in, alerts (or "not an alert") out, on one core. Criterion reports the time per message
//! and, with `Throughput::Elements(1)`, messages per second.

use std::hint::black_box;

use alert_watcher::recognize::recognize;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

fn cases() -> Vec<(&'static str, Value)> {
    vec![
        (
            "alertmanager_default",
            json!({"type": "message", "subtype": "bot_message", "bot_id": "B0AMGR", "username": "Alertmanager", "text": "",
                "attachments": [{"color": "danger", "title": "[FIRING:3] HighCPU checkout (prod eu-west-1)", "text": "",
                    "fallback": "[FIRING:3] HighCPU checkout (prod eu-west-1) | http://alertmanager:9093/#/alerts?receiver=slack"}]}),
        ),
        (
            "grafana_two_alerts",
            json!({"type": "message", "subtype": "bot_message", "bot_id": "B0GRAFANA", "username": "Grafana", "text": "",
                "attachments": [{"title": "[FIRING:2] HighCPU (Services)", "footer": "Grafana v10.4.1",
                    "text": "**Firing**\n\nValue: B=97.1\nLabels:\n - alertname = HighCPU\n - service = checkout\nAnnotations:\n - summary = CPU above 90%\nSource: http://grafana:3000/alerting/grafana/abc/view\n\nValue: B=93.0\nLabels:\n - alertname = HighCPU\n - service = cart\nAnnotations:\n - summary = CPU above 90%\nSource: http://grafana:3000/alerting/grafana/def/view\n"}]}),
        ),
        (
            "chatter",
            json!({"type": "message", "user": "U0DEV", "text": "is checkout slow for anyone? the dashboard looks odd since the deploy"}),
        ),
    ]
}

fn benchmarks(c: &mut Criterion) {
    let mut group = c.benchmark_group("recognize");
    group.throughput(Throughput::Elements(1));
    for (name, event) in cases() {
        group.bench_function(name, |b| b.iter(|| recognize(black_box(&event))));
    }
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
