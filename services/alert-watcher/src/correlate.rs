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
//! - In a storm ([`StormRules`]), a distinct alert of the same channel and group joins the
//!   incident the storm's first alert opened, as a related alert; the incident resolves when all
//!   of its alerts have. A storm of hundreds of alerts is a few threads and a few lookups.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use proto::{
    Incident, IncidentChange, IncidentEvent, IncidentId, SchemaVersion, SlackThread, TimeWindow,
    incident::{Alert, AlertSource, AlertStatus, RelatedAlert},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Labels that change between notifications of the same alert and must not split it.
const VOLATILE_LABELS: &[&str] = &["value", "__value__", "timestamp", "grafana_folder"];

/// What the watcher keeps per fingerprint in the incident KV bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentState {
    pub incident: Incident,
    /// The Slack message (`channel/ts`, `#edited_ts` for an edit) last applied for the
    /// incident's own alert, to recognize a redelivery.
    pub last_message: String,
    /// The same for each related alert, by fingerprint.
    #[serde(default)]
    pub related_messages: BTreeMap<String, String>,
    /// Whether the incident's `Opened` event was published. Until it was, every event of the
    /// incident says `Opened` (what asks for its evidence): when the publish after the write
    /// that opened it failed, and another notification updated the incident before that
    /// message came back, the next event still opens it. States written before this was kept
    /// were announced.
    #[serde(default = "announced_before")]
    pub announced: bool,
    /// Whether the sweep must publish this revision's event: set by the writes no message would
    /// bring back if the publish after them failed (the sweep's own resolutions and staleness,
    /// an enrichment from Alertmanager's webhook, whose redelivery finds nothing left to add),
    /// cleared once the publish is recorded. A notification's write leaves it clear: its message
    /// is redelivered until its event is out. A second publish of the same revision has the
    /// same idempotency key, which JetStream stores once.
    #[serde(default)]
    pub republish: bool,
}

fn announced_before() -> bool {
    true
}

impl IncidentState {
    /// The event that announced the current revision.
    pub fn event(&self) -> IncidentEvent {
        let change = if self.incident.resolved_at.is_some() {
            IncidentChange::Resolved
        } else if self.incident.revision == 1 || !self.announced {
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
    /// The incident's fingerprint: the alert's, in the message's channel ([`in_channel`]).
    pub fingerprint: String,
    /// The alert's own ([`fingerprint`]), the same in every channel: what Alertmanager's
    /// webhook, which knows no channel, is joined by.
    pub alert_fingerprint: String,
    pub alert: Alert,
    /// The message it was seen in.
    pub message: SlackThread,
    /// When the message was edited into what it now says, if this is an edit.
    pub edited_ts: Option<String>,
    /// Who asked for the message to be diagnosed, when a person did.
    pub asked_by: Option<String>,
}

impl Observation {
    pub(crate) fn message_key(&self) -> String {
        match &self.edited_ts {
            Some(edited) => format!("{}/{}#{edited}", self.message.channel, self.message.ts),
            None => format!("{}/{}", self.message.channel, self.message.ts),
        }
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
    hex(&hasher.finalize())
}

/// The fingerprint of an incident about the alert `alert_fingerprint` in `channel`: the same
/// alert posted into two channels is two incidents, and a message in one channel never updates
/// or resolves an incident opened in another.
pub fn in_channel(channel: &str, alert_fingerprint: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(channel.as_bytes());
    hasher.update([0]);
    hasher.update(alert_fingerprint.as_bytes());
    hex(&hasher.finalize())
}

/// Most related alerts an incident tracks one by one; more are counted in `related_untracked`.
pub const MAX_RELATED: usize = 100;

/// Decides what `observation` does to the incident in `current`: the incident it belongs to,
/// whether its own (same fingerprint) or a storm incident it joins or has joined.
pub fn decide(
    current: Option<&IncidentState>,
    observation: &Observation,
    now: DateTime<Utc>,
    windows: Windows,
    new_id: impl FnOnce() -> String,
) -> Decision {
    let message_key = observation.message_key();
    if let Some(state) = current {
        if state.incident.thread.channel != observation.message.channel {
            return Decision::Ignore("other_channel");
        }
        let own = state.incident.fingerprint == observation.fingerprint;
        let redelivered = if own {
            state.last_message == message_key
        } else {
            state.related_messages.get(&observation.fingerprint) == Some(&message_key)
        };
        if redelivered {
            return Decision::Republish(state.event());
        }
    }
    let open = current.filter(|state| state.incident.resolved_at.is_none());
    let Some(state) = open else {
        return match observation.alert.status {
            AlertStatus::Firing => {
                Decision::Apply(open_incident(observation, now, windows, new_id))
            }
            AlertStatus::Resolved => Decision::Ignore("resolved_without_open_incident"),
        };
    };
    let mut incident = state.incident.clone();
    let mut next = IncidentState {
        incident: state.incident.clone(),
        last_message: state.last_message.clone(),
        related_messages: state.related_messages.clone(),
        announced: state.announced,
        republish: false,
    };
    // An edit is the same notification said again, perhaps with more: it never counts as a repeat.
    let repeat = u32::from(observation.edited_ts.is_none());
    if incident.fingerprint == observation.fingerprint {
        incident.alert.status = observation.alert.status;
        if observation.alert.status == AlertStatus::Firing {
            incident.notification_count += repeat;
            merge_alert(&mut incident.alert, &observation.alert);
        }
        next.last_message = message_key;
    } else if let Some(related) = incident
        .related
        .iter_mut()
        .find(|related| related.fingerprint == observation.fingerprint)
    {
        related.alert.status = observation.alert.status;
        if observation.alert.status == AlertStatus::Firing {
            related.notification_count += repeat;
            merge_alert(&mut related.alert, &observation.alert);
            related.alert.annotations.clear();
            related.alert.links.clear();
        }
        related.last_seen_at = now;
        related.last_message = observation.message.clone();
        next.related_messages
            .insert(observation.fingerprint.clone(), message_key);
    } else if observation.alert.status == AlertStatus::Resolved {
        return Decision::Ignore("resolved_without_open_incident");
    } else if incident.related.len() < MAX_RELATED {
        next.related_messages
            .insert(observation.fingerprint.clone(), message_key);
        // A storm's member is listed, not described: 100 of them stay far below NATS's 1 MiB.
        let mut member = observation.alert.clone();
        member.annotations.clear();
        member.links.clear();
        incident.related.push(RelatedAlert {
            fingerprint: observation.fingerprint.clone(),
            alert: member,
            last_message: observation.message.clone(),
            first_seen_at: now,
            last_seen_at: now,
            notification_count: 1,
        });
    } else {
        incident.related_untracked += 1;
    }
    if observation.edited_ts.is_some() && incident == state.incident {
        return Decision::Ignore("edit_without_change");
    }
    incident.last_seen_at = now;
    // Heard from again: no longer stale.
    incident.stale_since = None;
    incident.window.to = now.max(incident.window.to);
    if incident.all_resolved() {
        incident.resolved_at = Some(now);
    }
    incident.revision += 1;
    next.incident = incident;
    Decision::Apply(next)
}

fn open_incident(
    observation: &Observation,
    now: DateTime<Utc>,
    windows: Windows,
    new_id: impl FnOnce() -> String,
) -> IncidentState {
    let starts_at = observation.alert.starts_at.unwrap_or(now).min(now);
    let from = starts_at - chrono::Duration::from_std(windows.lookback).unwrap_or_default();
    let baseline_from = from - chrono::Duration::from_std(windows.baseline).unwrap_or_default();
    IncidentState {
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
            related: Vec::new(),
            related_untracked: 0,
            stale_since: None,
            asked_by: observation.asked_by.clone(),
        },
        last_message: observation.message_key(),
        related_messages: BTreeMap::new(),
        announced: false,
        republish: false,
    }
}

/// How alert storms group into few incidents: a firing alert with no incident of its own joins
/// the open incident that the first alert of its storm group opened in the same channel less than
/// `window` ago, instead of opening a thread (and a round of evidence lookups) of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StormRules {
    /// How long after an incident opens other alerts of its group join it. Zero: never.
    pub window: Duration,
    /// What alerts of one group share besides the channel: `service`, `severity`, `source`,
    /// `alertname`, or any other name for the label of that name. An alert without a value
    /// groups with the others that have none.
    pub group_by: Vec<String>,
}

/// Which storm incident a group is joining: kept under the group's key in the incident bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StormMark {
    /// The fingerprint of the alert whose incident the group joins.
    pub leader: String,
    pub opened_at: DateTime<Utc>,
}

impl StormRules {
    /// The key of the storm group `observation` belongs to; `None` when storms are not grouped.
    pub fn group_key(&self, observation: &Observation) -> Option<String> {
        // A message a person asked about stands alone: it never joins (or leads) a storm of
        // alerts the integrations posted.
        if self.window.is_zero() || observation.asked_by.is_some() {
            return None;
        }
        let alert = &observation.alert;
        let mut hasher = Sha256::new();
        hasher.update(observation.message.channel.as_bytes());
        for field in &self.group_by {
            let value = match field.as_str() {
                "service" => alert.service.clone(),
                "severity" => alert.severity.clone(),
                "source" => Some(format!("{:?}", alert.source)),
                "alertname" => Some(alert.name.clone()),
                label => alert.labels.get(label).cloned(),
            };
            hasher.update([0]);
            hasher.update(value.unwrap_or_default().as_bytes());
        }
        Some(hex(&hasher.finalize()))
    }

    /// Whether an alert arriving at `now` still joins the storm `mark` started.
    pub fn joins(&self, mark: &StormMark, now: DateTime<Utc>) -> bool {
        (now - mark.opened_at)
            .to_std()
            .is_ok_and(|age| age < self.window)
            || now < mark.opened_at
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Adds what Alertmanager's webhook knows (labels, annotations, start) to an open incident
/// opened from its keyless Slack message; `None` when it adds nothing (or the incident is closed).
pub fn enrich(state: &IncidentState, known: &Alert) -> Option<IncidentState> {
    if state.incident.resolved_at.is_some() || !describes(known, &state.incident.alert) {
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
        republish: true,
        ..state.clone()
    })
}

/// Whether what Alertmanager said (`confirmed`) is about `alert`: the same name, and no label
/// the message showed has another value there. Webhook data never replaces the labels of an
/// alert it does not match.
pub fn describes(confirmed: &Alert, alert: &Alert) -> bool {
    confirmed.name == alert.name
        && (alert.labels_confirmed
            || alert.labels.iter().all(|(key, value)| {
                confirmed
                    .labels
                    .get(key)
                    .is_none_or(|confirmed| confirmed == value)
            }))
}

/// The open incident resolved because Alertmanager no longer has any of its alerts: it sends no
/// `[RESOLVED]` for alerts that were silenced (or inhibited) when they stopped firing, so without
/// this their threads would say "firing" for ever. Only incidents whose alerts Alertmanager
/// confirmed (their fingerprints known, the storm's related alerts too) are resolved this way, and
/// only when the last notification is older than `grace` (Alertmanager may still be sending it).
pub fn resolve_absent(
    state: &IncidentState,
    active: &std::collections::HashSet<String>,
    now: DateTime<Utc>,
    grace: Duration,
) -> Option<IncidentState> {
    let incident = &state.incident;
    if incident.resolved_at.is_some()
        || incident.alert.source != AlertSource::Alertmanager
        || (now - incident.last_seen_at).to_std().unwrap_or_default() < grace
    {
        return None;
    }
    let alerts = std::iter::once(&incident.alert).chain(
        incident
            .related
            .iter()
            .filter(|related| related.alert.status == AlertStatus::Firing)
            .map(|related| &related.alert),
    );
    let mut fingerprints = Vec::new();
    for alert in alerts {
        if !alert.labels_confirmed || alert.alertmanager_fingerprints.is_empty() {
            return None;
        }
        fingerprints.extend(&alert.alertmanager_fingerprints);
    }
    if fingerprints
        .iter()
        .any(|fingerprint| active.contains(*fingerprint))
    {
        return None;
    }
    let mut resolved = state.clone();
    resolved.incident.alert.status = AlertStatus::Resolved;
    resolved.incident.resolved_at = Some(now);
    resolved.incident.revision += 1;
    resolved.republish = true;
    Some(resolved)
}

/// The open incident marked stale: no notification for `stale_after`. Alertmanager incidents
/// whose alerts it confirmed are left to [`resolve_absent`], which knows better.
pub fn mark_stale(
    state: &IncidentState,
    now: DateTime<Utc>,
    stale_after: Duration,
) -> Option<IncidentState> {
    let incident = &state.incident;
    let reconciled = incident.alert.source == AlertSource::Alertmanager
        && !incident.alert.alertmanager_fingerprints.is_empty();
    if incident.resolved_at.is_some()
        || incident.stale_since.is_some()
        || reconciled
        || stale_after.is_zero()
        || (now - incident.last_seen_at).to_std().unwrap_or_default() < stale_after
    {
        return None;
    }
    let mut stale = state.clone();
    stale.incident.stale_since = Some(now);
    stale.incident.revision += 1;
    stale.republish = true;
    Some(stale)
}

/// A repeat notification may know more (labels recovered since); it never forgets what was known.
/// Labels Alertmanager confirmed replace those read from text, and text never adds to them.
fn merge_alert(known: &mut Alert, seen: &Alert) {
    match (known.labels_confirmed, seen.labels_confirmed) {
        (_, true) => {
            known.labels = seen.labels.clone();
            known.labels_confirmed = true;
            if !seen.alertmanager_fingerprints.is_empty() {
                known.alertmanager_fingerprints = seen.alertmanager_fingerprints.clone();
            }
        }
        (true, false) => {}
        (false, false) => known.labels.extend(seen.labels.clone()),
    }
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
    // Repeats add what they know; the alert stays within its bounds however many come.
    crate::recognize::bound(known);
}

#[cfg(test)]
mod tests;
