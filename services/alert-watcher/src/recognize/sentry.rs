//! Sentry's Slack integration: issue alerts as Block Kit (no attachments) — a section whose text
//! links the issue (`<https://acme.sentry.io/issues/4242/?referrer=slack…|*TypeError: …*>`), then
//! the culprit, then context elements such as `Project: checkout`, `Environment: production`,
//! `Level: error`, `Short ID: CHECKOUT-1A` — and the older attachment form (title linking the
//! issue, footer naming the project).

use std::sync::LazyLock;

use proto::incident::{AlertSource, AlertStatus, Link};
use regex::Regex;
use serde_json::Value;

use super::{
    DEFAULT_SERVICE_LABELS, Reading, alert, service_of,
    text::{Message, field, links, pair},
};

static ISSUE_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^https://[^/]*sentry[^/]*/(?:organizations/[^/]+/)?issues/(?P<id>\d+)")
        .expect("the issue URL pattern compiles")
});

/// Every mrkdwn text in the blocks, in order (section texts and fields, context elements).
fn block_texts(blocks: &[&Value]) -> Vec<String> {
    let mut texts = Vec::new();
    for block in blocks {
        if let Some(text) = block.pointer("/text/text").and_then(Value::as_str) {
            texts.push(text.to_owned());
        }
        for key in ["fields", "elements"] {
            for element in block
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(text) = element.get("text").and_then(Value::as_str) {
                    texts.push(text.to_owned());
                }
            }
        }
    }
    texts
}

pub(crate) fn read(message: &Message<'_>) -> Option<Vec<Reading>> {
    let mut texts = block_texts(&message.blocks);
    for attachment in &message.attachments {
        let title = field(attachment, "title");
        let link = field(attachment, "title_link");
        if !title.is_empty() && ISSUE_URL.is_match(link) {
            texts.insert(0, format!("<{link}|{title}>"));
            texts.push(field(attachment, "text").to_owned());
            if let Some((project, environment)) = field(attachment, "footer").split_once(" | ") {
                texts.push(format!("Project: {project}\nEnvironment: {environment}"));
            }
        }
    }
    let (issue_id, title, url) = texts.iter().find_map(|text| {
        links(text).into_iter().find_map(|(label, url)| {
            let id = ISSUE_URL.captures(&url)?["id"].to_owned();
            Some((id, label.trim_matches('*').trim().to_owned(), url))
        })
    })?;
    if title.is_empty() {
        return None;
    }
    let resolved = texts
        .iter()
        .any(|text| text.contains("Resolved") || text.contains(":white_check_mark:"));
    let mut reading = alert(
        AlertSource::Sentry,
        if resolved {
            AlertStatus::Resolved
        } else {
            AlertStatus::Firing
        },
        title,
    );
    reading.labels.insert("issue_id".to_owned(), issue_id);
    for text in &texts {
        // Context lines put several pairs on one line, separated by wide spaces or pipes.
        for part in text
            .replace(['*', '`'], "")
            .split(['\n', '|'])
            .flat_map(|part| part.split("   "))
        {
            if let Some((key, value)) = pair(part.trim()) {
                let key = key.to_ascii_lowercase().replace(' ', "_");
                if matches!(
                    key.as_str(),
                    "project" | "environment" | "level" | "short_id" | "release"
                ) {
                    reading.labels.insert(key, value);
                }
            }
        }
    }
    reading.severity = reading.labels.get("level").cloned();
    reading.service = service_of(&reading.labels, DEFAULT_SERVICE_LABELS)
        .or_else(|| reading.labels.get("project").cloned());
    reading.links.push(Link {
        title: "Sentry issue".to_owned(),
        url,
    });
    Some(vec![Reading {
        alert: reading,
        grouped: 1,
        group_values: Vec::new(),
        common_values: Vec::new(),
    }])
}
