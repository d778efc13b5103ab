//! What changed before an incident: changes recorded on the bus (the markers API, change messages
//! in Slack) and rollouts read from kube-state-metrics, for the alert's service, newest first.
//!
//! - [`api`]: `POST`/`GET /api/v1/changes`, so a CI job records a deploy with one `curl`.
//! - [`select`] (pure): which changes concern an alert, in what order, how many.
//! - [`around`] (pure): the windows that compare a profile before and after a change.
//! - [`gather`]: the evidence, every source ending in a change or a sentence saying why not.

pub mod api;

use chrono::{DateTime, Utc};
use proto::{
    Change, ChangesEvidence, Incident, SchemaVersion, Subject, TimeWindow, evidence::EvidenceStatus,
};

use crate::{
    config::{ChangesConfig, KubernetesConfig},
    kubernetes,
    metrics::prometheus::Prometheus,
};

/// Most changes read back from the stream for one incident (the newest are kept).
const MAX_READ: usize = 5_000;

/// The names an alert may call its service by: its mapped service and the labels that name one.
pub fn service_names(incident: &Incident) -> Vec<&str> {
    let alert = &incident.alert;
    let mut names: Vec<&str> = alert.service.as_deref().into_iter().collect();
    for label in [
        "service",
        "app",
        "app_kubernetes_io_name",
        "deployment",
        "job",
        "container",
    ] {
        if let Some(value) = alert.labels.get(label) {
            names.push(value);
        }
    }
    names.sort_unstable();
    names.dedup();
    names
}

/// The changes among `changes` that concern `names` and happened in `window`, newest first, at
/// most `max`. A change seen by two sources (a CI job's marker and the rollout kube-state-metrics
/// saw: the same service, version and kind within five minutes) is shown once, as the source that
/// said more (a link, who made it) recorded it.
pub fn select(
    changes: impl IntoIterator<Item = Change>,
    names: &[&str],
    window: TimeWindow,
    max: usize,
) -> Vec<Change> {
    let mut candidates: Vec<Change> = changes
        .into_iter()
        .filter(|change| change.concerns(names.iter().copied()))
        .filter(|change| change.at >= window.from && change.at <= window.to)
        .collect();
    candidates.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.change_id.cmp(&b.change_id)));
    let said = |change: &Change| {
        usize::from(change.url.is_some())
            + usize::from(change.who.is_some())
            + usize::from(change.source != proto::ChangeSource::Kubernetes)
    };
    let mut selected: Vec<Change> = Vec::new();
    for change in candidates {
        let twin = selected.iter_mut().find(|kept| {
            kept.service.eq_ignore_ascii_case(&change.service)
                && kept.version == change.version
                && kept.kind == change.kind
                && (kept.at - change.at).num_seconds().abs() <= 300
        });
        match twin {
            Some(kept) if said(&change) > said(kept) => *kept = change,
            Some(_) => {}
            None => selected.push(change),
        }
    }
    selected.sort_by_key(|change| std::cmp::Reverse(change.at));
    selected.truncate(max);
    selected
}

/// The window the changes are looked for in: from `lookback` before the alert's start to now.
pub fn lookup_window(incident: &Incident, lookback: std::time::Duration) -> TimeWindow {
    let start = incident.alert.starts_at.unwrap_or(incident.opened_at);
    TimeWindow {
        from: start - chrono::Duration::from_std(lookback).unwrap_or_default(),
        to: incident.window.to.max(start),
    }
}

/// The newest change before the alert's start, if any.
pub fn last_before_alert<'a>(changes: &'a [Change], incident: &Incident) -> Option<&'a Change> {
    let start = incident.alert.starts_at.unwrap_or(incident.opened_at);
    changes.iter().find(|change| change.at <= start)
}

/// The windows that show what `change` did to a profile: after it (to the incident window's end)
/// against as long a time just before it (at least 5 minutes, at most an hour). `None` when less
/// than a minute passed since the change.
pub fn around(change_at: DateTime<Utc>, incident: &Incident) -> Option<(TimeWindow, TimeWindow)> {
    let end = incident.window.to;
    let after = end - change_at;
    if after < chrono::Duration::minutes(1) {
        return None;
    }
    let span = after.clamp(chrono::Duration::minutes(5), chrono::Duration::hours(1));
    Some((
        TimeWindow {
            from: change_at,
            to: end,
        },
        TimeWindow {
            from: change_at - span,
            to: change_at,
        },
    ))
}

/// Gathers the changes before `incident`.
pub async fn gather(
    bus: &bus::Bus,
    prometheus: Option<&Prometheus>,
    config: &ChangesConfig,
    kubernetes: &KubernetesConfig,
    incident: &Incident,
    evidence_id: String,
) -> ChangesEvidence {
    let window = lookup_window(incident, config.lookback);
    let names = service_names(incident);
    let mut notes = Vec::new();
    let mut found = Vec::new();
    let (recorded, rollouts) = tokio::join!(
        bus.read_since::<Change>(Subject::ChangeRecorded, window.from, MAX_READ),
        async {
            match (prometheus, config.kube_state_metrics) {
                (Some(prometheus), true) => {
                    kubernetes::ksm::rollouts(prometheus, kubernetes, incident, window).await
                }
                _ => Ok(Vec::new()),
            }
        }
    );
    match recorded {
        Ok(history) => {
            if history.truncated {
                notes.push(format!(
                    "more than {MAX_READ} changes were recorded since {}; only the newest were read",
                    window.from.format("%H:%M UTC")
                ));
            }
            found.extend(history.messages);
        }
        Err(err) => notes.push(format!("recorded changes could not be read: {err}")),
    }
    match rollouts {
        Ok(rollouts) => found.extend(rollouts),
        Err(note) => notes.push(note),
    }
    let changes = select(found, &names, window, config.max_shown);
    let status = if !changes.is_empty() {
        EvidenceStatus::Ok
    } else if names.is_empty() {
        EvidenceStatus::NoData {
            detail: "the alert names no service to look up changes for".to_owned(),
        }
    } else {
        EvidenceStatus::NoData {
            detail: format!(
                "nothing recorded for {} since {}",
                names.join(", "),
                window.from.format("%H:%M UTC")
            ),
        }
    };
    ChangesEvidence {
        schema_version: SchemaVersion::CURRENT,
        evidence_id,
        incident_id: incident.id.clone(),
        status,
        window,
        changes,
        notes,
        collected_at: Utc::now(),
    }
}

#[cfg(test)]
mod tests;
