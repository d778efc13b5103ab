//! Alertmanager's webhook receiver (`POST /alertmanager`, a `webhook_configs` URL next to the
//! Slack receiver). The webhook carries what the Slack message's default template leaves out: the
//! label keys, annotations and start times. It is joined to the Slack message of the same group by
//! the group's label values (sorted by label name, as the Slack title shows them), which give the
//! same fingerprint: the labels are kept for the Slack message still to come, and an incident
//! already opened from the message is enriched (and its reply updated).
//!
//! Every request must prove it is Alertmanager: a bearer token or basic auth (Alertmanager's
//! `http_config` sends either), compared in constant time; 401 otherwise, before the body is read.
//! Answers 200 only once what it carried is stored; 400 with the reason for a payload that is not
//! Alertmanager's webhook format (version 4); 413 past 4 MiB.

use secret::Secret;
use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use proto::incident::{AlertSource, AlertStatus, Link};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use crate::{correlate, recognize, watcher::Watcher};

/// Alertmanager's webhook payload (version 4), the parts flamethread reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub version: String,
    pub status: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    pub alerts: Vec<WebhookAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(rename = "generatorURL", default)]
    pub generator_url: Option<String>,
    /// Alertmanager's fingerprint of the alert (sent since 0.20).
    #[serde(default)]
    pub fingerprint: String,
}

impl Notification {
    /// The group's label values in the order the Slack title shows them (sorted by label name).
    pub fn group_values(&self) -> Vec<String> {
        self.group_labels.values().cloned().collect()
    }

    /// The group as one alert: common labels and annotations, earliest start.
    pub fn alert(&self, service_labels: &[&str]) -> Option<proto::incident::Alert> {
        let name = self
            .group_labels
            .get("alertname")
            .or_else(|| self.common_labels.get("alertname"))?
            .clone();
        let mut labels = self.common_labels.clone();
        labels.extend(self.group_labels.clone());
        Some(proto::incident::Alert {
            source: AlertSource::Alertmanager,
            status: if self.status == "resolved" {
                AlertStatus::Resolved
            } else {
                AlertStatus::Firing
            },
            severity: labels.get("severity").cloned(),
            service: recognize::service_of(&labels, service_labels),
            annotations: self.common_annotations.clone(),
            starts_at: self.alerts.iter().filter_map(|alert| alert.starts_at).min(),
            links: self
                .alerts
                .iter()
                .filter_map(|alert| alert.generator_url.clone())
                .take(1)
                .map(|url| Link {
                    title: "Source".to_owned(),
                    url,
                })
                .collect(),
            name,
            labels,
            labels_confirmed: true,
            alertmanager_fingerprints: self
                .alerts
                .iter()
                .map(|alert| alert.fingerprint.clone())
                .filter(|fingerprint| !fingerprint.is_empty())
                .collect(),
        })
    }
}

/// How Alertmanager proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAuth {
    Bearer(Secret),
    Basic { username: String, password: Secret },
}

impl WebhookAuth {
    /// Whether `headers` carry the credentials (constant time in their content).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
        else {
            return false;
        };
        let expected = match self {
            WebhookAuth::Bearer(token) => format!("Bearer {}", token.expose()),
            WebhookAuth::Basic { username, password } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()))
            ),
        };
        bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
    }
}

/// Largest webhook body read: Alertmanager's payload for a large group stays well below.
const MAX_BODY: usize = 4 << 20;

#[derive(Clone)]
struct Receiver {
    watcher: Arc<Watcher>,
    auth: Arc<WebhookAuth>,
}

pub(crate) fn router(watcher: Arc<Watcher>, auth: WebhookAuth) -> Router {
    let receiver = Receiver {
        watcher,
        auth: Arc::new(auth),
    };
    Router::new()
        .route("/alertmanager", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // Credentials are checked before a byte of the body is read.
        .route_layer(axum::middleware::from_fn_with_state(
            receiver.clone(),
            authenticate,
        ))
        .with_state(receiver)
}

async fn authenticate(
    State(receiver): State<Receiver>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !receiver.auth.admits(request.headers()) {
        metrics::counter!("ft_watcher_webhooks_total", "outcome" => "unauthorized").increment(1);
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer, Basic")],
            "this webhook needs Alertmanager's credentials (http_config)",
        )
            .into_response();
    }
    next.run(request).await
}

async fn receive(State(receiver): State<Receiver>, body: Bytes) -> Response {
    let watcher = receiver.watcher;
    let notification: Notification = match serde_json::from_slice(&body) {
        Ok(notification) => notification,
        Err(err) => {
            metrics::counter!("ft_watcher_webhooks_total", "outcome" => "malformed").increment(1);
            return (
                StatusCode::BAD_REQUEST,
                format!("not an Alertmanager webhook payload: {err}"),
            )
                .into_response();
        }
    };
    if notification.version != "4" {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "webhook payload version {} (this receiver reads version 4)",
                notification.version
            ),
        )
            .into_response();
    }
    let keys: Vec<&str> = watcher.service_labels.iter().map(String::as_str).collect();
    let Some(alert) = notification.alert(&keys) else {
        return (StatusCode::BAD_REQUEST, "the group has no alertname").into_response();
    };
    // Fingerprinted as read, as the Slack message's reading is; then bounded like it.
    let fingerprint = correlate::fingerprint(&alert, &notification.group_values());
    let alert = recognize::bounded(alert);
    match watcher.learn(&fingerprint, &alert).await {
        Ok(()) => {
            metrics::counter!("ft_watcher_webhooks_total", "outcome" => "stored").increment(1);
            StatusCode::OK.into_response()
        }
        // Alertmanager retries a failed webhook: nothing is lost while NATS is away.
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response(),
    }
}
