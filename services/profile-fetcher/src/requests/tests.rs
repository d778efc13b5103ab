use super::*;

fn request(app: Option<&str>, mode: ProfileMode) -> ProfileRequest {
    let to = chrono::DateTime::from_timestamp(1_764_590_400, 0).unwrap();
    ProfileRequest {
        schema_version: SchemaVersion::CURRENT,
        request_id: "r1".into(),
        app: app.map(str::to_owned),
        window: TimeWindow {
            from: to - chrono::Duration::minutes(30),
            to,
        },
        profile_type: None,
        mode,
        incident_id: None,
        requested_by: Some("U1".into()),
        reply: ReplyTarget::ResponseUrl {
            url: "http://slack/response/1".into(),
        },
    }
}

#[test]
fn short_type_names_find_the_full_id() {
    let types = vec![
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds".to_owned(),
        "memory:alloc_space:bytes:space:bytes".to_owned(),
    ];
    assert_eq!(
        resolve_type("cpu", &types).as_deref(),
        Some(types[0].as_str())
    );
    assert_eq!(
        resolve_type("alloc_space", &types).as_deref(),
        Some(types[1].as_str())
    );
    assert_eq!(
        resolve_type("memory", &types).as_deref(),
        Some(types[1].as_str())
    );
    assert_eq!(
        resolve_type(&types[1], &types).as_deref(),
        Some(types[1].as_str())
    );
    assert_eq!(resolve_type("goroutines", &types), None);
}

#[test]
fn a_picker_offers_each_app_as_the_command_it_stands_for() {
    let asked = request(None, ProfileMode::Continuous);
    let apps: Vec<String> = (0..130).map(|i| format!("app-{i:03}")).collect();
    let answer = picker(&asked, &apps, "Which app?");
    assert_eq!(answer.target, asked.reply);
    let blocks = answer.blocks.unwrap();
    let options = blocks[1]["elements"][0]["options"].as_array().unwrap();
    assert_eq!(options.len(), MAX_OPTIONS, "Slack's limit");
    assert!(
        answer.text.contains("30 more not listed"),
        "{}",
        answer.text
    );
    let value = options[0]["value"].as_str().unwrap();
    let read = proto::command::parse_profile(value, Utc::now()).unwrap();
    assert_eq!(read.app.as_deref(), Some("app-000"));
    assert_eq!(
        read.window,
        WindowSpec::Range {
            from: asked.window.from,
            to: asked.window.to
        }
    );
    // Live pickers stay live.
    let live = picker(
        &request(None, ProfileMode::Live { seconds: 20 }),
        &apps[..1],
        "Now?",
    );
    let value = live.blocks.unwrap()[1]["elements"][0]["options"][0]["value"].clone();
    assert_eq!(value, "app-000 now 20s");
    // Nothing to offer is said plainly.
    let none = picker(&asked, &[], "Which app?");
    assert!(
        none.blocks.is_none() && none.text.contains("no apps"),
        "{}",
        none.text
    );
}

#[test]
fn an_unknown_app_is_answered_with_what_exists() {
    let asked = request(Some("chekout"), ProfileMode::Continuous);
    let known = vec!["checkout".to_owned(), "billing".to_owned()];
    let answer = unknown(&asked, "app", "chekout", &known, asked.window);
    assert!(
        answer.text.starts_with("I know no app `chekout`")
            && answer.text.contains("`checkout`, `billing`"),
        "{}",
        answer.text
    );
    assert!(answer.blocks.is_some(), "and a picker");
    // From a thread, the answer is ephemeral to who asked.
    let mut in_thread = asked.clone();
    in_thread.reply = ReplyTarget::Thread {
        channel: "C1".into(),
        thread_ts: "1.1".into(),
    };
    let answer = unknown(
        &in_thread,
        "profile type",
        "goroutines",
        &known,
        asked.window,
    );
    assert!(matches!(answer.target, ReplyTarget::Ephemeral { ref user, .. } if user == "U1"));
    assert!(answer.blocks.is_none());
}
