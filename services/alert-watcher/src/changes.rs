//! Changes other tools announce in Slack, read like alerts (pure): a deploy bot, Argo CD's and
//! Flux's notifications, and operator `[[changes]]` rules for in-house formats. What is read is a
//! [`NewChange`], checked and bounded by `proto` like one from the markers API, then recorded on
//! `change.recorded` so the next incident's thread can say what changed before it.
//!
//! | reader | recognizes |
//! |---|---|
//! | Argo CD | the notifications catalog's `app-deployed` ("Application X is now running new version of deployments manifests.") and `app-sync-succeeded` ("Application X has been successfully synced at …") templates, with the `Revision` field and the application's link |
//! | Flux | notification-controller's Slack alerts for a `HelmRelease` or `Kustomization` (`author_name` `helmrelease/name.namespace`, "Helm upgrade succeeded…", "Reconciliation finished…", the `revision` field) |
//!
//! As with alerts, only integrations announce changes: a message a person wrote is read only by a
//! rule with `from_people = true`.
//!
//! ```toml
//! [[changes]]
//! name = "jenkins"
//! bot_id = "B0JENKINS"
//! pattern = '^Deployed (?P<service>[\w-]+) (?P<version>\S+) to (?P<environment>\w+) by (?P<who>.+)$'
//! kind = "deploy"
//! ```

use proto::{ChangeKind, NewChange};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::recognize::{
    rules::{PatternError, posted_by},
    text::field,
    written_by_person,
};

/// One `[[changes]]` rule as configured.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRuleConfig {
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
    /// Applied to the message text and each attachment's title and text; named groups `service`
    /// (required), `version`, `environment`, `who`, `url`, `message`.
    pub pattern: String,
    /// Default `deploy`.
    #[serde(default)]
    pub kind: Option<ChangeKind>,
    /// Whether messages people wrote may match. Default `false`.
    #[serde(default)]
    pub from_people: bool,
}

/// A rule ready to match.
#[derive(Debug, Clone)]
pub struct ChangeRule {
    config: ChangeRuleConfig,
    pattern: Regex,
}

impl ChangeRuleConfig {
    /// Compiles the rule; the error names what is wrong (`changes[1].pattern: …`).
    pub fn compile(&self, index: usize) -> Result<ChangeRule, PatternError> {
        let key = || format!("changes[{index}].pattern");
        let pattern = PatternError::compile(key, &self.pattern)?;
        if !pattern
            .capture_names()
            .flatten()
            .any(|name| name == "service")
        {
            return Err(PatternError::MissingGroup {
                key: key(),
                group: "service",
                what: "what changed",
            });
        }
        Ok(ChangeRule {
            config: self.clone(),
            pattern,
        })
    }
}

fn attachments(event: &Value) -> impl Iterator<Item = &Value> {
    event
        .get("attachments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The texts a message shows: its text, and each attachment's title, text and fallback.
fn texts(event: &Value) -> Vec<&str> {
    let mut texts = vec![field(event, "text")];
    for attachment in attachments(event) {
        texts.extend([
            field(attachment, "title"),
            field(attachment, "pretext"),
            field(attachment, "text"),
        ]);
    }
    texts.retain(|text| !text.is_empty());
    texts
}

/// The value of the attachment field titled `title` (case-insensitive), if any.
fn attachment_field<'a>(event: &'a Value, title: &str) -> Option<&'a str> {
    attachments(event)
        .flat_map(|attachment| {
            attachment
                .get("fields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .find(|f| field(f, "title").eq_ignore_ascii_case(title))
        .map(|f| field(f, "value"))
        .filter(|value| !value.is_empty())
}

impl ChangeRule {
    fn read(&self, event: &Value) -> Option<NewChange> {
        let config = &self.config;
        if !posted_by(event, &config.channel, &config.bot_id, &config.username) {
            return None;
        }
        let captures = texts(event)
            .into_iter()
            .find_map(|text| self.pattern.captures(text))?;
        let group = |name: &str| {
            captures
                .name(name)
                .map(|value| value.as_str().trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        Some(NewChange {
            service: group("service")?,
            version: group("version"),
            environment: group("environment"),
            who: group("who"),
            url: group("url"),
            message: group("message"),
            kind: self.config.kind,
            ..NewChange::default()
        })
    }
}

/// The change `event` announces, if it announces one.
pub fn read(event: &Value, rules: &[ChangeRule]) -> Option<NewChange> {
    let by_person = written_by_person(event);
    if let Some(change) = rules
        .iter()
        .filter(|rule| !by_person || rule.config.from_people)
        .find_map(|rule| rule.read(event))
    {
        return Some(change);
    }
    if by_person {
        return None;
    }
    argocd(event).or_else(|| flux(event))
}

/// `.../applications/<name>` or an https URL in `text`, up to whitespace.
fn url_in(text: &str) -> Option<String> {
    let start = text.find("https://").or_else(|| text.find("http://"))?;
    let url: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '<' | '>' | '|'))
        .collect();
    Some(url.trim_end_matches(['.', ',']).to_owned())
}

/// Argo CD's notification catalog (`app-deployed`, `app-sync-succeeded`).
fn argocd(event: &Value) -> Option<NewChange> {
    const DEPLOYED: &str = " is now running new version of deployments manifests";
    const SYNCED: &str = " has been successfully synced";
    let text = texts(event).into_iter().find(|text| {
        text.contains("Application ") && (text.contains(DEPLOYED) || text.contains(SYNCED))
    })?;
    let after = &text[text.find("Application ")? + "Application ".len()..];
    let name: String = after
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .collect();
    if name.is_empty() {
        return None;
    }
    let link = attachments(event)
        .map(|attachment| field(attachment, "title_link"))
        .find(|link| !link.is_empty())
        .map(str::to_owned)
        .or_else(|| url_in(text));
    Some(NewChange {
        service: name,
        version: attachment_field(event, "Revision").map(short_revision),
        who: Some("Argo CD".to_owned()),
        url: link,
        message: Some(
            text.lines()
                .next()
                .unwrap_or(text)
                .trim_start_matches(":white_check_mark:")
                .trim()
                .to_owned(),
        ),
        kind: Some(ChangeKind::Deploy),
        ..NewChange::default()
    })
}

/// Flux notification-controller's Slack alerts for a release that was upgraded or installed.
fn flux(event: &Value) -> Option<NewChange> {
    attachments(event).find_map(|attachment| {
        let author = field(attachment, "author_name");
        let (kind, object) = author.split_once('/')?;
        if !matches!(
            kind.to_ascii_lowercase().as_str(),
            "helmrelease" | "kustomization"
        ) {
            return None;
        }
        let text = field(attachment, "text");
        let changed = [
            "upgrade succeeded",
            "install succeeded",
            "Reconciliation finished",
        ]
        .iter()
        .any(|said| text.contains(said));
        if !changed {
            return None;
        }
        // A name may hold dots; a namespace (a DNS label) cannot.
        let (name, namespace) = object.rsplit_once('.').unwrap_or((object, ""));
        let version = attachment_field(event, "revision")
            .map(short_revision)
            .or_else(|| {
                // "… with chart podinfo@6.5.4"
                let chart = text.rsplit_once('@')?.1;
                Some(chart.trim_end_matches('.').to_owned())
            });
        Some(NewChange {
            service: name.to_owned(),
            environment: (!namespace.is_empty()).then(|| namespace.to_owned()),
            version,
            who: Some("Flux".to_owned()),
            message: Some(text.lines().next().unwrap_or(text).to_owned()),
            kind: Some(ChangeKind::Deploy),
            ..NewChange::default()
        })
    })
}

/// A git revision shortened for people (`main@sha1:0123456789abcdef…` → `main@sha1:0123456`).
fn short_revision(revision: &str) -> String {
    let revision = revision.trim();
    let (prefix, sha) = match revision.rsplit_once(':') {
        Some((prefix, sha)) => (format!("{prefix}:"), sha),
        None => (String::new(), revision),
    };
    if sha.len() >= 12 && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        format!("{prefix}{}", &sha[..7])
    } else {
        revision.chars().take(128).collect()
    }
}

#[cfg(test)]
mod tests;
