//! Correlating alerts into incidents, as pure functions: the fingerprint that says "the same
//! alert", and the decision a new observation makes against the incident's current state.
//!
//! - A firing alert with no open incident opens one; its thread is the alert's own message.
//! - A repeat notification of a firing alert updates the incident (count, last seen, labels) and
//!   never opens another: no thread noise.
//! - `[RESOLVED]` resolves the open incident, whose thread is the original message.
//! - The same Slack message seen again (a redelivery) changes nothing and re-publishes the event
//!   for the current revision, which JetStream stores once (its `Nats-Msg-Id` is the revision's):
//!   a crash between writing the state and publishing loses nothing.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use proto::{
    Incident, IncidentChange, IncidentEvent, IncidentId, SchemaVersion, SlackThread, TimeWindow,
    incident::{Alert, AlertSource, AlertStatus},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Labels that change between notifications of the same alert and must not split it.
const VOLATILE_LABELS: &[&str] = &["value", "__value__", "timestamp", "grafana_folder"];

/// What the watcher keeps per fingerprint in the incident KV bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentState {
    pub incident: Incident,
    /// The Slack message (`channel/ts`) last applied, to recognize a redelivery.
    pub last_message: String,
}

impl IncidentState {
    /// The event that announced the current revision.
    pub fn event(&self) -> IncidentEvent {
        let change = if self.incident.resolved_at.is_some() {
            IncidentChange::Resolved
        } else if self.incident.revision == 1 {
            IncidentChange::Opened
        } else {
            IncidentChange::Updated
        };
        IncidentEvent {
            schema_version: SchemaVersion::CURRENT,
            change,
            incident: self.incident.clone(),
        }
    }
}

/// One alert seen in one Slack message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub fingerprint: String,
    pub alert: Alert,
    /// The message it was seen in.
    pub message: SlackThread,
}

impl Observation {
    fn message_key(&self) -> String {
        format!("{}/{}", self.message.channel, self.message.ts)
    }
}

/// The time windows an incident's evidence covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// How far before the alert's start to look.
    pub lookback: Duration,
    /// How long the calm baseline before that is.
    pub baseline: Duration,
}

/// What to do with an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write this state, then publish its event.
    Apply(IncidentState),
    /// Nothing changes; publish this event again (a redelivered message).
    Republish(IncidentEvent),
    /// Nothing to do, and why (for the counters).
    Ignore(&'static str),
}

/// Hex SHA-256 of the source, the alert name and what identifies it: for Alertmanager the group's
/// label values from its title, for Datadog the monitor and its scope, otherwise the labels minus
/// the volatile ones.
pub fn fingerprint(alert: &Alert, group_values: &[String]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("{:?}\u{0}{}\u{0}", alert.source, alert.name));
    if alert.source == AlertSource::Alertmanager && !group_values.is_empty() {
        // Alertmanager notifies per group; its title's group values are the same when it
        // resolves, whatever labels were recovered in between.
        for value in group_values {
            hasher.update(value.as_bytes());
            hasher.update([0]);
        }
    } else if alert.source == AlertSource::Datadog && alert.labels.contains_key("monitor_id") {
        // A monitor and what it alerts on; tags in the message text come and go.
        for key in ["monitor_id", "scope"] {
            hasher.update(alert.labels.get(key).map_or("", String::as_str).as_bytes());
            hasher.update([0]);
        }
    } else {
        let identifying: BTreeMap<&String, &String> = alert
            .labels
            .iter()
            .filter(|(key, _)| !VOLATILE_LABELS.contains(&key.as_str()) && *key != "alertname")
            .collect();
        for (key, value) in identifying {
            hasher.update(key.as_bytes());
            hasher.update([b'=']);
            hasher.update(value.as_bytes());
            hasher.update([0]);
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Decides what `observation` does to the incident in `current`.
pub fn decide(
    current: Option<&IncidentState>,
    observation: &Observation,
    now: DateTime<Utc>,
    windows: Windows,
    new_id: impl FnOnce() -> String,
) -> Decision {
    let message_key = observation.message_key();
    if let Some(state) = current
        && state.last_message == message_key
    {
        return Decision::Republish(state.event());
    }
    let open = current.filter(|state| state.incident.resolved_at.is_none());
    match (observation.alert.status, open) {
        (AlertStatus::Firing, None) => {
            let starts_at = observation.alert.starts_at.unwrap_or(now).min(now);
            let from = starts_at - chrono::Duration::from_std(windows.lookback).unwrap_or_default();
            let baseline_from =
                from - chrono::Duration::from_std(windows.baseline).unwrap_or_default();
            Decision::Apply(IncidentState {
                incident: Incident {
                    id: IncidentId(new_id()),
                    fingerprint: observation.fingerprint.clone(),
                    alert: observation.alert.clone(),
                    thread: observation.message.clone(),
                    opened_at: now,
                    last_seen_at: now,
                    notification_count: 1,
                    window: TimeWindow { from, to: now },
                    baseline: TimeWindow {
                        from: baseline_from,
                        to: from,
                    },
                    resolved_at: None,
                    revision: 1,
                },
                last_message: message_key,
            })
        }
        (AlertStatus::Firing, Some(state)) => {
            let mut incident = state.incident.clone();
            incident.notification_count += 1;
            incident.last_seen_at = now;
            incident.window.to = now.max(incident.window.to);
            merge_alert(&mut incident.alert, &observation.alert);
            incident.revision += 1;
            Decision::Apply(IncidentState {
                incident,
                last_message: message_key,
            })
        }
        (AlertStatus::Resolved, Some(state)) => {
            let mut incident = state.incident.clone();
            incident.resolved_at = Some(now);
            incident.last_seen_at = now;
            incident.alert.status = AlertStatus::Resolved;
            incident.revision += 1;
            Decision::Apply(IncidentState {
                incident,
                last_message: message_key,
            })
        }
        (AlertStatus::Resolved, None) => Decision::Ignore("resolved_without_open_incident"),
    }
}

/// Adds what Alertmanager's webhook knows (labels, annotations, start) to an open incident
/// opened from its keyless Slack message; `None` when it adds nothing (or the incident is closed).
pub fn enrich(state: &IncidentState, known: &Alert) -> Option<IncidentState> {
    if state.incident.resolved_at.is_some() {
        return None;
    }
    let mut incident = state.incident.clone();
    merge_alert(&mut incident.alert, known);
    if incident.alert == state.incident.alert {
        return None;
    }
    incident.revision += 1;
    Some(IncidentState {
        incident,
        last_message: state.last_message.clone(),
    })
}

/// A repeat notification may know more (labels recovered since); it never forgets what was known.
fn merge_alert(known: &mut Alert, seen: &Alert) {
    known.labels.extend(seen.labels.clone());
    known.annotations.extend(seen.annotations.clone());
    if known.severity.is_none() {
        known.severity = seen.severity.clone();
    }
    if known.service.is_none() {
        known.service = seen.service.clone();
    }
    if known.starts_at.is_none() {
        known.starts_at = seen.starts_at;
    }
    for link in &seen.links {
        if !known.links.contains(link) {
            known.links.push(link.clone());
        }
    }
}

#[cfg(test)]
mod tests;
