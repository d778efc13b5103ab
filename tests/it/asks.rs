//! Asking where you are, end to end through the Slack emulator, slack-gateway, alert-watcher,
//! profile-fetcher (on the Pyroscope emulator) and remediation-poster: the "Diagnose this
//! message" shortcut on a message no reader knows, `@flamethread diagnose` in its thread,
//! `@flamethread profile …` in a thread and in a DM, and a mistake answered to the person only.

use std::time::Duration;

use serde_json::{Value, json};
use test_support::{NatsServer, wait_for};

use crate::slack_edge::{
    Control, emulator_config, pyroscope_with_checkout, start_emulator, start_fetcher,
    start_gateway, start_poster, start_watcher,
};

/// The replies in the thread of `ts`, as text.
async fn thread(control: &Control, channel: &str, ts: &str) -> String {
    serde_json::Value::from(control.replies(channel, ts).await).to_string()
}

async fn wait_thread(control: &Control, channel: &str, ts: &str, says: &[&str]) -> String {
    let waited = wait_for(
        Duration::from_secs(40),
        &format!("the thread of {ts} to say {says:?}"),
        || async {
            let replies = thread(control, channel, ts).await;
            says.iter().all(|said| replies.contains(said))
        },
    )
    .await;
    let replies = thread(control, channel, ts).await;
    assert!(waited.is_ok(), "the thread of {ts} says: {replies}");
    replies
}

async fn post_as(
    control: &Control,
    channel: &str,
    user: &str,
    text: &str,
    thread_ts: Option<&str>,
) -> String {
    let mut body = json!({"channel": channel, "user": user, "text": text});
    if let Some(thread_ts) = thread_ts {
        body["thread_ts"] = json!(thread_ts);
    }
    control.post("/post", body).await["ts"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn people_ask_by_shortcut_mention_and_dm_and_are_answered_where_they_asked() {
    let pyroscope = pyroscope_with_checkout().await;
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let _gateway = start_gateway(&nats, &slack).await;
    let _watcher = start_watcher(&nats, |_| {}).await;
    let _fetcher = start_fetcher(&nats, &pyroscope, &[]).await;
    let _poster = start_poster(&nats, &slack).await;

    // A person's message no reader knows is not an alert…
    let report = post_as(
        &control,
        "C0ALERTS",
        "U0DEV",
        "*checkout is throwing 500s* since the 14:02 deploy\nservice: checkout",
        None,
    )
    .await;
    // …until someone asks for it to be diagnosed with the message shortcut.
    control
        .post(
            "/shortcut",
            json!({"channel": "C0ALERTS", "user": "U0ONCALL", "message_ts": report,
                "callback_id": proto::slack::shortcuts::DIAGNOSE_MESSAGE}),
        )
        .await;
    let replies = wait_thread(
        &control,
        "C0ALERTS",
        &report,
        &[
            "checkout is throwing 500s since the 14:02 deploy",
            "regex_backtrack",
        ],
    )
    .await;
    assert!(
        replies.contains("Service*\\ncheckout"),
        "the `service:` line names it: {replies}"
    );

    // `@flamethread diagnose` in a thread diagnoses the thread's first message.
    let other = post_as(
        &control,
        "C0ALERTS",
        "U0DEV",
        "cart totals look wrong to customers",
        None,
    )
    .await;
    post_as(
        &control,
        "C0ALERTS",
        "U0ONCALL",
        "<@U0FLAMEBOT> diagnose",
        Some(&other),
    )
    .await;
    wait_thread(
        &control,
        "C0ALERTS",
        &other,
        &["cart totals look wrong to customers"],
    )
    .await;

    // `@flamethread profile …` in a thread is answered in that thread.
    let alert = control.post_alert("C0ALERTS", "HighLatency").await;
    post_as(
        &control,
        "C0ALERTS",
        "U0ONCALL",
        "<@U0FLAMEBOT> profile checkout 30m",
        Some(&alert),
    )
    .await;
    wait_thread(
        &control,
        "C0ALERTS",
        &alert,
        &["regex_backtrack", "checkout"],
    )
    .await;

    // A person pasting the alert as `[RESOLVED]` and asking about it gets a thread of its own;
    // the alert's incident is not resolved by it.
    let pasted = post_as(
        &control,
        "C0ALERTS",
        "U0DEV",
        "[RESOLVED:1] HighLatency checkout (prod)",
        None,
    )
    .await;
    control
        .post(
            "/shortcut",
            json!({"channel": "C0ALERTS", "user": "U0DEV", "message_ts": pasted,
                "callback_id": proto::slack::shortcuts::DIAGNOSE_MESSAGE}),
        )
        .await;
    wait_thread(&control, "C0ALERTS", &pasted, &["HighLatency"]).await;
    let alert_thread = thread(&control, "C0ALERTS", &alert).await;
    assert!(
        !alert_thread.contains("Resolved"),
        "a person's paste resolved nothing: {alert_thread}"
    );

    // The same in a DM, answered in the DM.
    let dm = control.post("/im", json!({"user": "U0ONCALL"})).await["channel"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let asked = post_as(&control, &dm, "U0ONCALL", "profile checkout 30m", None).await;
    wait_thread(&control, &dm, &asked, &["regex_backtrack"]).await;

    // A mistake by mention is answered to the person only, in the thread.
    post_as(
        &control,
        "C0ALERTS",
        "U0VIEWER",
        "<@U0FLAMEBOT> deploy prod <!channel>",
        Some(&alert),
    )
    .await;
    wait_for(
        Duration::from_secs(20),
        "an answer only the person sees",
        || async {
            control.get("/channels/C0ALERTS").await["ephemeral"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|ephemeral: &Value| {
                    ephemeral["user"] == "U0VIEWER"
                        && ephemeral["text"]
                            .as_str()
                            .is_some_and(|text| text.contains("did not understand"))
                })
        },
    )
    .await
    .unwrap();
    let ephemeral = control.get("/channels/C0ALERTS").await["ephemeral"].to_string();
    assert!(!ephemeral.contains("<!channel>"), "escaped: {ephemeral}");
}
