//! Socket Mode: the gateway opens a WebSocket to Slack (URL from `apps.connections.open` with the
//! app-level token) and Slack pushes envelopes over it.
//!
//! Why not slack-morphism's listener: its callbacks receive typed events, and those types drop
//! fields alert parsers need (an attachment's `title_link`, `footer`, `pretext`). Here every
//! envelope's payload stays Slack's JSON. The Web API call is still slack-morphism's.
//!
//! Each envelope is handled on its own task, so one slow publish never holds up the socket; the
//! ack is sent only after JetStream stored the event ([`crate::intake`]). When the socket drops
//! or Slack asks for a reconnect (`disconnect`), the gateway reconnects at once; envelopes whose
//! ack was lost with the old socket are delivered again by Slack and stored once (their
//! `Nats-Msg-Id` is the event id). On shutdown it stops reading, finishes and acks what it has,
//! then closes.

use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use proto::{mrkdwn::Mrkdwn, slack::SlackTransport};
use runtime::Stage;
use serde_json::{Value, json};
use slack::{Secret, WebClient};
use slack_morphism::prelude::SlackApiAppsConnectionOpenRequest;
use tokio::{sync::mpsc, task::JoinSet};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use crate::intake::{Intake, Kind, Outcome};

/// How often the gateway pings Slack, and how long it waits for any frame before it gives up on
/// the socket and reconnects.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// How long a failed connection waits before the next: 1 s, doubling, at most 30 s.
const RECONNECT_BACKOFF: runtime::Backoff =
    runtime::Backoff::new(Duration::from_secs(1), Duration::from_secs(30));

/// One frame from Slack.
#[derive(Debug, PartialEq)]
enum Frame {
    Hello,
    Disconnect(String),
    Envelope {
        envelope_id: String,
        kind: Option<Kind>,
        type_name: String,
        accepts_response_payload: bool,
        payload: Value,
    },
    Other(String),
}

fn parse_frame(text: &str) -> Frame {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return Frame::Other("not JSON".to_owned());
    };
    let type_name = frame["type"].as_str().unwrap_or_default().to_owned();
    if let Some(envelope_id) = frame["envelope_id"].as_str() {
        let kind = match type_name.as_str() {
            "events_api" => Some(Kind::Event),
            "slash_commands" => Some(Kind::Command),
            "interactive" => Some(Kind::Interaction),
            _ => None,
        };
        return Frame::Envelope {
            envelope_id: envelope_id.to_owned(),
            kind,
            type_name,
            accepts_response_payload: frame["accepts_response_payload"].as_bool().unwrap_or(false),
            payload: frame["payload"].clone(),
        };
    }
    match type_name.as_str() {
        "hello" => Frame::Hello,
        "disconnect" => Frame::Disconnect(
            frame["reason"]
                .as_str()
                .unwrap_or("no reason given")
                .to_owned(),
        ),
        other => Frame::Other(other.to_owned()),
    }
}

/// The immediate, ephemeral answer to a slash command (Slack shows it to the person only).
pub(crate) fn command_answer(payload: &Value, outcome: &Outcome) -> Value {
    let asked = format!(
        "{} {}",
        payload["command"].as_str().unwrap_or("the command"),
        payload["text"].as_str().unwrap_or_default()
    );
    // What the person typed comes back escaped: a `<!channel>` in it stays text.
    let text = match outcome {
        Outcome::Published { .. } | Outcome::Ignored => {
            proto::mrkdwn!("Working on {}…", Mrkdwn::code(asked.trim()))
        }
        Outcome::Malformed(err) => {
            proto::mrkdwn!(
                "Sorry, flamethread could not read that command: {}",
                err.to_string()
            )
        }
        Outcome::Unavailable(_) => proto::mrkdwn!(
            "flamethread cannot take requests right now (its message bus is unavailable); please try again in a minute."
        ),
    };
    json!({"response_type": "ephemeral", "text": text.as_str()})
}

enum End {
    Shutdown,
    Reconnect(String),
}

/// Why a socket could not be opened or kept; the gateway backs off and opens another.
#[derive(Debug, thiserror::Error)]
enum SocketError {
    #[error("apps.connections.open: {0}")]
    Open(#[source] slack_morphism::errors::SlackClientError),
    #[error("cannot open the socket: {0}")]
    Connect(#[source] tokio_tungstenite::tungstenite::Error),
    #[error("cannot {doing} on the socket: {source}")]
    Send {
        doing: &'static str,
        #[source]
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("socket error: {0}")]
    Read(#[source] tokio_tungstenite::tungstenite::Error),
    #[error("nothing from Slack for {0:?}")]
    Silent(Duration),
}

#[derive(Debug)]
pub(crate) struct SocketMode {
    pub(crate) client: WebClient,
    pub(crate) app_token: Secret,
    pub(crate) intake: Intake,
    /// The socket's state, for `/readyz`.
    pub(crate) status: Stage,
}

impl SocketMode {
    /// Keeps a socket open until `shutdown`.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        loop {
            match self.connect_and_serve(&shutdown).await {
                Ok(End::Shutdown) => return,
                Ok(End::Reconnect(reason)) => {
                    failures = 0;
                    tracing::info!(%reason, "reconnecting to Slack");
                    self.status
                        .waiting(format!("reconnecting to Slack: {reason}"));
                    metrics::counter!("ft_gateway_socket_reconnects_total").increment(1);
                    continue;
                }
                Err(err) => {
                    failures += 1;
                    tracing::warn!(error = %err, failures, "Slack Socket Mode connection failed");
                    self.status.waiting(format!("Socket Mode: {err}"));
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RECONNECT_BACKOFF.after(failures)) => {}
            }
        }
    }

    async fn connect_and_serve(&self, shutdown: &CancellationToken) -> Result<End, SocketError> {
        let opened = self
            .client
            .open_session(&slack::api_token(&self.app_token))
            .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
            .await
            .map_err(SocketError::Open)?;
        let (socket, _) = tokio_tungstenite::connect_async(opened.url.0.as_str())
            .await
            .map_err(SocketError::Connect)?;
        let (mut sink, mut stream) = socket.split();
        let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<String>();
        let mut in_flight = JoinSet::new();
        let mut ping = tokio::time::interval(PING_EVERY);
        let mut last_frame = Instant::now();

        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    // Finish what was received and acknowledge it before closing.
                    while in_flight.join_next().await.is_some() {}
                    while let Ok(ack) = ack_rx.try_recv() {
                        let _ = sink.send(WsMessage::Text(ack.into())).await;
                    }
                    let _ = sink.close().await;
                    self.status.waiting("shutting down");
                    return Ok(End::Shutdown);
                }
                Some(ack) = ack_rx.recv() => {
                    sink.send(WsMessage::Text(ack.into()))
                        .await
                        .map_err(|source| SocketError::Send { doing: "acknowledge", source })?;
                }
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = ping.tick() => {
                    if last_frame.elapsed() > SILENCE_LIMIT {
                        return Err(SocketError::Silent(SILENCE_LIMIT));
                    }
                    sink.send(WsMessage::Ping(Default::default()))
                        .await
                        .map_err(|source| SocketError::Send { doing: "ping", source })?;
                }
                frame = stream.next() => {
                    last_frame = Instant::now();
                    let text = match frame {
                        None => return Ok(End::Reconnect("the socket closed".to_owned())),
                        Some(Err(err)) => return Err(SocketError::Read(err)),
                        Some(Ok(WsMessage::Close(_))) => return Ok(End::Reconnect("Slack closed the socket".to_owned())),
                        Some(Ok(WsMessage::Text(text))) => text,
                        Some(Ok(_)) => continue,
                    };
                    match parse_frame(&text) {
                        Frame::Hello => {
                            tracing::info!("connected to Slack in Socket Mode");
                            self.status.ready();
                        }
                        Frame::Disconnect(reason) => return Ok(End::Reconnect(format!("Slack asked: {reason}"))),
                        Frame::Envelope { envelope_id, kind, type_name, accepts_response_payload, payload } => {
                            let intake = self.intake.clone();
                            let ack_tx = ack_tx.clone();
                            in_flight.spawn(async move {
                                if let Some(ack) = handle_envelope(&intake, envelope_id, kind, &type_name, accepts_response_payload, payload).await {
                                    let _ = ack_tx.send(ack.to_string());
                                }
                            });
                        }
                        Frame::Other(what) => tracing::debug!(%what, "unhandled Socket Mode frame"),
                    }
                }
            }
        }
    }
}

/// Handles one envelope; returns the ack to send, or `None` to leave it unacknowledged.
async fn handle_envelope(
    intake: &Intake,
    envelope_id: String,
    kind: Option<Kind>,
    type_name: &str,
    accepts_response_payload: bool,
    payload: Value,
) -> Option<Value> {
    let Some(kind) = kind else {
        tracing::debug!(%type_name, "acknowledging an envelope type flamethread does not use");
        return Some(json!({"envelope_id": envelope_id}));
    };
    let outcome = intake
        .handle(kind, &payload, SlackTransport::SocketMode)
        .await;
    if kind == Kind::Command {
        // Slack does not redeliver slash commands: the person gets an answer either way.
        let mut ack = json!({"envelope_id": envelope_id});
        if accepts_response_payload {
            ack["payload"] = command_answer(&payload, &outcome);
        }
        return Some(ack);
    }
    outcome
        .may_acknowledge()
        .then(|| json!({"envelope_id": envelope_id}))
}

#[cfg(test)]
mod tests;
