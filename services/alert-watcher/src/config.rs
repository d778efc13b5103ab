//! alert-watcher's own configuration sections (`[alertmanager]`, `[incidents]`, `[storm]`,
//! `[[rules]]`, `[sandbox]`).

use std::time::Duration;

use serde::Deserialize;

/// `[alertmanager]`: where to recover what Alertmanager's default Slack template leaves out.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    /// Alertmanager's base URL, e.g. `http://alertmanager:9093`. Empty (the default): labels
    /// are not recovered, and Alertmanager's alerts are told apart by the values in their titles.
    pub url: String,
    /// How long one API call may take. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Where to receive Alertmanager's webhook (`POST /alertmanager`), e.g. `0.0.0.0:9180`.
    /// Default none (off).
    pub webhook_listen: Option<std::net::SocketAddr>,
}

/// `[incidents]`: how alerts become incidents.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        AlertmanagerConfig {
            url: String::new(),
            timeout: Duration::from_secs(5),
            webhook_listen: None,
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
        Ok(())
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Rules(pub Vec<crate::recognize::rules::RuleConfig>);

impl Rules {
    pub fn compile(&self) -> Result<Vec<crate::recognize::rules::Rule>, String> {
        self.0
            .iter()
            .enumerate()
            .map(|(index, rule)| rule.compile(index))
            .collect()
    }
}

impl runtime::ConfigSection for Rules {
    fn validate(&self) -> Result<(), String> {
        self.compile().map(|_| ())
    }
}

/// `[sandbox]`: who may accept running a shared script besides the person who shared it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
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

/// `[actions]`: who may press the buttons under an incident's reply.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionsConfig {
    /// Slack user ids (`U…`) who may silence (and expire silences). Empty: anyone who sees the
    /// reply.
    pub silence: Vec<String>,
    /// Who may take a live profile. Empty: anyone.
    pub profile_now: Vec<String>,
    /// Who may re-run the diagnosis. Empty: anyone.
    pub rerun: Vec<String>,
    /// How long "Silence 1h" silences. Default `1h`.
    #[serde(with = "humantime_serde")]
    pub silence_for: Duration,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        ActionsConfig {
            silence: Vec::new(),
            profile_now: Vec::new(),
            rerun: Vec::new(),
            silence_for: Duration::from_secs(3600),
        }
    }
}

impl runtime::ConfigSection for ActionsConfig {
    fn validate(&self) -> Result<(), String> {
        for (key, users) in [
            ("silence", &self.silence),
            ("profile_now", &self.profile_now),
            ("rerun", &self.rerun),
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
