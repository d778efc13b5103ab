use proto::{
    IncidentChange, ReplyTarget, SchemaVersion,
    evidence::FunctionShare,
    sandbox::{RunProfile, SandboxOutcome},
};
use test_support::fixtures;

use super::*;

fn incident(id: &str, name: &str, seen: i64, resolved: bool) -> ReplyRecord {
    let mut event = fixtures::incident_event(id, "1700000000.000100", IncidentChange::Opened, 1);
    event.incident.alert.name = name.to_owned();
    event.incident.last_seen_at = fixtures::at(seen);
    if resolved {
        event.incident.resolved_at = Some(fixtures::at(seen));
    }
    let mut record = ReplyRecord::default();
    record.merge_incident(&event, None);
    record
}

fn asked_profile(app: &str, collected: i64) -> ReplyRecord {
    let event = fixtures::incident_event("inc-x", "1.1", IncidentChange::Opened, 1);
    let mut profile =
        fixtures::profile_evidence(&event.incident, &[("regex_backtrack", 0.63)], &[]);
    profile.incident_id = None;
    profile.request_id = Some(format!("cmd-{app}"));
    profile.app = app.to_owned();
    profile.collected_at = fixtures::at(collected);
    profile.flamegraph_url = Some("https://flamethread.example.com/flamegraphs/1".to_owned());
    profile.reply = Some(ReplyTarget::Thread {
        channel: "C0ALERTS".into(),
        thread_ts: "1.1".into(),
    });
    let mut record = ReplyRecord::default();
    record.content.profile = Some(profile);
    record
}

fn run(by: &str, file: &str, finished: i64) -> ReplyRecord {
    let mut record = ReplyRecord::default();
    record.content.sandbox = Some(SandboxResult {
        schema_version: SchemaVersion::CURRENT,
        request_id: format!("run-{file}"),
        outcome: SandboxOutcome::Exited { code: 0 },
        wall_ms: 1234,
        stdout_tail: String::new(),
        stdout_truncated: false,
        stderr_tail: String::new(),
        stderr_truncated: false,
        profile: Some(RunProfile {
            folded: proto::ObjectRef {
                bucket: "b".into(),
                key: "k".into(),
                size: 1,
                content_type: "text/plain".into(),
            },
            total_samples: 10,
            top_functions: vec![FunctionShare {
                name: "slow".into(),
                self_value: 10,
                self_share: 1.0,
            }],
            flamegraph_url: Some("javascript:alert(1)".into()),
        }),
        profile_missing: String::new(),
        limits_hit: Vec::new(),
        reply: ReplyTarget::Thread {
            channel: "C1".into(),
            thread_ts: "1.1".into(),
        },
        requested_by: by.to_owned(),
        file_name: file.to_owned(),
        finished_at: Some(fixtures::at(finished)),
    });
    record
}

fn texts(view: &Value) -> String {
    view["blocks"].to_string()
}

fn permalink(thread: &SlackThread) -> String {
    format!(
        "https://acme.slack.com/archives/{}/p{}",
        thread.channel,
        thread.ts.replace('.', "")
    )
}

#[test]
fn a_home_shows_open_incidents_recent_profiles_and_only_the_persons_runs_newest_first() {
    let records = vec![
        incident("inc-1", "HighCPU", 10, false),
        incident("inc-2", "DiskFull", 30, false),
        incident("inc-3", "Resolved", 40, true),
        asked_profile("cart", 5),
        asked_profile("checkout", 50),
        run("U0ONCALL", "mine.py", 20),
        run("U0DEV", "theirs.py", 30),
    ];
    let home = collect("U0ONCALL", records, &|_| true);
    let names: Vec<&str> = home
        .incidents
        .iter()
        .map(|i| i.alert.name.as_str())
        .collect();
    assert_eq!(names, ["DiskFull", "HighCPU"], "open ones, newest first");
    let apps: Vec<&str> = home.profiles.iter().map(|p| p.app.as_str()).collect();
    assert_eq!(apps, ["checkout", "cart"]);
    assert_eq!(home.runs.len(), 1);
    assert_eq!(home.runs[0].file_name, "mine.py");

    let view = view(&home, fixtures::at(60), &permalink);
    assert_eq!(view["type"], "home");
    let shown = texts(&view);
    assert!(
        shown.contains("🔥 <https://acme.slack.com/archives/C0ALERTS/p1700000000000100|DiskFull>"),
        "{shown}"
    );
    assert!(
        shown.contains("`checkout`") && shown.contains("`regex_backtrack` 63%"),
        "{shown}"
    );
    assert!(shown.contains("`mine.py` finished in 1.2 s"), "{shown}");
    assert!(!shown.contains("theirs.py"));
    assert!(
        !shown.contains("javascript:"),
        "an unsafe link is not a link: {shown}"
    );
}

#[test]
fn apps_get_a_button_that_asks_for_them_and_hostile_names_stay_text() {
    let home = Home {
        user: "U0ONCALL".into(),
        apps: vec![
            KnownApp {
                name: "checkout".into(),
                live: true,
            },
            KnownApp {
                name: "cart".into(),
                live: false,
            },
            KnownApp {
                name: "<!channel> *x*".into(),
                live: false,
            },
        ],
        apps_note: Some("Pyroscope said <!here>".into()),
        ..Home::default()
    };
    let view = view(&home, fixtures::at(0), &permalink);
    let buttons: Vec<(&str, &str)> = view["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|block| block.get("accessory"))
        .map(|button| {
            assert_eq!(button["action_id"], actions::PROFILE_PICK);
            (
                button["text"]["text"].as_str().unwrap(),
                button["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        buttons,
        [
            ("Profile now", "checkout now"),
            ("Last 15 minutes", "cart 15m")
        ],
        "a name the grammar would not read back gets no button"
    );
    let shown = texts(&view);
    assert!(
        !shown.contains("<!channel>") && !shown.contains("<!here>"),
        "{shown}"
    );
    assert!(shown.contains("&lt;!here&gt;"), "{shown}");
}

#[test]
fn the_fullest_home_keeps_slacks_limits() {
    let records: Vec<ReplyRecord> = (0..50)
        .map(|n| incident(&format!("inc-{n}"), &"🔥<b>".repeat(300), n, false))
        .chain((0..50).map(|n| asked_profile(&"a".repeat(500), n)))
        .chain((0..50).map(|n| run("U0ONCALL", &"\"".repeat(300), n)))
        .collect();
    let mut home = collect("U0ONCALL", records, &|_| true);
    assert_eq!(
        (home.incidents.len(), home.profiles.len(), home.runs.len()),
        (OPEN_INCIDENTS, RECENT_PROFILES, OWN_RUNS)
    );
    home.apps = (0..proto::home::MAX_APPS)
        .map(|n| KnownApp {
            name: format!("app-{n}"),
            live: n % 2 == 0,
        })
        .collect();
    home.apps_note = Some("x".repeat(10_000));
    let view = view(&home, fixtures::at(0), &permalink);
    let blocks = view["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 100, "{} blocks", blocks.len());
    for block in blocks {
        let text = block["text"]["text"]
            .as_str()
            .or_else(|| block["elements"][0]["text"].as_str());
        if let Some(text) = text {
            assert!(text.chars().count() <= 3000, "{}", text.chars().count());
        }
    }
}

#[test]
fn a_home_shows_only_what_anyone_may_read_where_it_came_from() {
    let mut private_answer = asked_profile("payments", 70);
    if let Some(profile) = private_answer.content.profile.as_mut() {
        profile.reply = Some(ReplyTarget::ResponseUrl {
            url: "https://hooks.slack.com/commands/1".into(),
        });
        profile.requested_by = Some("U0DEV".into());
    }
    let mut in_thread = asked_profile("checkout", 60);
    if let Some(profile) = in_thread.content.profile.as_mut() {
        profile.reply = Some(ReplyTarget::Thread {
            channel: "C0ALERTS".into(),
            thread_ts: "1.1".into(),
        });
    }
    let records = vec![
        incident("inc-1", "HighCPU", 10, false),
        private_answer,
        in_thread,
    ];
    let channels: Vec<&str> = channels(&records).into_iter().collect();
    assert_eq!(channels, ["C0ALERTS"]);
    // #alerts is private here: neither its incident nor the profile answered in it shows; the
    // profile answered to Dev alone shows to Dev only.
    let for_oncall = collect("U0ONCALL", records.clone(), &|_| false);
    assert!(for_oncall.incidents.is_empty() && for_oncall.profiles.is_empty());
    let for_dev = collect("U0DEV", records.clone(), &|_| false);
    let apps: Vec<&str> = for_dev.profiles.iter().map(|p| p.app.as_str()).collect();
    assert_eq!(apps, ["payments"]);
    // Public: the incident and the thread's profile show to anyone.
    let public = collect("U0ONCALL", records, &|channel| channel == "C0ALERTS");
    assert_eq!(public.incidents.len(), 1);
    let apps: Vec<&str> = public.profiles.iter().map(|p| p.app.as_str()).collect();
    assert_eq!(apps, ["checkout"]);
}
