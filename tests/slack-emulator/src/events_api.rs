//! The Events API over HTTP: once an app set its request URL (and answered Slack's
//! `url_verification` challenge), every event is POSTed to it as JSON, signed the way Slack signs
//! (`X-Slack-Request-Timestamp`, `X-Slack-Signature: v0=HMAC-SHA256(secret, "v0:{ts}:{body}")`).
//! An answer that is not 2xx within 3 seconds is retried, with `X-Slack-Retry-Num` and
//! `X-Slack-Retry-Reason` (`http_timeout` or `http_error`), after the configured delays (Slack:
//! at once, after about a minute, after about five).

use std::sync::Mutex;

use bytes::Bytes;
use hmac::{KeyInit as _, Mac as _};
use http_body_util::{BodyExt as _, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde_json::{Value, json};

use crate::SharedState;

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// How long Slack waits for an app to answer a delivery.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Where slash commands and interactions go in HTTP mode (Slack: each command's Request URL,
/// and the app's Interactivity Request URL).
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestUrls {
    pub(crate) commands: Option<String>,
    pub(crate) interactivity: Option<String>,
}

pub(crate) struct EventsApi {
    request_url: Mutex<Option<String>>,
    urls: Mutex<RequestUrls>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for EventsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsApi")
            .field("request_url", &self.request_url())
            .finish()
    }
}

impl Default for EventsApi {
    fn default() -> Self {
        EventsApi {
            request_url: Mutex::new(None),
            urls: Mutex::new(RequestUrls::default()),
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }
}

impl EventsApi {
    /// Where a slash command (`slash_commands`) or an interaction (`interactive`) goes over
    /// HTTP, if the app set that URL.
    pub(crate) fn form_url(&self, kind: &str) -> Option<String> {
        let urls = self.urls.lock().unwrap_or_else(|e| e.into_inner());
        match kind {
            "slash_commands" => urls.commands.clone(),
            "interactive" => urls.interactivity.clone(),
            _ => None,
        }
    }

    pub(crate) fn request_url(&self) -> Option<String> {
        self.request_url
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret.
pub fn sign(signing_secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(signing_secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// One signed POST; `Ok(status, body)` when the app answered in time.
async fn post(
    state: &SharedState,
    url: &str,
    content_type: &str,
    body: &[u8],
    retry: Option<(u32, &str)>,
) -> Result<(u16, Bytes), &'static str> {
    let timestamp = crate::web_api::now_micros() / 1_000_000;
    let mut request = hyper::Request::post(url)
        .header("content-type", content_type)
        .header("x-slack-request-timestamp", timestamp.to_string())
        .header(
            "x-slack-signature",
            sign(&state.config.signing_secret, timestamp, body),
        );
    if let Some((number, reason)) = retry {
        request = request
            .header("x-slack-retry-num", number.to_string())
            .header("x-slack-retry-reason", reason);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|_| "http_error")?;
    let answer = async {
        let response = state
            .events_api
            .client
            .request(request)
            .await
            .map_err(|_| "http_error")?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|_| "http_error")?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(ANSWER_TIMEOUT, answer)
        .await
        .unwrap_or(Err("http_timeout"))
}

/// Sends Slack's `url_verification` challenge to `url`; on the right answer, events go there.
pub(crate) async fn set_request_url(
    state: &SharedState,
    url: &str,
    urls: RequestUrls,
) -> Result<(), String> {
    let challenge = format!("challenge-{}", crate::web_api::now_micros());
    let body = json!({"token": "emulator-verification-token", "challenge": challenge, "type": "url_verification"});
    let (status, answer) = post(state, url, JSON, body.to_string().as_bytes(), None).await?;
    let answered = String::from_utf8_lossy(&answer).to_string();
    let echoed = answered.trim() == challenge
        || serde_json::from_str::<Value>(&answered)
            .is_ok_and(|json| json["challenge"] == challenge.as_str());
    if !(200..300).contains(&status) || !echoed {
        return Err(format!("url_verification failed: {status} {answered}"));
    }
    *state
        .events_api
        .request_url
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(url.to_owned());
    *state
        .events_api
        .urls
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = urls;
    Ok(())
}

/// Delivers an event callback to the request URL, retrying as Slack does.
pub(crate) fn deliver(state: &SharedState, url: String, envelope_id: String, payload: Value) {
    let state = state.clone();
    tokio::spawn(async move {
        let body = payload.to_string();
        let mut retry = None;
        for attempt in 0..=state.config.socket_max_retries {
            state.socket.set_attempts(&envelope_id, attempt + 1);
            match post(&state, &url, JSON, body.as_bytes(), retry).await {
                Ok((status, _)) if (200..300).contains(&status) => {
                    state.socket.mark_acked(&envelope_id, None);
                    return;
                }
                Ok(_) => retry = Some((attempt + 1, "http_error")),
                Err(reason) => retry = Some((attempt + 1, reason)),
            }
            let delay = state
                .config
                .http_retry_delays
                .get(attempt as usize)
                .copied()
                .unwrap_or_default();
            tokio::time::sleep(delay).await;
        }
    });
}

/// POSTs a slash command (its fields as a form) or an interaction (`payload=<json>`) to the app,
/// signed. Slack does not retry these: an answer that is late or not 2xx is an error the person
/// sees. A 2xx answer's JSON body is kept as the response (a slash command's immediate answer).
pub(crate) fn deliver_form(
    state: &SharedState,
    url: String,
    envelope_id: String,
    kind: &str,
    payload: Value,
) {
    let body = if kind == "interactive" {
        serde_urlencoded::to_string([("payload", payload.to_string())])
    } else {
        let fields: Vec<(String, String)> = payload
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, value)| {
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                (name.clone(), value)
            })
            .collect();
        serde_urlencoded::to_string(fields)
    }
    .unwrap_or_default();
    let state = state.clone();
    tokio::spawn(async move {
        state.socket.set_attempts(&envelope_id, 1);
        if let Ok((status, answer)) = post(&state, &url, FORM, body.as_bytes(), None).await
            && (200..300).contains(&status)
        {
            state
                .socket
                .mark_acked(&envelope_id, serde_json::from_slice(&answer).ok());
        }
    });
}
