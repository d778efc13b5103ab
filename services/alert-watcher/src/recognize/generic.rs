//! Any webhook: a message whose text (or an attachment's) is `key: value` lines or a JSON code
//! block that names an alert (`alertname`, `alert`, `alert_name` or `title`), with an optional
//! status (`resolved`, `ok`, `recovered` and `closed` mean resolved).

use std::{collections::BTreeMap, sync::LazyLock};

use proto::incident::{AlertSource, AlertStatus, Link};
use regex::Regex;
use serde_json::Value;

use super::{
    DEFAULT_SERVICE_LABELS, Reading, alert, service_of,
    text::{Message, field, links, pair},
};

const NAME_KEYS: &[&str] = &["alertname", "alert", "alert_name", "title"];
const STATUS_KEYS: &[&str] = &["status", "state"];
const ANNOTATION_KEYS: &[&str] = &[
    "summary",
    "description",
    "message",
    "runbook",
    "runbook_url",
];

pub(crate) fn read(message: &Message<'_>) -> Option<Vec<Reading>> {
    let texts = std::iter::once(message.text).chain(
        message
            .attachments
            .iter()
            .map(|attachment| field(attachment, "text")),
    );
    for text in texts {
        let pairs = json_block(text).or_else(|| key_value_lines(text));
        if let Some(pairs) = pairs
            && let Some(reading) = reading(pairs, text)
        {
            return Some(vec![reading]);
        }
    }
    None
}

/// A message a person asked to be diagnosed that no reader knows: the message itself is the
/// alert. Its first line (or an attachment's title) names it, `key: value` lines are its labels
/// (so a `service:` line points the evidence at a service), and the text is its description.
pub(crate) fn asked(message: &Message<'_>) -> Reading {
    let attachment_text = |key: &str| {
        message
            .attachments
            .iter()
            .map(|attachment| field(attachment, key))
            .find(|text| !text.trim().is_empty())
            .unwrap_or_default()
    };
    let text = if message.text.trim().is_empty() {
        attachment_text("text")
    } else {
        message.text
    };
    let first_line = |text: &str| {
        text.lines()
            .map(|line| {
                line.replace(['*', '`', '_', '~', '>'], " ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .find(|line| !line.is_empty())
    };
    let name = first_line(attachment_text("title"))
        .or_else(|| first_line(text))
        .unwrap_or_else(|| "A message asked about".to_owned());
    // A person writing `service: checkout` under their words means it: one pair is enough.
    let mut pairs = json_block(text)
        .or_else(|| key_value_lines_at_least(text, 1))
        .unwrap_or_default();
    for key in NAME_KEYS.iter().chain(STATUS_KEYS) {
        pairs.remove(*key);
    }
    let mut alert = alert(AlertSource::Generic, AlertStatus::Firing, name);
    if !text.trim().is_empty() {
        alert
            .annotations
            .insert("description".to_owned(), text.to_owned());
    }
    alert.severity = pairs.get("severity").cloned();
    alert.service = service_of(&pairs, DEFAULT_SERVICE_LABELS);
    alert.labels = pairs;
    alert.links = links(text)
        .into_iter()
        .map(|(title, url)| Link { title, url })
        .collect();
    Reading {
        alert,
        grouped: 1,
        group_values: Vec::new(),
        common_values: Vec::new(),
    }
}

/// `"key": "value"` string members, for a JSON block Slack cut short (its text limit) that no
/// longer parses: what is still there is still the alert.
static STRING_MEMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#""(?P<key>[A-Za-z_][\w.-]*)"\s*:\s*"(?P<value>(?:[^"\\]|\\.)*)""#)
        .expect("the member pattern compiles")
});

/// The first ```` ``` ```` block of `text` that is a JSON object, flattened to strings.
fn json_block(text: &str) -> Option<BTreeMap<String, String>> {
    let start = text.find("```")? + 3;
    let (body, cut) = match text[start..].find("```") {
        Some(end) => (&text[start..start + end], false),
        None => (&text[start..], true),
    };
    let body = body.trim().trim_start_matches("json").trim();
    if !body.starts_with('{') {
        return None;
    }
    let parsed = serde_json::from_str::<Value>(body);
    let object = match parsed {
        Ok(Value::Object(object)) => object,
        Err(err) if cut || err.is_eof() => {
            let pairs: BTreeMap<String, String> = STRING_MEMBER
                .captures_iter(body)
                .map(|member| (member["key"].to_owned(), member["value"].to_owned()))
                .collect();
            return (!pairs.is_empty()).then_some(pairs);
        }
        _ => return None,
    };
    let mut pairs = BTreeMap::new();
    for (key, value) in object {
        match value {
            Value::String(text) => {
                pairs.insert(key, text);
            }
            Value::Number(number) => {
                pairs.insert(key, number.to_string());
            }
            Value::Bool(flag) => {
                pairs.insert(key, flag.to_string());
            }
            Value::Object(nested) if key == "labels" || key == "annotations" => {
                for (inner, value) in nested {
                    if let Value::String(text) = value {
                        pairs.insert(inner, text);
                    }
                }
            }
            _ => {}
        }
    }
    Some(pairs)
}

/// `key: value` lines, when at least two lines are pairs.
fn key_value_lines(text: &str) -> Option<BTreeMap<String, String>> {
    key_value_lines_at_least(text, 2)
}

/// `key: value` lines, when at least `least` lines are pairs.
fn key_value_lines_at_least(text: &str, least: usize) -> Option<BTreeMap<String, String>> {
    let plain = text.replace(['*', '`'], "");
    let pairs: BTreeMap<String, String> = plain
        .lines()
        .filter_map(|line| pair(line.trim()))
        .map(|(key, value)| (key.to_ascii_lowercase(), value))
        .collect();
    (pairs.len() >= least).then_some(pairs)
}

fn reading(mut pairs: BTreeMap<String, String>, text: &str) -> Option<Reading> {
    let name = NAME_KEYS
        .iter()
        .find_map(|key| pairs.get(*key).filter(|name| !name.trim().is_empty()))?
        .trim()
        .to_owned();
    let status = STATUS_KEYS
        .iter()
        .find_map(|key| pairs.get(*key))
        .map(|status| status.to_ascii_lowercase());
    let status = match status.as_deref() {
        Some("resolved" | "ok" | "recovered" | "closed") => AlertStatus::Resolved,
        _ => AlertStatus::Firing,
    };
    let mut reading = alert(AlertSource::Generic, status, name);
    for key in ANNOTATION_KEYS {
        if let Some(value) = pairs.remove(*key) {
            reading.annotations.insert((*key).to_owned(), value);
        }
    }
    for key in NAME_KEYS.iter().chain(STATUS_KEYS) {
        pairs.remove(*key);
    }
    reading.severity = pairs
        .get("severity")
        .or_else(|| pairs.get("priority"))
        .cloned();
    reading.service = service_of(&pairs, DEFAULT_SERVICE_LABELS);
    reading.labels = pairs;
    reading.links = links(text)
        .into_iter()
        .map(|(title, url)| Link { title, url })
        .collect();
    Some(Reading {
        alert: reading,
        grouped: 1,
        group_values: Vec::new(),
        common_values: Vec::new(),
    })
}
