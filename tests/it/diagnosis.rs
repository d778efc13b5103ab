//! The diagnosis as an on-call engineer reads it: for each built-in rule, and for partial
//! evidence and failed sources, an incident and its evidence go through remediation-poster into
//! the Slack emulator, and the emulator's web page, opened in headless Chromium, shows each
//! reply's diagnosis, facts, remediations and confidence; evidence that never came is named once
//! the deadline passes.

use std::time::{Duration, Instant};

use proto::{
    IncidentChange, MetricsEvidence, ProfileEvidence,
    evidence::{EvidenceStatus, Trend},
};
use test_support::{NatsServer, fixtures};

use crate::slack_edge::{Control, emulator_config, observer, spawn_service, start_emulator};

struct Case {
    alert: &'static str,
    metrics: Option<MetricsEvidence>,
    profile: Option<ProfileEvidence>,
    /// What the page must show for it.
    shows: &'static [&'static str],
}

fn metrics(id: &str, series: Vec<proto::evidence::MetricSummary>) -> Option<MetricsEvidence> {
    let mut metrics = fixtures::metrics_evidence(id, &format!("metrics-{id}"), 0);
    metrics.series = series;
    Some(metrics)
}

fn cases(incident: impl Fn(&str) -> proto::Incident) -> Vec<Case> {
    use fixtures::{profile_evidence as profile, series};
    vec![
        Case {
            alert: "RegexHot",
            metrics: metrics(
                "RegexHot",
                vec![series("cpu", 1.8, 0.4, Trend::Rising, "cores")],
            ),
            profile: Some(profile(
                &incident("RegexHot"),
                &[("regex_backtrack", 0.62)],
                &[("regex_backtrack", 0.031, 0.62)],
            )),
            shows: &[
                "high confidence",
                "CPU is 4.5× its baseline",
                "kubectl -n shop rollout undo deployment/svc-RegexHot",
            ],
        },
        Case {
            alert: "MemoryLeak",
            metrics: metrics(
                "MemoryLeak",
                vec![series("memory", 900.0, 500.0, Trend::Rising, "MiB")],
            ),
            profile: Some(profile(&incident("MemoryLeak"), &[("alloc", 0.1)], &[])),
            shows: &[
                "medium confidence",
                "Memory is climbing steadily (500.0 → 900.0 MiB)",
            ],
        },
        Case {
            alert: "ErrorsUp",
            metrics: metrics(
                "ErrorsUp",
                vec![series("errors", 12.0, 2.0, Trend::Flat, "/s")],
            ),
            profile: Some(profile(&incident("ErrorsUp"), &[("handler", 0.1)], &[])),
            shows: &["Errors are 6.0× their baseline"],
        },
        Case {
            alert: "PathGrew",
            metrics: metrics(
                "PathGrew",
                vec![series("cpu", 1.0, 1.0, Trend::Flat, "cores")],
            ),
            profile: Some(profile(
                &incident("PathGrew"),
                &[("cache_miss", 0.3)],
                &[("cache_miss", 0.05, 0.3)],
            )),
            shows: &["`cache_miss` went from 5.0% to 30.0% of the CPU"],
        },
        Case {
            alert: "BlindCpu",
            metrics: metrics(
                "BlindCpu",
                vec![series("cpu", 2.0, 0.5, Trend::Rising, "cores")],
            ),
            profile: Some(ProfileEvidence {
                status: EvidenceStatus::Failed {
                    detail: "cannot reach Pyroscope: connection refused".into(),
                },
                top_functions: Vec::new(),
                grown: Vec::new(),
                ..profile(&incident("BlindCpu"), &[], &[])
            }),
            shows: &["low confidence", "press Profile now", "connection refused"],
        },
        Case {
            alert: "OneHot",
            metrics: None,
            profile: Some(profile(&incident("OneHot"), &[("json_dumps", 0.45)], &[])),
            // No metrics ever: named once the deadline passes.
            shows: &[
                "`json_dumps` takes 45.0% of the CPU",
                "the metrics did not arrive within 2s",
            ],
        },
        Case {
            alert: "NothingHolds",
            metrics: metrics(
                "NothingHolds",
                vec![series("cpu", 1.0, 1.0, Trend::Flat, "cores")],
            ),
            profile: Some(profile(&incident("NothingHolds"), &[("main", 0.1)], &[])),
            shows: &["none of the rules holds on this evidence, so no guess"],
        },
    ]
}

#[tokio::test]
async fn each_built_in_rule_reads_right_on_the_emulators_page() {
    use tracing::Instrument as _;
    // Real trace contexts, so each reply carries its trace id (linked through trace_url).
    crate::support::telemetry();
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let poster = spawn_service(|admin, shutdown| {
        let mut config = crate::slack_edge::poster_config(&nats, &slack, admin);
        config.diagnosis.evidence_deadline = Duration::from_secs(2);
        config.diagnosis.trace_url = "http://jaeger.example/trace/{trace_id}".into();
        remediation_poster::run(config, shutdown)
    })
    .await;
    let bus = observer(&nats).await;

    let mut alerts = Vec::new();
    for name in [
        "RegexHot",
        "MemoryLeak",
        "ErrorsUp",
        "PathGrew",
        "BlindCpu",
        "OneHot",
        "NothingHolds",
    ] {
        alerts.push((name, control.post_alert("C0ALERTS", name).await));
    }
    let incident = |name: &str| {
        let ts = &alerts.iter().find(|(n, _)| *n == name).unwrap().1;
        let mut incident = fixtures::incident_event(name, ts, IncidentChange::Opened, 1).incident;
        incident.alert.name = name.to_owned();
        incident
            .alert
            .labels
            .insert("namespace".into(), "shop".into());
        incident
    };
    let cases = cases(incident);
    for case in &cases {
        let opened = proto::IncidentEvent {
            schema_version: proto::SchemaVersion::CURRENT,
            change: IncidentChange::Opened,
            incident: incident(case.alert),
        };
        async {
            bus.publish(&opened).await.unwrap();
            if let Some(metrics) = &case.metrics {
                bus.publish(metrics).await.unwrap();
            }
            if let Some(profile) = &case.profile {
                bus.publish(profile).await.unwrap();
            }
        }
        .instrument(tracing::info_span!("test.alert", alert.name = case.alert))
        .await;
    }

    // Every reply is in its thread with what it must say (and the late metrics named).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let channel = control.channel("C0ALERTS").await;
        let missing: Vec<&str> = cases
            .iter()
            .filter(|case| {
                let ts = &alerts.iter().find(|(n, _)| *n == case.alert).unwrap().1;
                let reply = channel
                    .iter()
                    .find(|m| m["ts"] == ts.as_str())
                    .and_then(|m| m["replies"].as_array().and_then(|r| r.first().cloned()));
                let said = reply.map(|r| r["blocks"].to_string()).unwrap_or_default();
                !case.shows.iter().all(|text| said.contains(text))
            })
            .map(|case| case.alert)
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replies not right yet for {missing:?}: {channel:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // And a person reading the page sees the same: Chromium renders the emulator's page.
    let url = format!("http://{}/", slack.addr());
    let dom = tokio::task::spawn_blocking(move || test_support::rendered_dom(&url))
        .await
        .unwrap()
        .unwrap();
    for case in &cases {
        for text in case.shows {
            // The page renders mrkdwn as Slack does (`code` is code) and shows text as text
            // (`&` and `<` escaped).
            let text = text
                .replace('&', "&amp;")
                .split('`')
                .enumerate()
                .map(|(i, part)| {
                    if i % 2 == 1 {
                        format!("<code>{part}</code>")
                    } else {
                        part.to_owned()
                    }
                })
                .collect::<String>();
            assert!(
                dom.contains(&text),
                "{}: the page does not show {text:?}",
                case.alert
            );
        }
    }
    // The metrics as Slack's line chart, accepted by the emulator (as strict as Slack about the
    // block) and drawn on its page.
    assert!(
        dom.contains("cpu (cores), UTC") && dom.contains("<polyline"),
        "the CPU as a chart block: {dom}"
    );
    assert!(
        dom.contains("jaeger.example/trace/"),
        "the trace id links to the tracing UI"
    );
    poster.stop().await;
}
