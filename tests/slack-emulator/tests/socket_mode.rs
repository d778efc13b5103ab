//! slack-morphism's real Socket Mode listener against the emulator: it connects through
//! `apps.connections.open`, receives message events in envelopes and acks them; an envelope its
//! callback fails on is not acked and comes again with `retry_attempt`; a `disconnect` makes it
//! reconnect and events keep flowing.

#![allow(clippy::unwrap_used, reason = "a panic is how a test fails")]

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use hyper_util::client::legacy::connect::HttpConnector;
use slack_emulator::EmulatorConfig;
use slack_morphism::prelude::*;
use tokio::sync::mpsc;

type Connector = SlackClientHyperConnector<HttpConnector>;

/// What the callback reports to the test, and whether it should fail the next "flaky" event.
struct Observer {
    events: mpsc::UnboundedSender<(String, Option<String>)>,
    fail_flaky_once: AtomicBool,
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackClient<Connector>>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let states = states.read().await;
    let observer = states.get_user_state::<Observer>().unwrap();
    if let SlackEventCallbackBody::Message(message) = event.event {
        let text = message
            .content
            .as_ref()
            .and_then(|content| content.text.clone())
            .unwrap_or_default();
        if text == "flaky" && observer.fail_flaky_once.swap(false, Ordering::SeqCst) {
            return Err("the first delivery fails".into());
        }
        let title = message
            .content
            .as_ref()
            .and_then(|content| content.attachments.as_ref())
            .and_then(|attachments| attachments.first())
            .and_then(|attachment| attachment.title.clone());
        observer.events.send((text, title)).unwrap();
    }
    Ok(())
}

async fn control(
    running: &slack_emulator::Running,
    method: hyper::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    use http_body_util::BodyExt as _;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Full<bytes::Bytes>>(HttpConnector::new());
    let body = body
        .map(|body| serde_json::to_vec(&body).unwrap())
        .unwrap_or_default();
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", running.control_base()))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// The emulator started with `config`, a slack-morphism client of its Web API, and
/// slack-morphism's Socket Mode listener connected to it with `callbacks` (and the user state
/// `environment` adds).
async fn connected(
    config: EmulatorConfig,
    environment: impl FnOnce(
        SlackClientEventsListenerEnvironment<Connector>,
    ) -> SlackClientEventsListenerEnvironment<Connector>,
    callbacks: SlackSocketModeListenerCallbacks<Connector>,
) -> (
    slack_emulator::Running,
    Arc<SlackClient<Connector>>,
    SlackClientSocketModeListener<Connector>,
) {
    let app_token = SlackApiToken::new(config.app_token.clone().into());
    let running = slack_emulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let client = Arc::new(SlackClient::new(
        SlackClientHyperConnector::with_connector(HttpConnector::new())
            .with_slack_api_url(&running.api_base()),
    ));
    let listener = SlackClientSocketModeListener::new(
        &SlackClientSocketModeConfig::new()
            .with_max_connections_count(1)
            .with_initial_backoff_in_seconds(0),
        Arc::new(environment(SlackClientEventsListenerEnvironment::new(
            client.clone(),
        ))),
        callbacks,
    );
    listener.listen_for(&app_token).await.unwrap();
    listener.start().await;
    wait_for_connection(&running, 1).await;
    (running, client, listener)
}

/// Waits until one connection is open and `opened` were opened in all.
async fn wait_for_connection(running: &slack_emulator::Running, opened: u64) {
    for _ in 0..200 {
        let deliveries = control(running, hyper::Method::GET, "/deliveries", None).await;
        if deliveries["connections"] == 1
            && deliveries["connections_opened"].as_u64() == Some(opened)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never saw connection number {opened} open");
}

async fn post_as_alertmanager(running: &slack_emulator::Running, text: &str) {
    let answer = control(
        running,
        hyper::Method::POST,
        "/post",
        Some(serde_json::json!({
            "channel": "C0ALERTS", "bot_id": "B0AMGR", "username": "Alertmanager", "text": text,
            "attachments": [{"title": "[FIRING:1] HighCPU checkout (prod)", "color": "danger"}]
        })),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
}

#[tokio::test]
async fn events_are_delivered_acked_redelivered_and_survive_a_disconnect() {
    let config = EmulatorConfig {
        socket_ack_timeout: Duration::from_millis(500),
        ..EmulatorConfig::default()
    };
    let (events, mut received) = mpsc::unbounded_channel();
    let (running, _client, listener) = connected(
        config,
        |environment| {
            environment.with_user_state(Observer {
                events,
                fail_flaky_once: AtomicBool::new(true),
            })
        },
        SlackSocketModeListenerCallbacks::new().with_push_events(on_push),
    )
    .await;

    post_as_alertmanager(&running, "").await;
    let (text, title) = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text, "");
    assert_eq!(title.as_deref(), Some("[FIRING:1] HighCPU checkout (prod)"));

    // The callback fails the first delivery: no ack, so the emulator delivers it again.
    post_as_alertmanager(&running, "flaky").await;
    let (text, _) = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text, "flaky");

    // Slack asks the app to reconnect; it does, and events keep coming.
    let answer = control(
        &running,
        hyper::Method::POST,
        "/socket-mode/disconnect",
        None,
    )
    .await;
    assert_eq!(answer["disconnected"], 1);
    wait_for_connection(&running, 2).await;
    post_as_alertmanager(&running, "after reconnect").await;
    let (text, _) = tokio::time::timeout(Duration::from_secs(15), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(text, "after reconnect");

    let deliveries = control(&running, hyper::Method::GET, "/deliveries", None).await;
    let deliveries = deliveries["deliveries"].as_array().unwrap().clone();
    assert_eq!(deliveries.len(), 3);
    assert!(
        deliveries.iter().all(|delivery| delivery["acked"] == true),
        "{deliveries:?}"
    );
    let attempts: Vec<u64> = deliveries
        .iter()
        .map(|delivery| delivery["attempts"].as_u64().unwrap())
        .collect();
    assert_eq!(
        attempts,
        [1, 2, 1],
        "only the failed one was delivered twice"
    );

    listener.shutdown().await;
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SlackClient<Connector>>,
    _states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let text = format!("profiling {} …", event.text.unwrap_or_default());
    Ok(SlackCommandEventResponse::new(
        SlackMessageContent::new().with_text(text),
    ))
}

async fn on_interaction(
    event: SlackInteractionEvent,
    client: Arc<SlackClient<Connector>>,
    _states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    if let SlackInteractionEvent::BlockActions(click) = event {
        let action = &click.actions.as_ref().unwrap()[0];
        let who = click
            .user
            .as_ref()
            .map(|user| user.id.to_string())
            .unwrap_or_default();
        // A button sends its value, a select the option picked.
        let value = action
            .value
            .clone()
            .or_else(|| {
                action
                    .selected_option
                    .as_ref()
                    .map(|option| option.value.clone())
            })
            .unwrap_or_default();
        let answer = format!("{who} pressed {} on {value}", action.action_id);
        client
            .respond_to_event(
                click.response_url.as_ref().unwrap(),
                &SlackApiPostWebhookMessageRequest::new(
                    SlackMessageContent::new().with_text(answer),
                ),
            )
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn slash_commands_and_clicks_arrive_as_envelopes_and_answers_come_back() {
    let config = EmulatorConfig::default();
    let bot_token = SlackApiToken::new(config.bot_token.clone().into());
    let (running, client, listener) = connected(
        config,
        |environment| environment,
        SlackSocketModeListenerCallbacks::new()
            .with_command_events(on_command)
            .with_interaction_events(on_interaction),
    )
    .await;

    // `/profile checkout 30m`: the answer rides on the ack.
    let answer = control(
        &running,
        hyper::Method::POST,
        "/command",
        Some(serde_json::json!({"channel": "C0ALERTS", "user": "U0ONCALL", "command": "/profile", "text": "checkout 30m"})),
    )
    .await;
    let envelope_id = answer["envelope_id"].as_str().unwrap().to_owned();

    // A button on a message our bot posted; the app answers through response_url.
    let posted = client
        .open_session(&bot_token)
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C0ALERTS".into(),
            SlackMessageContent::new().with_text("HighCPU on checkout".into()),
        ))
        .await
        .unwrap();
    control(
        &running,
        hyper::Method::POST,
        "/click",
        Some(serde_json::json!({"channel": "C0ALERTS", "user": "U0ONCALL", "message_ts": posted.ts.to_string(),
                                "action_id": "silence_1h", "value": "inc-01"})),
    )
    .await;

    // A select on another message: the click sends the option picked, read by slack-morphism's
    // own types; a value that is not one of its options cannot be sent.
    let blocks: Vec<SlackBlock> = serde_json::from_value(serde_json::json!([{"type": "actions", "elements": [
        {"type": "static_select", "action_id": "silence_for", "placeholder": {"type": "plain_text", "text": "Silence for…"},
         "options": [{"text": {"type": "plain_text", "text": "1h"}, "value": "3600"},
                     {"text": {"type": "plain_text", "text": "4h"}, "value": "14400"}]}]}]))
    .unwrap();
    let with_select = client
        .open_session(&bot_token)
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C0ALERTS".into(),
            SlackMessageContent::new()
                .with_text("silence?".into())
                .with_blocks(blocks),
        ))
        .await
        .unwrap();
    let not_an_option = control(
        &running,
        hyper::Method::POST,
        "/click",
        Some(serde_json::json!({"channel": "C0ALERTS", "user": "U0ONCALL", "message_ts": with_select.ts.to_string(),
                                "action_id": "silence_for", "value": "999999"})),
    )
    .await;
    assert_eq!(not_an_option["error"], "not_an_option_of_the_select");

    let mut command_response = serde_json::Value::Null;
    let mut responses = serde_json::Value::Null;
    for _ in 0..200 {
        let deliveries = control(&running, hyper::Method::GET, "/deliveries", None).await;
        command_response = deliveries["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|delivery| delivery["envelope_id"] == envelope_id.as_str())
            .map(|delivery| delivery["response"].clone())
            .unwrap_or_default();
        responses =
            control(&running, hyper::Method::GET, "/responses", None).await["responses"].clone();
        if !command_response.is_null() && responses.as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(command_response["text"], "profiling checkout 30m …");
    assert_eq!(
        responses[0]["body"]["text"],
        "U0ONCALL pressed silence_1h on inc-01"
    );
    control(
        &running,
        hyper::Method::POST,
        "/click",
        Some(serde_json::json!({"channel": "C0ALERTS", "user": "U0ONCALL", "message_ts": with_select.ts.to_string(),
                                "action_id": "silence_for", "value": "14400"})),
    )
    .await;
    let mut picked = false;
    for _ in 0..200 {
        let responses = control(&running, hyper::Method::GET, "/responses", None).await;
        picked = responses["responses"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|response| response["body"]["text"] == "U0ONCALL pressed silence_for on 14400");
        if picked {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(picked, "the select's pick reached the app");

    // A click on a message that does not exist is refused by the control API itself.
    let refused = control(
        &running,
        hyper::Method::POST,
        "/click",
        Some(serde_json::json!({"channel": "C0ALERTS", "user": "U0ONCALL", "message_ts": "1.000001", "action_id": "x"})),
    )
    .await;
    assert_eq!(refused["error"], "message_not_found");
    listener.shutdown().await;
}

/// What the listener below saw, as short descriptions.
struct Seen(mpsc::UnboundedSender<String>);

async fn on_surface_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackClient<Connector>>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let states = states.read().await;
    let seen = states.get_user_state::<Seen>().unwrap();
    let said = match event.event {
        SlackEventCallbackBody::AppMention(mention) => format!(
            "mention by {} in {}: {}",
            mention.user,
            mention.channel,
            mention.content.text.unwrap_or_default()
        ),
        SlackEventCallbackBody::AppHomeOpened(home) => format!(
            "home of {} ({}) with a view: {}",
            home.user,
            home.tab.unwrap_or_default(),
            home.view.is_some()
        ),
        SlackEventCallbackBody::Message(message) => format!(
            "message in {:?} ({:?})",
            message.origin.channel.map(|channel| channel.to_string()),
            message.origin.channel_type.map(|kind| kind.to_string())
        ),
        _ => return Ok(()),
    };
    seen.0.send(said).unwrap();
    Ok(())
}

async fn on_surface_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SlackClient<Connector>>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let states = states.read().await;
    let seen = states.get_user_state::<Seen>().unwrap();
    let said = match event {
        SlackInteractionEvent::MessageAction(shortcut) => format!(
            "shortcut {} by {} on {:?}",
            shortcut.callback_id,
            shortcut.user.id,
            shortcut
                .message
                .map(|message| message.origin.ts.to_string())
        ),
        SlackInteractionEvent::BlockActions(click) => format!(
            "click {} in a view: {}",
            click.actions.unwrap_or_default()[0].action_id,
            matches!(click.container, SlackInteractionActionContainer::View(_))
        ),
        _ => return Ok(()),
    };
    seen.0.send(said).unwrap();
    Ok(())
}

/// The surfaces people ask on — a mention, a DM, the message shortcut, App Home and a click in
/// it — reach slack-morphism's own Socket Mode client and parse into its typed events: the
/// emulator sends them in Slack's shapes.
#[tokio::test]
async fn mentions_dms_shortcuts_and_app_home_parse_as_slack_morphism_reads_them() {
    let config = EmulatorConfig::default();
    let bot_token = SlackApiToken::new(config.bot_token.clone().into());
    let (seen, mut said) = mpsc::unbounded_channel();
    let (running, client, listener) = connected(
        config,
        |environment| environment.with_user_state(Seen(seen)),
        SlackSocketModeListenerCallbacks::new()
            .with_push_events(on_surface_push)
            .with_interaction_events(on_surface_interaction),
    )
    .await;
    let post =
        |body: serde_json::Value| control(&running, hyper::Method::POST, "/post", Some(body));
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), said.recv())
            .await
            .expect("an event")
            .unwrap()
    };

    let asked = post(
        serde_json::json!({"channel": "C0ALERTS", "user": "U0ONCALL",
        "text": "<@U0FLAMEBOT> profile checkout 30m"}),
    )
    .await;
    assert_eq!(
        next().await,
        "message in Some(\"C0ALERTS\") (Some(\"channel\"))"
    );
    assert_eq!(
        next().await,
        "mention by U0ONCALL in C0ALERTS: <@U0FLAMEBOT> profile checkout 30m"
    );

    let dm = control(
        &running,
        hyper::Method::POST,
        "/im",
        Some(serde_json::json!({"user": "U0ONCALL"})),
    )
    .await;
    let dm = dm["channel"]["id"].as_str().unwrap().to_owned();
    post(serde_json::json!({"channel": dm, "user": "U0ONCALL", "text": "profile checkout"})).await;
    assert_eq!(
        next().await,
        format!("message in Some(\"{dm}\") (Some(\"im\"))")
    );

    control(
        &running,
        hyper::Method::POST,
        "/shortcut",
        Some(serde_json::json!({
        "channel": "C0ALERTS", "user": "U0DEV", "message_ts": asked["ts"],
        "callback_id": "ft.diagnose_message"})),
    )
    .await;
    assert_eq!(
        next().await,
        format!(
            "shortcut ft.diagnose_message by U0DEV on Some({:?})",
            asked["ts"].as_str().unwrap()
        )
    );

    control(
        &running,
        hyper::Method::POST,
        "/home",
        Some(serde_json::json!({"user": "U0ONCALL"})),
    )
    .await;
    assert_eq!(next().await, "home of U0ONCALL (home) with a view: false");
    client
        .open_session(&bot_token)
        .views_publish(&SlackApiViewsPublishRequest::new(
            "U0ONCALL".into(),
            SlackView::Home(SlackHomeView::new(slack_blocks![some_into(
                SlackSectionBlock::new()
                    .with_text(md!("`checkout`"))
                    .with_accessory(
                        SlackBlockButtonElement::new(pt!("Profile now"))
                            .with_action_id("ft.profile_pick".into())
                            .with_value("checkout now".into())
                            .into()
                    )
            )])),
        ))
        .await
        .unwrap();
    control(
        &running,
        hyper::Method::POST,
        "/home",
        Some(serde_json::json!({"user": "U0ONCALL"})),
    )
    .await;
    assert_eq!(next().await, "home of U0ONCALL (home) with a view: true");
    let click = control(
        &running,
        hyper::Method::POST,
        "/home_click",
        Some(serde_json::json!({
        "user": "U0ONCALL", "action_id": "ft.profile_pick", "value": "checkout now"})),
    )
    .await;
    assert_eq!(click["ok"], true, "{click}");
    assert_eq!(next().await, "click ft.profile_pick in a view: true");
    // Only a button the Home has can be clicked.
    let stray = control(
        &running,
        hyper::Method::POST,
        "/home_click",
        Some(serde_json::json!({
        "user": "U0ONCALL", "action_id": "ft.profile_pick", "value": "rm -rf /"})),
    )
    .await;
    assert_eq!(stray["error"], "no_such_button_in_the_home");

    listener.shutdown().await;
}
