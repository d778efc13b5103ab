//! slack-gateway end to end: the Slack emulator delivers (Socket Mode, or signed HTTP), the
//! gateway publishes to a real nats-server, and only then acknowledges.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use test_support::{NatsServer, reserve_port, wait_for};

use crate::slack_edge::{
    Control, emulator_config, gateway_config, observer, published, spawn_service, start_emulator,
    wait_published,
};

const MESSAGES: &str = "ft.slack.message";

#[tokio::test]
async fn socket_mode_publishes_alerts_from_other_bots_and_ignores_its_own() {
    crate::support::telemetry();
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let gateway = spawn_service(|admin, shutdown| {
        let mut config = gateway_config(&nats, &slack, admin);
        config.slack.channels = vec!["C0ALERTS".to_owned()];
        slack_gateway::run(config, shutdown)
    })
    .await;
    let bus = observer(&nats).await;

    control.post_alert("C0ALERTS", "HighCPU").await;
    control
        .post(
            "/post",
            json!({"channel": "C0GENERAL", "user": "U0DEV", "text": "lunch?"}),
        )
        .await;
    // The app's own reply, posted with its bot token: Slack sends it back as an event.
    let http = slack::http_client(Duration::from_secs(5)).unwrap();
    let own: Value = http
        .post(format!("{}/chat.postMessage", slack.api_base()))
        .bearer_auth("xoxb-flamethread-emulator")
        .json(&json!({"channel": "C0ALERTS", "text": "diagnosis"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(own["ok"], true, "{own}");

    control.wait_all_acked().await;
    let stored = published(&bus, "FT_SLACK", MESSAGES).await;
    assert_eq!(stored.len(), 1, "only the alert is kept: {stored:?}");
    let alert = &stored[0];
    assert_eq!(alert["channel"], "C0ALERTS");
    assert_eq!(alert["bot_id"], "B0AMGR");
    assert_eq!(alert["transport"], "socket_mode");
    assert_eq!(
        alert["raw"]["attachments"][0]["title_link"],
        "http://alertmanager:9093/#/alerts?receiver=slack",
        "the raw event keeps what slack-morphism's types drop"
    );
    // The alert's trace starts at the gateway and travels on in the stored message's headers.
    let stored = crate::support::stored_messages(&bus, "FT_SLACK").await;
    let traceparent = stored[0]
        .headers
        .get("traceparent")
        .map(|value| value.to_string())
        .unwrap_or_default();
    assert!(
        traceparent.starts_with("00-"),
        "no traceparent: {traceparent:?}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn socket_mode_commands_clicks_and_shared_files_are_published() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let gateway = spawn_service(|admin, shutdown| {
        let mut config = gateway_config(&nats, &slack, admin);
        config.files.max_bytes = 64;
        slack_gateway::run(config, shutdown)
    })
    .await;
    let bus = observer(&nats).await;

    control
        .post("/command", json!({"channel": "C0ALERTS", "user": "U0ONCALL", "command": "/profile", "text": "checkout 30m"}))
        .await;
    let commands = wait_published(&bus, "FT_SLACK", "ft.slack.command", 1).await;
    assert_eq!(commands[0]["text"], "checkout 30m");
    assert!(
        commands[0]["response_url"]
            .as_str()
            .unwrap()
            .contains("/response/")
    );
    control.wait_all_acked().await;
    let answered = control.deliveries().await;
    assert_eq!(
        answered[0]["response"]["text"], "Working on `/profile checkout 30m`…",
        "the ack carries an immediate, ephemeral answer: {answered:?}"
    );

    let alert_ts = control.post_alert("C0ALERTS", "HighCPU").await;
    control
        .post("/click", json!({"channel": "C0ALERTS", "user": "U0ONCALL", "message_ts": alert_ts, "action_id": proto::actions::SILENCE_1H, "value": "inc-1"}))
        .await;
    let actions = wait_published(&bus, "FT_SLACK", "ft.slack.action", 1).await;
    assert_eq!(actions[0]["action_id"], "ft.silence_1h");
    assert_eq!(actions[0]["value"], "inc-1");
    assert_eq!(actions[0]["message_ts"], alert_ts.as_str());

    let script = "print('hi')\n";
    let share = control
        .post("/share", json!({"channel": "C0GENERAL", "user": "U0DEV", "name": "hello.py", "content": script, "text": "can you profile this?"}))
        .await;
    control
        .post("/share", json!({"channel": "C0GENERAL", "user": "U0DEV", "name": "big.py", "content": "x = 1\n".repeat(20)}))
        .await;
    control
        .post(
            "/share",
            json!({"channel": "C0GENERAL", "user": "U0DEV", "name": "chart.png", "content": "png"}),
        )
        .await;
    let files = wait_published(&bus, "FT_SLACK", "ft.slack.file", 3).await;
    let by_name = |name: &str| {
        files
            .iter()
            .find(|file| file["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {files:?}"))
            .clone()
    };
    let hello = by_name("hello.py");
    assert_eq!(hello["file"]["kind"], "stored", "{hello}");
    assert_eq!(
        hello["message_ts"], share["ts"],
        "answers go under the sharing message"
    );
    let key = hello["file"]["object"]["key"].as_str().unwrap();
    let mut object = bus.blob_store().await.unwrap().get(key).await.unwrap();
    let mut stored = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut object, &mut stored)
        .await
        .unwrap();
    assert_eq!(stored, script, "the object store holds the script itself");
    let big = by_name("big.py");
    assert_eq!(big["file"]["kind"], "rejected");
    assert!(
        big["file"]["reason"].as_str().unwrap().contains("64 bytes"),
        "{big}"
    );
    let png = by_name("chart.png");
    assert!(
        png["file"]["reason"]
            .as_str()
            .unwrap()
            .contains("image/png"),
        "{png}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn socket_mode_reconnects_and_never_acknowledges_what_nats_did_not_store() {
    let mut nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let gateway = spawn_service(|admin, shutdown| {
        slack_gateway::run(gateway_config(&nats, &slack, admin), shutdown)
    })
    .await;
    let bus = observer(&nats).await;

    // Slack asks for a reconnect: the gateway opens a new socket and nothing is lost.
    control.post("/socket-mode/disconnect", json!({})).await;
    control.post_alert("C0ALERTS", "AfterDisconnect").await;
    wait_published(&bus, "FT_SLACK", MESSAGES, 1).await;

    // NATS goes away: the event stays unacknowledged, and Slack keeps delivering it.
    nats.kill();
    control.post_alert("C0ALERTS", "WhileNatsIsDown").await;
    wait_for(
        Duration::from_secs(20),
        "redeliveries of the unstored event",
        || async {
            control.deliveries().await.last().is_some_and(|delivery| {
                delivery["attempts"].as_u64() >= Some(2) && delivery["acked"] == false
            })
        },
    )
    .await
    .unwrap();

    nats.restart().unwrap();
    control.wait_all_acked().await;
    let stored = wait_published(&bus, "FT_SLACK", MESSAGES, 2).await;
    assert_eq!(
        stored.len(),
        2,
        "stored once despite the redeliveries: {stored:?}"
    );
    assert!(
        stored[1]["raw"]["attachments"][0]["title"]
            .as_str()
            .unwrap()
            .contains("WhileNatsIsDown")
    );
    gateway.stop().await;
}

/// Slack stops resending an event after its last retry; a stream can refuse writes for longer
/// while the gateway stays connected (on a cluster, its leader's election takes 4 to 9 s, and
/// every publish meanwhile finds no responder). The gateway keeps storing what it could not
/// acknowledge, so the event is stored once the stream is back, though Slack gave up on it.
/// (Here the stream is deleted and made again; a killed single server would not do: the
/// client keeps an unsent publish across its reconnect.)
#[tokio::test]
async fn socket_mode_an_event_slack_gave_up_on_is_stored_when_the_stream_is_back() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(slack_emulator::EmulatorConfig {
        socket_max_retries: 1,
        ..emulator_config()
    })
    .await;
    let control = Control::new(&slack);
    let gateway = spawn_service(|admin, shutdown| {
        slack_gateway::run(gateway_config(&nats, &slack, admin), shutdown)
    })
    .await;
    let bus = observer(&nats).await;
    control.post_alert("C0ALERTS", "BeforeTheOutage").await;
    wait_published(&bus, "FT_SLACK", MESSAGES, 1).await;

    bus.jetstream().delete_stream("FT_SLACK").await.unwrap();
    control.post_alert("C0ALERTS", "SlackGaveUpOnThis").await;
    // The first delivery and its one retry, neither acknowledged; then Slack waits no more.
    wait_for(
        Duration::from_secs(20),
        "Slack's last delivery of the unstored event",
        || async {
            control.deliveries().await.last().is_some_and(|delivery| {
                delivery["attempts"].as_u64() == Some(2) && delivery["acked"] == false
            })
        },
    )
    .await
    .unwrap();
    tokio::time::sleep(slack_emulator::socket_mode::DEFAULT_ACK_TIMEOUT).await;

    bus.provision().await.unwrap();
    let stored = wait_published(&bus, "FT_SLACK", MESSAGES, 1).await;
    assert_eq!(stored.len(), 1, "stored once: {stored:?}");
    assert!(
        stored[0]["raw"]["attachments"][0]["title"]
            .as_str()
            .unwrap()
            .contains("SlackGaveUpOnThis"),
        "{stored:?}"
    );
    let last = control.deliveries().await.last().cloned().unwrap();
    assert_eq!(last["attempts"], 2, "Slack sent it no more: {last}");
    assert_eq!(
        last["acked"], false,
        "and it was never acknowledged: {last}"
    );
    gateway.stop().await;
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn http_mode_verifies_every_request_and_stores_retries_once() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let listen = reserve_port().unwrap();
    let slack_addr = listen.addr();
    let gateway = spawn_service(|admin, shutdown| {
        let mut config = gateway_config(&nats, &slack, admin);
        config.slack.mode = slack_gateway::Mode::Http;
        config.slack.http.listen = slack_addr;
        config.slack.http.max_body_bytes = 4096;
        drop(listen);
        slack_gateway::run(config, shutdown)
    })
    .await;
    let bus = observer(&nats).await;
    let base = format!("http://{slack_addr}/slack");

    // Slack's url_verification, then a real signed delivery.
    control
        .post(
            "/events/request-url",
            json!({
                "url": format!("{base}/events"),
                "commands_url": format!("{base}/commands"),
                "interactivity_url": format!("{base}/interactions"),
            }),
        )
        .await;
    control.post_alert("C0ALERTS", "OverHttp").await;
    let stored = wait_published(&bus, "FT_SLACK", MESSAGES, 1).await;
    assert_eq!(stored[0]["transport"], "http_events");

    let http = slack::http_client(Duration::from_secs(5)).unwrap();
    let secret = "emulator-signing-secret";
    let send =
        |body: String, timestamp: u64, signature: Option<String>, retry: Option<&'static str>| {
            let http = http.clone();
            let url = format!("{base}/events");
            async move {
                let mut request = http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-slack-request-timestamp", timestamp.to_string());
                if let Some(signature) = signature {
                    request = request.header("x-slack-signature", signature);
                }
                if let Some(retry) = retry {
                    request = request
                        .header("x-slack-retry-num", retry)
                        .header("x-slack-retry-reason", "http_timeout");
                }
                let response = request.body(body).send().await.unwrap();
                response.status().as_u16()
            }
        };
    let event = |event_id: &str| {
        json!({
            "type": "event_callback", "team_id": "T0FLAME", "event_id": event_id,
            "event": {"type": "message", "subtype": "bot_message", "bot_id": "B0GRAFANA", "channel": "C0ALERTS", "ts": "1700000000.000900", "text": "**Firing**"}
        })
        .to_string()
    };
    let signed = |body: &str, timestamp: u64| {
        Some(slack_emulator::events_api::sign(
            secret,
            timestamp,
            body.as_bytes(),
        ))
    };

    let now = now_seconds();
    let replayed = event("Ev0REPLAY");
    assert_eq!(
        send(replayed.clone(), now, signed(&replayed, now), None).await,
        200
    );
    assert_eq!(
        send(replayed.clone(), now, signed(&replayed, now), Some("1")).await,
        200,
        "a retry is answered 200"
    );

    let forged = event("Ev0FORGED");
    assert_eq!(
        send(
            forged.clone(),
            now,
            Some(slack_emulator::events_api::sign(
                "wrong-secret",
                now,
                forged.as_bytes()
            )),
            None
        )
        .await,
        401,
        "bad signature"
    );
    let stale = now - 301;
    assert_eq!(
        send(forged.clone(), stale, signed(&forged, stale), None).await,
        401,
        "stale timestamp"
    );
    let future = now + 400;
    assert_eq!(
        send(forged.clone(), future, signed(&forged, future), None).await,
        401,
        "timestamp from the future"
    );
    assert_eq!(
        send(forged.clone(), now, None, None).await,
        401,
        "no signature"
    );
    let oversized = format!("{{\"pad\":\"{}\"}}", "x".repeat(5000));
    assert_eq!(
        send(oversized.clone(), now, signed(&oversized, now), None).await,
        413,
        "oversized"
    );
    let garbage = "{not json".to_owned();
    assert_eq!(
        send(garbage.clone(), now, signed(&garbage, now), None).await,
        400,
        "malformed"
    );
    let headless = json!({"type": "event_callback", "event_id": "Ev0NOEVENT"}).to_string();
    assert_eq!(
        send(headless.clone(), now, signed(&headless, now), None).await,
        400,
        "no event"
    );

    // A slash command and a click over HTTP.
    control
        .post("/command", json!({"channel": "C0ALERTS", "user": "U0ONCALL", "command": "/flamethread", "text": "help"}))
        .await;
    let commands = wait_published(&bus, "FT_SLACK", "ft.slack.command", 1).await;
    assert_eq!(commands[0]["command"], "/flamethread");
    control
        .post("/click", json!({"channel": "C0ALERTS", "user": "U0ONCALL", "message_ts": stored[0]["ts"], "action_id": proto::actions::RERUN, "value": "inc-2"}))
        .await;
    wait_published(&bus, "FT_SLACK", "ft.slack.action", 1).await;
    control.wait_all_acked().await;

    let messages = published(&bus, "FT_SLACK", MESSAGES).await;
    let ids: Vec<&str> = messages
        .iter()
        .map(|m| m["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        2,
        "the alert and the replayed event, once each: {ids:?}"
    );
    assert!(ids.contains(&"Ev0REPLAY"));
    let deliveries = control.deliveries().await;
    let command = deliveries
        .iter()
        .find(|d| d["type"] == "slash_commands")
        .unwrap();
    assert_eq!(
        command["response"]["response_type"], "ephemeral",
        "{command}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn http_mode_answers_503_while_nats_is_down_and_slacks_retry_is_stored_once() {
    let mut nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let listen = reserve_port().unwrap();
    let slack_addr = listen.addr();
    let gateway = spawn_service(|admin, shutdown| {
        let mut config = gateway_config(&nats, &slack, admin);
        config.slack.mode = slack_gateway::Mode::Http;
        config.slack.http.listen = slack_addr;
        drop(listen);
        slack_gateway::run(config, shutdown)
    })
    .await;
    let bus = observer(&nats).await;
    control
        .post(
            "/events/request-url",
            json!({"url": format!("http://{slack_addr}/slack/events")}),
        )
        .await;

    nats.kill();
    control.post_alert("C0ALERTS", "WhileNatsIsDown").await;
    wait_for(
        Duration::from_secs(30),
        "Slack retrying the unstored event",
        || async {
            control.deliveries().await.last().is_some_and(|delivery| {
                delivery["attempts"].as_u64() >= Some(2) && delivery["acked"] == false
            })
        },
    )
    .await
    .unwrap();
    nats.restart().unwrap();
    control.wait_all_acked().await;
    let stored = wait_published(&bus, "FT_SLACK", MESSAGES, 1).await;
    assert_eq!(stored.len(), 1, "stored once: {stored:?}");
    gateway.stop().await;
}
