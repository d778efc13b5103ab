//! Recognizing alerts in the messages monitoring tools post into Slack: pure functions from a
//! Slack message event (as Slack sent it, `SlackMessage::raw`) to normalized [`proto::Alert`]s.
//!
//! Each tool has its own reader, tried in order; the first that recognizes the message wins:
//!
//! | reader | recognizes |
//! |---|---|
//! | [`alertmanager`] | the default Slack template (`[FIRING:n] …` titles, link in `fallback`), and custom templates that list `Labels:` / `Annotations:` |
//! | [`grafana`] | Grafana alerting's template (`**Firing**`, `Labels:` with ` - key = value`, footer `Grafana`) |
//! | [`sentry`] | Sentry issue alerts (Block Kit linking the issue; the older attachment form) |
//! | [`datadog`] | Datadog monitors (`[Triggered on {host:…}] …`, `[Recovered] …`, linked to the monitor) |
//! | [`generic`] | any webhook: `key: value` lines or a JSON code block naming an alert |
//!
//! Operator-defined [`rules`] for in-house formats come before all of them. A message a person
//! asked to be diagnosed ([`recognize_asked`]) that none of them knows is read as an alert all the
//! same, by [`generic::asked`].
//!
//! Only integrations post alerts. A message a person wrote (no `bot_id`, not `bot_message`) is
//! never read by the built-in readers, and only by a rule that opts in with `from_people = true`:
//! anyone in a channel can type `alert: X` lines, and an incident opened from them would carry
//! buttons that act on the world.
//!
//! Alertmanager's default template shows label *values* but not their keys; those readings carry
//! the values (`group_values`, `common_values`) so that the watcher can recover the labels from
//! Alertmanager's API or its webhook.

pub mod alertmanager;
pub mod datadog;
pub mod generic;
pub mod grafana;
pub mod rules;
pub mod sentry;
pub(crate) mod text;

use std::collections::BTreeMap;

use proto::incident::{Alert, AlertSource, AlertStatus};
use serde_json::Value;

/// One alert read from a message, before correlation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub alert: Alert,
    /// How many alerts the notification says it groups (Alertmanager's `[FIRING:3]`).
    pub grouped: u32,
    /// The group's label values as Alertmanager's title shows them (keys not shown), in order;
    /// with the default `group_by` just the alert name. Stable between `[FIRING]` and
    /// `[RESOLVED]`, so it identifies the group when labels are unknown.
    pub group_values: Vec<String>,
    /// The common labels' values shown in parentheses (keys not shown).
    pub common_values: Vec<String>,
}

/// What a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recognition {
    Alerts(Vec<Reading>),
    /// Chatter, a bot's status message, anything else: counted and ignored.
    NotAnAlert,
}

/// Reads `event` (a Slack `message` event) with the built-in readers in turn.
pub fn recognize(event: &Value) -> Recognition {
    recognize_with(event, &[])
}

/// Like [`recognize`], trying the operator's rules first.
pub fn recognize_with(event: &Value, rules: &[rules::Rule]) -> Recognition {
    read(event, rules, written_by_person(event))
}

/// A message a person asked to be diagnosed (the message shortcut, `@flamethread diagnose`): the
/// person asking vouches for it, so every reader and rule reads it whoever wrote it, and when
/// none knows it, the message itself is the alert ([`generic::asked`]).
pub fn recognize_asked(event: &Value, rules: &[rules::Rule]) -> Vec<Reading> {
    match read(event, rules, false) {
        Recognition::Alerts(readings) => readings,
        Recognition::NotAnAlert => vec![generic::asked(&text::Message::of(event))],
    }
}

/// The readers in turn; `by_person` limits them to the rules that read people.
fn read(event: &Value, rules: &[rules::Rule], by_person: bool) -> Recognition {
    let custom: Vec<Reading> = rules
        .iter()
        .filter(|rule| !by_person || rule.reads_people())
        .filter_map(|rule| rule.read(event))
        .take(1)
        .collect();
    if !custom.is_empty() {
        return Recognition::Alerts(custom);
    }
    if by_person {
        return Recognition::NotAnAlert;
    }
    let message = text::Message::of(event);
    for reader in [
        alertmanager::read,
        grafana::read,
        sentry::read,
        datadog::read,
        generic::read,
    ] {
        if let Some(readings) = reader(&message)
            && !readings.is_empty()
        {
            return Recognition::Alerts(readings);
        }
    }
    Recognition::NotAnAlert
}

/// Whether a person wrote `event`: Slack marks what integrations and apps post with a `bot_id`
/// (incoming webhooks also with `subtype: bot_message`).
pub fn written_by_person(event: &Value) -> bool {
    let bot = event
        .get("bot_id")
        .and_then(Value::as_str)
        .is_some_and(|id| !id.is_empty());
    !bot && event.get("subtype").and_then(Value::as_str) != Some("bot_message")
}

/// Bounds on what an alert may carry, so that an incident (with its storm's related alerts) stays
/// far below NATS's 1 MiB payload: a hostile or runaway alert degrades by losing annotations and
/// long values, never by being dead-lettered.
pub mod limits {
    pub const NAME: usize = 256;
    pub const LABELS: usize = 64;
    pub const LABEL_KEY: usize = 128;
    pub const LABEL_VALUE: usize = 1024;
    pub const ANNOTATIONS: usize = 32;
    pub const ANNOTATION_VALUE: usize = 2048;
    pub const LINKS: usize = 10;
    pub const LINK: usize = 2048;
    /// The whole alert, as JSON; past it, annotations go first, then links.
    pub const ALERT_BYTES: usize = 16 * 1024;
}

fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max.saturating_sub('…'.len_utf8());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
}

/// `alert` within [`limits`] (see [`bound`]).
pub fn bounded(mut alert: Alert) -> Alert {
    bound(&mut alert);
    alert
}

/// Brings `alert` within [`limits`]: long values cut (marked `…`), extra labels, annotations and
/// links dropped, then annotations and links dropped whole until it fits.
pub fn bound(alert: &mut Alert) {
    cut(&mut alert.name, limits::NAME);
    let bound_map = |map: &mut BTreeMap<String, String>, count: usize, value_max: usize| {
        *map = std::mem::take(map)
            .into_iter()
            .take(count)
            .map(|(mut key, mut value)| {
                cut(&mut key, limits::LABEL_KEY);
                cut(&mut value, value_max);
                (key, value)
            })
            .collect();
    };
    let labels_before = alert.labels.clone();
    bound_map(&mut alert.labels, limits::LABELS, limits::LABEL_VALUE);
    if alert.labels != labels_before {
        // Cut or dropped labels would make a silence that matches nothing or too much.
        alert.labels_confirmed = false;
        alert.alertmanager_fingerprints.clear();
    }
    bound_map(
        &mut alert.annotations,
        limits::ANNOTATIONS,
        limits::ANNOTATION_VALUE,
    );
    alert.links.truncate(limits::LINKS);
    alert
        .links
        .retain(|link| link.url.len() <= limits::LINK && link.title.len() <= limits::LINK);
    for field in [&mut alert.severity, &mut alert.service]
        .into_iter()
        .flatten()
    {
        cut(field, limits::LABEL_VALUE);
    }
    let size = |alert: &Alert| serde_json::to_vec(alert).map_or(0, |json| json.len());
    while size(alert) > limits::ALERT_BYTES {
        if let Some(longest) = alert
            .annotations
            .iter()
            .max_by_key(|(_, value)| value.len())
            .map(|(key, _)| key.clone())
        {
            alert.annotations.remove(&longest);
        } else if alert.links.pop().is_none() {
            break;
        }
    }
}

/// Labels that name the service an alert concerns, most specific first.
pub const DEFAULT_SERVICE_LABELS: &[&str] = &[
    "service",
    "app",
    "app_kubernetes_io_name",
    "application",
    "job",
    "container",
    "deployment",
    "pod",
    "namespace",
];

/// The service an alert concerns: the first of `keys` present in `labels`. A pod name loses its
/// ReplicaSet and pod hashes (`checkout-7d9f8b6c5d-x2x9k` → `checkout`).
pub fn service_of(labels: &BTreeMap<String, String>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| {
        let value = labels.get(*key)?.trim();
        if value.is_empty() {
            return None;
        }
        Some(if *key == "pod" {
            text::strip_pod_hashes(value)
        } else {
            value.to_owned()
        })
    })
}

fn alert(source: AlertSource, status: AlertStatus, name: String) -> Alert {
    Alert {
        source,
        status,
        name,
        severity: None,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        starts_at: None,
        links: Vec::new(),
        service: None,
        labels_confirmed: false,
        alertmanager_fingerprints: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
