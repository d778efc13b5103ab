use super::*;

const NOW: u64 = 1_700_000_000_000_000;

fn workspace() -> Workspace {
    Workspace::new(&[("C0ALERTS", "alerts")], NOW)
}

fn bot() -> Author {
    Author::App {
        user_id: "U0BOT".into(),
        bot_id: "B0BOT".into(),
        app_id: "A0APP".into(),
    }
}

fn text(text: &str) -> Content {
    Content {
        text: text.to_owned(),
        ..Content::default()
    }
}

#[test]
fn timestamps_are_unique_and_increasing_even_within_one_microsecond() {
    let mut workspace = workspace();
    let first = workspace
        .post("C0ALERTS", bot(), text("a"), None, NOW)
        .unwrap();
    let second = workspace
        .post("C0ALERTS", bot(), text("b"), None, NOW)
        .unwrap();
    assert_eq!(first.ts, "1700000000.000001");
    assert_eq!(second.ts, "1700000000.000002");
}

#[test]
fn replies_land_in_the_parents_thread_and_are_counted() {
    let mut workspace = workspace();
    let parent = workspace
        .post("C0ALERTS", bot(), text("alert"), None, NOW)
        .unwrap();
    let reply = workspace
        .post("C0ALERTS", bot(), text("diagnosis"), Some(&parent.ts), NOW)
        .unwrap();
    let reply_to_reply = workspace
        .post("C0ALERTS", bot(), text("more"), Some(&reply.ts), NOW)
        .unwrap();
    assert_eq!(
        reply_to_reply.thread_ts.as_deref(),
        Some(parent.ts.as_str())
    );

    let history = workspace.history("C0ALERTS", 100).unwrap();
    assert_eq!(history.len(), 1, "replies are not in the channel's history");
    assert_eq!(history[0]["reply_count"], 2);
    let thread = workspace.replies("C0ALERTS", &reply.ts, 1000).unwrap();
    assert_eq!(
        workspace.replies("C0ALERTS", &reply.ts, 1).unwrap().len(),
        1,
        "limit"
    );
    let texts: Vec<&str> = thread
        .iter()
        .map(|message| message["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["alert", "diagnosis", "more"]);
}

#[test]
fn slacks_limits_give_slacks_errors() {
    let mut workspace = workspace();
    let post = |workspace: &mut Workspace, content: Content| {
        workspace
            .post("C0ALERTS", bot(), content, None, NOW)
            .unwrap_err()
    };
    assert_eq!(post(&mut workspace, text("")).code, "no_text");
    assert_eq!(
        post(&mut workspace, text(&"x".repeat(MAX_TEXT + 1))).code,
        "msg_too_long"
    );

    let section = |len: usize| json!({"type": "section", "text": {"type": "mrkdwn", "text": "y".repeat(len)}});
    let too_many = Content {
        blocks: Some(json!(vec![section(1); 51])),
        ..Content::default()
    };
    let err = post(&mut workspace, too_many);
    assert_eq!(err.code, "invalid_blocks");
    assert_eq!(
        err.messages,
        ["[ERROR] no more than 50 items allowed [json-pointer:/blocks]"]
    );

    let too_long = Content {
        blocks: Some(json!([section(1), section(3001)])),
        ..Content::default()
    };
    let err = post(&mut workspace, too_long);
    assert_eq!(
        err.messages,
        ["[ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text/text]"]
    );
    assert_eq!(
        err.to_json(),
        json!({"ok": false, "error": "invalid_blocks", "response_metadata": {"messages": err.messages}})
    );

    let unknown = Content {
        blocks: Some(json!([section(1), {"type": "no_such_block"}])),
        ..Content::default()
    };
    assert_eq!(
        post(&mut workspace, unknown).messages,
        ["[ERROR] unsupported type: no_such_block [json-pointer:/blocks/1/type]"]
    );

    let exactly = Content {
        blocks: Some(json!(vec![section(3000); 50])),
        ..Content::default()
    };
    workspace
        .post("C0ALERTS", bot(), exactly, None, NOW)
        .unwrap();

    assert_eq!(
        workspace
            .post("C0NOPE", bot(), text("x"), None, NOW)
            .unwrap_err()
            .code,
        "channel_not_found"
    );
    assert_eq!(
        workspace
            .post("C0ALERTS", bot(), text("x"), Some("1.000001"), NOW)
            .unwrap_err()
            .code,
        "thread_not_found"
    );
}

#[test]
fn only_the_author_may_update_and_edits_are_marked() {
    let mut workspace = workspace();
    let alert = workspace
        .post(
            "C0ALERTS",
            Author::Integration {
                bot_id: "B0AMGR".into(),
                username: Some("Alertmanager".into()),
            },
            text("alert"),
            None,
            NOW,
        )
        .unwrap();
    assert_eq!(
        workspace
            .update("C0ALERTS", &alert.ts, "U0BOT", text("x"), NOW)
            .unwrap_err()
            .code,
        "cant_update_message"
    );
    assert_eq!(
        workspace
            .update("C0ALERTS", "9.000009", "U0BOT", text("x"), NOW)
            .unwrap_err()
            .code,
        "message_not_found"
    );

    let reply = workspace
        .post("C0ALERTS", bot(), text("looking"), Some(&alert.ts), NOW)
        .unwrap();
    let updated = workspace
        .update("C0ALERTS", &reply.ts, "U0BOT", text("found it"), NOW)
        .unwrap();
    assert_eq!(updated.ts, reply.ts, "an update keeps the message's ts");
    let json = updated.to_json(0);
    assert_eq!(json["text"], "found it");
    assert!(json["edited"]["ts"].is_string());
    assert_eq!(json["edited"]["user"], "U0BOT");
    assert_eq!(
        workspace.history("C0ALERTS", 10).unwrap()[0]["subtype"],
        "bot_message"
    );
}

#[test]
fn reactions_are_per_user() {
    let mut workspace = workspace();
    let message = workspace
        .post("C0ALERTS", bot(), text("x"), None, NOW)
        .unwrap();
    workspace
        .add_reaction("C0ALERTS", &message.ts, "eyes", "U0BOT")
        .unwrap();
    assert_eq!(
        workspace
            .add_reaction("C0ALERTS", &message.ts, "eyes", "U0BOT")
            .unwrap_err()
            .code,
        "already_reacted"
    );
    workspace
        .add_reaction("C0ALERTS", &message.ts, "eyes", "U0ALICE")
        .unwrap();
    assert_eq!(
        workspace.history("C0ALERTS", 1).unwrap()[0]["reactions"][0]["count"],
        2
    );
    workspace
        .remove_reaction("C0ALERTS", &message.ts, "eyes", "U0BOT")
        .unwrap();
    workspace
        .remove_reaction("C0ALERTS", &message.ts, "eyes", "U0ALICE")
        .unwrap();
    assert_eq!(
        workspace
            .remove_reaction("C0ALERTS", &message.ts, "eyes", "U0ALICE")
            .unwrap_err()
            .code,
        "no_reaction"
    );
    assert!(
        workspace.history("C0ALERTS", 1).unwrap()[0]
            .get("reactions")
            .is_none()
    );
}

#[test]
fn ephemeral_messages_are_kept_apart_from_the_channel() {
    let mut workspace = workspace();
    let ts = workspace
        .post_ephemeral("C0ALERTS", "U0ONCALL", text("only you"), None, NOW)
        .unwrap();
    assert!(
        workspace.history("C0ALERTS", 10).unwrap().is_empty(),
        "not in the history"
    );
    assert_eq!(workspace.ephemerals["C0ALERTS"][0].ts, ts);
    assert_eq!(
        workspace
            .post_ephemeral("C0ALERTS", "U0NOBODY", text("x"), None, NOW)
            .unwrap_err()
            .code,
        "user_not_found"
    );
    assert_eq!(
        workspace
            .post_ephemeral("C0ALERTS", "U0ONCALL", text(""), None, NOW)
            .unwrap_err()
            .code,
        "no_text"
    );
}
