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
mod tests {
    use proto::{ChangeKind, ChangeSource};
    use test_support::fixtures;

    use super::*;

    fn change(id: &str, service: &str, version: &str, at: i64) -> Change {
        Change {
            schema_version: SchemaVersion::CURRENT,
            change_id: id.into(),
            service: service.into(),
            environment: None,
            version: Some(version.into()),
            kind: ChangeKind::Deploy,
            who: None,
            url: None,
            message: None,
            at: fixtures::at(at),
            source: ChangeSource::Api,
        }
    }

    #[test]
    fn only_the_services_changes_in_the_window_newest_first_once_each() {
        let window = TimeWindow {
            from: fixtures::at(1000),
            to: fixtures::at(5000),
        };
        let changes = vec![
            change("a", "checkout", "1.4.1", 1500),
            change("b", "cart", "9", 2000),
            change("c", "Checkout", "1.4.2", 3000),
            // The same deploy seen by a second source, which said more.
            Change {
                url: Some("https://ci/812".into()),
                ..change("d", "checkout", "1.4.2", 2900)
            },
            change("e", "checkout", "1.3.0", 500),
            change("f", "checkout", "1.5.0", 6000),
        ];
        let selected = select(changes, &["checkout"], window, 10);
        let ids: Vec<&str> = selected.iter().map(|c| c.change_id.as_str()).collect();
        assert_eq!(ids, ["d", "a"], "{selected:?}");
        // Versions that differ are different changes, however close.
        let two = select(
            vec![
                change("x", "checkout", "1", 1500),
                change("y", "checkout", "2", 1510),
            ],
            &["checkout"],
            window,
            10,
        );
        assert_eq!(two.len(), 2);
        let one = select(
            vec![
                change("a", "checkout", "1", 1500),
                change("b", "checkout", "2", 1600),
            ],
            &["checkout"],
            window,
            1,
        );
        assert_eq!(one[0].change_id, "b");
    }

    #[test]
    fn before_and_after_a_change() {
        let incident =
            fixtures::incident_event("inc", "1.0", proto::IncidentChange::Opened, 1).incident;
        let end = incident.window.to;
        let (after, before) = around(end - chrono::Duration::minutes(7), &incident).unwrap();
        assert_eq!(after.to, end);
        assert_eq!(after.from, before.to);
        assert_eq!((before.to - before.from).num_minutes(), 7);
        let (_, short) = around(end - chrono::Duration::minutes(2), &incident).unwrap();
        assert_eq!(
            (short.to - short.from).num_minutes(),
            5,
            "at least 5 minutes"
        );
        assert!(around(end - chrono::Duration::seconds(30), &incident).is_none());
    }
}
