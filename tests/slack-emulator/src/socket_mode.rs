//! Socket Mode: the app opens a WebSocket (URL from `apps.connections.open`), the emulator says
//! `hello`, then pushes envelopes (`events_api`, `slash_commands`, `interactive`) and expects an
//! ack (`{"envelope_id": …}`, with a `payload` for a slash command's immediate answer)
//! for each. An envelope not acked within `ack_timeout` is delivered again, with `retry_attempt`
//! and `retry_reason` as Slack sets them, possibly on another connection, up to `max_retries`
//! times. `disconnect` can be sent on demand, which makes clients reconnect.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    extract::{
        State,
        ws::{Message as WsMessage, WebSocket, WebSocketUpgrade},
    },
    response::Response,
};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::SharedState;

/// One envelope as the control API reports it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    pub envelope_id: String,
    /// `events_api`, `slash_commands` or `interactive`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The Events API `event_id`, for events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Deliveries so far (1 = delivered once).
    pub attempts: u32,
    pub acked: bool,
    /// The `payload` the app sent with its ack (a slash command's immediate answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
}

#[derive(Debug, Default)]
pub(crate) struct SocketHub {
    connections: Mutex<Vec<(u64, mpsc::UnboundedSender<String>)>>,
    deliveries: Mutex<HashMap<String, (DeliveryRecord, Value)>>,
    order: Mutex<Vec<String>>,
    /// What apps posted to `response_url`s: (the url's id, the body).
    responses: Mutex<Vec<(String, Value)>>,
    next_connection: AtomicU64,
    next_id: AtomicU64,
    round_robin: AtomicU64,
    run: RunPrefix,
}

/// Sets this emulator's event ids apart from an earlier run's, as Slack's never repeat: a
/// pipeline whose JetStream outlived an emulator restart must not take the new run's first
/// event for a redelivery of the old run's.
#[derive(Debug)]
struct RunPrefix(String);

impl Default for RunPrefix {
    fn default() -> Self {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        RunPrefix(format!("{started:X}"))
    }
}

impl SocketHub {
    fn register(&self) -> (u64, mpsc::UnboundedReceiver<String>) {
        let id = self.next_connection.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::unbounded_channel();
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, tx));
        (id, rx)
    }

    fn unregister(&self, id: u64) {
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(existing, _)| *existing != id);
    }

    /// Connections opened since the start, including closed ones.
    pub(crate) fn connections_opened(&self) -> u64 {
        self.next_connection.load(Ordering::SeqCst)
    }

    pub(crate) fn connection_count(&self) -> usize {
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Sends `frame` to one connection, round robin; false when none is connected.
    fn send_to_one(&self, frame: &str) -> bool {
        let connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        if connections.is_empty() {
            return false;
        }
        let start = self.round_robin.fetch_add(1, Ordering::SeqCst) as usize;
        (0..connections.len())
            .map(|offset| &connections[(start + offset) % connections.len()].1)
            .any(|tx| tx.send(frame.to_owned()).is_ok())
    }

    pub(crate) fn disconnect_all(&self, reason: &str) -> usize {
        let frame = json!({"type": "disconnect", "reason": reason, "debug_info": {"host": "slack-emulator"}});
        let connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        for (_, tx) in connections.iter() {
            let _ = tx.send(frame.to_string());
        }
        connections.len()
    }

    pub(crate) fn mark_acked(&self, envelope_id: &str, response: Option<Value>) {
        if let Some((record, _)) = self
            .deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(envelope_id)
        {
            record.acked = true;
            record.response = response;
        }
    }

    pub(crate) fn set_attempts(&self, envelope_id: &str, attempts: u32) {
        if let Some((record, _)) = self
            .deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(envelope_id)
        {
            record.attempts = attempts;
        }
    }

    /// Keeps a record of envelope `n` and returns its id.
    fn insert_record(
        &self,
        n: u64,
        kind: &'static str,
        event_id: Option<String>,
        payload: Value,
    ) -> String {
        let envelope_id = format!("{:08x}-0000-4000-8000-{n:012x}", n);
        let record = DeliveryRecord {
            envelope_id: envelope_id.clone(),
            kind,
            event_id,
            attempts: 0,
            acked: false,
            response: None,
        };
        self.deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(envelope_id.clone(), (record, payload));
        self.order
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(envelope_id.clone());
        envelope_id
    }

    pub(crate) fn records(&self) -> Vec<DeliveryRecord> {
        let deliveries = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
        let order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        order
            .iter()
            .filter_map(|id| deliveries.get(id).map(|(record, _)| record.clone()))
            .collect()
    }

    pub(crate) fn record_response(&self, id: &str, body: Value) {
        self.responses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id.to_owned(), body));
    }

    pub(crate) fn responses(&self) -> Vec<Value> {
        let responses = self.responses.lock().unwrap_or_else(|e| e.into_inner());
        responses
            .iter()
            .map(|(id, body)| json!({"id": id, "body": body}))
            .collect()
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// Wraps a Slack event (the `event` object of an Events API callback) in an envelope and
/// delivers it, redelivering until acked (see the module docs).
pub(crate) fn deliver_event(state: &SharedState, event: Value) {
    let n = state.socket.next_id();
    let event_id = format!("Ev{}{n:06}", state.socket.run.0);
    let payload = json!({
        "token": "emulator-verification-token",
        "team_id": "T0FLAME",
        "api_app_id": state.config.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": crate::web_api::now_micros() / 1_000_000,
        "authorizations": [{"team_id": "T0FLAME", "user_id": state.config.bot_user_id, "is_bot": true}],
    });
    if let Some(url) = state.events_api.request_url() {
        let envelope_id =
            state
                .socket
                .insert_record(n, "events_api_http", Some(event_id), payload.clone());
        crate::events_api::deliver(state, url, envelope_id, payload);
    } else {
        deliver(state, n, "events_api", Some(event_id), false, payload);
    }
}

/// Delivers a slash command (`payload` as Slack's form fields) or an interaction; returns the
/// envelope id.
pub(crate) fn deliver_payload(state: &SharedState, kind: &'static str, payload: Value) -> String {
    let n = state.socket.next_id();
    if let Some(url) = state.events_api.form_url(kind) {
        let envelope_id = state.socket.insert_record(n, kind, None, payload.clone());
        crate::events_api::deliver_form(state, url, envelope_id.clone(), kind, payload);
        return envelope_id;
    }
    deliver(state, n, kind, None, kind == "slash_commands", payload)
}

fn deliver(
    state: &SharedState,
    n: u64,
    kind: &'static str,
    event_id: Option<String>,
    accepts_response_payload: bool,
    payload: Value,
) -> String {
    let envelope_id = state.socket.insert_record(n, kind, event_id, payload);
    let state = state.clone();
    let id = envelope_id.clone();
    tokio::spawn(async move {
        let hub = &state.socket;
        for attempt in 0..=state.config.socket_max_retries {
            let frame = {
                let mut deliveries = hub.deliveries.lock().unwrap_or_else(|e| e.into_inner());
                let Some((record, payload)) = deliveries.get_mut(&id) else {
                    return;
                };
                if record.acked {
                    return;
                }
                record.attempts = attempt + 1;
                json!({
                    "envelope_id": id,
                    "type": kind,
                    "accepts_response_payload": accepts_response_payload,
                    "retry_attempt": attempt,
                    "retry_reason": if attempt == 0 { "" } else { "timeout" },
                    "payload": payload,
                })
                .to_string()
            };
            hub.send_to_one(&frame);
            tokio::time::sleep(state.config.socket_ack_timeout).await;
        }
    });
    envelope_id
}

/// `GET /socket-mode`: the WebSocket the URL from `apps.connections.open` points at.
pub(crate) async fn upgrade(
    State(state): State<SharedState>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.on_upgrade(move |socket| serve_socket(state, socket))
}

async fn serve_socket(state: SharedState, mut socket: WebSocket) {
    let (connection, mut outgoing) = state.socket.register();
    let hello = json!({
        "type": "hello",
        "num_connections": state.socket.connection_count(),
        "debug_info": {"host": "slack-emulator", "build_number": 1, "approximate_connection_time": 18060},
        "connection_info": {"app_id": state.config.app_id},
    });
    if socket
        .send(WsMessage::Text(hello.to_string().into()))
        .await
        .is_ok()
    {
        loop {
            tokio::select! {
                frame = outgoing.recv() => {
                    let Some(frame) = frame else { break };
                    let disconnect = frame.contains("\"type\":\"disconnect\"");
                    if socket.send(WsMessage::Text(frame.into())).await.is_err() || disconnect {
                        break;
                    }
                }
                incoming = socket.recv() => match incoming {
                    Some(Ok(WsMessage::Text(text))) => {
                        if let Ok(ack) = serde_json::from_str::<Value>(&text)
                            && let Some(envelope_id) = ack.get("envelope_id").and_then(Value::as_str)
                        {
                            state.socket.mark_acked(envelope_id, ack.get("payload").cloned());
                        }
                    }
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
    }
    state.socket.unregister(connection);
}

/// The `message` event Slack sends for a post in a channel the app is in.
pub(crate) fn message_event(channel: &str, message: &crate::workspace::Message) -> Value {
    let mut event = message.to_json(0);
    event["channel"] = json!(channel);
    event["event_ts"] = json!(message.ts);
    event["channel_type"] = json!(if channel.starts_with('D') {
        "im"
    } else {
        "channel"
    });
    event
}

/// The `app_mention` event Slack sends besides the message event when a person's message in a
/// channel mentions the app (`<@U…>`); none for direct messages, which are all for the app.
pub(crate) fn app_mention_event(
    channel: &str,
    message: &crate::workspace::Message,
    bot_user_id: &str,
) -> Option<Value> {
    let event = message.to_json(0);
    let mentioned = event["text"]
        .as_str()
        .is_some_and(|text| text.contains(&format!("<@{bot_user_id}>")));
    if !mentioned || channel.starts_with('D') || event.get("bot_id").is_some() {
        return None;
    }
    let mut mention = json!({
        "type": "app_mention",
        "user": event["user"],
        "text": event["text"],
        "ts": event["ts"],
        "channel": channel,
        "event_ts": event["ts"],
    });
    if let Some(thread_ts) = event.get("thread_ts") {
        mention["thread_ts"] = thread_ts.clone();
    }
    Some(mention)
}

/// How long to wait for an ack before redelivering.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(3);
