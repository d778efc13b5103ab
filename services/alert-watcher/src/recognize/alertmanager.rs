//! Prometheus Alertmanager's Slack notifier.
//!
//! The default template posts one attachment: title `[FIRING:<n>] <group label values> (<common
//! label values>)` or `[RESOLVED] …`, empty text, colour `danger`/`good`, and the link to
//! Alertmanager only in `fallback` (`… | http://am:9093/#/alerts?receiver=…`) and `title_link`.
//! Label keys are not in the message: the values are kept as `unkeyed_values` for the watcher to
//! match against Alertmanager's API. Custom templates often list the labels
//! (`Labels:` / `Details:` with `key: value` or ` - key = value` lines); those are read in full.

use std::{collections::BTreeMap, sync::LazyLock};

use proto::incident::{AlertSource, AlertStatus, Link};
use regex::Regex;

use super::{
    DEFAULT_SERVICE_LABELS, Reading, alert, service_of,
    text::{Message, field, sections},
};

static TITLE: LazyLock<Regex> = LazyLock::new(|| {
    // Grafana's variant adds `, RESOLVED:<n>` when some alerts of the group resolved.
    Regex::new(
        r"^\[(?P<status>FIRING|RESOLVED)(?::(?P<count>\d+))?(?:, RESOLVED:\d+)?\]\s*(?P<rest>.*)$",
    )
    .expect("the title pattern compiles")
});

static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z_][A-Za-z0-9_:.-]*$").expect("the name pattern compiles")
});

/// A parsed `[FIRING:n] …` title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title {
    pub status: AlertStatus,
    pub count: u32,
    /// Group label values, in order (with the default `group_by`, the alert name).
    pub group_values: Vec<String>,
    /// The common labels' values shown in parentheses.
    pub common_values: Vec<String>,
}

/// Parses an Alertmanager-style title; `None` when it is not one.
pub fn parse_title(title: &str) -> Option<Title> {
    let captures = TITLE.captures(title.trim())?;
    let status = match &captures["status"] {
        "FIRING" => AlertStatus::Firing,
        _ => AlertStatus::Resolved,
    };
    let count = captures
        .name("count")
        .and_then(|count| count.as_str().parse().ok())
        .unwrap_or(1);
    let rest = captures["rest"].trim();
    let (group, common) = match rest.rfind(" (") {
        Some(open) if rest.ends_with(')') => (&rest[..open], &rest[open + 2..rest.len() - 1]),
        _ => (rest, ""),
    };
    let words =
        |text: &str| -> Vec<String> { text.split_whitespace().map(str::to_owned).collect() };
    let group_values = words(group);
    // The first value is the alert name (the default `group_by`): a metric-like name, which
    // keeps prose that happens to start with "[FIRING]" out.
    if !group_values.first().is_some_and(|name| NAME.is_match(name)) {
        return None;
    }
    Some(Title {
        status,
        count,
        group_values,
        common_values: words(common),
    })
}

pub(crate) fn read(message: &Message<'_>) -> Option<Vec<Reading>> {
    let attachment = message
        .attachments
        .iter()
        .find(|attachment| parse_title(field(attachment, "title")).is_some());
    let (title, body, link) = match attachment {
        Some(attachment) => {
            let fallback = field(attachment, "fallback");
            let link = Some(field(attachment, "title_link"))
                .filter(|link| !link.is_empty())
                .or_else(|| fallback.rsplit_once(" | ").map(|(_, link)| link.trim()))
                .filter(|link| link.starts_with("http"));
            let mut body = field(attachment, "text").to_owned();
            if body.is_empty() {
                body = message.text.to_owned();
            }
            (
                parse_title(field(attachment, "title"))?,
                body,
                link.map(str::to_owned),
            )
        }
        // Some templates put everything in the message text, title on the first line; only a
        // bot's message, never a person quoting one.
        None if message.from_bot => {
            let first = message.text.lines().next().unwrap_or_default();
            let title = parse_title(&first.replace(['*', '`'], ""))?;
            (title, message.text.to_owned(), None)
        }
        None => return None,
    };
    // Grafana's messages look alike; its reader knows them better.
    if body.contains("**Firing**") || body.contains("**Resolved**") {
        return None;
    }

    let links: Vec<Link> = link
        .into_iter()
        .map(|url| Link {
            title: "Alertmanager".to_owned(),
            url,
        })
        .collect();
    let listed = listed_alerts(&body);
    let readings = if listed.is_empty() {
        let mut reading = alert(
            AlertSource::Alertmanager,
            title.status,
            title.group_values[0].clone(),
        );
        reading.links = links;
        vec![Reading {
            alert: reading,
            grouped: title.count,
            group_values: title.group_values.clone(),
            common_values: title.common_values.clone(),
        }]
    } else {
        listed
            .into_iter()
            .map(|(labels, annotations)| {
                let name = labels
                    .get("alertname")
                    .cloned()
                    .unwrap_or_else(|| title.group_values[0].clone());
                let mut reading = alert(AlertSource::Alertmanager, title.status, name);
                reading.severity = labels.get("severity").cloned();
                reading.service = service_of(&labels, DEFAULT_SERVICE_LABELS);
                reading.labels = labels;
                reading.annotations = annotations;
                reading.links = links.clone();
                Reading {
                    alert: reading,
                    grouped: title.count,
                    group_values: Vec::new(),
                    common_values: Vec::new(),
                }
            })
            .collect()
    };
    Some(readings)
}

type Pairs = BTreeMap<String, String>;

/// Alerts listed by a custom template: each `Labels:` (or `Details:`) section starts one, an
/// `Annotations:` section after it belongs to it.
fn listed_alerts(body: &str) -> Vec<(Pairs, Pairs)> {
    let plain = body.replace(['*', '`'], "");
    let mut alerts: Vec<(Pairs, Pairs)> = Vec::new();
    for (heading, pairs) in sections(&plain) {
        match heading.as_str() {
            "labels" | "details" | "common labels" => alerts.push((pairs, Pairs::new())),
            "annotations" | "common annotations" => match alerts.last_mut() {
                Some((_, annotations)) => annotations.extend(pairs),
                None => alerts.push((Pairs::new(), pairs)),
            },
            _ => {}
        }
    }
    alerts.retain(|(labels, _)| !labels.is_empty());
    alerts
}
