//! App Home end to end: a person opens the Home tab in the Slack emulator; slack-gateway
//! publishes it, profile-fetcher lists the apps (the Pyroscope emulator's and a `[live]` target),
//! remediation-poster adds the open incident and the profile asked for a moment ago and publishes
//! the view (which the emulator validates as Slack does). "Profile now" on Home answers in the
//! person's DM with the app.

use std::time::Duration;

use serde_json::{Value, json};
use test_support::{NatsServer, wait_for};

use crate::{
    profile_command::ask,
    slack_edge::{
        Control, emulator_config, pyroscope_with_checkout, start_emulator, start_fetcher,
        start_gateway, start_poster, start_watcher,
    },
};

#[tokio::test]
async fn app_home_lists_incidents_apps_and_profiles_and_its_buttons_answer_in_the_dm() {
    let pyroscope = pyroscope_with_checkout().await;
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let _gateway = start_gateway(&nats, &slack).await;
    let watcher = start_watcher(&nats, |_| {}).await;
    // flamethread profiles itself: alert-watcher's own admin endpoint is a live target.
    let _fetcher = start_fetcher(
        &nats,
        &pyroscope,
        &[("alert-watcher", format!("http://{}", watcher.admin))],
    )
    .await;
    let _poster = start_poster(&nats, &slack).await;

    // An open incident, and a profile somebody asked for.
    let alert = control.post_alert("C0ALERTS", "HighCPU").await;
    wait_for(Duration::from_secs(40), "the incident's reply", || async {
        control.channel("C0ALERTS").await.iter().any(|message| {
            message["ts"] == alert.as_str()
                && message["replies"].as_array().is_some_and(|r| !r.is_empty())
        })
    })
    .await
    .unwrap();
    ask(&control, "/profile", "checkout 30m", |body| {
        body.to_string().contains("regex_backtrack")
    })
    .await;

    // The person opens the Home tab.
    control.post("/home", json!({"user": "U0ONCALL"})).await;
    let home = || async { control.get("/homes/U0ONCALL").await["view"].clone() };
    let waited = wait_for(Duration::from_secs(30), "the Home published", || async {
        let shown = home().await.to_string();
        shown.contains("HighCPU")
            && shown.contains("regex_backtrack")
            && shown.contains("alert-watcher")
    })
    .await;
    let view = home().await;
    assert!(waited.is_ok(), "the Home shows: {view:#}");
    assert_eq!(view["type"], "home");
    let shown = view["blocks"].to_string();
    // The incident links to its alert's message, which opens the channel on the emulator's page.
    let permalink = format!("archives/C0ALERTS/p{}", alert.replace('.', ""));
    assert!(shown.contains(&permalink), "{shown}");
    let (status, _) = test_support::http_get_async(slack.addr(), &format!("/{permalink}")).await;
    assert!(
        (300..400).contains(&status),
        "a permalink leads to the channel: {status}"
    );
    // Each app has a button that asks for it; the live target is profiled now.
    let buttons: Vec<(String, String)> = view["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|block| block.get("accessory"))
        .map(|button| {
            (
                button["text"]["text"].as_str().unwrap().to_owned(),
                button["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        buttons,
        [
            ("Profile now".to_owned(), "alert-watcher now".to_owned()),
            ("Last 15 minutes".to_owned(), "checkout 15m".to_owned())
        ],
        "{shown}"
    );

    // "Profile now" on Home: no channel to answer in, so the answer comes in the DM.
    control
        .post(
            "/home_click",
            json!({"user": "U0ONCALL", "action_id": proto::actions::PROFILE_PICK, "value": "alert-watcher now"}),
        )
        .await;
    let dm = || async {
        control.get("/channels/D0ONCALL").await["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let waited = wait_for(Duration::from_secs(40), "the profile in the DM", || async {
        dm().await.iter().any(|message: &Value| {
            message["bot_id"] == "B0FLAMEBOT" && message.to_string().contains("alert-watcher")
        })
    })
    .await;
    assert!(waited.is_ok(), "the DM says: {:#?}", dm().await);
}
