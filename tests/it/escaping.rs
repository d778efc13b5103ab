//! Outside text is never markup: hostile strings (`<!channel>`, `<!here>`, `<@U1>`,
//! `<https://x|y>`, backticks, `&`) in every field that comes from outside, fed to every
//! producer of Slack text (the poster's replies for incidents, evidence, sandbox results and
//! forwarded posts; alert-watcher's notes, answers and offers; profile-fetcher's pickers), never
//! reach Slack as a mention, a link or a date: every `<…>` in what would be sent is one flamethread
//! wrote on purpose (a mention of a user it names, a link to its own pages).

use proptest::prelude::*;
use proto::{
    IncidentChange, ProfileRequest, ReplyTarget, SandboxResult, SchemaVersion,
    evidence::{EvidenceStatus, ProfileMode, Trend},
    sandbox::{RunProfile, SandboxOutcome},
};
use serde_json::{Value, json};
use test_support::fixtures;

const HOSTILE: &[&str] = &[
    "<!channel>",
    "<!here>",
    "<@U1>",
    "<https://x|y>",
    "<!date^1^{date}|x>",
    "`",
    "```",
    "&",
    "&lt;!channel&gt;",
    "|",
    ">",
];

/// The deliberate markup this test's producers may write.
const OUR_USERS: &[&str] = &["U0ONCALL", "U0UP"];
const OUR_PAGES: &str = "http://pages.example/";

fn hostile() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            proptest::sample::select(HOSTILE).prop_map(str::to_owned),
            "[a-z ]{0,4}",
        ],
        1..5,
    )
    .prop_map(|parts| parts.concat())
}

/// Every mrkdwn text Slack would read in a message: the top-level text, section texts and
/// fields, context elements.
fn mrkdwn_texts(text: &str, blocks: &[Value]) -> Vec<String> {
    let mut texts = vec![text.to_owned()];
    for block in blocks {
        if block["text"]["type"] == "mrkdwn" {
            texts.push(block["text"]["text"].as_str().unwrap_or("").to_owned());
        }
        for field in block["fields"].as_array().into_iter().flatten() {
            texts.push(field["text"].as_str().unwrap_or("").to_owned());
        }
        for element in block["elements"].as_array().into_iter().flatten() {
            if element["type"] == "mrkdwn" {
                texts.push(element["text"].as_str().unwrap_or("").to_owned());
            }
        }
    }
    texts
}

/// Panics naming the markup that flamethread did not mean.
fn only_deliberate_markup(what: &str, text: &str, blocks: &[Value]) {
    for said in mrkdwn_texts(text, blocks) {
        let mut rest = said.as_str();
        while let Some(start) = rest.find('<') {
            let end = rest[start..]
                .find('>')
                .map_or(rest.len(), |end| start + end + 1);
            let markup = &rest[start..end];
            let ours = [
                OUR_PAGES,
                "https://traces.example/",
                "https://runbooks.example/",
            ];
            let meant = OUR_USERS.iter().any(|user| markup == format!("<@{user}>"))
                || (ours
                    .iter()
                    .any(|page| markup.starts_with(&format!("<{page}")))
                    && !markup[1..].contains(['<', '!', '@']))
                // A time in the reader's zone (Mrkdwn::date), its fallback escaped.
                || (markup.starts_with("<!date^") && !markup[2..].contains(['<', '!', '@']));
            assert!(
                meant,
                "{what}: {markup:?} reached Slack as markup in {said:?}"
            );
            rest = &rest[end..];
        }
    }
}

fn request(app: &str) -> ProfileRequest {
    let now = fixtures::at(0);
    ProfileRequest {
        schema_version: SchemaVersion::CURRENT,
        request_id: "r1".into(),
        app: Some(app.to_owned()),
        window: proto::TimeWindow { from: now, to: now },
        profile_type: None,
        mode: ProfileMode::Continuous,
        incident_id: None,
        requested_by: Some("U0ONCALL".into()),
        reply: ReplyTarget::ResponseUrl {
            url: "https://hooks.slack.com/commands/T1/1/a".into(),
        },
    }
}

fn post_json(post: &proto::PostRequest) -> Vec<Value> {
    post.blocks
        .iter()
        .flatten()
        .map(|block| block.json().clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_outside_text_reaches_slack_as_a_mention_or_a_link(
        name in hostile(),
        label in hostile(),
        function in hostile(),
        output in hostile(),
        file in hostile(),
        typed in hostile(),
    ) {
        // The poster's reply to an incident with hostile alert fields and evidence.
        let mut event = fixtures::incident_event("inc-1", "1.1", IncidentChange::Opened, 1);
        let alert = &mut event.incident.alert;
        alert.name = name.clone();
        alert.service = Some(label.clone());
        alert.severity = Some(label.clone());
        alert.labels.insert("team".into(), label.clone());
        alert.labels.insert(label.clone(), name.clone());
        alert.annotations.insert("runbook_url".into(), format!("https://x|{label}"));
        alert.annotations.insert("summary".into(), label.clone());
        alert.labels_confirmed = true;
        alert.alertmanager_fingerprints = vec!["a1".into()];
        let mut record = remediation_poster::record::ReplyRecord::default();
        record.merge_incident(&event, Some(&label));
        let mut metrics = fixtures::metrics_evidence("inc-1", "m1", 0);
        metrics.series.push(fixtures::series(&label, 2.0, 1.0, Trend::Rising, &label));
        metrics.series[0].unit = Some(label.clone());
        metrics.chart_url = Some(format!("{OUR_PAGES}charts/1"));
        record.merge_metrics(&metrics);
        let mut profile = fixtures::profile_evidence(
            &event.incident,
            &[(function.as_str(), 0.6), ("main", 0.1)],
            &[(function.as_str(), 0.1, 0.6)],
        );
        profile.app = label.clone();
        profile.flamegraph_url = Some(format!("{OUR_PAGES}flamegraphs/1"));
        record.merge_profile(&profile);
        let view = remediation_poster::render::View {
            trace_url: "https://traces.example/{trace_id}".into(),
            ..Default::default()
        };
        let rendered = remediation_poster::render::render_with(&record, "m", &view);
        only_deliberate_markup("incident reply", &rendered.text, &rendered.blocks);

        // Failed evidence says its detail.
        let mut failing = remediation_poster::record::ReplyRecord::default();
        failing.merge_incident(&event, None);
        let mut metrics = fixtures::metrics_evidence("inc-1", "m2", 0);
        metrics.status = EvidenceStatus::Failed { detail: output.clone() };
        failing.merge_metrics(&metrics);
        let rendered = remediation_poster::render::render(&failing, "m");
        only_deliberate_markup("failed evidence", &rendered.text, &rendered.blocks);

        // A sandbox run of a hostile script.
        let result = SandboxResult {
            schema_version: SchemaVersion::CURRENT,
            request_id: "s1".into(),
            outcome: SandboxOutcome::Rejected { reason: output.clone() },
            wall_ms: 10,
            stdout_tail: output.clone(),
            stdout_truncated: false,
            stderr_tail: name.clone(),
            stderr_truncated: true,
            profile: Some(RunProfile {
                folded: proto::ObjectRef { bucket: "b".into(), key: "k".into(), size: 1, content_type: "text/plain".into() },
                total_samples: 3,
                top_functions: profile.top_functions.clone(),
                flamegraph_url: Some(format!("{OUR_PAGES}flamegraphs/2")),
            }),
            profile_missing: String::new(),
            limits_hit: vec![proto::sandbox::LimitHit::Output { stream: "stdout".into(), bytes: 1 << 30 }],
            reply: ReplyTarget::Thread { channel: "C1".into(), thread_ts: "1.1".into() },
            requested_by: "U1".into(),
            file_name: name.clone(),
            finished_at: None,
        };
        let mut run = remediation_poster::record::ReplyRecord::default();
        run.merge_sandbox(&result);
        let rendered = remediation_poster::render::render(&run, "m");
        only_deliberate_markup("sandbox result", &rendered.text, &rendered.blocks);
        // A run without a profile says why, in the profiler's own (outside) words.
        let unprofiled = SandboxResult { profile: None, profile_missing: output.clone(), ..result.clone() };
        let mut run = remediation_poster::record::ReplyRecord::default();
        run.merge_sandbox(&unprofiled);
        let rendered = remediation_poster::render::render(&run, "m");
        only_deliberate_markup("sandbox result without a profile", &rendered.text, &rendered.blocks);

        // alert-watcher: a silence note, an expiry, a refusal.
        let silence = alert_watcher::alertmanager_api::NewSilence {
            matchers: event.incident.alert.labels.clone(),
            starts_at: fixtures::at(0),
            ends_at: fixtures::at(3600),
            created_by: "U0ONCALL".into(),
            comment: String::new(),
        };
        for post in [
            alert_watcher::actions::silenced(&event.incident, "U0ONCALL", &output, &silence),
            alert_watcher::actions::expired("inc-1", alert_watcher::actions::thread(&event.incident), "U0ONCALL", &output),
        ] {
            only_deliberate_markup("silence note", &post.text, &post_json(&post));
        }

        // A shared script with a hostile name, its offer and the answers to clicks on it.
        let shared: proto::slack::FileShared = serde_json::from_value(json!({
            "schema_version": 1, "event_id": "Ev1", "file_id": "F1", "channel": "C1", "user": "U0UP",
            "message_ts": "1.1", "name": format!("{file}.py"), "size": 10, "mimetype": "text/x-python",
            "file": {"kind": "stored", "object": {"bucket": "b", "key": "k", "size": 10, "content_type": "text/x-python"}},
            "received_at": fixtures::at(0),
        })).unwrap();
        let alert_watcher::commands::Outcome::Answer(offer) = alert_watcher::sandbox_offer::on_file(&shared) else {
            panic!("a script is offered a run")
        };
        only_deliberate_markup("sandbox offer", &offer.text, &post_json(&offer));
        let run_button = &post_json(&offer)[1]["elements"][0];
        for user in ["U0UP", "U0ONCALL"] {
            let click: proto::BlockAction = serde_json::from_value(json!({
                "schema_version": 1, "trigger_id": "t1", "user": user, "channel": "C1",
                "message_ts": "1.2", "action_id": run_button["action_id"], "value": run_button["value"],
                "received_at": fixtures::at(0), "raw": {"type": "block_actions"},
            })).unwrap();
            match alert_watcher::sandbox_offer::on_click(&click, &[]) {
                alert_watcher::commands::Outcome::Answer(answer) => {
                    only_deliberate_markup("offer refusal", &answer.text, &post_json(&answer));
                }
                alert_watcher::commands::Outcome::Sandbox { notice, .. } => {
                    only_deliberate_markup("offer accepted", &notice.text, &post_json(&notice));
                }
                _ => {}
            }
        }

        // A slash command whose text is echoed back.
        let command: proto::slack::SlashCommand = serde_json::from_value(json!({
            "schema_version": 1, "trigger_id": "t2", "channel": "C1", "user": "U0ONCALL",
            "command": "/profile", "text": format!("{typed} 30m nonsense"),
            "response_url": "https://hooks.slack.com/commands/T1/1/a", "received_at": fixtures::at(0),
        })).unwrap();
        if let alert_watcher::commands::Outcome::Answer(answer) =
            alert_watcher::commands::on_command(&command, fixtures::at(0))
        {
            only_deliberate_markup("command answer", &answer.text, &post_json(&answer));
        }

        // profile-fetcher: a picker of hostile app names, an unknown app named back.
        let apps = vec![label.clone(), name.clone(), "checkout".to_owned()];
        let picker = profile_fetcher::requests::picker(&request(&typed), &apps, "Which app?");
        only_deliberate_markup("picker", &picker.text, &post_json(&picker));
        let unknown = profile_fetcher::requests::unknown(
            &request(&typed), "app", &typed, &apps, request(&typed).window,
        );
        only_deliberate_markup("unknown app", &unknown.text, &post_json(&unknown));

        // A post request forwarded by the poster as it came.
        let mut forwarded = remediation_poster::record::ReplyRecord::default();
        forwarded.merge_post(&unknown, 1);
        let rendered = remediation_poster::render::render(&forwarded, "m");
        only_deliberate_markup("forwarded post", &rendered.text, &rendered.blocks);
    }
}

/// The deliberate markup still works: mentions in notes are mentions, runbooks are links.
#[test]
fn intended_mentions_and_links_still_work() {
    let event = fixtures::incident_event("inc-1", "1.1", IncidentChange::Opened, 1);
    let silence = alert_watcher::alertmanager_api::NewSilence {
        matchers: [("alertname".to_owned(), "HighCPU".to_owned())].into(),
        starts_at: fixtures::at(0),
        ends_at: fixtures::at(3600),
        created_by: "U0ONCALL".into(),
        comment: String::new(),
    };
    let note = alert_watcher::actions::silenced(&event.incident, "U0ONCALL", "s-1", &silence);
    assert!(
        note.text.starts_with("🔕 <@U0ONCALL> silenced"),
        "{}",
        note.text.as_str()
    );
    let mut record = remediation_poster::record::ReplyRecord::default();
    record.merge_post(&note, 1);
    let rendered = remediation_poster::render::render(&record, "m");
    assert!(
        rendered.blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("<@U0ONCALL>"),
        "the mention is sent as a mention: {:?}",
        rendered.blocks
    );
}
