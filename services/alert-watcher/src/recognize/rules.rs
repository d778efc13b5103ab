//! Operator-defined rules for in-house formats (`[[rules]]` in the config): which messages (by
//! channel, bot or display name) and a regular expression whose named groups become the alert's
//! labels. `alertname` (required) names it; `service`, `severity` and `summary` fill those fields;
//! `resolved_pattern`, when it matches, marks the message as a resolution. Rules are tried before
//! the built-in readers: the operator knows their own formats best.
//!
//! ```toml
//! [[rules]]
//! name = "legacy pager"
//! bot_id = "B0PAGER"
//! pattern = '^ALERT (?P<alertname>\w+) on (?P<service>[\w-]+)(?: sev=(?P<severity>\w+))?'
//! resolved_pattern = '^OK '
//! ```

use proto::incident::{AlertSource, AlertStatus};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::{Reading, alert, text::field};

/// One rule as configured.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// For logs and metrics.
    pub name: String,
    /// Only messages in this channel (id). Default any.
    #[serde(default)]
    pub channel: Option<String>,
    /// Only messages from this bot (`B…`). Default any.
    #[serde(default)]
    pub bot_id: Option<String>,
    /// Only messages shown under this name (`username`). Default any.
    #[serde(default)]
    pub username: Option<String>,
    /// Applied to the message text and to each attachment's title and text.
    pub pattern: String,
    #[serde(default)]
    pub resolved_pattern: Option<String>,
    /// Whether messages people wrote (not an integration) may match. Default `false`: anyone in
    /// a channel can type text that looks like an alert.
    #[serde(default)]
    pub from_people: bool,
}

/// Why an operator's pattern (`[[rules]]`, `[[changes]]`) cannot be used; the key names the rule.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("{key}: {source}")]
    Regex {
        key: String,
        #[source]
        source: regex::Error,
    },
    #[error("{key}: needs a named group (?P<{group}>…) for {what}")]
    MissingGroup {
        key: String,
        group: &'static str,
        what: &'static str,
    },
}

impl PatternError {
    /// `pattern` compiled, naming `key` when it does not.
    pub fn compile(key: impl FnOnce() -> String, pattern: &str) -> Result<Regex, PatternError> {
        Regex::new(pattern).map_err(|source| PatternError::Regex { key: key(), source })
    }
}

/// A rule ready to match.
#[derive(Debug, Clone)]
pub struct Rule {
    config: RuleConfig,
    pattern: Regex,
    resolved: Option<Regex>,
}

impl RuleConfig {
    /// Compiles the rule; the error names what is wrong (`rules[1].pattern: …`).
    pub fn compile(&self, index: usize) -> Result<Rule, PatternError> {
        let key = || format!("rules[{index}].pattern");
        let pattern = PatternError::compile(key, &self.pattern)?;
        if !pattern
            .capture_names()
            .flatten()
            .any(|name| name == "alertname")
        {
            return Err(PatternError::MissingGroup {
                key: key(),
                group: "alertname",
                what: "the alert's name",
            });
        }
        let resolved = self
            .resolved_pattern
            .as_deref()
            .map(|resolved| {
                PatternError::compile(|| format!("rules[{index}].resolved_pattern"), resolved)
            })
            .transpose()?;
        Ok(Rule {
            config: self.clone(),
            pattern,
            resolved,
        })
    }
}

/// Whether `event` was posted where and by whom an operator rule says: each of `channel`,
/// `bot_id` and `username` that is set must equal the event's (shared by `[[rules]]` and
/// `[[changes]]`).
pub(crate) fn posted_by(
    event: &Value,
    channel: &Option<String>,
    bot_id: &Option<String>,
    username: &Option<String>,
) -> bool {
    let wanted = |configured: &Option<String>, key: &str| {
        configured
            .as_deref()
            .is_none_or(|value| field(event, key) == value)
    };
    wanted(channel, "channel") && wanted(bot_id, "bot_id") && wanted(username, "username")
}

impl Rule {
    /// Whether the operator let this rule read messages people wrote.
    pub fn reads_people(&self) -> bool {
        self.config.from_people
    }

    fn applies_to(&self, event: &Value) -> bool {
        posted_by(
            event,
            &self.config.channel,
            &self.config.bot_id,
            &self.config.username,
        )
    }

    /// The alert this rule reads in `event`, if it applies and matches.
    pub fn read(&self, event: &Value) -> Option<Reading> {
        if !self.applies_to(event) {
            return None;
        }
        let mut texts = vec![field(event, "text").to_owned()];
        for attachment in event
            .get("attachments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            texts.push(field(attachment, "title").to_owned());
            texts.push(field(attachment, "text").to_owned());
        }
        let (text, captures) = texts
            .iter()
            .find_map(|text| Some((text, self.pattern.captures(text)?)))?;
        let resolved = self
            .resolved
            .as_ref()
            .is_some_and(|resolved| texts.iter().any(|text| resolved.is_match(text)));
        let name = captures.name("alertname")?.as_str().trim().to_owned();
        if name.is_empty() {
            return None;
        }
        let status = if resolved {
            AlertStatus::Resolved
        } else {
            AlertStatus::Firing
        };
        let mut reading = alert(AlertSource::Custom, status, name);
        for group in self.pattern.capture_names().flatten() {
            if let Some(value) = captures.name(group) {
                match group {
                    "alertname" => {}
                    "summary" => {
                        reading
                            .annotations
                            .insert("summary".to_owned(), value.as_str().to_owned());
                    }
                    _ => {
                        reading
                            .labels
                            .insert(group.to_owned(), value.as_str().to_owned());
                    }
                }
            }
        }
        reading
            .labels
            .insert("rule".to_owned(), self.config.name.clone());
        reading.severity = reading.labels.get("severity").cloned();
        reading.service = reading.labels.get("service").cloned();
        tracing::trace!(rule = %self.config.name, text = %text, "rule matched");
        Some(Reading {
            alert: reading,
            grouped: 1,
            group_values: Vec::new(),
            common_values: Vec::new(),
        })
    }
}
