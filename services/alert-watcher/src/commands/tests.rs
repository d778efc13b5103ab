use super::*;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_590_400, 0).unwrap()
}

fn slash(command: &str, text: &str) -> SlashCommand {
    SlashCommand {
        schema_version: SchemaVersion::CURRENT,
        trigger_id: "T1".into(),
        team_id: None,
        channel: "C1".into(),
        user: "U1".into(),
        command: command.into(),
        text: text.into(),
        response_url: "http://slack/response/1".into(),
        received_at: now(),
    }
}

#[test]
fn profile_commands_become_requests_answered_where_they_were_asked() {
    let Outcome::Profile(request) = on_command(&slash("/profile", "checkout 30m cpu"), now())
    else {
        panic!("a request")
    };
    assert_eq!(request.request_id, "cmd-T1");
    assert_eq!(request.app.as_deref(), Some("checkout"));
    assert_eq!(request.profile_type.as_deref(), Some("cpu"));
    assert_eq!(request.mode, ProfileMode::Continuous);
    assert_eq!((request.window.to - request.window.from).num_minutes(), 30);
    assert_eq!(request.window.to, now());
    assert_eq!(request.requested_by.as_deref(), Some("U1"));
    assert_eq!(
        request.reply,
        ReplyTarget::ResponseUrl {
            url: "http://slack/response/1".into()
        }
    );
    let Outcome::Profile(live) = on_command(&slash("/profile", "checkout now 15s"), now()) else {
        panic!("a request")
    };
    assert_eq!(live.mode, ProfileMode::Live { seconds: 15 });
    let Outcome::Profile(picker) = on_command(&slash("/profile", ""), now()) else {
        panic!("a request")
    };
    assert_eq!(picker.app, None, "profile-fetcher offers a picker");
}

#[test]
fn span_store_commands_go_to_profile_fetcher_answered_to_the_person_only() {
    let Outcome::Traces(sql) = on_command(
        &slash("/flamethread", "sql SELECT count(*) FROM otel_traces"),
        now(),
    ) else {
        panic!("a traces command")
    };
    assert_eq!(
        sql.ask,
        TracesAsk::Sql {
            query: "SELECT count(*) FROM otel_traces".into()
        }
    );
    assert!(matches!(sql.reply, ReplyTarget::ResponseUrl { .. }));
    let Outcome::Traces(trace) = on_command(&slash("/flamethread", "trace checkout 2m"), now())
    else {
        panic!("a traces command")
    };
    assert_eq!(
        trace.ask,
        TracesAsk::TraceAll {
            service: "checkout".into(),
            seconds: 120
        }
    );
    let Outcome::Answer(mistake) =
        on_command(&slash("/flamethread", "trace checkout forever"), now())
    else {
        panic!("an answer")
    };
    assert!(mistake.text.as_str().contains("from 1s to 1h"));
}

#[test]
fn mistakes_and_help_are_answered_to_the_person_only() {
    for (command, text, says) in [
        ("/profile", "checkout 30m 1h", "two windows"),
        ("/profile", "help", "Usage"),
        ("/profile", "rm -rf /;", "not an app"),
        ("/flamethread", "", "flamethread answers alerts"),
    ] {
        let Outcome::Answer(answer) = on_command(&slash(command, text), now()) else {
            panic!("an answer to {command} {text}")
        };
        assert!(answer.text.contains(says), "{}", answer.text);
        assert!(matches!(answer.target, ReplyTarget::ResponseUrl { .. }));
    }
    assert_eq!(
        on_command(&slash("/deploy", "prod"), now()),
        Outcome::Ignore("unknown_command")
    );
}

fn asked(origin: AskOrigin, text: &str, thread_ts: Option<&str>) -> SlackAsk {
    SlackAsk {
        schema_version: SchemaVersion::CURRENT,
        ask_id: "Ev1".into(),
        origin,
        team_id: None,
        channel: "C1".into(),
        user: "U1".into(),
        ts: "200.000001".into(),
        thread_ts: thread_ts.map(str::to_owned),
        text: text.into(),
        received_at: now(),
    }
}

#[test]
fn asks_in_words_are_answered_where_they_were_asked() {
    let in_thread = ReplyTarget::Thread {
        channel: "C1".into(),
        thread_ts: "100.000001".into(),
    };
    let Outcome::Profile(request) = on_ask(
        &asked(
            AskOrigin::Mention,
            "profile checkout 30m",
            Some("100.000001"),
        ),
        now(),
    ) else {
        panic!("a request")
    };
    assert_eq!(request.request_id, "ask-Ev1");
    assert_eq!(request.app.as_deref(), Some("checkout"));
    assert_eq!(request.requested_by.as_deref(), Some("U1"));
    assert_eq!(request.reply, in_thread);
    // Not in a thread: the answer starts one on the asking message.
    let Outcome::Profile(request) = on_ask(
        &asked(AskOrigin::DirectMessage, "profile checkout", None),
        now(),
    ) else {
        panic!("a request")
    };
    assert_eq!(
        request.reply,
        ReplyTarget::Thread {
            channel: "C1".into(),
            thread_ts: "200.000001".into()
        }
    );
    // Span queries and mistakes in a channel go to the person only.
    let Outcome::Traces(sql) = on_ask(
        &asked(AskOrigin::Mention, "sql SELECT 1", Some("100.000001")),
        now(),
    ) else {
        panic!("a traces command")
    };
    assert!(matches!(sql.reply, ReplyTarget::Ephemeral { ref user, .. } if user == "U1"));
    let Outcome::Answer(mistake) = on_ask(
        &asked(AskOrigin::Mention, "deploy prod <!here>", None),
        now(),
    ) else {
        panic!("an answer")
    };
    assert!(
        mistake.text.contains("did not understand"),
        "{}",
        mistake.text
    );
    assert!(
        !mistake.text.contains("<!here>"),
        "escaped: {}",
        mistake.text
    );
    assert!(matches!(mistake.target, ReplyTarget::Ephemeral { .. }));
    // `diagnose` outside a thread says where it works.
    let Outcome::Answer(diagnose) = on_ask(&asked(AskOrigin::Mention, "diagnose", None), now())
    else {
        panic!("an answer")
    };
    assert!(
        diagnose.text.contains("Diagnose this message"),
        "{}",
        diagnose.text
    );
}

#[test]
fn a_picked_app_is_the_request_it_stands_for() {
    let mut click = BlockAction {
        schema_version: SchemaVersion::CURRENT,
        trigger_id: "T2".into(),
        user: "U2".into(),
        channel: Some("C1".into()),
        message_ts: None,
        thread_ts: None,
        action_id: actions::PROFILE_PICK.into(),
        value: Some("checkout 1764588600..1764590400 cpu".into()),
        response_url: None,
        received_at: now(),
        raw: serde_json::Value::Null,
    };
    let Outcome::Profile(request) = on_action(&click, now()) else {
        panic!("a request")
    };
    assert_eq!(request.request_id, "pick-T2");
    assert_eq!(request.window.from.timestamp(), 1_764_588_600);
    assert!(matches!(request.reply, ReplyTarget::Ephemeral { ref user, .. } if user == "U2"));
    click.value = Some("<script>".into());
    assert!(matches!(on_action(&click, now()), Outcome::Answer(_)));
    click.action_id = "somebody.elses".into();
    assert_eq!(
        on_action(&click, now()),
        Outcome::Ignore("unhandled_action")
    );
}
