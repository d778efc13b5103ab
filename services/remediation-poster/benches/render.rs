//! Rendering a reply (`cargo bench -p remediation-poster --bench render`): an incident with its
//! metrics and profile, as re-rendered on every update, and fitting an oversized message into
//! Slack's limits.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use proto::{
    IncidentChange, ProfileEvidence, SchemaVersion,
    evidence::{EvidenceStatus, FunctionGrowth, FunctionShare, ProfileSource},
};
use remediation_poster::{
    record::ReplyRecord,
    render::{self, Rendered},
};
use serde_json::json;
use test_support::fixtures;

fn full_record() -> ReplyRecord {
    let event = fixtures::incident_event("inc-1", "1700000000.000100", IncidentChange::Opened, 1);
    let mut record = ReplyRecord::default();
    record.merge_incident(&event, None);
    record.merge_metrics(&fixtures::metrics_evidence("inc-1", "m1", 30));
    record.merge_profile(&ProfileEvidence {
        requested_by: None,
        schema_version: SchemaVersion::CURRENT,
        evidence_id: "p1".into(),
        incident_id: Some(event.incident.id.clone()),
        request_id: None,
        status: EvidenceStatus::Ok,
        source: ProfileSource::Pyroscope,
        app: "checkout".into(),
        profile_type: "process_cpu:cpu:nanoseconds:cpu:nanoseconds".into(),
        window: event.incident.window,
        baseline: Some(event.incident.baseline),
        total: 1_000_000,
        unit: "nanoseconds".into(),
        top_functions: (0..20)
            .map(|i| FunctionShare {
                name: format!("github.com/acme/checkout/pricing.(*Engine).rule{i}"),
                self_value: 50_000,
                self_share: 0.05,
            })
            .collect(),
        grown: (0..3)
            .map(|i| FunctionGrowth {
                name: format!("encoding/json.(*decodeState).object{i}"),
                baseline_share: 0.02,
                current_share: 0.3,
            })
            .collect(),
        flamegraph_url: Some("https://flamethread.example/f/1".into()),
        diff_url: Some("https://flamethread.example/d/1".into()),
        flamegraph_png: None,
        diff_png: None,
        baseline_label: None,
        folded: None,
        reply: None,
        collected_at: event.incident.opened_at,
    });
    record
}

fn benchmarks(c: &mut Criterion) {
    let record = full_record();
    c.bench_function("render/incident_with_evidence", |b| {
        b.iter(|| render::render(black_box(&record), "ft-reply:incident.inc-1"))
    });
    let oversized = Rendered {
        text: proto::Mrkdwn::plain(&"x".repeat(20_000)),
        blocks: (0..120)
            .map(|i| json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("line {i}\n").repeat(400)}}))
            .collect(),
    };
    c.bench_function("render/fit_oversized", |b| {
        b.iter(|| render::fit(black_box(oversized.clone())))
    });
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
