//! Changes: deploys, config changes, feature flags and rollbacks, recorded so that a thread can
//! say what changed just before its alert.
//!
//! A change arrives from outside (a CI job's `curl` to the markers API, a deploy bot's message in
//! Slack, a rollout read from kube-state-metrics) and is therefore text from outside: every field
//! is bounded and checked here, once, by [`NewChange::into_change`], whatever door it came in by.
//! Recorded changes travel on `change.recorded` and stay in their stream for its retention;
//! profile-fetcher reads them back by time when an incident opens.

use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Correlated, Message, SchemaVersion, Subject};

/// What kind of change.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Deploy,
    Config,
    FeatureFlag,
    Rollback,
}

impl ChangeKind {
    /// The past participle a reply uses: "checkout 1.4.2 *deployed* 7 min before".
    pub fn verb(self) -> &'static str {
        match self {
            ChangeKind::Deploy => "deployed",
            ChangeKind::Config => "config changed",
            ChangeKind::FeatureFlag => "flag changed",
            ChangeKind::Rollback => "rolled back",
        }
    }

    /// The noun: "after *deploy* 1.4.2".
    pub fn noun(self) -> &'static str {
        match self {
            ChangeKind::Deploy => "deploy",
            ChangeKind::Config => "config change",
            ChangeKind::FeatureFlag => "flag change",
            ChangeKind::Rollback => "rollback",
        }
    }
}

/// Where a change was learned of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// `POST /api/v1/changes` (a CI job, a person with the token).
    Api,
    /// A message another tool posted in Slack (a deploy bot, Argo CD, Flux, a CI system).
    Slack,
    /// A rollout read from kube-state-metrics through Prometheus.
    Kubernetes,
}

/// A recorded change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    pub schema_version: SchemaVersion,
    /// Unique; the client's own id when it gave one, so a retried `curl` is stored once.
    pub change_id: String,
    /// The service that changed, as alerts name it (`service`, `app` or `job` label).
    pub service: String,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    pub kind: ChangeKind,
    /// Who or what made it: a person, `CI run 812`.
    #[serde(default)]
    pub who: Option<String>,
    /// Where to read more: the CI run, the pull request, the Argo CD application.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// When it happened.
    pub at: DateTime<Utc>,
    pub source: ChangeSource,
}

impl Message for Change {
    fn subject(&self) -> Subject {
        Subject::ChangeRecorded
    }

    fn idempotency_key(&self) -> String {
        // Two clients may choose the same id for different services.
        format!("change:{}:{}", self.service, self.change_id)
    }
}

impl Correlated for Change {}

impl Change {
    /// Whether this change concerns an alert about `service` with these label values (any of
    /// `service`, `app`, `deployment`, `job`, `container`), compared without case.
    pub fn concerns<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> bool {
        names
            .into_iter()
            .any(|name| !name.is_empty() && name.eq_ignore_ascii_case(&self.service))
    }

    /// "checkout 1.4.2", or "checkout" without a version.
    pub fn title(&self) -> String {
        match &self.version {
            Some(version) => format!("{} {version}", self.service),
            None => self.service.clone(),
        }
    }
}

/// Bounds on what a change may carry, in characters.
pub mod limits {
    pub const SERVICE: usize = 128;
    pub const ENVIRONMENT: usize = 64;
    pub const VERSION: usize = 128;
    pub const WHO: usize = 128;
    pub const URL: usize = 2048;
    pub const MESSAGE: usize = 1000;
    pub const ID: usize = 128;
    /// The largest request body the markers API reads.
    pub const BODY_BYTES: usize = 16 * 1024;
}

/// A change as a client writes it (`POST /api/v1/changes`, or a message read in Slack): only
/// `service` is required; `kind` defaults to `deploy` and `at` to now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChange {
    /// Letters, digits, `.`, `_`, `-`: a client that retries with the same id records one change.
    #[serde(default)]
    pub id: Option<String>,
    pub service: String,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub kind: Option<ChangeKind>,
    #[serde(default)]
    pub who: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// RFC 3339; default now. At most a day in the past (older history is not news) and five
    /// minutes in the future (clock skew).
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// Why a change was refused: a sentence for whoever sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("`{field}` is empty")]
    Empty { field: &'static str },
    #[error("`{field}` is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("`{field}` has control characters")]
    ControlCharacters { field: &'static str },
    #[error("`id` may hold only letters, digits, '.', '_' and '-'")]
    BadId,
    #[error("`url` must be an http(s) URL without spaces, '<', '>' or '|'")]
    BadUrl,
    #[error("`at` is {0}: a change is recorded from a day before now to five minutes after")]
    OutOfRange(&'static str),
}

impl NewChange {
    /// The change, checked and bounded, as recorded at `now` from `source`; `fallback_id` when the
    /// client gave none.
    pub fn into_change(
        self,
        source: ChangeSource,
        now: DateTime<Utc>,
        fallback_id: impl FnOnce() -> String,
    ) -> Result<Change, ChangeError> {
        let service = required("service", self.service, limits::SERVICE)?;
        let environment = optional("environment", self.environment, limits::ENVIRONMENT)?;
        let version = optional("version", self.version, limits::VERSION)?;
        let who = optional("who", self.who, limits::WHO)?;
        let message = optional_text("message", self.message, limits::MESSAGE)?;
        let url = optional("url", self.url, limits::URL)?;
        if let Some(url) = &url {
            let http = url.starts_with("https://") || url.starts_with("http://");
            if !http || url.contains(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '|')) {
                return Err(ChangeError::BadUrl);
            }
        }
        let change_id = match self.id {
            Some(id) => {
                let id = required("id", id, limits::ID)?;
                if !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                {
                    return Err(ChangeError::BadId);
                }
                id
            }
            None => fallback_id(),
        };
        let at = self.at.unwrap_or(now);
        if at < now - Duration::days(1) {
            return Err(ChangeError::OutOfRange("more than a day ago"));
        }
        if at > now + Duration::minutes(5) {
            return Err(ChangeError::OutOfRange("in the future"));
        }
        Ok(Change {
            schema_version: SchemaVersion::CURRENT,
            change_id,
            service,
            environment,
            version,
            kind: self.kind.unwrap_or(ChangeKind::Deploy),
            who,
            url,
            message,
            at,
            source,
        })
    }
}

fn required(field: &'static str, value: String, max: usize) -> Result<String, ChangeError> {
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(ChangeError::Empty { field });
    }
    if value.chars().count() > max {
        return Err(ChangeError::TooLong { field, max });
    }
    if value.chars().any(char::is_control) {
        return Err(ChangeError::ControlCharacters { field });
    }
    Ok(value)
}

fn optional(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, ChangeError> {
    value
        .filter(|value| !value.trim().is_empty())
        .map(|value| required(field, value, max))
        .transpose()
}

/// Like [`optional`], but line breaks and tabs are allowed (a commit message).
fn optional_text(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, ChangeError> {
    let Some(value) = value.filter(|value| !value.trim().is_empty()) else {
        return Ok(None);
    };
    let value = value.trim().to_owned();
    if value.chars().count() > max {
        return Err(ChangeError::TooLong { field, max });
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err(ChangeError::ControlCharacters { field });
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests;
