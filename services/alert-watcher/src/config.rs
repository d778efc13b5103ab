//! alert-watcher's own configuration sections (`[alertmanager]`, `[incidents]`, `[storm]`,
//! `[[rules]]`, `[sandbox]`).

use std::time::Duration;

use secret::Secret;
use serde::Deserialize;

use crate::recognize::rules::PatternError;

/// `[alertmanager]`: where to recover what Alertmanager's default Slack template leaves out.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    /// Alertmanager's base URL, e.g. `http://alertmanager:9093`. Empty (the default): labels
    /// are not recovered, and Alertmanager's alerts are told apart by the values in their titles.
    pub url: String,
    /// How long one API call may take. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Where to receive Alertmanager's webhook (`POST /alertmanager`), e.g. `0.0.0.0:9180`.
    /// Default none (off). Needs `webhook_token` or `webhook_username` and `webhook_password`:
    /// what the webhook says becomes labels that silences match.
    pub webhook_listen: Option<std::net::SocketAddr>,
    /// The bearer token Alertmanager sends (`http_config.authorization.credentials`); set it
    /// with `ALERT_WATCHER_ALERTMANAGER__WEBHOOK_TOKEN`.
    pub webhook_token: Secret,
    /// Basic auth Alertmanager sends (`http_config.basic_auth`), instead of a token.
    pub webhook_username: String,
    pub webhook_password: Secret,
    /// How long after an incident's last notification it may be resolved because Alertmanager
    /// no longer has its alerts (it sends no `[RESOLVED]` for an alert silenced when it
    /// stopped; `incidents.sweep_every` says how often this is looked at). Default `5m`.
    #[serde(with = "humantime_serde")]
    pub reconcile_grace: Duration,
    /// Credentials, headers and a private CA for calling Alertmanager's API
    /// (`[alertmanager.auth]`), when it is behind authentication (Grafana Cloud, Mimir's
    /// Alertmanager, a web.config.file).
    pub auth: runtime::auth::ServerAuth,
}

/// Shortest webhook token or password accepted.
const MIN_SECRET: usize = 16;

impl AlertmanagerConfig {
    /// How the webhook's callers prove they are Alertmanager.
    pub fn webhook_auth(&self) -> Option<crate::webhook::WebhookAuth> {
        if !self.webhook_token.is_empty() {
            Some(crate::webhook::WebhookAuth::Bearer(
                self.webhook_token.clone(),
            ))
        } else if !self.webhook_username.is_empty() {
            Some(crate::webhook::WebhookAuth::Basic {
                username: self.webhook_username.clone(),
                password: self.webhook_password.clone(),
            })
        } else {
            None
        }
    }
}

/// `[incidents]`: how alerts become incidents.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentsConfig {
    /// How far before an alert's start its evidence looks. Default `15m`.
    #[serde(with = "humantime_serde")]
    pub lookback: Duration,
    /// The calm baseline before that, to compare against. Default `1h`.
    #[serde(with = "humantime_serde")]
    pub baseline: Duration,
    /// Labels naming the service an alert concerns, most specific first.
    pub service_labels: Vec<String>,
    /// An open incident not heard from for this long is marked stale in place (most sources
    /// other than Alertmanager never say an alert resolved). `0s`: never. Default `24h`.
    #[serde(with = "humantime_serde")]
    pub stale_after: Duration,
    /// How often the open incidents are looked over: compared with Alertmanager's alerts (with
    /// `alertmanager.url`) and checked for staleness. `0s`: never. Default `1m`.
    #[serde(with = "humantime_serde")]
    pub sweep_every: Duration,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            url: String::new(),
            timeout: Duration::from_secs(5),
            webhook_listen: None,
            webhook_token: Secret::default(),
            webhook_username: String::new(),
            webhook_password: Secret::default(),
            reconcile_grace: Duration::from_secs(5 * 60),
            auth: runtime::auth::ServerAuth::default(),
        }
    }
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        IncidentsConfig {
            lookback: Duration::from_secs(15 * 60),
            baseline: Duration::from_secs(60 * 60),
            service_labels: crate::recognize::DEFAULT_SERVICE_LABELS
                .iter()
                .map(|label| (*label).to_owned())
                .collect(),
            stale_after: Duration::from_secs(24 * 3600),
            sweep_every: Duration::from_secs(60),
        }
    }
}

impl runtime::ConfigSection for AlertmanagerConfig {
    fn validate(&self) -> Result<(), String> {
        let http = self.url.starts_with("http://") || self.url.starts_with("https://");
        if !(self.url.is_empty() || http) {
            return Err(format!(
                "alertmanager.url: {:?} is not an http(s) URL",
                self.url
            ));
        }
        if self.timeout.is_zero() {
            return Err("alertmanager.timeout: must be above 0".to_owned());
        }
        if !self.webhook_token.is_empty() && !self.webhook_username.is_empty() {
            return Err(
                "alertmanager.webhook_token and webhook_username: choose one of them".to_owned(),
            );
        }
        let secret = if self.webhook_username.is_empty() {
            ("webhook_token", &self.webhook_token)
        } else {
            ("webhook_password", &self.webhook_password)
        };
        if self.webhook_listen.is_some() && secret.1.is_empty() {
            return Err("alertmanager.webhook_listen: the webhook needs webhook_token (or webhook_username and webhook_password), which Alertmanager sends with http_config".to_owned());
        }
        if !secret.1.is_empty() && secret.1.expose().len() < MIN_SECRET {
            return Err(format!(
                "alertmanager.{}: at least {MIN_SECRET} characters",
                secret.0
            ));
        }
        self.auth.validate("alertmanager.auth")
    }
}

impl runtime::ConfigSection for IncidentsConfig {
    fn validate(&self) -> Result<(), String> {
        if self.service_labels.is_empty() {
            return Err(
                "incidents.service_labels: empty would never know an alert's service".to_owned(),
            );
        }
        Ok(())
    }
}

/// `[storm]`: how a storm of distinct alerts groups into few incidents (see
/// `correlate::StormRules`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StormConfig {
    /// How long after an incident opens, other firing alerts of its channel and group join it
    /// instead of opening threads of their own. `0s` turns grouping off. Default `5m`.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// What the alerts of one group share besides the channel: `service`, `severity`, `source`,
    /// `alertname`, or a label's name. Empty: every alert of a channel. Default `["service"]`.
    pub group_by: Vec<String>,
}

impl Default for StormConfig {
    fn default() -> Self {
        StormConfig {
            window: Duration::from_secs(5 * 60),
            group_by: vec!["service".to_owned()],
        }
    }
}

impl StormConfig {
    pub fn rules(&self) -> crate::correlate::StormRules {
        crate::correlate::StormRules {
            window: self.window,
            group_by: self.group_by.clone(),
        }
    }
}

impl runtime::ConfigSection for StormConfig {
    fn validate(&self) -> Result<(), String> {
        if let Some(blank) = self.group_by.iter().find(|field| field.trim().is_empty()) {
            return Err(format!("storm.group_by: {blank:?} names no field or label"));
        }
        if self.window > Duration::from_secs(24 * 60 * 60) {
            return Err(
                "storm.window: over a day would fold unrelated alerts into one incident".to_owned(),
            );
        }
        Ok(())
    }
}

/// `[[rules]]`: operator-defined formats (see `recognize::rules`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rules(pub Vec<crate::recognize::rules::RuleConfig>);

impl Rules {
    pub fn compile(&self) -> Result<Vec<crate::recognize::rules::Rule>, PatternError> {
        self.0
            .iter()
            .enumerate()
            .map(|(index, rule)| rule.compile(index))
            .collect()
    }
}

impl runtime::ConfigSection for Rules {
    fn validate(&self) -> Result<(), String> {
        self.compile().map(|_| ()).map_err(|err| err.to_string())
    }
}

/// `[[changes]]`: operator-defined formats of change messages (see `changes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChangeRules(pub Vec<crate::changes::ChangeRuleConfig>);

impl ChangeRules {
    pub fn compile(&self) -> Result<Vec<crate::changes::ChangeRule>, PatternError> {
        self.0
            .iter()
            .enumerate()
            .map(|(index, rule)| rule.compile(index))
            .collect()
    }
}

impl runtime::ConfigSection for ChangeRules {
    fn validate(&self) -> Result<(), String> {
        self.compile().map(|_| ()).map_err(|err| err.to_string())
    }
}

/// `[sandbox]`: who may accept running a shared script besides the person who shared it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxApprovalConfig {
    /// Slack user ids (`U…`) who may accept a run of anyone's script. Default none: only the
    /// uploader.
    pub approvers: Vec<String>,
}

impl runtime::ConfigSection for SandboxApprovalConfig {
    fn validate(&self) -> Result<(), String> {
        for (i, user) in self.approvers.iter().enumerate() {
            let id = user.len() >= 2
                && (user.starts_with('U') || user.starts_with('W'))
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !id {
                return Err(format!(
                    "sandbox.approvers[{i}]: {user:?} is not a Slack user id (U…)"
                ));
            }
        }
        Ok(())
    }
}

/// `[actions]`: who may press the buttons under an incident's reply and take live profiles.
/// Every list is Slack user ids; an empty list is nobody, unless `allow_anyone = true`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionsConfig {
    /// Who may silence (and expire silences).
    pub silence: Vec<String>,
    /// Who may take a live profile ("Profile now", `/profile <app> now`).
    pub profile_now: Vec<String>,
    /// Who may re-run the diagnosis.
    pub rerun: Vec<String>,
    /// Who may query the spans and trace a service whole (`/flamethread sql`, `/flamethread
    /// trace`): span attributes can hold what not everyone may read.
    pub spans: Vec<String>,
    /// Anyone who can see a reply may press its buttons. Default `false`.
    pub allow_anyone: bool,
    /// The longest silence a button may ask for (remediation-poster's `diagnosis.silence_for`
    /// says how long its button asks). Default `1h`.
    #[serde(with = "humantime_serde")]
    pub silence_for: Duration,
    /// Live profiles one person may take per hour. Default 20.
    pub live_per_person_per_hour: u32,
    /// Live profiles of one app per minute, whoever asks. Default 2.
    pub live_per_app_per_minute: u32,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        ActionsConfig {
            silence: Vec::new(),
            profile_now: Vec::new(),
            rerun: Vec::new(),
            spans: Vec::new(),
            allow_anyone: false,
            silence_for: Duration::from_secs(3600),
            live_per_person_per_hour: 20,
            live_per_app_per_minute: 2,
        }
    }
}

impl runtime::ConfigSection for ActionsConfig {
    fn validate(&self) -> Result<(), String> {
        for (key, users) in [
            ("silence", &self.silence),
            ("profile_now", &self.profile_now),
            ("rerun", &self.rerun),
            ("spans", &self.spans),
        ] {
            for (i, user) in users.iter().enumerate() {
                if !is_user_id(user) {
                    return Err(format!(
                        "actions.{key}[{i}]: {user:?} is not a Slack user id (U…)"
                    ));
                }
            }
        }
        if self.silence_for < Duration::from_secs(60)
            || self.silence_for > Duration::from_secs(7 * 86400)
        {
            return Err("actions.silence_for: from 1m to 7d".to_owned());
        }
        if self.live_per_person_per_hour == 0 || self.live_per_app_per_minute == 0 {
            return Err(
                "actions.live_per_person_per_hour and live_per_app_per_minute: at least 1 (use an empty profile_now to allow nobody)"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

fn is_user_id(user: &str) -> bool {
    user.len() >= 2
        && (user.starts_with('U') || user.starts_with('W'))
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
