//! The parts of a Slack message readers look at, and the text helpers they share.

use std::collections::BTreeMap;

use serde_json::Value;

/// A Slack message event, seen through what alert readers need.
#[derive(Debug, Clone)]
pub(crate) struct Message<'a> {
    pub(crate) text: &'a str,
    pub(crate) username: Option<&'a str>,
    /// Posted by an integration (a `bot_id`), not a person.
    pub(crate) from_bot: bool,
    pub(crate) attachments: Vec<&'a Value>,
    pub(crate) blocks: Vec<&'a Value>,
}

impl<'a> Message<'a> {
    pub(crate) fn of(event: &'a Value) -> Message<'a> {
        let list = |key: &str| -> Vec<&'a Value> {
            event
                .get(key)
                .and_then(Value::as_array)
                .map(|items| items.iter().collect())
                .unwrap_or_default()
        };
        Message {
            text: event
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            username: event.get("username").and_then(Value::as_str),
            from_bot: event.get("bot_id").and_then(Value::as_str).is_some(),
            attachments: list("attachments"),
            blocks: list("blocks"),
        }
    }
}

pub(crate) fn field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `Labels:` / `Annotations:` sections: lines ` - key = value` or `key: value` (or `key=value`)
/// under a heading, until a blank line or another heading.
pub(crate) fn sections(text: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let mut sections: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for line in text.lines() {
        let trimmed = unmark(line.trim());
        if let Some(heading) = trimmed.strip_suffix(':').filter(|h| is_heading(h)) {
            sections.push((heading.to_ascii_lowercase(), BTreeMap::new()));
            continue;
        }
        if trimmed.is_empty() {
            continue;
        }
        let Some((_, pairs)) = sections.last_mut() else {
            continue;
        };
        match pair(trimmed) {
            Some((key, value)) => {
                pairs.insert(key, value);
            }
            None => {
                // A line that is not a pair ends the section.
                sections.push(("".to_owned(), BTreeMap::new()));
            }
        }
    }
    sections.retain(|(heading, pairs)| !heading.is_empty() && !pairs.is_empty());
    sections
}

fn is_heading(text: &str) -> bool {
    matches!(
        text.to_ascii_lowercase().as_str(),
        "labels" | "annotations" | "common labels" | "common annotations" | "details"
    )
}

/// `- key = value`, `key = value`, `key: value`, `key=value`; keys are label-like.
pub(crate) fn pair(line: &str) -> Option<(String, String)> {
    let line = line.trim_start_matches(['-', '*', '•']).trim();
    let (key, value) = line
        .split_once(" = ")
        .or_else(|| line.split_once(": "))
        .or_else(|| line.split_once('='))?;
    let key = unmark(key.trim());
    let value = unmark(value.trim());
    let label_like = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    label_like.then(|| (key.to_owned(), value.to_owned()))
}

/// Strips Slack mrkdwn emphasis and code marks around a piece of text.
pub(crate) fn unmark(text: &str) -> &str {
    text.trim_matches(|c| matches!(c, '*' | '_' | '`' | '~'))
}

/// `<https://x|label>` and `<https://x>` links in mrkdwn.
pub(crate) fn links(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        let inner = &rest[start + 1..start + end];
        let (url, label) = inner.split_once('|').unwrap_or((inner, inner));
        if url.starts_with("http://") || url.starts_with("https://") {
            found.push((label.to_owned(), url.to_owned()));
        }
        rest = &rest[start + end + 1..];
    }
    found
}

/// `checkout-7d9f8b6c5d-x2x9k` → `checkout`; `db-0` (a StatefulSet) → `db`.
pub(crate) fn strip_pod_hashes(pod: &str) -> String {
    let parts: Vec<&str> = pod.split('-').collect();
    let is_hash = |part: &str, len: usize| {
        part.len() == len
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    let mut keep = parts.len();
    if keep > 1 && is_hash(parts[keep - 1], 5) {
        keep -= 1;
        if keep > 1 && (9..=10).any(|len| is_hash(parts[keep - 1], len)) {
            keep -= 1;
        }
    } else if keep > 1 && parts[keep - 1].chars().all(|c| c.is_ascii_digit()) {
        keep -= 1;
    }
    parts[..keep].join("-")
}
