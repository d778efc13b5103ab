//! Rendering a reply record as Slack will show it: Block Kit blocks plus a plain-text fallback
//! (notifications, screen readers, clients that cannot show blocks), kept inside Slack's limits
//! by [`fit`] — truncated with a clear "… and N more", never refused.
//!
//! Pure functions over [`ReplyRecord`] and a [`View`] (the diagnosis rules and the trace link).
//! An incident's reply leads with the diagnosis: what is wrong, the facts with their numbers,
//! what to try, and how sure it is; then the metrics, the profile and the buttons.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use proto::{
    ChangesEvidence, Incident, MetricsEvidence, Mrkdwn, PostRequest, ProfileEvidence,
    SandboxResult, TracesEvidence, WorkloadEvidence, actions,
    evidence::{EvidenceStatus, FunctionShare, Trend},
    incident::AlertStatus,
    mrkdwn,
    mrkdwn::blocks,
    sandbox::{LimitHit, SandboxOutcome},
    slack::{ButtonValue as _, IncidentButton, duration_text},
};
use serde_json::{Value, json};

use crate::{
    diagnose::{Confidence, Diagnosis, RuleSet},
    record::{Content, ReplyRecord},
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
    /// Show the metrics as Slack chart blocks in the reply.
    pub chart_blocks: bool,
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
    pub text: Mrkdwn,
    pub blocks: Vec<Value>,
}

impl Default for View {
    fn default() -> View {
        View {
            rules: RuleSet::default(),
            trace_url: String::new(),
            evidence_deadline: std::time::Duration::from_secs(60),
            silence_for: std::time::Duration::from_secs(3600),
            chart_blocks: true,
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
        incident_reply(incident, content, view)
    } else if let Some(post) = content.post.as_ref().filter(|_| !answered(content)) {
        post_reply(post)
    } else if let Some(result) = &content.sandbox {
        sandbox_reply(result)
    } else if let Some(profile) = &content.profile {
        let mut blocks = vec![header(&format!("Profile of {}", profile.app))];
        blocks.extend(profile_blocks(Some(profile)));
        Rendered {
            text: mrkdwn!(
                "Profile of {}: {}",
                profile.app,
                profile_summary(Some(profile))
            ),
            blocks,
        }
    } else {
        Rendered {
            text: mrkdwn!("flamethread is working on it…"),
            blocks: Vec::new(),
        }
    };
    let mut fitted = fit(rendered);
    if let Some(first) = fitted.blocks.first_mut() {
        first["block_id"] = json!(marker);
    }
    fitted
}

/// Plain text: Slack never reads it as markup.
fn header(text: &str) -> Value {
    blocks::header(text).into_json()
}

fn section(text: Mrkdwn) -> Value {
    blocks::section(text).into_json()
}

fn context(text: Mrkdwn) -> Value {
    blocks::context(text).into_json()
}

/// The silence lengths offered: 30 minutes, 1 hour, 4 hours and a day, up to `longest` (the
/// configured length, always offered).
fn silence_durations(longest: std::time::Duration) -> Vec<std::time::Duration> {
    const STANDARD: [u64; 4] = [1800, 3600, 4 * 3600, 24 * 3600];
    let mut offered: Vec<std::time::Duration> = STANDARD
        .into_iter()
        .map(std::time::Duration::from_secs)
        .filter(|duration| *duration < longest)
        .collect();
    offered.push(longest);
    // Up to an hour, one length is a button; above it, shorter ones are worth offering too.
    if longest <= std::time::Duration::from_secs(3600) {
        return vec![longest];
    }
    offered
}

/// Slack's confirm dialog for a silence: its matchers and duration, as plain text (never
/// markup), within the dialog's 300 characters.
fn silence_dialog(
    matchers: &BTreeMap<String, String>,
    duration: Option<std::time::Duration>,
) -> String {
    const MAX_DIALOG_TEXT: usize = 300;
    let head = match duration {
        Some(duration) => format!(
            "For {}, Alertmanager will not notify alerts matching all of:",
            duration_text(duration)
        ),
        None => "For as long as you picked, Alertmanager will not notify alerts matching all of:"
            .to_owned(),
    };
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
    text
}

fn incident_reply(incident: &Incident, content: &Content, view: &View) -> Rendered {
    let metrics = content.metrics.as_ref();
    let profile = content.profile.as_ref();
    let changes = content.changes.as_ref();
    let workload = content.workload.as_ref();
    let trace_id = content.trace_id.as_deref();
    let overdue = content.evidence_overdue;
    let alert = &incident.alert;
    let service = alert.service.as_deref().unwrap_or("unknown service");
    let resolved = incident.resolved_at.is_some();
    let stale = incident.stale_since.is_some() && !resolved;
    let title = if resolved {
        format!("✅ Resolved · {} · {service}", alert.name)
    } else if stale {
        format!("⏳ Stale · {} · {service}", alert.name)
    } else {
        format!("🔥 {} · {service}", alert.name)
    };
    let started = alert.starts_at.unwrap_or(incident.opened_at);
    let status = match incident.resolved_at {
        Some(at) => mrkdwn!(
            "Resolved at {} after {}",
            clock(at),
            lasted((at - started).num_seconds())
        ),
        None if stale => mrkdwn!(
            "No notification since {} ({} ago); its source never says it resolved",
            Mrkdwn::date(
                incident.last_seen_at.timestamp(),
                "{date_short_pretty} {time}",
                &incident
                    .last_seen_at
                    .format("%Y-%m-%d %H:%M UTC")
                    .to_string()
            ),
            lasted(
                (incident.stale_since.unwrap_or(incident.last_seen_at) - incident.last_seen_at)
                    .num_seconds()
            )
        ),
        None => mrkdwn!(
            "Firing since {}",
            clock(alert.starts_at.unwrap_or(incident.opened_at))
        ),
    };
    let mut blocks = vec![
        header(&title),
        blocks::fields(vec![
            mrkdwn!("*Status*\n{}", status),
            mrkdwn!(
                "*Severity*\n{}",
                alert.severity.as_deref().unwrap_or("unknown")
            ),
            mrkdwn!("*Service*\n{}", service),
            mrkdwn!("*Notifications*\n{}", incident.notification_count),
        ])
        .into_json(),
    ];
    let diagnosis = view.rules.diagnose_all(
        incident,
        crate::diagnose::Gathered {
            metrics,
            profile,
            changes,
            workload,
        },
    );
    let late = overdue.then_some(view.evidence_deadline);
    blocks.extend(diagnosis_blocks(diagnosis.as_ref(), metrics, profile, late));
    if let Some(storm) = related_text(incident) {
        blocks.push(section(storm));
    }
    if let Some(changes) = changes {
        blocks.extend(changes_blocks(changes, started));
    }
    if let Some(workload) = workload {
        blocks.extend(workload_blocks(workload));
    }
    if let Some(traces) = content.traces.as_ref() {
        blocks.extend(traces_blocks(traces));
    }
    let late_note = |what: &str| {
        late.map(|deadline| {
            mrkdwn!(
                "*{}* did not arrive within {}s: profile-fetcher may be down or its sources slow.",
                what,
                deadline.as_secs()
            )
        })
    };
    match (metrics, late_note("Metrics")) {
        (None, Some(note)) => blocks.push(section(note)),
        _ => {
            blocks.push(section(metrics_text(metrics)));
            if view.chart_blocks {
                blocks.extend(metrics.map(chart_blocks).unwrap_or_default());
            }
        }
    }
    match (profile, late_note("Profile")) {
        (None, Some(note)) => blocks.push(section(note)),
        _ => blocks.extend(profile_blocks(profile)),
    }
    let trace = trace_id
        .map(|trace| {
            // A W3C trace id is 32 hex digits; anything else is shown, never put in a link.
            let linkable = !trace.is_empty() && trace.chars().all(|c| c.is_ascii_hexdigit());
            if view.trace_url.is_empty() || !linkable {
                mrkdwn!(" · trace `{}`", trace)
            } else {
                mrkdwn!(
                    " · trace {}",
                    Mrkdwn::link(&view.trace_url.replace("{trace_id}", trace), trace)
                )
            }
        })
        .unwrap_or_default();
    blocks.push(context(mrkdwn!(
        "incident `{}` · {} alert · window {} – {}{}",
        incident.id.0,
        format!("{:?}", alert.source),
        clock(incident.window.from),
        clock(incident.window.to),
        trace
    )));
    if !resolved {
        if let Some(progress) = pending(content) {
            blocks.push(context(progress.text.clone()));
        }
        blocks.push(
            blocks::actions(reply_buttons(incident, profile, view))
                .with_id("ft-actions")
                .into_json(),
        );
    }
    let lead = diagnosis
        .as_ref()
        .map(|diagnosis| mrkdwn!("{} ", diagnosis.summary))
        .unwrap_or_default();
    let text = mrkdwn!(
        "{}: {} on {}. {}{} {}",
        alert.name,
        if resolved {
            "resolved"
        } else if stale {
            "stale"
        } else {
            "firing"
        },
        service,
        lead,
        metrics_summary(metrics),
        profile_summary(profile),
    );
    Rendered { text, blocks }
}

/// The buttons under an open incident's reply, decided here alone: Silence (a button, or a
/// select of lengths) only when Alertmanager confirmed the alert's labels, after a dialog that
/// shows what it matches; Re-run diagnosis and Profile now always; and the diff against the last
/// change when the profile has one. A resolved incident has none.
fn reply_buttons(
    incident: &Incident,
    profile: Option<&ProfileEvidence>,
    view: &View,
) -> Vec<blocks::Element> {
    let alert = &incident.alert;
    // The incident and its fingerprint, which is where alert-watcher keeps its state.
    let reference = IncidentButton {
        incident_id: incident.id.0.clone(),
        fingerprint: incident.fingerprint.clone(),
        silence_seconds: None,
    };
    let mut buttons = Vec::new();
    // Silence only what Alertmanager confirmed, after a dialog that shows what it matches.
    if let Some(matchers) = alert.silence_matchers() {
        let durations = silence_durations(view.silence_for);
        let value = |duration: std::time::Duration| {
            IncidentButton {
                silence_seconds: Some(duration.as_secs()),
                ..reference.clone()
            }
            .value()
        };
        let element = if let [only] = durations.as_slice() {
            blocks::button(
                &format!("Silence {}", duration_text(*only)),
                actions::SILENCE_1H,
                &value(*only),
            )
            .confirm(
                "Silence this alert?",
                &silence_dialog(&matchers, Some(*only)),
                "Silence",
                "Cancel",
            )
        } else {
            // Several lengths to choose from; the dialog confirms the choice.
            let options: Vec<(String, String)> = durations
                .iter()
                .map(|duration| {
                    (
                        format!("Silence {}", duration_text(*duration)),
                        value(*duration),
                    )
                })
                .collect();
            blocks::select("Silence for…", actions::SILENCE_1H, &options).confirm(
                "Silence this alert?",
                &silence_dialog(&matchers, None),
                "Silence",
                "Cancel",
            )
        };
        buttons.push(element);
    }
    buttons.push(blocks::button(
        "Re-run diagnosis",
        actions::RERUN,
        &reference.value(),
    ));
    buttons.push(blocks::button(
        "Profile now",
        actions::PROFILE_NOW,
        &reference.value(),
    ));
    // What the last change did to the profile, one click away.
    if let Some(profile) = profile
        && let (Some(label), Some(url)) = (&profile.baseline_label, &profile.diff_url)
        && let Some(button) =
            blocks::link_button(&format!("Diff {label} vs after"), actions::OPEN_DIFF, url)
    {
        buttons.push(button);
    }
    buttons
}

/// A time as each reader's clock shows it (Slack's date token), `14:05 UTC` where tokens are
/// not shown (notifications, old clients).
pub(crate) fn clock(at: chrono::DateTime<chrono::Utc>) -> Mrkdwn {
    Mrkdwn::date(
        at.timestamp(),
        "{time}",
        &at.format("%H:%M UTC").to_string(),
    )
}

/// A button's progress note ("Profiling checkout now…") whose answer has not landed yet.
fn pending(content: &Content) -> Option<&proto::PostRequest> {
    content
        .post
        .as_ref()
        .filter(|post| post.stands_for.is_some() && !answered(content))
}

/// The profile a progress note stood in for has landed, and replaces it.
fn answered(content: &Content) -> bool {
    content.post.as_ref().is_some_and(|post| {
        post.stands_for.is_some()
            && content
                .profile
                .as_ref()
                .is_some_and(|profile| profile.request_id == post.stands_for)
    })
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
            mrkdwn!("*Diagnosis* _gathering evidence…_")
        } else {
            mrkdwn!(
                "*Diagnosis* none of the rules holds on this evidence, so no guess: read the metrics and the profile below.{}",
                pending
            )
        };
        return vec![section(text)];
    };
    let confidence = match diagnosis.confidence {
        Confidence::High => "high confidence",
        Confidence::Medium => "medium confidence",
        Confidence::Low => "low confidence",
    };
    let mut text = mrkdwn!(
        "*Diagnosis* ({}){}\n{}",
        confidence,
        pending,
        diagnosis.summary
    );
    for fact in &diagnosis.facts {
        text.push(&mrkdwn!("\n• {}", fact));
    }
    let mut blocks = vec![section(text)];
    if !diagnosis.remediations.is_empty() || diagnosis.runbook.is_some() {
        let mut steps = mrkdwn!("*Try*");
        if let Some(runbook) = &diagnosis.runbook {
            steps.push(&mrkdwn!(
                "\n• {}",
                Mrkdwn::link(runbook, "The alert's runbook")
            ));
        }
        for step in &diagnosis.remediations {
            steps.push(&mrkdwn!("\n• {}", Mrkdwn::code(step)));
        }
        blocks.push(section(steps));
    }
    blocks.push(context(mrkdwn!("rule `{}`", diagnosis.rule)));
    blocks
}

/// Most changes listed (the evidence is bounded too; this keeps the reply short).
const CHANGES_SHOWN: usize = 5;

/// "Changed before this alert", newest first, each with how long before the alert's start it
/// happened and who made it, linked where the change gave a URL.
fn changes_blocks(changes: &ChangesEvidence, started: DateTime<Utc>) -> Vec<Value> {
    let mut blocks = Vec::new();
    if changes.changes.is_empty() {
        let detail = status_detail(&changes.status).unwrap_or_else(|| mrkdwn!("none recorded"));
        let mut text = mrkdwn!("*Changed before this alert:* {}", detail);
        for note in changes.notes.iter().take(2) {
            text.push(&mrkdwn!(" · {}", note));
        }
        blocks.push(context(text));
        return blocks;
    }
    let mut text = mrkdwn!("*Changed before this alert*");
    for change in changes.changes.iter().take(CHANGES_SHOWN) {
        let seconds = (started - change.at).num_seconds();
        let when = if seconds >= 0 {
            mrkdwn!("{} before", lasted(seconds))
        } else {
            mrkdwn!("{} after it started", lasted(-seconds))
        };
        let title = Mrkdwn::code(&change.title());
        let what = match change.url.as_deref() {
            Some(url) if proto::mrkdwn::is_safe_url(url) => {
                mrkdwn!(
                    "{} {}",
                    Mrkdwn::link(url, &change.title()),
                    change.kind.verb()
                )
            }
            _ => mrkdwn!("{} {}", title, change.kind.verb()),
        };
        text.push(&mrkdwn!("\n• {} {}", what, when));
        if let Some(who) = &change.who {
            text.push(&mrkdwn!(", by {}", who));
        }
        if let Some(environment) = &change.environment {
            text.push(&mrkdwn!(" in {}", environment));
        }
        if let Some(message) = &change.message {
            let first_line = message.lines().next().unwrap_or_default();
            text.push(&mrkdwn!(": _{}_", truncate_chars(first_line, 120, "…")));
        }
    }
    if changes.changes.len() > CHANGES_SHOWN {
        text.push(&mrkdwn!(
            "\n… and {} more",
            changes.changes.len() - CHANGES_SHOWN
        ));
    }
    blocks.push(section(text));
    if !changes.notes.is_empty() {
        blocks.push(context(Mrkdwn::join(
            changes.notes.iter().take(3).map(|note| Mrkdwn::plain(note)),
            " · ",
        )));
    }
    blocks
}

/// "Requests": the alert's service's span names that got slow or failing (p95 and error rate
/// now against before), and the window's slowest span with its trace id to look up.
fn traces_blocks(traces: &TracesEvidence) -> Vec<Value> {
    if let Some(detail) = status_detail(&traces.status) {
        return vec![context(mrkdwn!(
            "*Requests* of {} {}",
            Mrkdwn::code(&truncate_chars(&traces.service, 100, "…")),
            detail
        ))];
    }
    let milliseconds = |ms: f64| {
        if ms >= 1000.0 {
            format!("{:.1} s", ms / 1000.0)
        } else {
            format!("{ms:.0} ms")
        }
    };
    let percent = |rate: f64| format!("{:.0}%", rate * 100.0);
    let mut text = mrkdwn!(
        "*Requests* of {}, the incident window against before:",
        Mrkdwn::code(&truncate_chars(&traces.service, 100, "…"))
    );
    for stats in &traces.span_names {
        let was = match stats.baseline_p95_ms {
            Some(before) => format!("was {}", milliseconds(before)),
            None => "new".to_owned(),
        };
        let errors = match stats.baseline_error_rate {
            Some(before) => format!(
                "errors {} (was {})",
                percent(stats.error_rate),
                percent(before)
            ),
            None => format!("errors {}", percent(stats.error_rate)),
        };
        text.push(&mrkdwn!(
            "\n• {} p95 *{}* ({}) · {} · {} spans",
            Mrkdwn::code(&truncate_chars(&stats.span_name, 100, "…")),
            milliseconds(stats.p95_ms),
            was,
            errors,
            stats.spans
        ));
    }
    if let Some(slow) = &traces.slowest {
        text.push(&mrkdwn!(
            "\nSlowest: {} {} in trace {}",
            Mrkdwn::code(&truncate_chars(&slow.span_name, 100, "…")),
            milliseconds(slow.duration_ms),
            Mrkdwn::code(&slow.trace_id)
        ));
        if let Some(url) = &slow.waterfall_url {
            text.push(&mrkdwn!(" · {}", Mrkdwn::link(url, "Waterfall")));
        }
        if let Some(url) = &slow.span_profile_url {
            text.push(&mrkdwn!(" · {}", Mrkdwn::link(url, "Its CPU profile")));
        } else if let Some(note) = &slow.span_profile_note {
            text.push(&mrkdwn!(
                " · no span profile: {}",
                truncate_chars(note, 200, "…")
            ));
        }
    }
    vec![section(text)]
}

/// "Workload": replicas, each container's restarts, last termination, memory against its limit
/// and throttling; warnings among its events; the crashed container's last log lines; its
/// rollout history; and a sentence for whatever could not be read.
fn workload_blocks(workload: &WorkloadEvidence) -> Vec<Value> {
    const MIB: f64 = 1024.0 * 1024.0;
    let name = workload
        .workload
        .as_ref()
        .map(|target| {
            let object = target
                .deployment
                .as_deref()
                .map(|deployment| format!("deployment/{deployment}"))
                .or_else(|| target.pod.as_deref().map(|pod| format!("pod/{pod}")))
                .unwrap_or_default();
            format!("{}/{object}", target.namespace)
        })
        .unwrap_or_default();
    if let Some(detail) = status_detail(&workload.status) {
        let mut text = mrkdwn!("*Workload* {}", detail);
        for note in workload.notes.iter().take(2) {
            text.push(&mrkdwn!(" · {}", note));
        }
        return vec![context(text)];
    }
    let mut text = mrkdwn!("*Workload* {}", Mrkdwn::code(&name));
    if let Some(replicas) = workload.replicas {
        let mark = if replicas.ready < replicas.desired {
            " ⚠️"
        } else {
            ""
        };
        text.push(&mrkdwn!(
            "\n• {}/{} replicas ready{}",
            replicas.ready,
            replicas.desired,
            mark
        ));
    }
    for container in &workload.containers {
        let mut line = mrkdwn!(
            "\n• {} in {}",
            Mrkdwn::code(&container.container),
            Mrkdwn::code(&container.pod)
        );
        if let Some(restarts) = container.restarts {
            line.push(&mrkdwn!(": {} restarts", restarts));
        }
        if let Some(reason) = &container.last_terminated {
            line.push(&mrkdwn!(", last terminated *{}*", reason));
        }
        let memory = container.memory_peak_bytes.or(container.memory_bytes);
        match (memory, container.memory_limit_bytes) {
            (Some(used), Some(limit)) if limit > 0.0 => line.push(&mrkdwn!(
                ", memory peaked at {:.0} of {:.0} MiB ({:.0}%)",
                used / MIB,
                limit / MIB,
                used / limit * 100.0
            )),
            (Some(used), _) => line.push(&mrkdwn!(", memory {:.0} MiB", used / MIB)),
            _ => {}
        }
        if let Some(throttled) = container.cpu_throttled.filter(|share| *share >= 0.01) {
            line.push(&mrkdwn!(
                ", CPU throttled {:.0}% of periods",
                throttled * 100.0
            ));
        }
        text.push(&line);
    }
    let mut blocks = vec![section(text)];
    if !workload.events.is_empty() {
        let mut events = mrkdwn!("*Events*");
        for event in &workload.events {
            let mark = if event.kind == "Warning" {
                "⚠️ "
            } else {
                ""
            };
            let count = if event.count > 1 {
                mrkdwn!(" (×{})", event.count)
            } else {
                Mrkdwn::new()
            };
            let at = event
                .at
                .map(|at| at.format("%H:%M").to_string())
                .unwrap_or_default();
            events.push(&mrkdwn!(
                "\n{}{} {} {}: {}{}",
                mark,
                at,
                Mrkdwn::code(&event.object),
                event.reason,
                truncate_chars(&event.message, 200, "…"),
                count
            ));
        }
        blocks.push(section(events));
    }
    if let Some(log) = &workload.log {
        let which = if log.previous {
            "before its last restart"
        } else {
            "now"
        };
        let cut = if log.truncated { ", last lines" } else { "" };
        // Backticks in the log would end the code block early.
        blocks.push(section(mrkdwn!(
            "*Log* of {} in {} ({}{})\n```{}```",
            Mrkdwn::code(&log.container),
            Mrkdwn::code(&log.pod),
            which,
            cut,
            if log.text.trim().is_empty() {
                "(empty)".to_owned()
            } else {
                log.text.replace("```", "ˋˋˋ")
            }
        )));
    }
    if !workload.rollouts.is_empty() {
        let history = Mrkdwn::join(
            workload.rollouts.iter().map(|rollout| {
                let at = rollout
                    .created_at
                    .map(|at| at.format(" %m-%d %H:%M").to_string())
                    .unwrap_or_default();
                mrkdwn!(
                    "rev {}{} {}",
                    rollout.revision,
                    at,
                    rollout.images.join(", ")
                )
            }),
            " · ",
        );
        blocks.push(context(mrkdwn!("*Rollouts* {}", history)));
    }
    if !workload.notes.is_empty() {
        blocks.push(context(Mrkdwn::join(
            workload
                .notes
                .iter()
                .take(4)
                .map(|note| Mrkdwn::plain(note)),
            " · ",
        )));
    }
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
fn related_text(incident: &Incident) -> Option<Mrkdwn> {
    if incident.related.is_empty() && incident.related_untracked == 0 {
        return None;
    }
    let mut text = mrkdwn!(
        "*Also in this storm* ({} more alerts)",
        incident.related.len() + incident.related_untracked as usize
    );
    for related in &incident.related {
        let mark = match related.alert.status {
            AlertStatus::Firing => "🔥",
            AlertStatus::Resolved => "✅",
        };
        text.push(&mrkdwn!(
            "\n{} {} · {} · ×{}",
            mark,
            related.alert.name,
            related
                .alert
                .service
                .as_deref()
                .unwrap_or("unknown service"),
            related.notification_count,
        ));
    }
    if incident.related_untracked > 0 {
        text.push(&mrkdwn!(
            "\n… and {} notifications of further alerts",
            incident.related_untracked
        ));
    }
    Some(text)
}

fn status_detail(status: &EvidenceStatus) -> Option<Mrkdwn> {
    match status {
        EvidenceStatus::Ok => None,
        EvidenceStatus::NoData { detail } => Some(mrkdwn!("no data: {}", detail)),
        EvidenceStatus::Failed { detail } => Some(mrkdwn!("failed: {}", detail)),
        EvidenceStatus::TimedOut { detail } => Some(mrkdwn!("timed out: {}", detail)),
    }
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |value| format!("{value:.3}"))
}

/// Most chart blocks in a reply (Slack takes two per message).
const MAX_CHART_BLOCKS: usize = 2;
/// The slices profile-fetcher summarizes a window into (`MetricSummary::points`).
const MAX_SLICES: i32 = 20;

/// The first two series with points, each as Slack's line chart: now, and the baseline's mean as a
/// flat "usual" line; clock times (UTC) as the categories.
fn chart_blocks(metrics: &MetricsEvidence) -> Vec<Value> {
    metrics
        .series
        .iter()
        .filter(|series| series.points.len() >= 2)
        .take(MAX_CHART_BLOCKS)
        .filter_map(|series| {
            // Seconds when a slice of the window is shorter than a minute, so labels differ.
            let slice = (metrics.window.to - metrics.window.from) / MAX_SLICES;
            let format = if slice < chrono::Duration::minutes(1) {
                "%H:%M:%S"
            } else {
                "%H:%M"
            };
            let categories: Vec<String> = series
                .points
                .iter()
                .map(|point| point.at.format(format).to_string())
                .collect();
            let mut lines = vec![(
                "now".to_owned(),
                series
                    .points
                    .iter()
                    .map(|point| Some(point.value))
                    .collect(),
            )];
            if let Some(usual) = series.baseline {
                lines.push(("usual".to_owned(), vec![Some(usual); series.points.len()]));
            }
            let title = match series.unit.as_deref().filter(|unit| !unit.is_empty()) {
                Some(unit) => format!("{} ({unit}), UTC", series.name),
                None => format!("{}, UTC", series.name),
            };
            blocks::line_chart(&title, &categories, &lines, series.unit.as_deref())
                .map(blocks::Block::into_json)
        })
        .collect()
}

fn metrics_text(metrics: Option<&MetricsEvidence>) -> Mrkdwn {
    let Some(metrics) = metrics else {
        return mrkdwn!("*Metrics* _gathering…_");
    };
    if let Some(detail) = status_detail(&metrics.status) {
        return mrkdwn!("*Metrics* {}", detail);
    }
    let mut text = mrkdwn!("*Metrics* (now vs baseline)");
    for series in &metrics.series {
        let arrow = match series.trend {
            Trend::Rising => "↑",
            Trend::Falling => "↓",
            Trend::Flat => "→",
            Trend::Unknown => "",
        };
        if let Some(detail) = status_detail(&series.status) {
            text.push(&mrkdwn!("\n• {} {}", Mrkdwn::code(&series.name), detail));
            continue;
        }
        let unit = series
            .unit
            .as_deref()
            .filter(|unit| !unit.is_empty())
            .map(|unit| mrkdwn!(" {}", unit))
            .unwrap_or_default();
        text.push(&mrkdwn!(
            "\n• {} {}{} vs {}{} (peak {}) {}",
            Mrkdwn::code(&series.name),
            number(series.current),
            unit,
            number(series.baseline),
            unit,
            number(series.peak),
            arrow,
        ));
    }
    if let Some(url) = &metrics.chart_url {
        text.push(&mrkdwn!("\n{}", Mrkdwn::link(url, "Chart of these series")));
    }
    text
}

fn metrics_summary(metrics: Option<&MetricsEvidence>) -> Mrkdwn {
    match metrics {
        None => mrkdwn!("Metrics: gathering."),
        Some(metrics) => match status_detail(&metrics.status) {
            Some(detail) => mrkdwn!("Metrics {}.", detail),
            None => mrkdwn!("{} metric series.", metrics.series.len()),
        },
    }
}

fn profile_blocks(profile: Option<&ProfileEvidence>) -> Vec<Value> {
    let Some(profile) = profile else {
        return vec![section(mrkdwn!("*Profile* _gathering…_"))];
    };
    if let Some(detail) = status_detail(&profile.status) {
        if profile.app.is_empty() {
            return vec![section(mrkdwn!("*Profile* {}", detail))];
        }
        return vec![section(mrkdwn!(
            "*Profile* of {}: {}",
            Mrkdwn::code(&profile.app),
            detail
        ))];
    }
    let title = mrkdwn!("*Where the CPU went* in {}", Mrkdwn::code(&profile.app));
    let mut blocks = vec![section(top_functions(title, &profile.top_functions))];
    if !profile.grown.is_empty() {
        let mut grown = match &profile.baseline_label {
            Some(label) => mrkdwn!("*Grew against {}*", label),
            None => mrkdwn!("*Grew since the baseline*"),
        };
        for function in &profile.grown {
            grown.push(&mrkdwn!(
                "\n• {} {:.1}% → {:.1}%",
                Mrkdwn::code(&function.name),
                function.baseline_share * 100.0,
                function.current_share * 100.0
            ));
        }
        blocks.push(section(grown));
    }
    let diff_label = match &profile.baseline_label {
        Some(label) => format!("Diff: {label} vs after"),
        None => "Diff vs baseline".to_owned(),
    };
    let links: Vec<Mrkdwn> = [
        (profile.flamegraph_url.as_deref(), "Flamegraph"),
        (profile.diff_url.as_deref(), diff_label.as_str()),
    ]
    .into_iter()
    .filter_map(|(url, label)| url.map(|url| Mrkdwn::link(url, label)))
    .collect();
    if !links.is_empty() {
        blocks.push(context(Mrkdwn::join(links, " · ")));
    }
    blocks
}

/// `title`, then the first functions ranked by self time, then how many more there are.
fn top_functions(mut text: Mrkdwn, functions: &[FunctionShare]) -> Mrkdwn {
    for (rank, function) in functions.iter().take(TOP_FUNCTIONS).enumerate() {
        text.push(&mrkdwn!(
            "\n{}. {} {:.1}%",
            rank + 1,
            Mrkdwn::code(&function.name),
            function.self_share * 100.0
        ));
    }
    if functions.len() > TOP_FUNCTIONS {
        text.push(&mrkdwn!("\n… and {} more", functions.len() - TOP_FUNCTIONS));
    }
    text
}

fn profile_summary(profile: Option<&ProfileEvidence>) -> Mrkdwn {
    match profile {
        None => mrkdwn!("Profile: gathering."),
        Some(profile) => match (
            status_detail(&profile.status),
            profile.top_functions.first(),
        ) {
            (Some(detail), _) => mrkdwn!("Profile {}.", detail),
            (None, Some(top)) => mrkdwn!("Top: {} {:.1}%.", top.name, top.self_share * 100.0),
            (None, None) => mrkdwn!("Profile: empty."),
        },
    }
}

fn post_reply(post: &PostRequest) -> Rendered {
    let blocks = match &post.blocks {
        Some(blocks) => blocks.iter().map(|block| block.json().clone()).collect(),
        None => vec![section(post.text.clone())],
    };
    Rendered {
        text: post.text.clone(),
        blocks,
    }
}

fn sandbox_reply(result: &SandboxResult) -> Rendered {
    let outcome = match &result.outcome {
        SandboxOutcome::Exited { code: 0 } => mrkdwn!("finished"),
        SandboxOutcome::Exited { code } => mrkdwn!("exited with code {}", code),
        SandboxOutcome::TimedOut => mrkdwn!("was stopped at its time limit"),
        SandboxOutcome::OutOfMemory => mrkdwn!("ran out of memory"),
        SandboxOutcome::Rejected { reason } => mrkdwn!("was not run: {}", reason),
        SandboxOutcome::Failed { reason } => mrkdwn!("could not be run: {}", reason),
    };
    let mut blocks = vec![section(mrkdwn!(
        "*Sandbox run* {} in {:.1} s",
        outcome,
        result.wall_ms as f64 / 1000.0
    ))];
    if !result.limits_hit.is_empty() {
        let mut said = mrkdwn!("The script ran into:");
        for limit in &result.limits_hit {
            said.push(&match limit {
                LimitHit::Processes { max } => mrkdwn!(
                    "\n• the process limit: {} processes and threads, and it asked for more",
                    max
                ),
                LimitHit::Tmp { mib } => mrkdwn!("\n• a full `/tmp` ({} MiB)", mib),
                LimitHit::Memory { mib } => mrkdwn!(
                    "\n• the memory limit ({} MiB), which killed one of its processes",
                    mib
                ),
                LimitHit::Output { stream, bytes } => mrkdwn!(
                    "\n• more {} than is kept: {} bytes, of which the end is shown",
                    stream,
                    bytes
                ),
            });
        }
        blocks.push(context(said));
    }
    for (label, tail, truncated) in [
        ("stdout", &result.stdout_tail, result.stdout_truncated),
        ("stderr", &result.stderr_tail, result.stderr_truncated),
    ] {
        if !tail.trim().is_empty() {
            let note = if truncated { " (last lines)" } else { "" };
            // Backticks in the output would end the code block early.
            blocks.push(section(mrkdwn!(
                "*{}*{}\n```{}```",
                label,
                note,
                tail.trim_end().replace("```", "ˋˋˋ")
            )));
        }
    }
    if let Some(profile) = &result.profile {
        let title = mrkdwn!("*Where the CPU went* ({} samples)", profile.total_samples);
        blocks.push(section(top_functions(title, &profile.top_functions)));
        if let Some(url) = &profile.flamegraph_url {
            blocks.push(context(Mrkdwn::link(url, "Flamegraph")));
        }
    } else if !result.profile_missing.is_empty() {
        blocks.push(context(mrkdwn!("No profile: {}.", result.profile_missing)));
    }
    Rendered {
        text: mrkdwn!("Sandbox run {}", outcome),
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
        blocks.push(context(mrkdwn!(
            "… and {} more sections not shown",
            omitted
        )));
        blocks.extend(actions);
    }
    Rendered {
        text: rendered.text.truncated(MAX_TEXT),
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

pub mod home;

#[cfg(test)]
mod tests;
