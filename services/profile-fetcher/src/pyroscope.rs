//! Pyroscope's query APIs, both styles, as its servers speak them:
//! - Connect (`POST /querier.v1.QuerierService/<Method>`, JSON, int64s as strings):
//!   `SelectMergeStacktraces`, `SelectMergeSpanProfile` (the samples taken inside given spans,
//!   which SDKs label with `span_id`), `ProfileTypes`, `LabelValues`;
//! - the legacy `GET /pyroscope/render` flamebearer JSON (numbers).
//!
//! Both flamegraphs decode into the same folded stacks (`profile::flamebearer`). The tenant goes
//! in `X-Scope-OrgID`; basic auth or a bearer token when configured. A slow server is cut at the
//! timeout and a huge answer at `max_response_bytes`.

use runtime::body::{ExchangeError, exchange};
use std::time::Duration;

use proto::TimeWindow;
use serde::Deserialize;

use crate::{
    config::{PyroscopeApi, PyroscopeConfig},
    profile::{Folded, flamebearer::Flamegraph},
};

/// Why Pyroscope gave no profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PyroscopeError {
    #[error("Pyroscope refused ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("Pyroscope did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("cannot reach Pyroscope: {0}")]
    Unreachable(String),
    #[error("Pyroscope answered something that is not its API: {0}")]
    Malformed(String),
    #[error("Pyroscope's answer is over {0} bytes")]
    TooLarge(usize),
    #[error("span profiles need Pyroscope's Connect API (pyroscope.api = \"connect\")")]
    NeedsConnect,
}

/// The flamegraph of a Connect `SelectMerge…` answer; an empty answer (`{}`) is a profile with no
/// samples.
fn connect_flamegraph(
    answer: &serde_json::Value,
) -> Result<Flamegraph, crate::profile::flamebearer::FlamegraphError> {
    match answer.get("flamegraph") {
        Some(flamegraph) => Flamegraph::from_json(flamegraph),
        None => Ok(Flamegraph::default()),
    }
}

/// A Pyroscope server.
#[derive(Debug, Clone)]
pub struct Pyroscope {
    client: reqwest::Client,
    config: PyroscopeConfig,
}

#[derive(Deserialize)]
struct ProfileTypesAnswer {
    #[serde(default, rename = "profileTypes")]
    profile_types: Vec<ProfileType>,
}

#[derive(Deserialize)]
struct ProfileType {
    #[serde(rename = "ID")]
    id: String,
}

#[derive(Deserialize)]
struct NamesAnswer {
    #[serde(default)]
    names: Vec<String>,
}

impl Pyroscope {
    pub fn new(config: &PyroscopeConfig) -> Result<Pyroscope, runtime::body::ClientError> {
        Ok(Pyroscope {
            client: runtime::body::client(Some(config.timeout))?,
            config: config.clone(),
        })
    }

    /// The merged profile of `app` over `window`, as folded stacks.
    pub async fn profile(
        &self,
        app: &str,
        profile_type: &str,
        window: TimeWindow,
    ) -> Result<Folded, PyroscopeError> {
        let selector = self.selector(app);
        let flamegraph = match self.config.api {
            PyroscopeApi::Connect => {
                let answer = self
                    .connect(
                        "SelectMergeStacktraces",
                        serde_json::json!({
                            "profileTypeID": profile_type,
                            "labelSelector": selector,
                            "start": window.from.timestamp_millis().to_string(),
                            "end": window.to.timestamp_millis().to_string(),
                            "maxNodes": self.config.max_nodes.to_string(),
                        }),
                    )
                    .await?;
                connect_flamegraph(&answer)
            }
            PyroscopeApi::Render => {
                let query = [
                    ("query", format!("{profile_type}{selector}")),
                    ("from", window.from.timestamp().to_string()),
                    ("until", window.to.timestamp().to_string()),
                    ("maxNodes", self.config.max_nodes.to_string()),
                    ("format", "json".to_owned()),
                ];
                let request = self
                    .client
                    .get(format!("{}/pyroscope/render", self.base()))
                    .query(&query);
                let answer = self.send(request).await?;
                let flamebearer = answer.get("flamebearer").ok_or_else(|| {
                    PyroscopeError::Malformed("a render answer without a flamebearer".to_owned())
                })?;
                Flamegraph::from_json(flamebearer)
            }
        }
        .map_err(|err| PyroscopeError::Malformed(err.to_string()))?;
        flamegraph
            .to_folded()
            .map_err(|err| PyroscopeError::Malformed(err.to_string()))
    }

    /// The merged profile of the samples `app` took inside the spans `span_ids` (16 hex digits
    /// each) during `window`.
    pub async fn span_profile(
        &self,
        app: &str,
        profile_type: &str,
        window: TimeWindow,
        span_ids: &[String],
    ) -> Result<Folded, PyroscopeError> {
        if self.config.api != PyroscopeApi::Connect {
            return Err(PyroscopeError::NeedsConnect);
        }
        let answer = self
            .connect(
                "SelectMergeSpanProfile",
                serde_json::json!({
                    "profileTypeID": profile_type,
                    "labelSelector": self.selector(app),
                    "spanSelector": span_ids,
                    "start": window.from.timestamp_millis().to_string(),
                    "end": window.to.timestamp_millis().to_string(),
                    "maxNodes": self.config.max_nodes.to_string(),
                }),
            )
            .await?;
        connect_flamegraph(&answer)
            .and_then(|flamegraph| flamegraph.to_folded())
            .map_err(|err| PyroscopeError::Malformed(err.to_string()))
    }

    /// `{<app label>="<app>"}`, the app escaped.
    fn selector(&self, app: &str) -> String {
        format!(
            "{{{}=\"{}\"}}",
            self.config.app_label,
            app.replace('\\', "\\\\").replace('"', "\\\"")
        )
    }

    /// The profile types Pyroscope has data for in `window`.
    pub async fn profile_types(&self, window: TimeWindow) -> Result<Vec<String>, PyroscopeError> {
        let answer = self
            .connect(
                "ProfileTypes",
                serde_json::json!({
                    "start": window.from.timestamp_millis().to_string(),
                    "end": window.to.timestamp_millis().to_string(),
                }),
            )
            .await?;
        let types: ProfileTypesAnswer = serde_json::from_value(answer)
            .map_err(|err| PyroscopeError::Malformed(err.to_string()))?;
        Ok(types.profile_types.into_iter().map(|t| t.id).collect())
    }

    /// The apps (values of the app label) Pyroscope has data for in `window`.
    pub async fn apps(&self, window: TimeWindow) -> Result<Vec<String>, PyroscopeError> {
        let answer = self
            .connect(
                "LabelValues",
                serde_json::json!({
                    "name": self.config.app_label,
                    "start": window.from.timestamp_millis().to_string(),
                    "end": window.to.timestamp_millis().to_string(),
                }),
            )
            .await?;
        let names: NamesAnswer = serde_json::from_value(answer)
            .map_err(|err| PyroscopeError::Malformed(err.to_string()))?;
        Ok(names.names)
    }

    fn base(&self) -> &str {
        self.config.url.trim_end_matches('/')
    }

    async fn connect(
        &self,
        method: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, PyroscopeError> {
        let request = self
            .client
            .post(format!(
                "{}/querier.v1.QuerierService/{method}",
                self.base()
            ))
            .header("Connect-Protocol-Version", "1")
            .json(&body);
        self.send(request).await
    }

    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, PyroscopeError> {
        if !self.config.tenant.is_empty() {
            request = request.header("X-Scope-OrgID", &self.config.tenant);
        }
        if !self.config.bearer_token.expose().is_empty() {
            request = request.bearer_auth(self.config.bearer_token.expose());
        } else if !self.config.user.is_empty() {
            request = request.basic_auth(&self.config.user, Some(self.config.password.expose()));
        }
        let timeout = self.config.timeout;
        let limit = self.config.max_response_bytes;
        let (status, body) = exchange(request, limit, timeout)
            .await
            .map_err(|err| match err {
                ExchangeError::TimedOut(after) => PyroscopeError::TimedOut(after),
                ExchangeError::TooLarge(cap) => PyroscopeError::TooLarge(cap),
                ExchangeError::Unreachable(why) => PyroscopeError::Unreachable(why),
            })?;
        if !status.is_success() {
            // Connect errors are `{"code": "...", "message": "..."}`; others are text.
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|error| {
                    error
                        .get("message")
                        .and_then(|m| m.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| {
                    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
                });
            return Err(PyroscopeError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|err| {
            let start = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
            PyroscopeError::Malformed(format!("{err}: {start:?}"))
        })
    }
}
