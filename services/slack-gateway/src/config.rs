//! slack-gateway's own configuration sections (`[slack]`, `[files]`).
//!
//! The defaults talk to the local Slack emulator with its tokens, the way `[nats]` defaults to a
//! local server, so that the pipeline runs on one machine with no config at all. In production
//! set `slack.api_url = "https://slack.com/api"` and the three secrets (environment variables
//! `SLACK_GATEWAY_SLACK__BOT_TOKEN` and so on, or a Kubernetes Secret).

use std::{net::SocketAddr, time::Duration};

use serde::Deserialize;
use slack::Secret;

/// How Slack reaches the gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The gateway opens a WebSocket to Slack: nothing to expose to the internet.
    #[default]
    SocketMode,
    /// Slack POSTs signed requests to the gateway's HTTP listener.
    Http,
}

/// `[slack]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// `socket_mode` or `http`. Default `socket_mode`.
    pub mode: Mode,
    /// The Web API base URL, without a trailing slash. Default the local emulator's,
    /// `http://127.0.0.1:3001/api`; Slack's is `https://slack.com/api`.
    pub api_url: String,
    /// The app-level token (`xapp-…`, scope `connections:write`), for Socket Mode.
    pub app_token: Secret,
    /// The bot token (`xoxb-…`): who the app is (`auth.test`) and shared files (`files:read`).
    pub bot_token: Secret,
    /// The signing secret, for HTTP mode.
    pub signing_secret: Secret,
    /// Channel ids to listen to; empty means every channel the app is in. Default empty.
    pub channels: Vec<String>,
    /// How long an event may wait for JetStream before it is left unacknowledged (Slack then
    /// delivers it again). Keep it under Slack's 3 s. Default `2s`.
    #[serde(with = "humantime_serde")]
    pub publish_deadline: Duration,
    /// HTTP mode's listener.
    pub http: HttpConfig,
}

/// `[slack.http]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Where Slack's requests arrive (`/slack/events`, `/slack/commands`, `/slack/interactions`).
    /// Default `0.0.0.0:3000`.
    pub listen: SocketAddr,
    /// Larger request bodies are refused with 413. Default 1 MiB.
    pub max_body_bytes: usize,
}

/// `[files]`: shared files, downloaded into the object store.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// Larger files are not downloaded (the sharer is told why). Default 1 MiB.
    pub max_bytes: u64,
    /// MIME types accepted, as Slack reports them. Default Python scripts and plain text.
    pub allowed_types: Vec<String>,
    /// How long one download may take. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub download_timeout: Duration,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            mode: Mode::SocketMode,
            api_url: slack::EMULATOR_API_URL.to_owned(),
            app_token: Secret::new("xapp-flamethread-emulator"),
            bot_token: Secret::new("xoxb-flamethread-emulator"),
            signing_secret: Secret::new("emulator-signing-secret"),
            channels: Vec::new(),
            publish_deadline: Duration::from_secs(2),
            http: HttpConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 3000)),
            max_body_bytes: 1024 * 1024,
        }
    }
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            max_bytes: 1024 * 1024,
            allowed_types: [
                "text/x-python",
                "text/x-python-script",
                "application/x-python",
                "application/x-python-code",
                "text/plain",
            ]
            .map(str::to_owned)
            .to_vec(),
            download_timeout: Duration::from_secs(30),
        }
    }
}

impl runtime::ConfigSection for SlackConfig {
    fn validate(&self) -> Result<(), String> {
        slack::check_api_url("slack.api_url", &self.api_url)?;
        slack::check_token("slack.bot_token", &self.bot_token, "xoxb-")?;
        // The secrets this mode uses (the other mode's keep their unused defaults).
        let used = match self.mode {
            Mode::SocketMode => ("slack.app_token", &self.app_token),
            Mode::Http => ("slack.signing_secret", &self.signing_secret),
        };
        slack::check_no_emulator_secrets(
            &self.api_url,
            &[used, ("slack.bot_token", &self.bot_token)],
        )?;
        match self.mode {
            Mode::SocketMode => slack::check_token("slack.app_token", &self.app_token, "xapp-")?,
            Mode::Http if self.signing_secret.is_empty() => {
                return Err(
                    "slack.signing_secret: missing (HTTP mode verifies every request with it)"
                        .to_owned(),
                );
            }
            Mode::Http => {}
        }
        if self.publish_deadline.is_zero() || self.publish_deadline >= Duration::from_secs(3) {
            return Err(format!(
                "slack.publish_deadline: {:?} must be above 0 and under Slack's 3s",
                self.publish_deadline
            ));
        }
        if let Some(bad) = self.channels.iter().find(|id| !looks_like_channel_id(id)) {
            return Err(format!(
                "slack.channels: {bad:?} is not a channel id (ids look like C024BE91L; names are not ids)"
            ));
        }
        if self.http.max_body_bytes < 1024 {
            return Err(
                "slack.http.max_body_bytes: under 1 KiB refuses Slack's own requests".to_owned(),
            );
        }
        Ok(())
    }
}

impl runtime::ConfigSection for FilesConfig {
    fn validate(&self) -> Result<(), String> {
        if self.max_bytes == 0 {
            return Err("files.max_bytes: must be above 0".to_owned());
        }
        if self.allowed_types.is_empty() {
            return Err("files.allowed_types: empty would refuse every file".to_owned());
        }
        Ok(())
    }
}

/// Public (`C…`), private (`G…`) and direct (`D…`) conversation ids.
fn looks_like_channel_id(id: &str) -> bool {
    id.len() >= 2
        && id.starts_with(['C', 'G', 'D'])
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests;
