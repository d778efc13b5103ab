//! remediation-poster's own configuration sections (`[slack]`, `[posting]`).
//!
//! Like the gateway's, the defaults talk to the local Slack emulator; in production set
//! `slack.api_url = "https://slack.com/api"` and `REMEDIATION_POSTER_SLACK__BOT_TOKEN`.

use std::time::Duration;

use serde::Deserialize;
use slack::Secret;

/// `[slack]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// The Web API base URL, without a trailing slash. Default the local emulator's.
    pub api_url: String,
    /// The bot token (`xoxb-…`, scopes `chat:write`, `reactions:write`, `channels:history`, `files:write`).
    pub bot_token: Secret,
    /// How long one Web API call may take. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

/// `[posting]`: pacing and coordination.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostingConfig {
    /// Posts per second and channel (Slack allows about 1). Default 1.
    pub posts_per_second: u32,
    /// Posts allowed in a burst before pacing starts. Default 2.
    pub burst: u32,
    /// How long another replica's unfinished post blocks this one before it is assumed
    /// crashed and taken over. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub claim_timeout: Duration,
    /// Messages each consumer handles at once. Default 16.
    pub concurrency: usize,
    /// Share the metrics chart and the flamegraph previews into the alert's thread as PNGs once
    /// the reply is posted (Slack shows no SVG; needs the `files:write` scope). Default true.
    pub pictures: bool,
    /// Show the first two series as Slack's native line charts (data visualization blocks) in
    /// the reply itself, beside the numbers. Default true.
    pub chart_blocks: bool,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            api_url: slack::EMULATOR_API_URL.to_owned(),
            bot_token: Secret::new("xoxb-flamethread-emulator"),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for PostingConfig {
    fn default() -> Self {
        PostingConfig {
            posts_per_second: 1,
            burst: 2,
            claim_timeout: Duration::from_secs(60),
            concurrency: 64,
            pictures: true,
            chart_blocks: true,
        }
    }
}

impl runtime::ConfigSection for SlackConfig {
    fn validate(&self) -> Result<(), String> {
        slack::check_api_url("slack.api_url", &self.api_url)?;
        slack::check_token("slack.bot_token", &self.bot_token, "xoxb-")?;
        slack::check_no_emulator_secrets(&self.api_url, &[("slack.bot_token", &self.bot_token)])?;
        if self.request_timeout.is_zero() {
            return Err("slack.request_timeout: must be above 0".to_owned());
        }
        Ok(())
    }
}

impl runtime::ConfigSection for PostingConfig {
    fn validate(&self) -> Result<(), String> {
        if self.posts_per_second == 0 || self.burst == 0 {
            return Err("posting.posts_per_second and posting.burst: must be above 0".to_owned());
        }
        if self.claim_timeout < Duration::from_secs(1) {
            return Err(
                "posting.claim_timeout: under 1s would take over posts still in flight".to_owned(),
            );
        }
        if self.concurrency == 0 {
            return Err("posting.concurrency: must be above 0".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use runtime::ConfigSection as _;

    use super::*;

    #[test]
    fn defaults_are_valid_and_mistakes_name_their_key() {
        assert_eq!(SlackConfig::default().validate(), Ok(()));
        assert_eq!(PostingConfig::default().validate(), Ok(()));
        let swapped = SlackConfig {
            bot_token: Secret::new("xapp-1"),
            ..SlackConfig::default()
        };
        assert!(
            swapped
                .validate()
                .unwrap_err()
                .starts_with("slack.bot_token")
        );
        let hasty = PostingConfig {
            claim_timeout: Duration::from_millis(10),
            ..PostingConfig::default()
        };
        assert!(
            hasty
                .validate()
                .unwrap_err()
                .starts_with("posting.claim_timeout")
        );
    }
}

/// `[diagnosis]`: the rules that turn evidence into a diagnosis, and where trace ids link to.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiagnosisConfig {
    /// Operator rules (`[[diagnosis.rules]]`), tried before the built-in ones.
    pub rules: Vec<crate::diagnose::RuleConfig>,
    /// A URL with `{trace_id}` in it, to make the reply's trace id a link (Jaeger:
    /// `http://jaeger:16686/trace/{trace_id}`, Tempo through Grafana's explore URL, Honeycomb's
    /// trace URL; flamethread's own span store: `<profile-fetcher's pages.public_url>/traces/{trace_id}`).
    /// Default empty: the trace id is shown as text.
    pub trace_url: String,
    /// How long after an incident opens its evidence may take; past it, the reply says which
    /// source is late instead of "gathering…". Default `60s`.
    #[serde(with = "humantime_serde")]
    pub evidence_deadline: Duration,
    /// How long the reply's "Silence" button asks to silence for (alert-watcher's
    /// `actions.silence_for` is the longest it grants). Default `1h`.
    #[serde(with = "humantime_serde")]
    pub silence_for: Duration,
}

impl Default for DiagnosisConfig {
    fn default() -> Self {
        DiagnosisConfig {
            rules: Vec::new(),
            trace_url: String::new(),
            evidence_deadline: Duration::from_secs(60),
            silence_for: Duration::from_secs(3600),
        }
    }
}

impl runtime::ConfigSection for DiagnosisConfig {
    fn validate(&self) -> Result<(), String> {
        crate::diagnose::RuleSet::new(self.rules.clone()).map_err(|err| err.to_string())?;
        if self.silence_for < Duration::from_secs(60)
            || self.silence_for > Duration::from_secs(7 * 86400)
        {
            return Err("diagnosis.silence_for: from 1m to 7d".to_owned());
        }
        if self.evidence_deadline < Duration::from_secs(1) {
            return Err("diagnosis.evidence_deadline: at least 1s".to_owned());
        }
        let http = self.trace_url.starts_with("http://") || self.trace_url.starts_with("https://");
        if !(self.trace_url.is_empty() || http && self.trace_url.contains("{trace_id}")) {
            return Err(format!(
                "diagnosis.trace_url: {:?} is not an http(s) URL with {{trace_id}} in it",
                self.trace_url
            ));
        }
        Ok(())
    }
}
