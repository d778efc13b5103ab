//! The control API tests drive the emulator with: post as a person or as another integration
//! (Alertmanager, Grafana…) without our app's token and rate limit, and read a channel with its
//! threads as a person would see it.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    SharedState,
    web_api::now_micros,
    workspace::{Author, Content},
};

/// A post by someone other than our app.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlPost {
    channel: String,
    /// Post as this person…
    #[serde(default)]
    user: Option<String>,
    /// …or as this integration's bot, with its display name.
    #[serde(default)]
    bot_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    blocks: Option<Value>,
    #[serde(default)]
    attachments: Option<Value>,
    #[serde(default)]
    thread_ts: Option<String>,
}

pub(crate) async fn post(
    State(state): State<SharedState>,
    Json(request): Json<ControlPost>,
) -> Response {
    let author = match (request.user, request.bot_id) {
        (Some(user_id), None) => Author::User { user_id },
        (None, Some(bot_id)) => Author::Integration {
            bot_id,
            username: request.username,
        },
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"ok": false, "error": "give exactly one of user and bot_id"})),
            )
                .into_response();
        }
    };
    let content = Content {
        text: request.text,
        blocks: request.blocks,
        attachments: request.attachments,
    };
    let posted = {
        let mut workspace = state.workspace.lock().unwrap_or_else(|e| e.into_inner());
        workspace.post(
            &request.channel,
            author,
            content,
            request.thread_ts.as_deref(),
            now_micros(),
        )
    };
    match posted {
        Ok(message) => {
            crate::socket_mode::deliver_event(
                &state,
                crate::socket_mode::message_event(&request.channel, &message),
            );
            Json(json!({"ok": true, "channel": request.channel, "ts": message.ts})).into_response()
        }
        Err(err) => (StatusCode::BAD_REQUEST, Json(err.to_json())).into_response(),
    }
}

pub(crate) async fn channels(State(state): State<SharedState>) -> Json<Value> {
    let workspace = state.workspace.lock().unwrap_or_else(|e| e.into_inner());
    let channels: Vec<Value> = workspace
        .channels
        .values()
        .map(|channel| json!({"id": channel.id, "name": channel.name}))
        .collect();
    Json(json!({"ok": true, "channels": channels}))
}

/// The channel oldest first, each top-level message with its `replies`.
pub(crate) async fn channel(
    State(state): State<SharedState>,
    Path(channel_id): Path<String>,
) -> Response {
    let workspace = state.workspace.lock().unwrap_or_else(|e| e.into_inner());
    let Ok(channel) = workspace.channel(&channel_id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"ok": false, "error": "channel_not_found"})),
        )
            .into_response();
    };
    let messages: Vec<Value> = channel
        .messages
        .iter()
        .filter(|message| message.thread_ts.is_none())
        .map(|message| {
            let replies: Vec<Value> = channel
                .replies(&message.ts)
                .map(|reply| reply.to_json(0))
                .collect();
            let mut json = message.to_json(replies.len());
            json["replies"] = Value::Array(replies);
            json
        })
        .collect();
    Json(json!({"ok": true, "id": channel.id, "name": channel.name, "messages": messages}))
        .into_response()
}

/// Sends `disconnect` to every Socket Mode connection, as Slack does before it rotates them.
pub(crate) async fn disconnect(State(state): State<SharedState>) -> Json<Value> {
    let connections = state.socket.disconnect_all("refresh_requested");
    Json(json!({"ok": true, "disconnected": connections}))
}

/// Every Socket Mode envelope so far, with its attempts and whether it was acknowledged.
pub(crate) async fn deliveries(State(state): State<SharedState>) -> Json<Value> {
    Json(json!({
        "ok": true,
        "connections": state.socket.connection_count(),
        "connections_opened": state.socket.connections_opened(),
        "deliveries": state.socket.records(),
    }))
}
