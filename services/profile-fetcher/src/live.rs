//! Live profiles: a CPU profile taken now from an app's Go-style pprof endpoint
//! (`GET <base>/debug/pprof/profile?seconds=N`, gzipped protobuf), for services without a
//! continuous profiler, and for flamethread itself (every service serves that endpoint).
//!
//! Which URL an app has is configuration only (`[live] targets` or a `url_template` filled with
//! a DNS-name app): the app comes from a Slack user, so it must never become an arbitrary URL.

use runtime::body::{ExchangeError, exchange};
use std::time::Duration;

use backon::{ConstantBuilder, Retryable as _};

use profiling::pprof::{self, Decoded, PprofError};

use crate::config::LiveConfig;

/// Why no live profile was taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveError {
    #[error("no pprof endpoint is known for `{app}`{}", known_list(.known))]
    NoTarget { app: String, known: Vec<String> },
    #[error("the pprof endpoint refused ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the pprof endpoint did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("cannot reach the pprof endpoint: {0}")]
    Unreachable(String),
    #[error("the pprof endpoint's answer is over {0} bytes")]
    TooLarge(usize),
    #[error("the pprof endpoint answered something that is not a profile: {0}")]
    Malformed(PprofError),
}

impl LiveError {
    /// Whether the endpoint only said it is taking another profile right now.
    pub fn is_busy(&self) -> bool {
        match self {
            LiveError::Refused { status: 409, .. } => true,
            LiveError::Refused {
                status: 500,
                message,
            } => message.contains("already in use"),
            _ => false,
        }
    }
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (no live targets are configured: profile-fetcher's [live] targets)".to_owned()
    } else {
        format!(" (known: {})", known.join(", "))
    }
}

/// Takes live profiles from the configured endpoints.
#[derive(Debug, Clone)]
pub struct LiveProfiler {
    client: reqwest::Client,
    config: LiveConfig,
}

impl LiveProfiler {
    /// Each request sets its own timeout: the profile's seconds and a margin.
    pub fn new(config: &LiveConfig) -> Result<LiveProfiler, runtime::body::ClientError> {
        Ok(LiveProfiler {
            client: runtime::body::client(None)?,
            config: config.clone(),
        })
    }

    /// The apps with a configured endpoint (a template serves any DNS-name app besides).
    pub fn known_apps(&self) -> Vec<String> {
        self.config.targets.keys().cloned().collect()
    }

    /// The seconds a request for `asked` seconds gets.
    pub fn seconds(&self, asked: u32) -> u32 {
        match asked {
            0 => self.config.default_seconds,
            asked => asked.min(self.config.max_seconds),
        }
    }

    /// The profile URL of `app`, if it has one.
    pub fn url(&self, app: &str, seconds: u32) -> Result<String, LiveError> {
        let base = match self.config.targets.get(app) {
            Some(base) => base.clone(),
            None if !self.config.url_template.is_empty() && is_dns_label(app) => {
                self.config.url_template.replace("{app}", app)
            }
            None => {
                return Err(LiveError::NoTarget {
                    app: app.to_owned(),
                    known: self.known_apps(),
                });
            }
        };
        let base = base.trim_end_matches('/');
        let path = if base.ends_with("/debug/pprof/profile") {
            base.to_owned()
        } else {
            format!("{base}/debug/pprof/profile")
        };
        Ok(format!("{path}?seconds={seconds}"))
    }

    /// Profiles `app` for `seconds` (already clamped by [`LiveProfiler::seconds`]).
    ///
    /// An endpoint takes one CPU profile at a time and says so when busy (409 from flamethread's
    /// own, 500 "already in use" from Go's); that is waited out, a second at a time, for about
    /// as long as one profile of ours would take, before it is reported.
    pub async fn profile(&self, app: &str, seconds: u32) -> Result<Decoded, LiveError> {
        let url = self.url(app, seconds)?;
        let patience = u64::from(seconds) + self.config.timeout_margin.as_secs();
        (|| self.profile_once(&url, seconds))
            .retry(
                ConstantBuilder::default()
                    .with_delay(Duration::from_secs(1))
                    .with_max_times(usize::try_from(patience.max(1)).unwrap_or(usize::MAX)),
            )
            .when(LiveError::is_busy)
            .await
    }

    async fn profile_once(&self, url: &str, seconds: u32) -> Result<Decoded, LiveError> {
        let timeout = Duration::from_secs(u64::from(seconds)) + self.config.timeout_margin;
        let limit = self.config.max_response_bytes;
        let (status, body) = exchange(self.client.get(url), limit, timeout)
            .await
            .map_err(|err| match err {
                ExchangeError::TimedOut(after) => LiveError::TimedOut(after),
                ExchangeError::TooLarge(cap) => LiveError::TooLarge(cap),
                ExchangeError::Unreachable(why) => LiveError::Unreachable(why),
            })?;
        if !status.is_success() {
            return Err(LiveError::Refused {
                status: status.as_u16(),
                message: String::from_utf8_lossy(&body[..body.len().min(200)])
                    .trim()
                    .to_owned(),
            });
        }
        // Decoding a large profile is CPU work: off the async threads.
        tokio::task::spawn_blocking(move || pprof::decode(&body, limit, None))
            .await
            .map_err(|err| LiveError::Unreachable(format!("decoding panicked: {err}")))?
            .map_err(LiveError::Malformed)
    }
}

/// One DNS label (lowercase letters, digits, inner hyphens, at least one letter): the only app
/// name a `url_template` is filled with, so a person naming an app can never name a host, a
/// domain or an address.
pub fn is_dns_label(app: &str) -> bool {
    !app.is_empty()
        && app.len() <= 63
        && app
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !app.starts_with('-')
        && !app.ends_with('-')
        // Not a number: `{app}` alone must never become an address.
        && app.bytes().any(|b| b.is_ascii_lowercase())
}

#[cfg(test)]
mod tests;
