//! Incoming webhooks: `POST /services/<team>/<bot>/<secret>`, how Alertmanager, Grafana and most
//! other tools post into Slack. Each webhook is bound to a channel and posts as its integration's
//! bot. Like Slack, the body is JSON (or a form field `payload` holding JSON), a success is the
//! text `ok`, and failures are short texts: `invalid_payload`, `no_text`, `no_service`.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::Value;

use crate::{
    SharedState,
    web_api::now_micros,
    workspace::{Author, Content},
};

/// An incoming webhook: the URL path after `/services/`, and where it posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `T…/B…/secret`.
    pub path: String,
    pub channel: String,
    pub bot_id: String,
    /// The name shown when the post does not set `username`.
    pub default_username: String,
}

impl WebhookConfig {
    pub fn new(path: &str, channel: &str, bot_id: &str, default_username: &str) -> WebhookConfig {
        WebhookConfig {
            path: path.to_owned(),
            channel: channel.to_owned(),
            bot_id: bot_id.to_owned(),
            default_username: default_username.to_owned(),
        }
    }
}

pub(crate) async fn post(
    State(state): State<SharedState>,
    Path((team, bot, secret)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("{team}/{bot}/{secret}");
    let Some(webhook) = state
        .config
        .webhooks
        .iter()
        .find(|webhook| webhook.path == path)
        .cloned()
    else {
        return (StatusCode::NOT_FOUND, "no_service").into_response();
    };
    let Some(payload) = parse(&headers, &body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    let text = |name: &str| payload.get(name).and_then(Value::as_str).map(str::to_owned);
    let structured = |name: &str| payload.get(name).filter(|value| !value.is_null()).cloned();
    let author = Author::Integration {
        bot_id: webhook.bot_id.clone(),
        username: text("username").or(Some(webhook.default_username.clone())),
    };
    let content = Content {
        text: text("text").unwrap_or_default(),
        blocks: structured("blocks"),
        attachments: structured("attachments"),
        files: Vec::new(),
    };
    let posted = {
        let mut workspace = state.workspace.lock().unwrap_or_else(|e| e.into_inner());
        workspace.post(
            &webhook.channel,
            author,
            content,
            text("thread_ts").as_deref(),
            now_micros(),
        )
    };
    match posted {
        Ok(message) => {
            crate::socket_mode::deliver_event(
                &state,
                crate::socket_mode::message_event(&webhook.channel, &message),
            );
            ([(header::CONTENT_TYPE, "text/html")], "ok").into_response()
        }
        Err(err) if err.code == "no_text" => (StatusCode::BAD_REQUEST, "no_text").into_response(),
        Err(err) => (StatusCode::BAD_REQUEST, err.code).into_response(),
    }
}

fn parse(headers: &HeaderMap, body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json: Value = if content_type.starts_with("application/x-www-form-urlencoded") {
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
        let (_, payload) = fields.into_iter().find(|(name, _)| name == "payload")?;
        serde_json::from_str(&payload).ok()?
    } else {
        serde_json::from_slice(body).ok()?
    };
    match json {
        Value::Object(object) => Some(object),
        _ => None,
    }
}
