use proptest::prelude::*;
use proto::{
    IncidentChange,
    evidence::{FunctionShare, ProfileSource},
};

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

#[test]
fn silence_is_offered_only_for_labels_alertmanager_confirmed_behind_a_dialog() {
    let mut event = incident_event(IncidentChange::Opened, 1);
    let alert = &mut event.incident.alert;
    alert.labels = [
        ("alertname", "HighCPU"),
        ("service", "checkout"),
        ("note", "<!channel> & <@U1>"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    alert.labels_confirmed = true;
    alert.alertmanager_fingerprints = vec!["a1".into()];
    let mut record = ReplyRecord::default();
    record.merge_incident(&event, None);
    let view = View {
        silence_for: std::time::Duration::from_secs(2 * 3600),
        ..View::default()
    };
    let rendered = render_with(&record, "ft-reply:incident.inc-1", &view);
    let actions = rendered.blocks.last().unwrap();
    let silence = &actions["elements"][0];
    assert_eq!(silence["action_id"], actions::SILENCE_1H);
    assert_eq!(silence["text"]["text"], "Silence 2h");
    let value = IncidentButton::parse(silence["value"].as_str()).unwrap();
    assert_eq!(value.silence_seconds, Some(7200));
    let dialog = &silence["confirm"];
    // Plain text: what the labels say is shown, never read as markup.
    assert_eq!(dialog["text"]["type"], "plain_text");
    let text = dialog["text"]["text"].as_str().unwrap();
    assert!(text.starts_with("For 2h, "), "{text}");
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
