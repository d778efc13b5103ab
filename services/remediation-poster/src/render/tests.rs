use proptest::prelude::*;
use proto::{
    IncidentChange,
    evidence::{FunctionShare, ProfileSource},
};

use proto::slack::ButtonValue as _;

use super::*;
use crate::record::tests::incident_event;

fn record(change: IncidentChange, revision: u64) -> ReplyRecord {
    let mut record = ReplyRecord::default();
    record.merge_incident(&incident_event(change, revision), None);
    record
}

fn block_texts(rendered: &Rendered) -> String {
    serde_json::to_string(&rendered.blocks).unwrap()
}

#[test]
fn a_firing_incident_has_buttons_that_name_it_and_a_marker() {
    let rendered = render(
        &record(IncidentChange::Opened, 1),
        "ft-reply:incident.inc-1",
    );
    assert_eq!(rendered.blocks[0]["type"], "header");
    assert_eq!(rendered.blocks[0]["block_id"], "ft-reply:incident.inc-1");
    let actions = rendered.blocks.last().unwrap();
    assert_eq!(actions["type"], "actions");
    let ids: Vec<&str> = actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|button| button["action_id"].as_str().unwrap())
        .collect();
    // Labels read from a message: no silence on offer.
    assert_eq!(ids, [actions::RERUN, actions::PROFILE_NOW]);
    // Each button names the incident and its fingerprint (where alert-watcher keeps its state).
    for button in actions["elements"].as_array().unwrap() {
        let value: Value = serde_json::from_str(button["value"].as_str().unwrap()).unwrap();
        assert_eq!(value["i"], "inc-1");
        assert!(
            value["f"].as_str().is_some_and(|f| !f.is_empty()),
            "{value}"
        );
    }
    assert!(
        rendered.text.starts_with("HighCPU: firing on svc-inc-1"),
        "{}",
        rendered.text
    );
    assert!(block_texts(&rendered).contains("gathering"));
}

/// An opened incident whose alert has `labels`, confirmed by Alertmanager.
fn confirmed(labels: &[(&str, &str)]) -> proto::IncidentEvent {
    let mut event = incident_event(IncidentChange::Opened, 1);
    let alert = &mut event.incident.alert;
    alert.labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    alert.labels_confirmed = true;
    alert.alertmanager_fingerprints = vec!["a1".into()];
    event
}

#[test]
fn silence_is_offered_only_for_labels_alertmanager_confirmed_behind_a_dialog() {
    let event = confirmed(&[
        ("alertname", "HighCPU"),
        ("service", "checkout"),
        ("note", "<!channel> & <@U1>"),
    ]);
    let mut record = ReplyRecord::default();
    record.merge_incident(&event, None);
    // Up to an hour, one length: a button.
    let view = View {
        silence_for: std::time::Duration::from_secs(3600),
        ..View::default()
    };
    let rendered = render_with(&record, "ft-reply:incident.inc-1", &view);
    let actions = rendered.blocks.last().unwrap();
    let silence = &actions["elements"][0];
    assert_eq!(silence["action_id"], actions::SILENCE_1H);
    assert_eq!(silence["text"]["text"], "Silence 1h");
    let value = IncidentButton::parse(silence["value"].as_str()).unwrap();
    assert_eq!(value.silence_seconds, Some(3600));
    let dialog = &silence["confirm"];
    // Plain text: what the labels say is shown, never read as markup.
    assert_eq!(dialog["text"]["type"], "plain_text");
    let text = dialog["text"]["text"].as_str().unwrap();
    assert!(text.starts_with("For 1h, "), "{text}");
    for matcher in [
        "alertname=\"HighCPU\"",
        "service=\"checkout\"",
        "note=\"<!channel> & <@U1>\"",
    ] {
        assert!(text.contains(matcher), "{matcher} in {text}");
    }
    // Many labels: the dialog stays within Slack's 300 characters and says how many it left out.
    let mut many = event.clone();
    for i in 0..40 {
        many.incident
            .alert
            .labels
            .insert(format!("label_{i:02}"), "x".repeat(20));
    }
    let mut record = ReplyRecord::default();
    record.merge_incident(&many, None);
    let rendered = render_with(&record, "m", &view);
    let text = rendered.blocks.last().unwrap()["elements"][0]["confirm"]["text"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.chars().count() <= 300, "{}", text.chars().count());
    assert!(
        text.contains("more (listed in the thread once made)"),
        "{text}"
    );
}

#[test]
fn the_reply_shows_the_trace_it_arrived_in() {
    let mut record = ReplyRecord::default();
    record.merge_incident(
        &incident_event(IncidentChange::Opened, 1),
        Some("4bf92f3577b34da6a3ce929d0e0e4736"),
    );
    let text = block_texts(&render(&record, "m"));
    assert!(
        text.contains("trace `4bf92f3577b34da6a3ce929d0e0e4736`"),
        "{text}"
    );
}

#[test]
fn a_resolved_incident_says_so_and_offers_no_buttons() {
    let rendered = render(&record(IncidentChange::Resolved, 2), "m");
    assert!(
        rendered.blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("✅ Resolved")
    );
    assert!(
        rendered
            .blocks
            .iter()
            .all(|block| block["type"] != "actions")
    );
}

#[test]
fn profiles_list_top_functions_and_links() {
    let mut record = record(IncidentChange::Opened, 1);
    let event = incident_event(IncidentChange::Opened, 1);
    record.merge_profile(&ProfileEvidence {
        requested_by: None,
        schema_version: proto::SchemaVersion::CURRENT,
        evidence_id: "p1".into(),
        incident_id: Some(event.incident.id.clone()),
        request_id: None,
        status: EvidenceStatus::Ok,
        source: ProfileSource::Pyroscope,
        app: "checkout".into(),
        profile_type: "process_cpu:cpu:nanoseconds:cpu:nanoseconds".into(),
        window: event.incident.window,
        baseline: None,
        total: 100,
        unit: "samples".into(),
        top_functions: (0..12)
            .map(|i| FunctionShare {
                name: format!("fn_{i}<&'a T>"),
                self_value: 10,
                self_share: 0.1,
            })
            .collect(),
        grown: Vec::new(),
        flamegraph_url: Some("https://ft.example/f/1".into()),
        diff_url: None,
        flamegraph_png: None,
        diff_png: None,
        baseline_label: None,
        folded: None,
        reply: None,
        collected_at: event.incident.opened_at,
    });
    let rendered = render(&record, "m");
    let text = block_texts(&rendered);
    assert!(text.contains("fn_0&lt;&amp;'a T&gt;"), "escaped: {text}");
    assert!(text.contains("… and 4 more"), "{text}");
    assert!(text.contains("<https://ft.example/f/1|Flamegraph>"));
    assert!(rendered.text.contains("Top: fn_0"), "{}", rendered.text);
}

#[test]
fn oversized_messages_are_cut_with_a_note_not_refused() {
    let long_section = (0..400)
        .map(|i| format!("line {i} with some words in it"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut blocks = vec![
        header(&"H".repeat(400)),
        section(Mrkdwn::plain(&long_section)),
    ];
    blocks.extend((0..70).map(|i| section(Mrkdwn::plain(&format!("block {i}")))));
    blocks.push(json!({"type": "actions", "elements": []}));
    let fitted = fit(Rendered {
        text: Mrkdwn::plain(&"t".repeat(50_000)),
        blocks,
    });
    assert_eq!(fitted.blocks.len(), MAX_BLOCKS);
    assert_eq!(
        fitted.blocks.last().unwrap()["type"],
        "actions",
        "buttons survive"
    );
    let note = &fitted.blocks[MAX_BLOCKS - 2];
    assert_eq!(
        note["elements"][0]["text"],
        "… and 24 more sections not shown"
    );
    let header_text = fitted.blocks[0]["text"]["text"].as_str().unwrap();
    assert_eq!(header_text.chars().count(), MAX_HEADER_TEXT);
    let section_text = fitted.blocks[1]["text"]["text"].as_str().unwrap();
    assert!(section_text.chars().count() <= MAX_SECTION_TEXT);
    assert!(section_text.ends_with("more lines"), "{section_text}");
    assert!(fitted.text.chars().count() <= MAX_TEXT);
}

#[test]
fn a_cut_code_block_still_closes() {
    let text = format!("```{}```", "x\n".repeat(4000));
    let cut = truncate_lines(&text, MAX_SECTION_TEXT);
    assert_eq!(cut.matches("```").count() % 2, 0, "{cut}");
}

proptest! {
    /// Whatever goes in, what comes out is inside Slack's limits.
    #[test]
    fn fit_always_respects_the_limits(
        sections in proptest::collection::vec((0usize..200, 0usize..120), 0..90),
        text_len in 0usize..60_000,
    ) {
        let blocks = sections
            .iter()
            .map(|(lines, width)| section(Mrkdwn::plain(&vec!["é".repeat(*width); *lines].join("\n"))))
            .collect();
        let fitted = fit(Rendered { text: Mrkdwn::plain(&"x".repeat(text_len)), blocks });
        prop_assert!(fitted.blocks.len() <= MAX_BLOCKS);
        prop_assert!(fitted.text.chars().count() <= MAX_TEXT);
        for block in &fitted.blocks {
            if let Some(text) = block.pointer("/text/text").and_then(Value::as_str) {
                prop_assert!(text.chars().count() <= MAX_SECTION_TEXT, "{} chars", text.chars().count());
            }
        }
    }
}

#[test]
fn a_storm_incident_lists_its_related_alerts() {
    let mut event = incident_event(IncidentChange::Updated, 2);
    let mut related_alert = event.incident.alert.clone();
    related_alert.name = "HighLatency".into();
    related_alert.status = proto::incident::AlertStatus::Resolved;
    event.incident.related.push(proto::incident::RelatedAlert {
        fingerprint: "fp-latency".into(),
        alert: related_alert,
        last_message: event.incident.thread.clone(),
        first_seen_at: event.incident.opened_at,
        last_seen_at: event.incident.opened_at,
        notification_count: 3,
    });
    event.incident.related_untracked = 7;
    let mut storm = ReplyRecord::default();
    storm.merge_incident(&event, None);
    let blocks = block_texts(&render(&storm, "ft-reply:incident.inc-1"));
    assert!(
        blocks.contains("Also in this storm* (8 more alerts)"),
        "{blocks}"
    );
    assert!(blocks.contains("✅ HighLatency"), "{blocks}");
    assert!(blocks.contains("×3"), "{blocks}");
    assert!(
        blocks.contains("7 notifications of further alerts"),
        "{blocks}"
    );

    let calm = block_texts(&render(
        &record(IncidentChange::Updated, 2),
        "ft-reply:incident.inc-1",
    ));
    assert!(!calm.contains("Also in this storm"));
}

#[test]
fn each_metric_says_how_its_query_went() {
    let mut metrics = test_support::fixtures::metrics_evidence("inc-1", "ev-1", 0);
    let mut broken = metrics.series[0].clone();
    broken.name = "errors".into();
    broken.status = EvidenceStatus::NoData {
        detail: "no data for `checkout` in the 15m before the alert".into(),
    };
    metrics.series.push(broken);
    let mut with_metrics = record(IncidentChange::Opened, 1);
    with_metrics.merge_metrics(&metrics);
    let blocks = block_texts(&render(&with_metrics, "ft-reply:incident.inc-1"));
    assert!(
        blocks.contains("`cpu` 1.800 cores vs 0.400 cores"),
        "{blocks}"
    );
    assert!(
        blocks.contains("`errors` no data: no data for `checkout` in the 15m before the alert"),
        "{blocks}"
    );
}

#[test]
fn a_stale_incident_says_so_in_place() {
    let mut event = incident_event(IncidentChange::Updated, 2);
    event.incident.last_seen_at = fixtures_at(0);
    event.incident.stale_since = Some(fixtures_at(26 * 3600));
    let mut record = ReplyRecord::default();
    record.merge_incident(&event, None);
    let rendered = render(&record, "m");
    let blocks = block_texts(&rendered);
    assert!(blocks.contains("⏳ Stale · HighCPU"), "{blocks}");
    assert!(
        blocks.contains("(1d 2h ago); its source never says it resolved"),
        "{blocks}"
    );
    assert!(
        rendered.text.contains("HighCPU: stale on"),
        "{}",
        rendered.text.as_str()
    );
}

fn fixtures_at(seconds: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
}

fn hostile_change(minutes_before: i64, started: chrono::DateTime<chrono::Utc>) -> proto::Change {
    proto::Change {
        schema_version: proto::SchemaVersion::CURRENT,
        change_id: "ci-1".into(),
        service: "checkout".into(),
        environment: Some("prod".into()),
        version: Some("1.4.2 <!channel>".into()),
        kind: proto::ChangeKind::Deploy,
        who: Some("*mallory* <@U0BOSS>".into()),
        url: Some("https://ci.example/812".into()),
        message: Some("fix `coupons`\nsecond line".into()),
        at: started - chrono::Duration::minutes(minutes_before),
        source: proto::ChangeSource::Api,
    }
}

#[test]
fn changes_and_the_workload_are_shown_and_what_came_from_outside_stays_text() {
    let mut record = record(IncidentChange::Opened, 1);
    let incident = record.content.incident.clone().unwrap();
    let started = incident.alert.starts_at.unwrap_or(incident.opened_at);
    record.merge_changes(&proto::ChangesEvidence {
        schema_version: proto::SchemaVersion::CURRENT,
        evidence_id: "c1".into(),
        incident_id: incident.id.clone(),
        status: EvidenceStatus::Ok,
        window: incident.window,
        changes: vec![hostile_change(7, started)],
        notes: vec!["kube-state-metrics: <b>down</b>".into()],
        collected_at: fixtures_at(5),
    });
    record.merge_workload(&proto::WorkloadEvidence {
        schema_version: proto::SchemaVersion::CURRENT,
        evidence_id: "w1".into(),
        incident_id: incident.id.clone(),
        status: EvidenceStatus::Ok,
        workload: Some(proto::evidence::WorkloadRef {
            namespace: "shop".into(),
            deployment: Some("checkout".into()),
            pod: None,
            container: None,
        }),
        replicas: Some(proto::evidence::Replicas {
            desired: 3,
            ready: 2,
        }),
        containers: vec![proto::evidence::ContainerFacts {
            pod: "checkout-7d9f8b6c5-x2k4z".into(),
            container: "checkout".into(),
            restarts: Some(4),
            last_terminated: Some("OOMKilled".into()),
            memory_peak_bytes: Some(500.0 * 1024.0 * 1024.0),
            memory_limit_bytes: Some(512.0 * 1024.0 * 1024.0),
            ..Default::default()
        }],
        events: vec![proto::evidence::KubeEvent {
            at: None,
            kind: "Warning".into(),
            reason: "BackOff".into(),
            message: "restarting <!here>".into(),
            object: "Pod/checkout-7d9f8b6c5-x2k4z".into(),
            count: 3,
        }],
        log: Some(proto::evidence::LogTail {
            pod: "checkout-7d9f8b6c5-x2k4z".into(),
            container: "checkout".into(),
            previous: true,
            text: "```\nMemoryError <@U0BOSS>".into(),
            truncated: true,
        }),
        rollouts: vec![proto::evidence::Rollout {
            revision: 2,
            replicaset: "checkout-7d9f8b6c5".into(),
            created_at: None,
            images: vec!["registry/checkout:1.4.2".into()],
        }],
        notes: vec![
            "Kubernetes refused to list events in shop (403): the Role needs `list` on `events`"
                .into(),
        ],
        collected_at: fixtures_at(5),
    });
    let text = block_texts(&render(&record, "m"));
    assert!(text.contains("*Changed before this alert*"), "{text}");
    assert!(
        text.contains("<https://ci.example/812|checkout 1.4.2 &lt;!channel&gt;> deployed 7m before, by *mallory* &lt;@U0BOSS&gt; in prod: _fix `coupons`_"),
        "{text}"
    );
    assert!(
        text.contains("kube-state-metrics: &lt;b&gt;down&lt;/b&gt;"),
        "{text}"
    );
    assert!(
        text.contains("*Workload* `shop/deployment/checkout`"),
        "{text}"
    );
    assert!(text.contains("2/3 replicas ready ⚠️"), "{text}");
    assert!(
        text.contains(
            "4 restarts, last terminated *OOMKilled*, memory peaked at 500 of 512 MiB (98%)"
        ),
        "{text}"
    );
    assert!(
        text.contains("BackOff: restarting &lt;!here&gt; (×3)"),
        "{text}"
    );
    assert!(
        text.contains("ˋˋˋ\\nMemoryError &lt;@U0BOSS&gt;"),
        "a log cannot close its code block: {text}"
    );
    assert!(text.contains("rev 2 registry/checkout:1.4.2"), "{text}");
    assert!(text.contains("the Role needs `list` on `events`"), "{text}");
    for raw in ["<!channel>", "<!here>", "<@U0BOSS>", "<b>"] {
        assert!(!text.contains(raw), "{raw} reached Slack as markup: {text}");
    }
}

#[test]
fn requests_that_got_slow_are_listed_and_span_names_stay_text() {
    let mut record = record(IncidentChange::Opened, 1);
    let incident = record.content.incident.clone().unwrap();
    let stats = |name: &str, p95: f64, before: Option<f64>| proto::evidence::SpanNameStats {
        span_name: name.into(),
        spans: 120,
        p50_ms: p95 / 2.0,
        p95_ms: p95,
        error_rate: 0.25,
        baseline_spans: before.map_or(0, |_| 100),
        baseline_p95_ms: before,
        baseline_error_rate: before.map(|_| 0.0),
    };
    record.merge_traces(&proto::TracesEvidence {
        schema_version: proto::SchemaVersion::CURRENT,
        evidence_id: "t1".into(),
        incident_id: incident.id.clone(),
        status: EvidenceStatus::Ok,
        service: "checkout".into(),
        window: incident.window,
        baseline: incident.baseline,
        span_names: vec![
            stats("GET /cart <!channel>", 1812.0, Some(95.0)),
            stats(&"x".repeat(5000), 90.0, None),
        ],
        slowest: Some(proto::evidence::SlowSpan {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            span_name: "SELECT <@U0BOSS>".into(),
            duration_ms: 2300.0,
            waterfall_url: Some(
                "http://pages.test/traces/4bf92f3577b34da6a3ce929d0e0e4736?span=00f067aa0ba902b7"
                    .into(),
            ),
            span_profile_url: None,
            span_profile_note: Some("Pyroscope did not answer within 5s <!here>".into()),
        }),
        collected_at: fixtures_at(5),
    });
    let text = block_texts(&render(&record, "m"));
    assert!(
        text.contains("*Requests* of `checkout`, the incident window against before:"),
        "{text}"
    );
    assert!(
        text.contains("• `GET /cart &lt;!channel&gt;` p95 *1.8 s* (was 95 ms) · errors 25% (was 0%) · 120 spans"),
        "{text}"
    );
    assert!(
        text.contains("p95 *90 ms* (new) · errors 25% · 120 spans"),
        "{text}"
    );
    assert!(
        !text.contains(&"x".repeat(101)),
        "a long name is cut: {text}"
    );
    assert!(
        text.contains(
            "Slowest: `SELECT &lt;@U0BOSS&gt;` 2.3 s in trace `4bf92f3577b34da6a3ce929d0e0e4736` · <http://pages.test/traces/4bf92f3577b34da6a3ce929d0e0e4736?span=00f067aa0ba902b7|Waterfall> · no span profile: Pyroscope did not answer within 5s &lt;!here&gt;"
        ),
        "{text}"
    );
    for raw in ["<!channel>", "<@U0BOSS>"] {
        assert!(!text.contains(raw), "{raw} reached Slack as markup: {text}");
    }
}

#[test]
fn a_diff_before_and_after_a_change_is_one_button_away() {
    let mut record = record(IncidentChange::Opened, 1);
    let incident = record.content.incident.clone().unwrap();
    let mut profile = test_support::fixtures::profile_evidence(
        &incident,
        &[("parse_coupon", 0.6)],
        &[("parse_coupon", 0.05, 0.6)],
    );
    profile.diff_url = Some("http://pages/flamegraphs/x/diff".into());
    profile.baseline_label = Some("before deploy checkout 1.4.2".into());
    record.merge_profile(&profile);
    let rendered = render(&record, "m");
    let actions = rendered.blocks.last().unwrap();
    let diff = actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|button| button["action_id"] == actions::OPEN_DIFF)
        .expect("a diff button");
    assert_eq!(diff["url"], "http://pages/flamegraphs/x/diff");
    assert_eq!(
        diff["text"]["text"],
        "Diff before deploy checkout 1.4.2 vs after"
    );
    assert!(block_texts(&rendered).contains("*Grew against before deploy checkout 1.4.2*"));
}

#[test]
fn missing_kubernetes_labels_are_said_not_left_out() {
    let mut record = record(IncidentChange::Opened, 1);
    let incident = record.content.incident.clone().unwrap();
    record.merge_workload(&proto::WorkloadEvidence {
        schema_version: proto::SchemaVersion::CURRENT,
        evidence_id: "w1".into(),
        incident_id: incident.id.clone(),
        status: EvidenceStatus::NoData {
            detail: "the alert has no namespace label (namespace), so there is no Kubernetes workload to look at".into(),
        },
        workload: None,
        replicas: None,
        containers: Vec::new(),
        events: Vec::new(),
        log: None,
        rollouts: Vec::new(),
        notes: Vec::new(),
        collected_at: fixtures_at(5),
    });
    let text = block_texts(&render(&record, "m"));
    assert!(
        text.contains("*Workload* no data: the alert has no namespace label"),
        "{text}"
    );
}

#[test]
fn longer_silences_are_a_choice_of_lengths_confirmed_by_a_dialog() {
    let event = confirmed(&[("alertname", "HighCPU"), ("service", "checkout")]);
    let mut record = ReplyRecord::default();
    record.merge_incident(&event, None);
    let view = View {
        silence_for: std::time::Duration::from_secs(24 * 3600),
        ..View::default()
    };
    let rendered = render_with(&record, "m", &view);
    let silence = &rendered.blocks.last().unwrap()["elements"][0];
    assert_eq!(silence["type"], "static_select");
    assert_eq!(silence["action_id"], actions::SILENCE_1H);
    let options = silence["options"].as_array().unwrap();
    let offered: Vec<(String, Option<u64>)> = options
        .iter()
        .map(|option| {
            (
                option["text"]["text"].as_str().unwrap().to_owned(),
                IncidentButton::parse(option["value"].as_str())
                    .unwrap()
                    .silence_seconds,
            )
        })
        .collect();
    assert_eq!(
        offered,
        [
            ("Silence 30m".to_owned(), Some(1800)),
            ("Silence 1h".to_owned(), Some(3600)),
            ("Silence 4h".to_owned(), Some(4 * 3600)),
            ("Silence 24h".to_owned(), Some(24 * 3600)),
        ]
    );
    let text = silence["confirm"]["text"]["text"].as_str().unwrap();
    assert!(text.starts_with("For as long as you picked, "), "{text}");
    assert!(text.contains("service=\"checkout\""), "{text}");
}
