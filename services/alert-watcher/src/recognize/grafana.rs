//! Grafana alerting's Slack contact point.
//!
//! The default template posts an attachment titled like Alertmanager's (`[FIRING:2] HighCPU
//! (checkout)`), footer `Grafana v…`, and a text that lists every alert:
//!
//! ```text
//! **Firing**
//!
//! Value: B=97.1
//! Labels:
//!  - alertname = HighCPU
//!  - service = checkout
//! Annotations:
//!  - summary = CPU above 90%
//! Source: http://grafana:3000/alerting/grafana/abc/view
//! Silence: http://grafana:3000/alerting/silence/new?…
//! ```
//!
//! followed by a `**Resolved**` section for alerts that resolved in the same notification.

use proto::incident::{AlertSource, AlertStatus, Link};

use super::{
    DEFAULT_SERVICE_LABELS, Reading, alert, alertmanager, service_of,
    text::{Message, field, pair},
};

#[derive(Clone, Copy, PartialEq)]
enum Section {
    None,
    Labels,
    Annotations,
}

pub(crate) fn read(message: &Message<'_>) -> Option<Vec<Reading>> {
    let (text, title) = grafana_text(message)?;
    let title = alertmanager::parse_title(title);
    let mut readings = alert_lists(text, title.as_ref());
    for reading in &mut readings {
        finish(&mut reading.alert, title.as_ref());
    }
    readings.retain(|reading| !reading.alert.name.is_empty());
    if readings.is_empty()
        && let Some(title) = title
    {
        // A customized text without label lists: the title still names the alert.
        readings.push(Reading {
            alert: alert(
                AlertSource::Grafana,
                title.status,
                title.group_values[0].clone(),
            ),
            grouped: title.count,
            group_values: title.group_values,
            common_values: title.common_values,
        });
    }
    Some(readings)
}

/// The text and title of Grafana's notification in `message` (its attachment, or the message's
/// own text), or `None` when nothing says Grafana posted it.
fn grafana_text<'a>(message: &Message<'a>) -> Option<(&'a str, &'a str)> {
    let (attachment_text, footer, title) = message
        .attachments
        .iter()
        .map(|attachment| {
            (
                field(attachment, "text"),
                field(attachment, "footer"),
                field(attachment, "title"),
            )
        })
        .find(|(text, footer, _)| footer.starts_with("Grafana") || is_grafana_text(text))
        .unwrap_or((message.text, "", ""));
    let from_grafana = footer.starts_with("Grafana")
        || message
            .username
            .is_some_and(|name| name.starts_with("Grafana"))
        || is_grafana_text(attachment_text);
    from_grafana.then_some((attachment_text, title))
}

/// Each alert the text lists (`**Firing**`/`**Resolved**` sections of `Labels:` and
/// `Annotations:` lists, with the `Value:` before and the links after each), unnamed yet.
fn alert_lists(attachment_text: &str, title: Option<&alertmanager::Title>) -> Vec<Reading> {
    let mut readings = Vec::new();
    let mut status = title.map_or(AlertStatus::Firing, |title| title.status);
    let mut section = Section::None;
    let mut current: Option<Reading> = None;
    // `Value:` comes before the `Labels:` of the alert it belongs to.
    let mut pending_value: Option<String> = None;
    for line in attachment_text.lines() {
        let trimmed = line.trim();
        match trimmed {
            "**Firing**" => {
                status = AlertStatus::Firing;
                continue;
            }
            "**Resolved**" => {
                status = AlertStatus::Resolved;
                continue;
            }
            "Labels:" => {
                readings.extend(current.take());
                let mut next = alert(AlertSource::Grafana, status, String::new());
                if let Some(value) = pending_value.take() {
                    next.annotations.insert("value".to_owned(), value);
                }
                current = Some(Reading {
                    alert: next,
                    grouped: title.map_or(1, |title| title.count),
                    group_values: Vec::new(),
                    common_values: Vec::new(),
                });
                section = Section::Labels;
                continue;
            }
            "Annotations:" => {
                section = Section::Annotations;
                continue;
            }
            _ => {}
        }
        if let Some(value) = trimmed.strip_prefix("Value: ") {
            pending_value = Some(value.to_owned());
            continue;
        }
        let Some(reading) = current.as_mut() else {
            continue;
        };
        if let Some((label, url)) = trimmed.split_once(": ")
            && matches!(
                label,
                "Source" | "Silence" | "Dashboard" | "Panel" | "Runbook"
            )
            && url.starts_with("http")
        {
            reading.alert.links.push(Link {
                title: label.to_owned(),
                url: url.trim().to_owned(),
            });
            section = Section::None;
            continue;
        }
        if trimmed.starts_with("- ")
            && let Some((key, value)) = pair(trimmed)
        {
            match section {
                Section::Labels => reading.alert.labels.insert(key, value),
                Section::Annotations => reading.alert.annotations.insert(key, value),
                Section::None => None,
            };
        }
    }
    readings.extend(current);
    readings
}

fn is_grafana_text(text: &str) -> bool {
    (text.contains("**Firing**") || text.contains("**Resolved**")) && text.contains("Labels:")
}

/// Name, severity and service, from the labels (the title names the alert when they do not).
fn finish(alert: &mut proto::incident::Alert, title: Option<&alertmanager::Title>) {
    let labels = &alert.labels;
    alert.name = labels
        .get("alertname")
        .cloned()
        .or_else(|| title.map(|title| title.group_values[0].clone()))
        .unwrap_or_default();
    alert.severity = alert.labels.get("severity").cloned();
    alert.service = service_of(&alert.labels, DEFAULT_SERVICE_LABELS);
}
