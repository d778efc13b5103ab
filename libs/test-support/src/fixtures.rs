//! Messages as producers publish them, for tests and benchmarks.

use chrono::{DateTime, Utc};
use proto::{
    Alert, Incident, IncidentChange, IncidentEvent, IncidentId, MetricsEvidence, ProfileEvidence,
    SchemaVersion, SlackMessage, SlackThread, TimeWindow,
    evidence::{
        EvidenceStatus, FunctionGrowth, FunctionShare, MetricPoint, MetricSummary, ProfileSource,
        Trend,
    },
    incident::{AlertSource, AlertStatus},
    slack::SlackTransport,
};

/// `seconds` after a fixed instant (2023-11-14T22:13:20Z), so that fixtures are reproducible.
pub fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap_or_default()
}

/// A `HighCPU` incident on `svc-<id>` whose alert is the message `alert_ts` in `#alerts`,
/// as alert-watcher publishes it after `revision` changes.
pub fn incident_event(
    id: &str,
    alert_ts: &str,
    change: IncidentChange,
    revision: u64,
) -> IncidentEvent {
    let window = TimeWindow {
        from: at(-900),
        to: at(0),
    };
    IncidentEvent {
        schema_version: SchemaVersion::CURRENT,
        change,
        incident: Incident {
            id: IncidentId(id.to_owned()),
            fingerprint: format!("fp-{id}"),
            alert: Alert {
                source: AlertSource::Alertmanager,
                status: if change == IncidentChange::Resolved {
                    AlertStatus::Resolved
                } else {
                    AlertStatus::Firing
                },
                name: "HighCPU".to_owned(),
                severity: Some("critical".to_owned()),
                labels: Default::default(),
                annotations: Default::default(),
                starts_at: Some(at(-60)),
                links: Vec::new(),
                service: Some(format!("svc-{id}")),
                labels_confirmed: false,
                alertmanager_fingerprints: Vec::new(),
            },
            thread: SlackThread {
                channel: "C0ALERTS".to_owned(),
                ts: alert_ts.to_owned(),
            },
            opened_at: at(0),
            last_seen_at: at(revision as i64 * 60),
            notification_count: revision as u32,
            window,
            baseline: window,
            resolved_at: None,
            revision,
            related: Vec::new(),
            related_untracked: 0,
            stale_since: None,
            asked_by: None,
        },
    }
}

/// CPU metrics for `incident_id`: 1.8 cores now against 0.4 before, rising.
pub fn metrics_evidence(incident_id: &str, evidence_id: &str, collected: i64) -> MetricsEvidence {
    MetricsEvidence {
        schema_version: SchemaVersion::CURRENT,
        evidence_id: evidence_id.to_owned(),
        incident_id: IncidentId(incident_id.to_owned()),
        status: EvidenceStatus::Ok,
        window: TimeWindow {
            from: at(-900),
            to: at(0),
        },
        baseline: TimeWindow {
            from: at(-2700),
            to: at(-900),
        },
        series: vec![MetricSummary {
            name: "cpu".to_owned(),
            query: "rate(process_cpu_seconds_total[1m])".to_owned(),
            unit: Some("cores".to_owned()),
            current: Some(1.8),
            baseline: Some(0.4),
            peak: Some(2.0),
            trend: Trend::Rising,
            status: EvidenceStatus::Ok,
            points: climbing(0.4, 2.0),
        }],
        chart: None,
        chart_url: None,
        chart_png: None,
        collected_at: at(collected),
    }
}

/// One summarized series: `current` now against `baseline`, peaking 10% above `current`.
pub fn series(name: &str, current: f64, baseline: f64, trend: Trend, unit: &str) -> MetricSummary {
    MetricSummary {
        name: name.to_owned(),
        query: format!("{name}{{job=\"checkout\"}}"),
        unit: Some(unit.to_owned()),
        current: Some(current),
        baseline: Some(baseline),
        peak: Some(current * 1.1),
        trend,
        status: EvidenceStatus::Ok,
        points: climbing(baseline, current * 1.1),
    }
}

/// A minute per point over the 15 minutes before the fixed instant, from `from` to `to`.
pub fn climbing(from: f64, to: f64) -> Vec<MetricPoint> {
    (0..15)
        .map(|i| MetricPoint {
            at: at(-900 + 60 * i),
            value: from + (to - from) * i as f64 / 14.0,
        })
        .collect()
}

/// Profile evidence for `incident`: `top` as (function, share of self time), `grown` as
/// (function, baseline share, current share).
pub fn profile_evidence(
    incident: &Incident,
    top: &[(&str, f64)],
    grown: &[(&str, f64, f64)],
) -> ProfileEvidence {
    ProfileEvidence {
        requested_by: None,
        schema_version: SchemaVersion::CURRENT,
        evidence_id: format!("profile-{}", incident.id.0),
        incident_id: Some(incident.id.clone()),
        request_id: None,
        status: EvidenceStatus::Ok,
        source: ProfileSource::Pyroscope,
        app: incident.alert.service.clone().unwrap_or_default(),
        profile_type: "process_cpu:cpu:nanoseconds:cpu:nanoseconds".to_owned(),
        window: incident.window,
        baseline: Some(incident.baseline),
        total: 1_000_000_000,
        unit: "nanoseconds".to_owned(),
        top_functions: top
            .iter()
            .map(|(name, share)| FunctionShare {
                name: (*name).to_owned(),
                self_value: (share * 1e9) as u64,
                self_share: *share,
            })
            .collect(),
        grown: grown
            .iter()
            .map(|(name, from, to)| FunctionGrowth {
                name: (*name).to_owned(),
                baseline_share: *from,
                current_share: *to,
            })
            .collect(),
        flamegraph_url: None,
        diff_url: None,
        flamegraph_png: None,
        diff_png: None,
        baseline_label: None,
        folded: None,
        reply: None,
        collected_at: at(0),
    }
}

/// An Alertmanager alert as the gateway publishes it: a bot message with one attachment.
pub fn slack_message(event_id: &str) -> SlackMessage {
    SlackMessage {
        schema_version: SchemaVersion::CURRENT,
        event_id: event_id.to_owned(),
        team_id: Some("T0001".to_owned()),
        channel: "C0ALERTS".to_owned(),
        ts: "1700000000.000200".to_owned(),
        thread_ts: None,
        user: None,
        bot_id: Some("B0AMGR".to_owned()),
        subtype: Some("bot_message".to_owned()),
        edited_ts: None,
        text: String::new(),
        asked_by: None,
        received_at: chrono::Utc::now(),
        transport: SlackTransport::SocketMode,
        raw: serde_json::json!({
            "type": "message",
            "subtype": "bot_message",
            "attachments": [{"title": "[FIRING:1] HighCPU checkout (prod)", "color": "danger"}]
        }),
    }
}
