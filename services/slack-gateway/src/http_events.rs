//! HTTP mode: Slack POSTs signed requests to the gateway.
//!
//! | path | body | answer |
//! |---|---|---|
//! | `/slack/events` | Events API JSON | `url_verification` challenge echoed; otherwise 200 once stored |
//! | `/slack/commands` | slash command form | 200 with an ephemeral "Working on …" |
//! | `/slack/interactions` | form with `payload` JSON | 200 once stored |
//!
//! Every request is verified first (`X-Slack-Signature`, HMAC-SHA256 with the signing secret, and
//! `X-Slack-Request-Timestamp` within 5 minutes either way, by slack-morphism's verifier): a bad
//! signature or a stale timestamp gets 401 and nothing is published. Bodies over the configured
//! limit get 413. Retries (`X-Slack-Retry-Num`) of an event already stored are stored once: the
//! `Nats-Msg-Id` is the `event_id`. An event JetStream cannot store in time gets 503, so Slack
//! sends it again; one Slack cannot parse its way out of gets 400 with `X-Slack-No-Retry: 1`.

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use proto::slack::SlackTransport;
use serde_json::{Value, json};
use slack_morphism::{
    prelude::SlackSigningSecret, signature_verifier::SlackEventSignatureVerifier,
};

use crate::{
    intake::{Intake, Kind, Outcome},
    socket_mode::command_answer,
};

#[derive(Clone)]
struct HttpState {
    intake: Intake,
    verifier: SlackEventSignatureVerifier,
}

/// The routes Slack's request URLs point at.
pub(crate) fn router(
    intake: Intake,
    signing_secret: &slack::Secret,
    max_body_bytes: usize,
) -> Router {
    let verifier = SlackEventSignatureVerifier::new(&SlackSigningSecret::new(
        signing_secret.expose().to_owned(),
    ));
    Router::new()
        .route("/slack/events", post(events))
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interactions))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(HttpState { intake, verifier })
}

/// A request refused before it reached the intake: bad signature, stale, not JSON…
struct Refusal {
    status: StatusCode,
    why: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        metrics::counter!("ft_gateway_http_refused_total", "status" => self.status.as_u16().to_string())
            .increment(1);
        tracing::warn!(status = self.status.as_u16(), why = %self.why, "refused a request");
        (self.status, [("x-slack-no-retry", "1")], self.why).into_response()
    }
}

fn refuse(status: StatusCode, why: impl Into<String>) -> Refusal {
    Refusal {
        status,
        why: why.into(),
    }
}

/// Checks the signature and timestamp; returns the body as text.
fn verify<'a>(state: &HttpState, headers: &HeaderMap, body: &'a Bytes) -> Result<&'a str, Refusal> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (Some(signature), Some(timestamp)) = (
        header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER),
        header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP),
    ) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "missing X-Slack-Signature or X-Slack-Request-Timestamp",
        ));
    };
    let text = std::str::from_utf8(body)
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "the body is not UTF-8"))?;
    state
        .verifier
        .verify(signature, text, timestamp)
        .map_err(|err| {
            refuse(
                StatusCode::UNAUTHORIZED,
                format!("signature check failed: {err}"),
            )
        })?;
    Ok(text)
}

async fn events(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let text = match verify(&state, &headers, &body) {
        Ok(text) => text,
        Err(refusal) => return refusal.into_response(),
    };
    let payload: Value = match serde_json::from_str(text) {
        Ok(payload) => payload,
        Err(err) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON: {err}"),
            )
            .into_response();
        }
    };
    if payload["type"] == "url_verification" {
        return Json(json!({"challenge": payload["challenge"]})).into_response();
    }
    if let Some(retry) = headers
        .get("x-slack-retry-num")
        .and_then(|v| v.to_str().ok())
    {
        let reason = headers
            .get("x-slack-retry-reason")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info!(
            retry,
            reason,
            event_id = payload["event_id"].as_str(),
            "Slack retried an event"
        );
    }
    match state
        .intake
        .handle(Kind::Event, &payload, SlackTransport::HttpEvents)
        .await
    {
        Outcome::Published { .. } | Outcome::Ignored => StatusCode::OK.into_response(),
        Outcome::Malformed(err) => refuse(StatusCode::BAD_REQUEST, err.to_string()).into_response(),
        // No X-Slack-No-Retry: Slack sending it again is what we want.
        Outcome::Unavailable(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not stored: {err}"),
        )
            .into_response(),
    }
}

/// A form body as a JSON object of strings.
fn form_fields(text: &str) -> Result<Value, Refusal> {
    serde_urlencoded::from_str::<BTreeMap<String, String>>(text)
        .map(|fields| json!(fields))
        .map_err(|err| {
            refuse(
                StatusCode::BAD_REQUEST,
                format!("the body is not a form: {err}"),
            )
        })
}

async fn commands(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = match verify(&state, &headers, &body).and_then(form_fields) {
        Ok(fields) => fields,
        Err(refusal) => return refusal.into_response(),
    };
    let outcome = state
        .intake
        .handle(Kind::Command, &fields, SlackTransport::HttpEvents)
        .await;
    // Slack never retries a slash command: the person is told what happened either way.
    Json(command_answer(&fields, &outcome)).into_response()
}

async fn interactions(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = match verify(&state, &headers, &body).and_then(form_fields) {
        Ok(fields) => fields,
        Err(refusal) => return refusal.into_response(),
    };
    let payload: Value = match fields["payload"].as_str().map(serde_json::from_str) {
        Some(Ok(payload)) => payload,
        Some(Err(err)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("payload is not JSON: {err}"),
            )
            .into_response();
        }
        None => {
            return refuse(StatusCode::BAD_REQUEST, "the form has no payload field")
                .into_response();
        }
    };
    match state
        .intake
        .handle(Kind::Interaction, &payload, SlackTransport::HttpEvents)
        .await
    {
        Outcome::Published { .. } | Outcome::Ignored => StatusCode::OK.into_response(),
        Outcome::Malformed(err) => refuse(StatusCode::BAD_REQUEST, err.to_string()).into_response(),
        Outcome::Unavailable(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not stored: {err}"),
        )
            .into_response(),
    }
}
