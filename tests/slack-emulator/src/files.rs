//! File bytes over HTTP: the upload URL of the v2 upload flow, private downloads, and the control
//! API's "a person shares a file".
//!
//! Downloads behave like Slack's: with the bot token as a bearer the file comes back with its
//! MIME type; without it, or with a wrong one, the answer is *still 200* but an HTML sign-in page.
//! A client that does not check the content type stores a login page as the user's script.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use crate::{SharedState, web_api::now_micros, workspace::Author};

const SIGN_IN_PAGE: &str = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to flamethread</body></html>";

/// `POST /upload/<file id>`: the bytes of a v2 upload. Slack answers `OK - <length>`.
pub(crate) async fn upload(
    State(state): State<SharedState>,
    Path(file_id): Path<String>,
    body: Bytes,
) -> Response {
    let received = state
        .workspace
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .receive_upload(&file_id, body.to_vec());
    match received {
        Ok(length) => (StatusCode::OK, format!("OK - {length}")).into_response(),
        Err(err) => (StatusCode::BAD_REQUEST, err.code).into_response(),
    }
}

/// `GET /files-pri/<team>-<file id>/[download/]<name>`.
pub(crate) async fn download(
    State(state): State<SharedState>,
    Path(path): Path<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|token| token == state.config.bot_token);
    if !authorized {
        return (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            SIGN_IN_PAGE,
        )
            .into_response();
    }
    let team_and_file = path
        .iter()
        .find(|(name, _)| name == "team_file")
        .map(|(_, value)| value.as_str());
    let file_id = team_and_file
        .and_then(|value| value.rsplit_once('-'))
        .map(|(_, id)| id)
        .unwrap_or_default();
    let workspace = state.workspace.lock().unwrap_or_else(|e| e.into_inner());
    match workspace.file(file_id) {
        Ok(file) => (
            [(header::CONTENT_TYPE, file.mimetype.clone())],
            file.content.clone(),
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "file_not_found").into_response(),
    }
}

/// A person shares a file in a channel.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlShare {
    channel: String,
    user: String,
    name: String,
    /// The file's content as text.
    content: String,
    #[serde(default)]
    mimetype: Option<String>,
    #[serde(default)]
    text: String,
}

/// Shares the file as Slack does: a `file_share` message in the channel, then a `file_shared`
/// event.
pub(crate) async fn share(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Json(request): Json<ControlShare>,
) -> Response {
    let base = format!("http://{}", crate::web_api::host(&headers));
    let posted = {
        let mut workspace = state.workspace.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(err) = workspace
            .channel(&request.channel)
            .and_then(|_| workspace.user(&request.user))
        {
            return (StatusCode::BAD_REQUEST, Json(err.to_json())).into_response();
        }
        let file = workspace.share_file(
            &request.name,
            request.mimetype.as_deref(),
            &request.user,
            request.content.into_bytes(),
            now_micros(),
        );
        let content = crate::workspace::Content {
            text: request.text,
            files: vec![file.to_json(&base, &workspace.team_id)],
            ..Default::default()
        };
        let author = Author::User {
            user_id: request.user.clone(),
        };
        let posted = workspace.post(&request.channel, author, content, None, now_micros());
        if let Ok(message) = &posted {
            workspace.record_share(&file.id, &request.channel, &message.ts);
        }
        posted.map(|message| (file, message))
    };
    match posted {
        Ok((file, message)) => {
            crate::socket_mode::deliver_event(
                &state,
                crate::socket_mode::message_event(&request.channel, &message),
            );
            let event = json!({
                "type": "file_shared",
                "channel_id": request.channel,
                "file_id": file.id,
                "user_id": request.user,
                "file": {"id": file.id},
                "event_ts": message.ts,
            });
            crate::socket_mode::deliver_event(&state, event);
            Json(json!({"ok": true, "file_id": file.id, "ts": message.ts})).into_response()
        }
        Err(err) => (StatusCode::BAD_REQUEST, Json(err.to_json())).into_response(),
    }
}

/// `GET /control/files/<id>`: an image file's bytes for the emulator's own page, which holds no
/// token (Slack's client shows images it is signed in for). Only PNG, JPEG and GIF are served,
/// with `nosniff`, so an uploaded HTML file never renders as a page from this origin.
pub(crate) async fn image(
    State(state): State<SharedState>,
    Path(file_id): Path<String>,
) -> Response {
    let workspace = state.workspace.lock().unwrap_or_else(|e| e.into_inner());
    match workspace.file(&file_id) {
        Ok(file)
            if matches!(
                file.mimetype.as_str(),
                "image/png" | "image/jpeg" | "image/gif"
            ) =>
        {
            (
                [
                    (header::CONTENT_TYPE, file.mimetype.clone()),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
                ],
                file.content.clone(),
            )
                .into_response()
        }
        _ => (StatusCode::NOT_FOUND, "file_not_found").into_response(),
    }
}
