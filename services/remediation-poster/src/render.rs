//! Rendering a reply record as Slack will show it: Block Kit blocks plus a plain-text fallback
//! (notifications, screen readers, clients that cannot show blocks), kept inside Slack's limits
//! by [`fit`] — truncated with a clear "… and N more", never refused.
//!
//! Pure functions over [`ReplyRecord`] and a [`View`] (the diagnosis rules and the trace link).
//! An incident's reply leads with the diagnosis: what is wrong, the facts with their numbers,
//! what to try, and how sure it is; then the metrics, the profile and the buttons.

use std::{collections::BTreeMap, fmt::Write as _};

use proto::{
    Incident, MetricsEvidence, PostRequest, ProfileEvidence, SandboxResult, actions,
    evidence::{EvidenceStatus, FunctionShare, Trend},
    incident::AlertStatus,
    sandbox::SandboxOutcome,
    slack::{IncidentButton, duration_text},
};
use serde_json::{Value, json};

use crate::{
    diagnose::{Confidence, Diagnosis, RuleSet},
    record::ReplyRecord,
};

/// What rendering needs besides the record: the diagnosis rules and the trace link template.
#[derive(Debug)]
pub struct View {
    pub rules: RuleSet,
    /// A URL with `{trace_id}`, or empty.
    pub trace_url: String,
    /// How long evidence may take before the reply says it is late.
    pub evidence_deadline: std::time::Duration,
    /// How long the "Silence" button asks to silence for.
    pub silence_for: std::time::Duration,
}

/// Slack's limits (docs.slack.dev: blocks, section text, header text, message text).
pub const MAX_BLOCKS: usize = 50;
pub const MAX_SECTION_TEXT: usize = 3000;
pub const MAX_HEADER_TEXT: usize = 150;
/// Slack truncates message text past 40,000 characters; notifications show far less.
pub const MAX_TEXT: usize = 4000;
/// Top functions listed in a reply.
const TOP_FUNCTIONS: usize = 8;

/// A message ready for `chat.postMessage` / `chat.update`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub blocks: Vec<Value>,
}

impl Default for View {
    fn default() -> View {
        View {
            rules: RuleSet::default(),
            trace_url: String::new(),
            evidence_deadline: std::time::Duration::from_secs(60),
            silence_for: std::time::Duration::from_secs(3600),
        }
    }
}

/// Renders `record` with the built-in rules and no trace link.
pub fn render(record: &ReplyRecord, marker: &str) -> Rendered {
    render_with(record, marker, &View::default())
}

/// Renders `record`. `marker` becomes the first block's `block_id`, so that the reply can be
/// found in its thread after a crash between posting it and recording its `ts`.
pub fn render_with(record: &ReplyRecord, marker: &str, view: &View) -> Rendered {
    let content = &record.content;
    let rendered = if let Some(incident) = &content.incident {
        incident_reply(
            incident,
            content.metrics.as_ref(),
            content.profile.as_ref(),
            content.trace_id.as_deref(),
            content.evidence_overdue,
            view,
        )
    } else if let Some(post) = &content.post {
        post_reply(post)
    } else if let Some(result) = &content.sandbox {
        sandbox_reply(result)
    } else if let Some(profile) = &content.profile {
        let mut blocks = vec![header(&format!("Profile of {}", profile.app))];
        blocks.extend(profile_blocks(Some(profile)));
        Rendered {
            text: format!(
                "Profile of {}: {}",
                profile.app,
                profile_summary(Some(profile))
            ),
            blocks,
        }
    } else {
        Rendered {
            text: "flamethread is working on it…".to_owned(),
            blocks: Vec::new(),
        }
    };
    let mut fitted = fit(rendered);
    if let Some(first) = fitted.blocks.first_mut() {
        first["block_id"] = json!(marker);
    }
    fitted
}

pub use proto::slack::escape;

fn header(text: &str) -> Value {
    json!({"type": "header", "text": {"type": "plain_text", "text": text, "emoji": true}})
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn context(text: &str) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
}

fn button(text: &str, action_id: &str, value: &str) -> Value {
    json!({"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id, "value": value})
}

/// Slack's confirm dialog for a silence: its matchers and duration, as plain text (never
/// markup), within the dialog's 300 characters.
fn silence_dialog(matchers: &BTreeMap<String, String>, duration: std::time::Duration) -> Value {
    const MAX_DIALOG_TEXT: usize = 300;
    let head = format!(
        "For {}, Alertmanager will not notify alerts matching all of:",
        duration_text(duration)
    );
    let mut text = head.clone();
    for (shown, (name, value)) in matchers.iter().enumerate() {
        let line = format!("\n{name}=\"{value}\"");
        let rest = matchers.len() - shown;
        let more = format!("\n… and {rest} more (listed in the thread once made)");
        if text.chars().count() + line.chars().count() + more.chars().count() > MAX_DIALOG_TEXT {
            text.push_str(&more);
            break;
        }
        text.push_str(&line);
    }
    json!({
        "title": {"type": "plain_text", "text": "Silence this alert?"},
        "text": {"type": "plain_text", "text": text, "emoji": false},
        "confirm": {"type": "plain_text", "text": "Silence"},
        "deny": {"type": "plain_text", "text": "Cancel"},
        "style": "danger",
    })
}

fn incident_reply(
    incident: &Incident,
    metrics: Option<&MetricsEvidence>,
    profile: Option<&ProfileEvidence>,
    trace_id: Option<&str>,
    overdue: bool,
    view: &View,
) -> Rendered {
    let alert = &incident.alert;
    let service = alert.service.as_deref().unwrap_or("unknown service");
    let resolved = incident.resolved_at.is_some();
    let title = if resolved {
        format!("✅ Resolved · {} · {service}", alert.name)
    } else {
        format!("🔥 {} · {service}", alert.name)
    };
    let started = alert.starts_at.unwrap_or(incident.opened_at);
    let status = match incident.resolved_at {
        Some(at) => format!(
            "Resolved at {} after {}",
            at.format("%H:%M UTC"),
            lasted((at - started).num_seconds())
        ),
        None => format!(
            "Firing since {}",
            alert
                .starts_at
                .unwrap_or(incident.opened_at)
                .format("%H:%M UTC")
        ),
    };
    let mut blocks = vec![
        header(&title),
        json!({"type": "section", "fields": [
            {"type": "mrkdwn", "text": format!("*Status*\n{status}")},
            {"type": "mrkdwn", "text": format!("*Severity*\n{}", escape(alert.severity.as_deref().unwrap_or("unknown")))},
            {"type": "mrkdwn", "text": format!("*Service*\n{}", escape(service))},
            {"type": "mrkdwn", "text": format!("*Notifications*\n{}", incident.notification_count)},
        ]}),
    ];
    let diagnosis = view.rules.diagnose(incident, metrics, profile);
    let late = overdue.then_some(view.evidence_deadline);
    blocks.extend(diagnosis_blocks(diagnosis.as_ref(), metrics, profile, late));
    if let Some(storm) = related_text(incident) {
        blocks.push(section(&storm));
    }
    let late_note = |what: &str| {
        late.map(|deadline| {
            format!(
                "*{what}* did not arrive within {}s: profile-fetcher may be down or its sources slow.",
                deadline.as_secs()
            )
        })
    };
    match (metrics, late_note("Metrics")) {
        (None, Some(note)) => blocks.push(section(&note)),
        _ => blocks.push(section(&metrics_text(metrics))),
    }
    match (profile, late_note("Profile")) {
        (None, Some(note)) => blocks.push(section(&note)),
        _ => blocks.extend(profile_blocks(profile)),
    }
    let trace = trace_id
        .map(|trace| {
            if view.trace_url.is_empty() {
                format!(" · trace `{}`", escape(trace))
            } else {
                format!(
                    " · trace <{}|{}>",
                    view.trace_url.replace("{trace_id}", trace),
                    escape(trace)
                )
            }
        })
        .unwrap_or_default();
    blocks.push(context(&format!(
        "incident `{}` · {:?} alert · window {} – {} UTC{trace}",
        escape(&incident.id.0),
        alert.source,
        incident.window.from.format("%H:%M"),
        incident.window.to.format("%H:%M"),
    )));
    if !resolved {
        // The incident and its fingerprint, which is where alert-watcher keeps its state.
        let reference = IncidentButton {
            incident_id: incident.id.0.clone(),
            fingerprint: incident.fingerprint.clone(),
            silence_seconds: None,
        };
        let mut buttons = Vec::new();
        // Silence only what Alertmanager confirmed, after a dialog that shows what it matches.
        if let Some(matchers) = alert.silence_matchers() {
            let value = IncidentButton {
                silence_seconds: Some(view.silence_for.as_secs()),
                ..reference.clone()
            };
            let mut silence = button(
                &format!("Silence {}", duration_text(view.silence_for)),
                actions::SILENCE_1H,
                &value.value(),
            );
            silence["confirm"] = silence_dialog(&matchers, view.silence_for);
            buttons.push(silence);
        }
        buttons.push(button(
            "Re-run diagnosis",
            actions::RERUN,
            &reference.value(),
        ));
        buttons.push(button(
            "Profile now",
            actions::PROFILE_NOW,
            &reference.value(),
        ));
        blocks.push(json!({"type": "actions", "block_id": "ft-actions", "elements": buttons}));
    }
    let lead = diagnosis
        .as_ref()
        .map(|diagnosis| format!("{} ", diagnosis.summary))
        .unwrap_or_default();
    let text = format!(
        "{}: {} on {service}. {lead}{} {}",
        alert.name,
        if resolved { "resolved" } else { "firing" },
        metrics_summary(metrics),
        profile_summary(profile),
    );
    Rendered {
        text: text.trim().to_owned(),
        blocks,
    }
}

/// The diagnosis, first in the reply: what is wrong and how sure, the facts, what to try.
fn diagnosis_blocks(
    diagnosis: Option<&Diagnosis>,
    metrics: Option<&MetricsEvidence>,
    profile: Option<&ProfileEvidence>,
    late: Option<std::time::Duration>,
) -> Vec<Value> {
    let waiting: Vec<&str> = [
        (metrics.is_none(), "metrics"),
        (profile.is_none(), "profile"),
    ]
    .into_iter()
    .filter_map(|(missing, what)| missing.then_some(what))
    .collect();
    let pending = match (waiting.is_empty(), late) {
        (true, _) => String::new(),
        (false, None) => format!(" _(still waiting for the {})_", waiting.join(" and the ")),
        (false, Some(deadline)) => format!(
            " _(the {} did not arrive within {}s)_",
            waiting.join(" and the "),
            deadline.as_secs()
        ),
    };
    let Some(diagnosis) = diagnosis else {
        let text = if waiting.len() == 2 && late.is_none() {
            "*Diagnosis* _gathering evidence…_".to_owned()
        } else {
            format!(
                "*Diagnosis* none of the rules holds on this evidence, so no guess: read the metrics and the profile below.{pending}"
            )
        };
        return vec![section(&text)];
    };
    let confidence = match diagnosis.confidence {
        Confidence::High => "high confidence",
        Confidence::Medium => "medium confidence",
        Confidence::Low => "low confidence",
    };
    let mut text = format!(
        "*Diagnosis* ({confidence}){pending}\n{}",
        escape(&diagnosis.summary)
    );
    for fact in &diagnosis.facts {
        let _ = write!(text, "\n• {}", escape(fact));
    }
    let mut blocks = vec![section(&text)];
    if !diagnosis.remediations.is_empty() || diagnosis.runbook.is_some() {
        let mut steps = "*Try*".to_owned();
        if let Some(runbook) = &diagnosis.runbook {
            let _ = write!(steps, "\n• <{}|The alert's runbook>", runbook);
        }
        for step in &diagnosis.remediations {
            let _ = write!(steps, "\n• `{}`", escape(step));
        }
        blocks.push(section(&steps));
    }
    blocks.push(context(&format!("rule `{}`", escape(&diagnosis.rule))));
    blocks
}

/// `45s`, `12m`, `3h 5m`, `2d 4h`: how long something lasted, for people.
fn lasted(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    ) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, minutes) => format!("{minutes}m"),
        (0, hours, 0) => format!("{hours}h"),
        (0, hours, minutes) => format!("{hours}h {minutes}m"),
        (days, hours, _) => format!("{days}d {hours}h"),
    }
}

/// The storm's other alerts grouped into this incident, one line each (the fit keeps whole lines).
fn related_text(incident: &Incident) -> Option<String> {
    if incident.related.is_empty() && incident.related_untracked == 0 {
        return None;
    }
    let mut text = format!(
        "*Also in this storm* ({} more alerts)",
        incident.related.len() + incident.related_untracked as usize
    );
    for related in &incident.related {
        let mark = match related.alert.status {
            AlertStatus::Firing => "🔥",
            AlertStatus::Resolved => "✅",
        };
        let _ = write!(
            text,
            "\n{mark} {} · {} · ×{}",
            escape(&related.alert.name),
            escape(
                related
                    .alert
                    .service
                    .as_deref()
                    .unwrap_or("unknown service")
            ),
            related.notification_count,
        );
    }
    if incident.related_untracked > 0 {
        let _ = write!(
            text,
            "\n… and {} notifications of further alerts",
            incident.related_untracked
        );
    }
    Some(text)
}

fn status_detail(status: &EvidenceStatus) -> Option<String> {
    match status {
        EvidenceStatus::Ok => None,
        EvidenceStatus::NoData { detail } => Some(format!("no data: {}", escape(detail))),
        EvidenceStatus::Failed { detail } => Some(format!("failed: {}", escape(detail))),
        EvidenceStatus::TimedOut { detail } => Some(format!("timed out: {}", escape(detail))),
    }
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.3}"))
}

fn metrics_text(metrics: Option<&MetricsEvidence>) -> String {
    let Some(metrics) = metrics else {
        return "*Metrics* _gathering…_".to_owned();
    };
    if let Some(detail) = status_detail(&metrics.status) {
        return format!("*Metrics* {detail}");
    }
    let mut text = "*Metrics* (now vs baseline)".to_owned();
    for series in &metrics.series {
        let arrow = match series.trend {
            Trend::Rising => "↑",
            Trend::Falling => "↓",
            Trend::Flat => "→",
            Trend::Unknown => "",
        };
        if let Some(detail) = status_detail(&series.status) {
            let _ = write!(text, "\n• `{}` {detail}", escape(&series.name));
            continue;
        }
        let unit = series
            .unit
            .as_deref()
            .filter(|unit| !unit.is_empty())
            .map(|unit| format!(" {}", escape(unit)))
            .unwrap_or_default();
        let _ = write!(
            text,
            "\n• `{}` {}{unit} vs {}{unit} (peak {}) {arrow}",
            escape(&series.name),
            number(series.current),
            number(series.baseline),
            number(series.peak),
        );
    }
    if let Some(url) = &metrics.chart_url {
        let _ = write!(text, "\n<{url}|Chart of these series>");
    }
    text
}

fn metrics_summary(metrics: Option<&MetricsEvidence>) -> String {
    match metrics {
        None => "Metrics: gathering.".to_owned(),
        Some(metrics) => match status_detail(&metrics.status) {
            Some(detail) => format!("Metrics {detail}."),
            None => format!("{} metric series.", metrics.series.len()),
        },
    }
}

fn profile_blocks(profile: Option<&ProfileEvidence>) -> Vec<Value> {
    let Some(profile) = profile else {
        return vec![section("*Profile* _gathering…_")];
    };
    if let Some(detail) = status_detail(&profile.status) {
        return vec![section(&format!(
            "*Profile* of `{}`: {detail}",
            escape(&profile.app)
        ))];
    }
    let title = format!("*Where the CPU went* in `{}`", escape(&profile.app));
    let mut blocks = vec![section(&top_functions(title, &profile.top_functions))];
    if !profile.grown.is_empty() {
        let mut grown = "*Grew since the baseline*".to_owned();
        for function in &profile.grown {
            let _ = write!(
                grown,
                "\n• `{}` {:.1}% → {:.1}%",
                escape(&function.name),
                function.baseline_share * 100.0,
                function.current_share * 100.0
            );
        }
        blocks.push(section(&grown));
    }
    let links: Vec<String> = [
        (profile.flamegraph_url.as_deref(), "Flamegraph"),
        (profile.diff_url.as_deref(), "Diff vs baseline"),
    ]
    .into_iter()
    .filter_map(|(url, label)| url.map(|url| format!("<{url}|{label}>")))
    .collect();
    if !links.is_empty() {
        blocks.push(context(&links.join(" · ")));
    }
    blocks
}

/// `title`, then the first functions ranked by self time, then how many more there are.
fn top_functions(mut text: String, functions: &[FunctionShare]) -> String {
    for (rank, function) in functions.iter().take(TOP_FUNCTIONS).enumerate() {
        let _ = write!(
            text,
            "\n{}. `{}` {:.1}%",
            rank + 1,
            escape(&function.name),
            function.self_share * 100.0
        );
    }
    if functions.len() > TOP_FUNCTIONS {
        let _ = write!(text, "\n… and {} more", functions.len() - TOP_FUNCTIONS);
    }
    text
}

fn profile_summary(profile: Option<&ProfileEvidence>) -> String {
    match profile {
        None => "Profile: gathering.".to_owned(),
        Some(profile) => match (
            status_detail(&profile.status),
            profile.top_functions.first(),
        ) {
            (Some(detail), _) => format!("Profile {detail}."),
            (None, Some(top)) => format!("Top: {} {:.1}%.", top.name, top.self_share * 100.0),
            (None, None) => "Profile: empty.".to_owned(),
        },
    }
}

fn post_reply(post: &PostRequest) -> Rendered {
    let blocks = match &post.blocks {
        Some(Value::Array(blocks)) => blocks.clone(),
        _ => vec![section(&escape(&post.text))],
    };
    Rendered {
        text: post.text.clone(),
        blocks,
    }
}

fn sandbox_reply(result: &SandboxResult) -> Rendered {
    let outcome = match &result.outcome {
        SandboxOutcome::Exited { code: 0 } => "finished".to_owned(),
        SandboxOutcome::Exited { code } => format!("exited with code {code}"),
        SandboxOutcome::TimedOut => "was stopped at its time limit".to_owned(),
        SandboxOutcome::OutOfMemory => "ran out of memory".to_owned(),
        SandboxOutcome::Rejected { reason } => format!("was not run: {}", escape(reason)),
        SandboxOutcome::Failed { reason } => format!("could not be run: {}", escape(reason)),
    };
    let mut blocks = vec![section(&format!(
        "*Sandbox run* {outcome} in {:.1} s",
        result.wall_ms as f64 / 1000.0
    ))];
    for (label, tail, truncated) in [
        ("stdout", &result.stdout_tail, result.stdout_truncated),
        ("stderr", &result.stderr_tail, result.stderr_truncated),
    ] {
        if !tail.trim().is_empty() {
            let note = if truncated { " (last lines)" } else { "" };
            blocks.push(section(&format!(
                "*{label}*{note}\n```{}```",
                escape(tail.trim_end())
            )));
        }
    }
    if let Some(profile) = &result.profile {
        let title = format!("*Where the CPU went* ({} samples)", profile.total_samples);
        blocks.push(section(&top_functions(title, &profile.top_functions)));
        if let Some(url) = &profile.flamegraph_url {
            blocks.push(context(&format!("<{url}|Flamegraph>")));
        }
    }
    Rendered {
        text: format!("Sandbox run {outcome}"),
        blocks,
    }
}

/// Keeps a message inside Slack's limits: section texts over 3,000 characters lose their last
/// lines ("… and N more lines"), headers are cut at 150, more than 50 blocks keep the first ones
/// and the trailing actions with a note of how many were left out, and the fallback text is cut.
pub fn fit(rendered: Rendered) -> Rendered {
    let mut blocks: Vec<Value> = rendered.blocks.into_iter().map(fit_block).collect();
    if blocks.len() > MAX_BLOCKS {
        let actions = blocks
            .last()
            .filter(|block| block["type"] == "actions")
            .cloned();
        let room = MAX_BLOCKS - 1 - usize::from(actions.is_some());
        let omitted = blocks.len() - room - usize::from(actions.is_some());
        blocks.truncate(room);
        blocks.push(context(&format!("… and {omitted} more sections not shown")));
        blocks.extend(actions);
    }
    Rendered {
        text: truncate_chars(&rendered.text, MAX_TEXT, "…"),
        blocks,
    }
}

fn fit_block(mut block: Value) -> Value {
    let limit = if block["type"] == "header" {
        MAX_HEADER_TEXT
    } else {
        MAX_SECTION_TEXT
    };
    let fitted = match block.pointer("/text/text").and_then(Value::as_str) {
        Some(current) if current.chars().count() > limit => {
            if limit == MAX_HEADER_TEXT {
                truncate_chars(current, limit, "…")
            } else {
                truncate_lines(current, limit)
            }
        }
        _ => return block,
    };
    if let Some(text) = block.pointer_mut("/text/text") {
        *text = json!(fitted);
    }
    block
}

/// At most `limit` characters, ending with `ellipsis` when cut.
fn truncate_chars(text: &str, limit: usize, ellipsis: &str) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let keep = limit.saturating_sub(ellipsis.chars().count());
    let mut cut: String = text.chars().take(keep).collect();
    cut.push_str(ellipsis);
    cut
}

/// Whole lines up to `limit` characters, then "… and N more lines".
fn truncate_lines(text: &str, limit: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = String::new();
    let mut kept_chars = 0;
    let mut count = 0;
    // Room for the note that says how many lines were left out.
    let note_room = 40;
    for line in &lines {
        let line_chars = line.chars().count();
        if kept_chars + line_chars + 1 + note_room > limit {
            break;
        }
        if count > 0 {
            kept.push('\n');
        }
        kept.push_str(line);
        kept_chars += line_chars + usize::from(count > 0);
        count += 1;
    }
    if count == 0 {
        // One enormous line: cut it.
        return truncate_chars(text, limit, "… (truncated)");
    }
    let omitted = lines.len() - count;
    // A code block cut in the middle must still close.
    let fence = if kept.matches("```").count() % 2 == 1 {
        "```"
    } else {
        ""
    };
    format!("{kept}{fence}\n… and {omitted} more lines")
}

#[cfg(test)]
mod tests;
