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
    web_api::{host, now_micros},
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
        files: Vec::new(),
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
            if let Some(mention) = crate::socket_mode::app_mention_event(
                &request.channel,
                &message,
                &state.config.bot_user_id,
            ) {
                crate::socket_mode::deliver_event(&state, mention);
            }
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
    let ephemeral: Vec<Value> = workspace
        .ephemerals
        .get(&channel.id)
        .into_iter()
        .flatten()
        .map(|ephemeral| {
            json!({
                "ts": ephemeral.ts,
                "user": ephemeral.user,
                "thread_ts": ephemeral.thread_ts,
                "text": ephemeral.content.text,
                "blocks": ephemeral.content.blocks,
                "attachments": ephemeral.content.attachments,
            })
        })
        .collect();
    Json(json!({"ok": true, "id": channel.id, "name": channel.name, "messages": messages, "ephemeral": ephemeral}))
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

/// A person runs a slash command.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlCommand {
    channel: String,
    user: String,
    command: String,
    #[serde(default)]
    text: String,
}

/// A fresh `trigger_id`, remembered so that `views.open` can check it.
fn trigger_id(state: &SharedState) -> String {
    let now = now_micros();
    let id = format!("{}.{}.emulator", now / 1_000_000, now % 1_000_000);
    state
        .workspace
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .issue_trigger(&id, now);
    id
}

pub(crate) async fn command(
    State(state): State<SharedState>,
    headers: axum::http::HeaderMap,
    Json(request): Json<ControlCommand>,
) -> Response {
    let channel_name = {
        let workspace = state.workspace.lock().unwrap_or_else(|e| e.into_inner());
        match workspace.channel(&request.channel) {
            Ok(channel) => channel.name.clone(),
            Err(err) => return (StatusCode::BAD_REQUEST, Json(err.to_json())).into_response(),
        }
    };
    let response_id = now_micros();
    // Slack sends a slash command's fields as strings.
    let payload = json!({
        "token": "emulator-verification-token",
        "team_id": "T0FLAME",
        "team_domain": "flamethread",
        "channel_id": request.channel,
        "channel_name": channel_name,
        "user_id": request.user,
        "user_name": request.user,
        "command": request.command,
        "text": request.text,
        "api_app_id": state.config.app_id,
        "is_enterprise_install": "false",
        "response_url": format!("http://{}/response/{response_id}", host(&headers)),
        "trigger_id": trigger_id(&state),
    });
    let trigger_id = payload["trigger_id"].clone();
    let envelope_id = crate::socket_mode::deliver_payload(&state, "slash_commands", payload);
    Json(json!({"ok": true, "envelope_id": envelope_id, "trigger_id": trigger_id})).into_response()
}

/// The app's direct messages with a person, opened as `conversations.open` would.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlIm {
    user: String,
}

pub(crate) async fn im(
    State(state): State<SharedState>,
    Json(request): Json<ControlIm>,
) -> Response {
    let opened = state
        .workspace
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .open_im(&request.user);
    match opened {
        Ok(channel) => Json(json!({"ok": true, "channel": {"id": channel}})).into_response(),
        Err(err) => (StatusCode::BAD_REQUEST, Json(err.to_json())).into_response(),
    }
}

/// A person opens the app's Home tab: Slack sends `app_home_opened` (with the view it shows,
/// once one was published) and the app is expected to `views.publish` it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlHome {
    user: String,
}

pub(crate) async fn open_home(
    State(state): State<SharedState>,
    Json(request): Json<ControlHome>,
) -> Response {
    let (channel, view) = {
        let mut workspace = state.workspace.lock().unwrap_or_else(|e| e.into_inner());
        let channel = match workspace.open_im(&request.user) {
            Ok(channel) => channel,
            Err(err) => return (StatusCode::BAD_REQUEST, Json(err.to_json())).into_response(),
        };
        (channel, workspace.homes.get(&request.user).cloned())
    };
    let mut event = json!({
        "type": "app_home_opened",
        "user": request.user,
        "channel": channel,
        "tab": "home",
        "event_ts": format!("{}.{:06}", now_micros() / 1_000_000, now_micros() % 1_000_000),
    });
    if let Some(view) = view {
        event["view"] = view;
    }
    crate::socket_mode::deliver_event(&state, event);
    Json(json!({"ok": true})).into_response()
}

/// A person's App Home as last published (`null` before the first `views.publish`).
pub(crate) async fn home(
    State(state): State<SharedState>,
    Path(user): Path<String>,
) -> Json<Value> {
    let workspace = state.workspace.lock().unwrap_or_else(|e| e.into_inner());
    Json(json!({"ok": true, "view": workspace.homes.get(&user)}))
}

/// A person clicks a button of their App Home (a section's accessory or in an actions block),
/// picked by its `action_id` and `value`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlHomeClick {
    user: String,
    action_id: String,
    #[serde(default)]
    value: Option<String>,
}

/// Sends the `block_actions` payload of a click in a view: its `container` is the view, and
/// there is no channel, message or `response_url`, as in Slack.
pub(crate) async fn home_click(
    State(state): State<SharedState>,
    Json(request): Json<ControlHomeClick>,
) -> Response {
    let Some(view) = state
        .workspace
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .homes
        .get(&request.user)
        .cloned()
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"ok": false, "error": "no_home_published"})),
        )
            .into_response();
    };
    let clicked = view["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|block| {
            let accessory = block.get("accessory").into_iter();
            let elements = block["elements"].as_array().into_iter().flatten();
            accessory
                .chain(elements)
                .map(move |element| (block["block_id"].clone(), element))
        })
        .find(|(_, element)| {
            element["type"] == "button"
                && element["action_id"] == request.action_id.as_str()
                && element["value"].as_str() == request.value.as_deref()
        });
    let Some((block_id, button)) = clicked else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"ok": false, "error": "no_such_button_in_the_home"})),
        )
            .into_response();
    };
    let payload = json!({
        "type": "block_actions",
        "user": {"id": request.user, "username": request.user, "name": request.user, "team_id": "T0FLAME"},
        "api_app_id": state.config.app_id,
        "token": "emulator-verification-token",
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": trigger_id(&state),
        "team": {"id": "T0FLAME", "domain": "flamethread"},
        "is_enterprise_install": false,
        "view": view,
        "actions": [{"type": "button", "action_id": request.action_id, "block_id": block_id,
            "text": button["text"], "value": request.value,
            "action_ts": format!("{}.{:06}", now_micros() / 1_000_000, now_micros() % 1_000_000)}],
    });
    let trigger_id = payload["trigger_id"].clone();
    let envelope_id = crate::socket_mode::deliver_payload(&state, "interactive", payload);
    Json(json!({"ok": true, "envelope_id": envelope_id, "trigger_id": trigger_id})).into_response()
}

/// A person uses a message shortcut ("Diagnose this message") on a message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlShortcut {
    channel: String,
    user: String,
    message_ts: String,
    callback_id: String,
}

/// Sends the `message_action` payload Slack sends for a message shortcut: the message as the
/// channel shows it, the person, a `trigger_id` and a `response_url`.
pub(crate) async fn shortcut(
    State(state): State<SharedState>,
    headers: axum::http::HeaderMap,
    Json(request): Json<ControlShortcut>,
) -> Response {
    let (channel_name, message) = match shown(&state, &request.channel, &request.message_ts) {
        Ok(shown) => shown,
        Err(error) => return (StatusCode::BAD_REQUEST, Json(error)).into_response(),
    };
    if request.callback_id.is_empty() || request.callback_id.len() > 255 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"ok": false, "error": "invalid_callback_id"})),
        )
            .into_response();
    }
    let payload = json!({
        "type": "message_action",
        "token": "emulator-verification-token",
        "action_ts": format!("{}.{:06}", now_micros() / 1_000_000, now_micros() % 1_000_000),
        "team": {"id": "T0FLAME", "domain": "flamethread"},
        "user": {"id": request.user, "name": request.user, "team_id": "T0FLAME"},
        "channel": {"id": request.channel, "name": channel_name},
        "is_enterprise_install": false,
        "callback_id": request.callback_id,
        "trigger_id": trigger_id(&state),
        "message_ts": request.message_ts,
        "message": message,
        "response_url": format!("http://{}/response/{}", host(&headers), now_micros()),
    });
    let trigger_id = payload["trigger_id"].clone();
    let envelope_id = crate::socket_mode::deliver_payload(&state, "interactive", payload);
    Json(json!({"ok": true, "envelope_id": envelope_id, "trigger_id": trigger_id})).into_response()
}

/// The channel's name and the message `ts` in it as the channel shows it (with its reply count),
/// or the error Slack would give.
fn shown(state: &SharedState, channel: &str, ts: &str) -> Result<(String, Value), Value> {
    let workspace = state.workspace.lock().unwrap_or_else(|e| e.into_inner());
    let channel = workspace.channel(channel).map_err(|err| err.to_json())?;
    let message = channel
        .messages
        .iter()
        .find(|message| message.ts == ts)
        .ok_or_else(|| json!({"ok": false, "error": "message_not_found"}))?;
    Ok((
        channel.name.clone(),
        message.to_json(channel.replies(&message.ts).count()),
    ))
}

/// A person clicks a button on a message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlClick {
    channel: String,
    user: String,
    message_ts: String,
    action_id: String,
    #[serde(default)]
    value: Option<String>,
}

pub(crate) async fn click(
    State(state): State<SharedState>,
    headers: axum::http::HeaderMap,
    Json(request): Json<ControlClick>,
) -> Response {
    let (channel_name, message) = match shown(&state, &request.channel, &request.message_ts) {
        Ok(shown) => shown,
        Err(error) => return (StatusCode::BAD_REQUEST, Json(error)).into_response(),
    };
    // A select sends the option picked (`selected_option`), a button its `value`, as Slack does;
    // a select can only send one of its own options.
    let action_ts = format!(
        "{}.{:06}",
        now_micros() / 1_000_000,
        now_micros() % 1_000_000
    );
    let element = message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|block| block["elements"].as_array().into_iter().flatten())
        .find(|element| element["action_id"] == request.action_id.as_str());
    let action = match element {
        Some(select) if select["type"] == "static_select" => {
            let picked = select["options"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|option| option["value"].as_str() == request.value.as_deref());
            let Some(picked) = picked else {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"ok": false, "error": "not_an_option_of_the_select"})),
                )
                    .into_response();
            };
            json!({"type": "static_select", "action_id": request.action_id, "block_id": "emulator",
                "selected_option": picked, "action_ts": action_ts})
        }
        _ => json!({"type": "button", "action_id": request.action_id, "block_id": "emulator",
            "value": request.value, "action_ts": action_ts}),
    };
    let payload = json!({
        "type": "block_actions",
        "user": {"id": request.user, "username": request.user, "name": request.user, "team_id": "T0FLAME"},
        "api_app_id": state.config.app_id,
        "token": "emulator-verification-token",
        "container": {
            "type": "message",
            "message_ts": request.message_ts,
            "channel_id": request.channel,
            "is_ephemeral": false
        },
        "trigger_id": trigger_id(&state),
        "team": {"id": "T0FLAME", "domain": "flamethread"},
        "channel": {"id": request.channel, "name": channel_name},
        "message": message,
        "response_url": format!("http://{}/response/{}", host(&headers), now_micros()),
        "actions": [action],
    });
    let trigger_id = payload["trigger_id"].clone();
    let envelope_id = crate::socket_mode::deliver_payload(&state, "interactive", payload);
    Json(json!({"ok": true, "envelope_id": envelope_id, "trigger_id": trigger_id})).into_response()
}

/// `POST /response/<id>`: what an app posts to a `response_url`; kept for tests to read.
pub(crate) async fn response_url(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Json<Value> {
    state.socket.record_response(&id, body);
    Json(json!({"ok": true}))
}

pub(crate) async fn responses(State(state): State<SharedState>) -> Json<Value> {
    Json(json!({"ok": true, "responses": state.socket.responses()}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestUrl {
    /// The Events API request URL.
    url: String,
    /// Where slash commands are POSTed (signed forms) instead of Socket Mode.
    #[serde(default)]
    commands_url: Option<String>,
    /// Where interactions are POSTed (signed forms with a `payload`) instead of Socket Mode.
    #[serde(default)]
    interactivity_url: Option<String>,
}

/// Sets the app's Events API request URL after Slack's `url_verification`; from then on events
/// go there instead of over Socket Mode.
pub(crate) async fn set_request_url(
    State(state): State<SharedState>,
    Json(request): Json<RequestUrl>,
) -> Response {
    let urls = crate::events_api::RequestUrls {
        commands: request.commands_url,
        interactivity: request.interactivity_url,
    };
    match crate::events_api::set_request_url(&state, &request.url, urls).await {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(detail) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"ok": false, "error": "url_verification_failed", "detail": detail})),
        )
            .into_response(),
    }
}

/// A fault to inject: the next `times` calls of `method` take effect, then answer `delay_ms` late.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlFault {
    method: String,
    delay_ms: u64,
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

pub(crate) async fn fault(
    State(state): State<SharedState>,
    Json(request): Json<ControlFault>,
) -> Json<Value> {
    state.add_fault(
        request.method,
        std::time::Duration::from_millis(request.delay_ms),
        request.times,
    );
    Json(json!({"ok": true}))
}

/// The modals apps opened with `views.open`.
pub(crate) async fn views(State(state): State<SharedState>) -> Json<Value> {
    let workspace = state.workspace.lock().unwrap_or_else(|e| e.into_inner());
    Json(json!({"ok": true, "views": workspace.views}))
}

/// Counters tests assert on: how many 429s the emulator answered.
pub(crate) async fn stats(State(state): State<SharedState>) -> Json<Value> {
    Json(json!({
        "ok": true,
        "rate_limited": state.rate_limited.load(std::sync::atomic::Ordering::Relaxed),
    }))
}
