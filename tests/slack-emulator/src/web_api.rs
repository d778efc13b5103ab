//! Slack's Web API over HTTP: `POST|GET /api/<method>` with parameters as JSON, as a form, or in
//! the query string (all three are what Slack accepts and what clients send), the token as
//! `Authorization: Bearer` or a `token` parameter, and Slack's answer shapes: HTTP 200 with
//! `{"ok": false, "error": …}` for API errors, HTTP 429 with `Retry-After` for rate limits.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::{
    Json,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use governor::clock::Clock as _;
use serde_json::{Map, Value, json};

use crate::{
    SharedState,
    workspace::{Author, Content, SlackError},
};

/// The request's parameters, wherever they came from.
type Params = Map<String, Value>;

pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

pub(crate) async fn handle(
    State(state): State<SharedState>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match parse_params(query.as_deref(), &headers, &body) {
        Ok(params) => params,
        Err(err) => return slack_error(err),
    };
    let token = bearer(&headers).or_else(|| {
        params
            .get("token")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let config = &state.config;
    let kind = match token.as_deref() {
        None => return slack_error(SlackError::new("not_authed")),
        Some(token) if token == config.bot_token => TokenKind::Bot,
        Some(token) if token == config.app_token => TokenKind::App,
        Some(_) => return slack_error(SlackError::new("invalid_auth")),
    };
    let wants_app_token = method == "apps.connections.open";
    if wants_app_token != (kind == TokenKind::App) {
        return slack_error(SlackError::new("not_allowed_token_type"));
    }

    // Slack's special limit for posting: about one message per second per channel.
    if method == "chat.postMessage"
        && let Some(channel) = params.get("channel").and_then(Value::as_str)
        && let Err(not_until) = state.post_limiter.check_key(&channel.to_owned())
    {
        let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
        let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        state
            .rate_limited
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return rate_limited(retry_after.max(1));
    }

    if method == "apps.connections.open" {
        // The socket is on this server: answer with the host the client reached us at.
        let url = format!("ws://{}/socket-mode", host(&headers));
        return Json(json!({"ok": true, "url": url})).into_response();
    }

    let answer = match dispatch(&state, &method, &params, &host(&headers)) {
        Ok(value) => Json(value).into_response(),
        Err(err) => slack_error(err),
    };
    // A slow Slack: the call took effect, the answer is late (what a client killed while
    // waiting for it sees).
    if let Some(delay) = state.take_fault(&method) {
        tokio::time::sleep(delay).await;
    }
    answer
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    Bot,
    App,
}

fn dispatch(
    state: &SharedState,
    method: &str,
    params: &Params,
    host: &str,
) -> Result<Value, SlackError> {
    let config = &state.config;
    let mut workspace = state.workspace.lock().unwrap_or_else(|e| e.into_inner());
    match method {
        "auth.test" => Ok(json!({
            "ok": true,
            // Where the workspace is: here, the emulator's page (`/archives/…` links lead to it).
            "url": format!("http://{host}/"),
            "team": workspace.team_name,
            "user": "flamethread",
            "team_id": workspace.team_id,
            "user_id": config.bot_user_id,
            "bot_id": config.bot_id,
            "is_enterprise_install": false,
        })),
        "chat.postMessage" => {
            let channel = required(params, "channel")?;
            // A person's id is their DM with the app, opened on first use.
            let channel = if channel.starts_with('U') {
                workspace.open_im(&channel)?
            } else {
                channel
            };
            let thread_ts = optional(params, "thread_ts");
            let message = workspace.post(
                &channel,
                state.app_author(),
                content(params),
                thread_ts.as_deref(),
                now_micros(),
            )?;
            // Slack tells the app about its own posts too; the app must ignore them.
            crate::socket_mode::deliver_event(
                state,
                crate::socket_mode::message_event(&channel, &message),
            );
            Ok(
                json!({"ok": true, "channel": channel, "ts": message.ts, "message": message.to_json(0)}),
            )
        }
        "chat.postEphemeral" => {
            let channel = required(params, "channel")?;
            let user = optional(params, "user").unwrap_or_default();
            let thread_ts = optional(params, "thread_ts");
            let ts = workspace.post_ephemeral(
                &channel,
                &user,
                content(params),
                thread_ts.as_deref(),
                now_micros(),
            )?;
            Ok(json!({"ok": true, "message_ts": ts}))
        }
        "files.getUploadURLExternal" => {
            let name = optional(params, "filename").unwrap_or_default();
            let length = number(params, "length").unwrap_or(0) as usize;
            let file_id = workspace.start_upload(&name, length, &config.bot_user_id)?;
            let upload_url = format!("http://{host}/upload/{file_id}");
            Ok(json!({"ok": true, "upload_url": upload_url, "file_id": file_id}))
        }
        "files.completeUploadExternal" => {
            // `files` is a JSON array, or (in form posts) a JSON string of one.
            let files = match params.get("files") {
                Some(Value::String(text)) => serde_json::from_str(text).ok(),
                Some(Value::Array(files)) => Some(Value::Array(files.clone())),
                _ => None,
            };
            let Some(Value::Array(requested)) = files else {
                return Err(SlackError::new("invalid_arguments"));
            };
            let base = format!("http://{host}");
            let mut completed = Vec::new();
            for entry in requested {
                let id = entry.get("id").and_then(Value::as_str).unwrap_or_default();
                let title = entry.get("title").and_then(Value::as_str);
                completed.push(
                    workspace
                        .complete_upload(id, title, now_micros())?
                        .to_json(&base, &workspace.team_id),
                );
            }
            if let Some(channel) = optional(params, "channel_id") {
                let shared: Vec<String> = completed
                    .iter()
                    .filter_map(|file| file["id"].as_str().map(str::to_owned))
                    .collect();
                let content = Content {
                    text: optional(params, "initial_comment").unwrap_or_default(),
                    files: completed.clone(),
                    ..Content::default()
                };
                let thread_ts = optional(params, "thread_ts");
                let message = workspace.post(
                    &channel,
                    state.app_author(),
                    content,
                    thread_ts.as_deref(),
                    now_micros(),
                )?;
                for id in &shared {
                    workspace.record_share(id, &channel, &message.ts);
                }
                crate::socket_mode::deliver_event(
                    state,
                    crate::socket_mode::message_event(&channel, &message),
                );
            }
            Ok(json!({"ok": true, "files": completed}))
        }
        "files.info" => {
            let file = workspace.file(&optional(params, "file").unwrap_or_default())?;
            Ok(
                json!({"ok": true, "file": file.to_json(&format!("http://{host}"), &workspace.team_id)}),
            )
        }
        "views.open" => {
            let trigger_id = required(params, "trigger_id")?;
            // `view` is a JSON object, or (in form posts) a JSON string of one.
            let view = match params.get("view") {
                Some(Value::String(text)) => serde_json::from_str(text).ok(),
                Some(view @ Value::Object(_)) => Some(view.clone()),
                _ => None,
            }
            .ok_or(SlackError::new("invalid_arguments"))?;
            let mut opened = workspace.open_view(&trigger_id, &view, now_micros())?;
            opened["app_id"] = json!(config.app_id);
            opened["bot_id"] = json!(config.bot_id);
            Ok(json!({"ok": true, "view": opened}))
        }
        "views.publish" => {
            let user = required(params, "user_id")?;
            let view = match params.get("view") {
                Some(Value::String(text)) => serde_json::from_str(text).ok(),
                Some(view @ Value::Object(_)) => Some(view.clone()),
                _ => None,
            }
            .ok_or(SlackError::new("invalid_arguments"))?;
            let mut published = workspace.publish_home(&user, &view)?;
            published["app_id"] = json!(config.app_id);
            published["bot_id"] = json!(config.bot_id);
            Ok(json!({"ok": true, "view": published}))
        }
        "users.info" => {
            let user = workspace.user(&optional(params, "user").unwrap_or_default())?;
            Ok(json!({"ok": true, "user": user.to_json(&workspace.team_id)}))
        }
        "chat.update" => {
            let channel = required(params, "channel")?;
            let ts = required(params, "ts")?;
            let message = workspace.update(
                &channel,
                &ts,
                &config.bot_user_id,
                content(params),
                now_micros(),
            )?;
            Ok(
                json!({"ok": true, "channel": channel, "ts": ts, "text": message.content.text, "message": message.to_json(0)}),
            )
        }
        "reactions.add" | "reactions.remove" => {
            let channel = required(params, "channel")?;
            let ts = required(params, "timestamp")?;
            let name = required(params, "name")?;
            if method == "reactions.add" {
                workspace.add_reaction(&channel, &ts, &name, &config.bot_user_id)?;
            } else {
                workspace.remove_reaction(&channel, &ts, &name, &config.bot_user_id)?;
            }
            Ok(json!({"ok": true}))
        }
        "conversations.history" => {
            let channel = required(params, "channel")?;
            let limit = number(params, "limit").unwrap_or(100).clamp(1, 999) as usize;
            let messages = workspace.history(&channel, limit)?;
            Ok(json!({"ok": true, "messages": messages, "has_more": false, "pin_count": 0}))
        }
        "conversations.replies" => {
            let channel = required(params, "channel")?;
            let ts = required(params, "ts")?;
            let limit = number(params, "limit").unwrap_or(1000).clamp(1, 1000) as usize;
            let messages = workspace.replies(&channel, &ts, limit)?;
            let has_more = workspace.replies_beyond(&channel, &ts, limit);
            Ok(json!({"ok": true, "messages": messages, "has_more": has_more}))
        }
        "conversations.info" => {
            let channel = workspace.channel(&required(params, "channel")?)?;
            Ok(
                json!({"ok": true, "channel": {"id": channel.id, "name": channel.name,
                    "is_channel": !channel.id.starts_with('D'), "is_im": channel.id.starts_with('D'),
                    "is_group": false, "is_mpim": false, "is_private": channel.id.starts_with('D'),
                    "is_member": true}}),
            )
        }
        _ => Err(SlackError::new("unknown_method")),
    }
}

/// The text, blocks and attachments of a post. In form posts, blocks and attachments arrive as
/// JSON strings.
fn content(params: &Params) -> Content {
    let structured = |name: &str| match params.get(name) {
        Some(Value::String(text)) => serde_json::from_str(text)
            .ok()
            .or(Some(Value::String(text.clone()))),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.clone()),
    };
    Content {
        text: optional(params, "text").unwrap_or_default(),
        blocks: structured("blocks"),
        attachments: structured("attachments"),
        files: Vec::new(),
    }
}

fn required(params: &Params, name: &str) -> Result<String, SlackError> {
    optional(params, name)
        .filter(|value| !value.is_empty())
        .ok_or(match name {
            "channel" => SlackError::new("channel_not_found"),
            "ts" | "timestamp" => SlackError::new("message_not_found"),
            _ => SlackError::new("invalid_arguments"),
        })
}

fn optional(params: &Params, name: &str) -> Option<String> {
    match params.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn number(params: &Params, name: &str) -> Option<u64> {
    match params.get(name)? {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

/// The `Host` the client reached the emulator at, for URLs that point back at it.
pub(crate) fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::to_owned)
}

fn parse_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Params, SlackError> {
    let mut params = Params::new();
    if let Some(query) = query {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query).map_err(|_| SlackError::new("invalid_arguments"))?;
        params.extend(pairs.into_iter().map(|(k, v)| (k, Value::String(v))));
    }
    if body.is_empty() {
        return Ok(params);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => params.extend(object),
            _ => return Err(SlackError::new("invalid_json")),
        }
    } else {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|_| SlackError::new("invalid_form_data"))?;
        params.extend(pairs.into_iter().map(|(k, v)| (k, Value::String(v))));
    }
    Ok(params)
}

fn slack_error(err: SlackError) -> Response {
    Json(err.to_json()).into_response()
}

fn rate_limited(retry_after_seconds: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, retry_after_seconds.to_string())],
        Json(json!({"ok": false, "error": "ratelimited"})),
    )
        .into_response()
}

impl crate::AppState {
    fn app_author(&self) -> Author {
        Author::App {
            user_id: self.config.bot_user_id.clone(),
            bot_id: self.config.bot_id.clone(),
            app_id: self.config.app_id.clone(),
        }
    }
}
