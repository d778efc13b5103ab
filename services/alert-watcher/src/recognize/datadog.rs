//! Datadog monitor notifications: an attachment titled `[Triggered on {host:web-1}] High CPU on
//! checkout` (or `[Re-Triggered]`, `[Warn]`, `[No Data]`, `[Recovered]`, and `[P1] …` priorities),
//! linked to the monitor (`…/monitors/<id>`), the monitor's message as text, tags as
//! `key:value` lists.

use std::sync::LazyLock;

use proto::incident::{AlertSource, AlertStatus, Link};
use regex::Regex;

use super::{
    DEFAULT_SERVICE_LABELS, Reading, alert, service_of,
    text::{Message, field},
};

static TITLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:\[(?P<priority>P[1-5])\]\s*)?\[(?P<state>Triggered|Re-Triggered|Warn|Recovered|No Data)(?: on \{(?P<scope>[^}]*)\})?\]\s*(?P<name>.+)$",
    )
    .expect("the title pattern compiles")
});

static MONITOR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"/monitors/(?P<id>\d+)").expect("the monitor pattern compiles"));

pub(crate) fn read(message: &Message<'_>) -> Option<Vec<Reading>> {
    let attachment = message.attachments.iter().find(|attachment| {
        TITLE.is_match(field(attachment, "title").trim())
            && (field(attachment, "title_link").contains("datadog")
                || message
                    .username
                    .is_some_and(|name| name.starts_with("Datadog")))
    })?;
    let captures = TITLE.captures(field(attachment, "title").trim())?;
    let state = &captures["state"];
    let status = if state == "Recovered" {
        AlertStatus::Resolved
    } else {
        AlertStatus::Firing
    };
    let mut reading = alert(
        AlertSource::Datadog,
        status,
        captures["name"].trim().to_owned(),
    );
    let link = field(attachment, "title_link");
    if let Some(monitor) = MONITOR.captures(link) {
        reading
            .labels
            .insert("monitor_id".to_owned(), monitor["id"].to_owned());
    }
    // The scope (`host:web-1,env:prod`) and `key:value` tags in the text identify the alert.
    let scope = captures
        .name("scope")
        .map(|scope| scope.as_str())
        .unwrap_or_default();
    if !scope.is_empty() {
        // What the monitor alerts on; with the monitor id, it identifies the alert.
        reading.labels.insert("scope".to_owned(), scope.to_owned());
    }
    let text = field(attachment, "text");
    let tag_lines = text.lines().filter_map(|line| {
        line.trim()
            .strip_prefix("Tags:")
            .or_else(|| line.trim().strip_prefix("tags:"))
    });
    for tag in scope
        .split(',')
        .chain(tag_lines.flat_map(|line| line.split([',', ' '])))
    {
        if let Some((key, value)) = tag.trim().split_once(':')
            && !key.is_empty()
            && !value.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            reading.labels.insert(key.to_owned(), value.to_owned());
        }
    }
    reading.severity = captures
        .name("priority")
        .map(|priority| priority.as_str().to_owned())
        .or_else(|| (state == "Warn").then(|| "warning".to_owned()))
        .or_else(|| reading.labels.get("severity").cloned());
    reading.service = service_of(&reading.labels, DEFAULT_SERVICE_LABELS);
    if !text.trim().is_empty() {
        reading
            .annotations
            .insert("message".to_owned(), text.trim().to_owned());
    }
    if !link.is_empty() {
        reading.links.push(Link {
            title: "Datadog monitor".to_owned(),
            url: link.to_owned(),
        });
    }
    Some(vec![Reading {
        alert: reading,
        grouped: 1,
        group_values: Vec::new(),
        common_values: Vec::new(),
    }])
}
