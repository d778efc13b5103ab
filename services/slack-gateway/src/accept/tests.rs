use serde_json::json;

use super::*;

fn filter(channels: &[&str]) -> Filter {
    Filter {
        identity: Identity {
            team_id: "T0FLAME".into(),
            user_id: "U0FLAMEBOT".into(),
            bot_id: Some("B0FLAMEBOT".into()),
            workspace_url: "https://flamethread.slack.com/".into(),
        },
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

fn callback(event: Value) -> Value {
    json!({"type": "event_callback", "team_id": "T0FLAME", "event_id": "Ev0001", "event": event})
}

/// What Slack sends for Alertmanager's default template, posted through an incoming webhook.
fn alertmanager_event() -> Value {
    json!({
        "type": "message", "subtype": "bot_message", "bot_id": "B0AMGR", "username": "Alertmanager",
        "channel": "C0ALERTS", "ts": "1700000000.000100", "text": "",
        "attachments": [{
            "color": "danger",
            "title": "[FIRING:1] HighCPU checkout (prod)",
            "title_link": "http://alertmanager:9093/#/alerts?receiver=slack",
            "fallback": "[FIRING:1] HighCPU checkout | http://alertmanager:9093/#/alerts?receiver=slack",
            "footer": "Alertmanager"
        }]
    })
}

#[test]
fn alerts_from_other_bots_are_kept_with_the_raw_event() {
    let verdict = event_callback(
        &callback(alertmanager_event()),
        SlackTransport::SocketMode,
        now(),
        &filter(&[]),
    )
    .unwrap();
    let Verdict::Publish(outbound) = verdict else {
        panic!("ignored: {verdict:?}")
    };
    let [Outbound::Message(message)] = outbound.as_slice() else {
        panic!("{outbound:?}")
    };
    assert_eq!(message.event_id, "Ev0001");
    assert_eq!(message.channel, "C0ALERTS");
    assert_eq!(message.bot_id.as_deref(), Some("B0AMGR"));
    assert_eq!(message.subtype.as_deref(), Some("bot_message"));
    assert_eq!(message.team_id.as_deref(), Some("T0FLAME"));
    assert_eq!(message.thread_ts, None);
    assert_eq!(
        message.raw["attachments"][0]["title_link"],
        "http://alertmanager:9093/#/alerts?receiver=slack",
        "fields client libraries drop survive"
    );
}

#[test]
fn own_messages_are_dropped_by_user_or_bot_id() {
    for event in [
        json!({"type": "message", "channel": "C0ALERTS", "ts": "1.2", "user": "U0FLAMEBOT", "bot_id": "B0FLAMEBOT", "text": "diagnosis"}),
        json!({"type": "message", "subtype": "bot_message", "channel": "C0ALERTS", "ts": "1.2", "bot_id": "B0FLAMEBOT"}),
    ] {
        let verdict = event_callback(
            &callback(event),
            SlackTransport::HttpEvents,
            now(),
            &filter(&[]),
        )
        .unwrap();
        assert_eq!(verdict, Verdict::Ignore(Ignored::OwnMessage));
    }
}

#[test]
fn the_allow_list_keeps_listed_channels_only() {
    let listed = filter(&["C0ALERTS"]);
    let kept = event_callback(
        &callback(alertmanager_event()),
        SlackTransport::SocketMode,
        now(),
        &listed,
    )
    .unwrap();
    assert!(matches!(kept, Verdict::Publish(_)));
    let mut elsewhere = alertmanager_event();
    elsewhere["channel"] = json!("C0GENERAL");
    let dropped = event_callback(
        &callback(elsewhere),
        SlackTransport::SocketMode,
        now(),
        &listed,
    )
    .unwrap();
    assert_eq!(dropped, Verdict::Ignore(Ignored::ChannelNotAllowed));
}

#[test]
fn housekeeping_subtypes_and_other_events_are_ignored() {
    let join = json!({"type": "message", "subtype": "channel_join", "channel": "C0ALERTS", "ts": "1.2", "user": "U0DEV"});
    assert_eq!(
        event_callback(
            &callback(join),
            SlackTransport::SocketMode,
            now(),
            &filter(&[])
        )
        .unwrap(),
        Verdict::Ignore(Ignored::Subtype("channel_join".into()))
    );
    let reaction = json!({"type": "reaction_added", "user": "U0DEV", "reaction": "eyes"});
    let verdict = event_callback(
        &callback(reaction),
        SlackTransport::SocketMode,
        now(),
        &filter(&[]),
    )
    .unwrap();
    assert_eq!(
        verdict,
        Verdict::Ignore(Ignored::EventType("reaction_added".into()))
    );
    assert_eq!(
        Ignored::EventType("x".into()).label(),
        "event_type",
        "labels stay low-cardinality"
    );
}

#[test]
fn thread_replies_keep_their_thread() {
    let reply = json!({"type": "message", "channel": "C0ALERTS", "ts": "1.3", "thread_ts": "1.2", "user": "U0ONCALL", "text": "looking"});
    let Verdict::Publish(outbound) = event_callback(
        &callback(reply),
        SlackTransport::SocketMode,
        now(),
        &filter(&[]),
    )
    .unwrap() else {
        panic!()
    };
    let Outbound::Message(message) = &outbound[0] else {
        panic!()
    };
    assert_eq!(message.thread_ts.as_deref(), Some("1.2"));
    assert_eq!(message.user.as_deref(), Some("U0ONCALL"));
}

#[test]
fn malformed_callbacks_say_what_is_missing() {
    let cases = [
        (
            json!({"type": "url_verification", "challenge": "x"}),
            "expected an event_callback",
        ),
        (
            json!({"type": "event_callback", "event": {"type": "message"}}),
            "no event_id",
        ),
        (
            json!({"type": "event_callback", "event_id": "Ev1"}),
            "no event object",
        ),
        (
            json!({"type": "event_callback", "event_id": "Ev1", "event": {"type": "message", "ts": "1.2"}}),
            "no channel",
        ),
        (
            json!({"type": "event_callback", "event_id": "Ev1", "event": {"type": "file_shared", "channel_id": "C1", "user_id": "U1"}}),
            "no file_id",
        ),
        (json!([1, 2, 3]), "expected an event_callback"),
    ];
    for (payload, expected) in cases {
        let err =
            event_callback(&payload, SlackTransport::HttpEvents, now(), &filter(&[])).unwrap_err();
        assert!(err.0.contains(expected), "{payload}: {err}");
    }
}

#[test]
fn file_shares_become_downloads_to_do() {
    let event = json!({"type": "file_shared", "channel_id": "C0GENERAL", "file_id": "F0001", "user_id": "U0DEV", "file": {"id": "F0001"}, "event_ts": "1.5"});
    let Verdict::Publish(outbound) = event_callback(
        &callback(event),
        SlackTransport::SocketMode,
        now(),
        &filter(&[]),
    )
    .unwrap() else {
        panic!()
    };
    let Outbound::File(file) = &outbound[0] else {
        panic!()
    };
    assert_eq!(
        (file.file_id.as_str(), file.user.as_str()),
        ("F0001", "U0DEV")
    );
    assert_eq!(file.channel, "C0GENERAL");
}

#[test]
fn slash_commands_need_slacks_fields() {
    let fields = json!({
        "command": "/profile", "text": " checkout 30m ", "channel_id": "C0ALERTS", "user_id": "U0ONCALL",
        "trigger_id": "13345224609.738474920.8088930838d88f008e0", "team_id": "T0FLAME",
        "response_url": "https://hooks.slack.com/commands/1234/5678"
    });
    let Verdict::Publish(outbound) = slash_command(&fields, now()).unwrap() else {
        panic!()
    };
    let Outbound::Command(command) = &outbound[0] else {
        panic!()
    };
    assert_eq!(command.command, "/profile");
    assert_eq!(command.text, "checkout 30m");

    let mut missing = fields.clone();
    missing.as_object_mut().unwrap().remove("response_url");
    let err = slash_command(&missing, now()).unwrap_err();
    assert!(err.0.contains("response_url"), "{err}");
}

#[test]
fn each_clicked_button_becomes_an_action() {
    let payload = json!({
        "type": "block_actions", "trigger_id": "t1", "user": {"id": "U0ONCALL"},
        "container": {"type": "message", "message_ts": "1.4", "channel_id": "C0ALERTS"},
        "channel": {"id": "C0ALERTS"}, "message": {"ts": "1.4", "thread_ts": "1.2"},
        "response_url": "https://hooks.slack.com/actions/1",
        "actions": [{"action_id": "ft.silence_1h", "value": "inc-1", "type": "button"}]
    });
    let Verdict::Publish(outbound) =
        interaction(&payload, SlackTransport::SocketMode, now()).unwrap()
    else {
        panic!()
    };
    let Outbound::Action(action) = &outbound[0] else {
        panic!()
    };
    assert_eq!(action.action_id, proto::actions::SILENCE_1H);
    assert_eq!(action.value.as_deref(), Some("inc-1"));
    assert_eq!(action.message_ts.as_deref(), Some("1.4"));
    assert_eq!(action.thread_ts.as_deref(), Some("1.2"));

    // A choice in a select carries its option's value.
    let mut picked = payload.clone();
    picked["actions"] = json!([{"action_id": proto::actions::PROFILE_PICK, "type": "static_select",
        "selected_option": {"text": {"type": "plain_text", "text": "checkout"}, "value": "checkout 30m"}}]);
    let Verdict::Publish(outbound) =
        interaction(&picked, SlackTransport::SocketMode, now()).unwrap()
    else {
        panic!()
    };
    let Outbound::Action(action) = &outbound[0] else {
        panic!()
    };
    assert_eq!(action.value.as_deref(), Some("checkout 30m"));

    let modal = json!({"type": "view_submission", "user": {"id": "U1"}});
    assert_eq!(
        interaction(&modal, SlackTransport::SocketMode, now()).unwrap(),
        Verdict::Ignore(Ignored::Interaction("view_submission".into()))
    );
    let no_actions = json!({"type": "block_actions", "trigger_id": "t", "user": {"id": "U1"}, "channel": {"id": "C1"}, "actions": []});
    assert!(
        interaction(&no_actions, SlackTransport::SocketMode, now())
            .unwrap_err()
            .0
            .contains("no actions")
    );
}

/// What Slack sends when a tool edits its alert message in place (here: to say it resolved).
fn edit_event(edited: Option<Value>) -> Value {
    let mut message = alertmanager_event();
    message.as_object_mut().unwrap().remove("channel");
    message["attachments"][0]["title"] = json!("[RESOLVED] HighCPU checkout (prod)");
    message["attachments"][0]["color"] = json!("good");
    if let Some(edited) = edited {
        message["edited"] = edited;
    }
    json!({
        "type": "message", "subtype": "message_changed", "hidden": true, "channel": "C0ALERTS",
        "ts": "1700000300.000200", "event_ts": "1700000300.000200",
        "message": message,
        "previous_message": alertmanager_event(),
    })
}

#[test]
fn edits_go_on_as_the_message_they_now_are_and_unfurls_do_not() {
    let edited = event_callback(
        &callback(edit_event(Some(
            json!({"user": "B0AMGR", "ts": "1700000300.000000"}),
        ))),
        SlackTransport::SocketMode,
        now(),
        &filter(&[]),
    )
    .unwrap();
    let Verdict::Publish(outbound) = edited else {
        panic!("ignored: {edited:?}")
    };
    let [Outbound::Message(message)] = outbound.as_slice() else {
        panic!("{outbound:?}")
    };
    assert_eq!(
        message.ts, "1700000000.000100",
        "the edited message's own ts"
    );
    assert_eq!(message.edited_ts.as_deref(), Some("1700000300.000000"));
    assert_eq!(message.channel, "C0ALERTS");
    assert_eq!(
        message.raw["attachments"][0]["title"],
        "[RESOLVED] HighCPU checkout (prod)"
    );
    assert_eq!(message.raw["channel"], "C0ALERTS");

    let unfurl = event_callback(
        &callback(edit_event(None)),
        SlackTransport::SocketMode,
        now(),
        &filter(&[]),
    )
    .unwrap();
    assert_eq!(
        unfurl,
        Verdict::Ignore(Ignored::Subtype("message_changed".into()))
    );

    let mut own = edit_event(Some(json!({"user": "U0FLAMEBOT", "ts": "1.0"})));
    own["message"]["bot_id"] = json!("B0FLAMEBOT");
    assert_eq!(
        event_callback(
            &callback(own),
            SlackTransport::SocketMode,
            now(),
            &filter(&[])
        )
        .unwrap(),
        Verdict::Ignore(Ignored::OwnMessage),
        "our own edits (the poster's chat.update) never come back"
    );

    let mut broken = edit_event(None);
    broken.as_object_mut().unwrap().remove("message");
    let err = event_callback(
        &callback(broken),
        SlackTransport::SocketMode,
        now(),
        &filter(&[]),
    )
    .unwrap_err();
    assert!(err.0.contains("has no message"), "{err}");
}

#[test]
fn stored_interactions_carry_no_credentials() {
    let payload = serde_json::json!({
        "type": "block_actions", "token": "verification-token", "trigger_id": "t1",
        "user": {"id": "U1"}, "channel": {"id": "C1"}, "container": {"message_ts": "1.1"},
        "response_url": "https://hooks.slack.com/actions/T1/1/secret",
        "response_urls": [{"response_url": "https://hooks.slack.com/actions/T1/2/secret"}],
        "message": {"ts": "1.1", "text": "offer"},
        "actions": [{"action_id": "ft.rerun", "value": "v"}],
    });
    let Ok(Verdict::Publish(outbound)) =
        interaction(&payload, SlackTransport::SocketMode, chrono::Utc::now())
    else {
        panic!("a click is published")
    };
    let Outbound::Action(action) = &outbound[0] else {
        panic!("an action")
    };
    let stored = action.raw.to_string();
    assert!(
        !stored.contains("verification-token") && !stored.contains("secret"),
        "{stored}"
    );
    assert_eq!(action.raw["message"]["text"], "offer", "the rest is kept");
    assert_eq!(
        action.response_url.as_deref(),
        Some("https://hooks.slack.com/actions/T1/1/secret"),
        "the answer still has where to go"
    );
}

#[test]
fn mentions_and_direct_messages_are_asks_without_the_mention() {
    let mention = callback(json!({
        "type": "app_mention", "user": "U0ALICE", "channel": "C0ALERTS",
        "text": "<@U0FLAMEBOT> profile checkout 30m", "ts": "1700000001.000100",
        "thread_ts": "1700000000.000100", "event_ts": "1700000001.000100"
    }));
    // Asked explicitly: answered even where the gateway does not overhear.
    let Ok(Verdict::Publish(outbound)) = event_callback(
        &mention,
        SlackTransport::SocketMode,
        now(),
        &filter(&["C0OTHER"]),
    ) else {
        panic!("published")
    };
    let [Outbound::Ask(ask)] = outbound.as_slice() else {
        panic!("one ask: {outbound:?}")
    };
    assert_eq!(ask.origin, AskOrigin::Mention);
    assert_eq!(ask.text, "profile checkout 30m");
    assert_eq!(ask.user, "U0ALICE");
    assert_eq!(ask.thread_ts.as_deref(), Some("1700000000.000100"));
    assert_eq!(ask.ask_id, "Ev0001");
    assert_eq!(
        accept_diagnose(&mut ask.as_ref().clone(), "<@U0FLAMEBOT> diagnose"),
        Some(("C0ALERTS".to_owned(), "1700000000.000100".to_owned()))
    );

    let dm = callback(json!({
        "type": "message", "channel_type": "im", "user": "U0ALICE", "channel": "D0ALICE",
        "text": "profile checkout now 10s", "ts": "1700000002.000100"
    }));
    let Ok(Verdict::Publish(outbound)) =
        event_callback(&dm, SlackTransport::SocketMode, now(), &filter(&[]))
    else {
        panic!("published")
    };
    let [Outbound::Ask(ask)] = outbound.as_slice() else {
        panic!("a DM is an ask, not a message to read as an alert: {outbound:?}")
    };
    assert_eq!(ask.origin, AskOrigin::DirectMessage);
    assert_eq!(
        accept_diagnose(&mut ask.as_ref().clone(), "diagnose"),
        None,
        "no thread"
    );

    // Bots do not ask; our own DMs and edits do not come back as asks; a mention without a ts
    // is malformed.
    for (event, why) in [
        (
            json!({"type": "app_mention", "bot_id": "B0OTHER", "channel": "C0ALERTS", "text": "<@U0FLAMEBOT> hi", "ts": "1.1"}),
            Ignored::BotAsk,
        ),
        (
            json!({"type": "message", "channel_type": "im", "user": "U0FLAMEBOT", "channel": "D0ALICE", "text": "answer", "ts": "1.2"}),
            Ignored::OwnMessage,
        ),
        (
            json!({"type": "message", "channel_type": "im", "subtype": "message_changed", "channel": "D0ALICE",
                "message": {"user": "U0ALICE", "text": "profile x", "ts": "1.3", "edited": {"ts": "1.4"}}}),
            Ignored::Subtype("message_changed".into()),
        ),
    ] {
        assert_eq!(
            event_callback(
                &callback(event),
                SlackTransport::SocketMode,
                now(),
                &filter(&[])
            ),
            Ok(Verdict::Ignore(why))
        );
    }
    assert!(
        event_callback(
            &callback(json!({"type": "app_mention", "user": "U0ALICE", "channel": "C0ALERTS", "text": "hi"})),
            SlackTransport::SocketMode,
            now(),
            &filter(&[]),
        )
        .is_err()
    );
}

fn accept_diagnose(ask: &mut SlackAsk, text: &str) -> Option<(String, String)> {
    ask.text = text.to_owned();
    diagnose_in_thread(ask).map(|(channel, thread)| (channel.to_owned(), thread.to_owned()))
}

#[test]
fn the_diagnose_shortcut_is_the_message_it_was_used_on_asked_by_the_person() {
    let shortcut = json!({
        "type": "message_action", "callback_id": proto::slack::shortcuts::DIAGNOSE_MESSAGE,
        "trigger_id": "13345224609.738474920.8088930838d88f008e0", "token": "secret-token",
        "team": {"id": "T0FLAME"}, "user": {"id": "U0ALICE"},
        "channel": {"id": "C0ALERTS", "name": "alerts"},
        "message_ts": "1700000000.000100",
        "message": {"type": "message", "user": "U0BOB", "ts": "1700000000.000100",
            "text": "checkout is throwing 500s <!channel>"},
        "response_url": "https://hooks.slack.com/app/T0FLAME/1/abc"
    });
    let Ok(Verdict::Publish(outbound)) = interaction(&shortcut, SlackTransport::SocketMode, now())
    else {
        panic!("published")
    };
    let [Outbound::Message(message)] = outbound.as_slice() else {
        panic!("one message: {outbound:?}")
    };
    assert_eq!(message.asked_by.as_deref(), Some("U0ALICE"));
    assert_eq!(message.user.as_deref(), Some("U0BOB"));
    assert_eq!(message.channel, "C0ALERTS");
    assert_eq!(message.ts, "1700000000.000100");
    assert_eq!(message.raw["channel"], "C0ALERTS");
    assert_eq!(
        message.event_id,
        "ask-13345224609.738474920.8088930838d88f008e0"
    );
    assert!(
        !message.raw.to_string().contains("secret-token"),
        "only the message is kept"
    );

    let mut other = shortcut.clone();
    other["callback_id"] = json!("somebody.elses");
    assert_eq!(
        interaction(&other, SlackTransport::SocketMode, now()),
        Ok(Verdict::Ignore(Ignored::Interaction(
            "message_action".into()
        )))
    );
    for key in ["message", "channel", "trigger_id"] {
        let mut broken = shortcut.clone();
        broken.as_object_mut().unwrap().remove(key);
        assert!(
            interaction(&broken, SlackTransport::SocketMode, now()).is_err(),
            "without {key}"
        );
    }
}

#[test]
fn opening_app_home_is_published_and_a_click_in_it_has_no_channel() {
    let opened = callback(json!({
        "type": "app_home_opened", "user": "U0ALICE", "channel": "D0ALICE", "tab": "home",
        "event_ts": "1700000003.000100"
    }));
    let Ok(Verdict::Publish(outbound)) = event_callback(
        &opened,
        SlackTransport::SocketMode,
        now(),
        &filter(&["C0OTHER"]),
    ) else {
        panic!("published")
    };
    let [Outbound::Home(home)] = outbound.as_slice() else {
        panic!("one Home: {outbound:?}")
    };
    assert_eq!(
        (home.user.as_str(), home.event_id.as_str()),
        ("U0ALICE", "Ev0001")
    );
    // The Messages tab is the DM: nothing to draw.
    let messages_tab =
        callback(json!({"type": "app_home_opened", "user": "U0ALICE", "tab": "messages"}));
    assert!(matches!(
        event_callback(
            &messages_tab,
            SlackTransport::SocketMode,
            now(),
            &filter(&[])
        ),
        Ok(Verdict::Ignore(Ignored::EventType(_)))
    ));
    let nobody = callback(json!({"type": "app_home_opened", "tab": "home"}));
    assert!(event_callback(&nobody, SlackTransport::SocketMode, now(), &filter(&[])).is_err());

    let click = json!({
        "type": "block_actions", "trigger_id": "T.1", "user": {"id": "U0ALICE"},
        "container": {"type": "view", "view_id": "VH00000001"},
        "view": {"id": "VH00000001", "type": "home"},
        "actions": [{"type": "button", "action_id": proto::actions::PROFILE_PICK, "value": "checkout now"}]
    });
    let Ok(Verdict::Publish(outbound)) = interaction(&click, SlackTransport::SocketMode, now())
    else {
        panic!("published")
    };
    let [Outbound::Action(action)] = outbound.as_slice() else {
        panic!("one action: {outbound:?}")
    };
    assert_eq!(action.channel, None);
    assert_eq!(
        action.only_them(),
        proto::ReplyTarget::Direct {
            user: "U0ALICE".into()
        },
        "answered in the person's DM"
    );
    // Only a view's click may come without a channel.
    let mut stray = click.clone();
    stray["container"] = json!({"type": "message", "message_ts": "1.1"});
    assert!(interaction(&stray, SlackTransport::SocketMode, now()).is_err());
}
