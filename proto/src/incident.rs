//! Incidents: alerts recognized by alert-watcher, correlated by fingerprint.
//!
//! One incident is one thread in Slack. It is opened once, updated as repeat notifications arrive
//! (the count and last-seen time change; no new message is posted) and resolved once. Each
//! change increments `revision`, which together with the incident id is the idempotency key, so a
//! retried publish of the same change is stored once while every real change is delivered.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Correlated, Correlation, IncidentId, Message, SchemaVersion, SlackThread, Subject, TimeWindow,
};

/// Which tool raised the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertSource {
    Alertmanager,
    Grafana,
    Sentry,
    Datadog,
    /// `key: value` lines or a JSON block from any webhook.
    Generic,
    /// An operator-defined rule for an in-house format.
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// A link the alert carried (runbook, dashboard, source, silence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Link {
    pub title: String,
    pub url: String,
}

/// One alert, normalized from whatever tool posted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Alert {
    pub source: AlertSource,
    pub status: AlertStatus,
    /// The alert's name, e.g. `HighCPU`.
    pub name: String,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub links: Vec<Link>,
    /// The service the alert concerns, mapped from labels such as `service`, `app` or `job`.
    #[serde(default)]
    pub service: Option<String>,
    /// Whether Alertmanager itself (its API, or its authenticated webhook) gave `labels`, rather
    /// than text in a Slack message that anyone could have written. Actions that change the world
    /// through Alertmanager (silences) are offered only when it did.
    #[serde(default)]
    pub labels_confirmed: bool,
    /// Alertmanager's fingerprints of the alerts this one stands for (a notification may group
    /// several), when Alertmanager confirmed them: a silence may match these and no others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alertmanager_fingerprints: Vec<String>,
}

impl Alert {
    /// The equality matchers a silence of this alert has: every label Alertmanager confirmed
    /// (never fewer), and its name. `None` when Alertmanager did not confirm them: a silence
    /// built from text anyone could type would silence whatever that text names.
    pub fn silence_matchers(&self) -> Option<BTreeMap<String, String>> {
        if self.source != AlertSource::Alertmanager
            || !self.labels_confirmed
            || self.labels.is_empty()
            || self.alertmanager_fingerprints.is_empty()
        {
            return None;
        }
        let mut matchers = self.labels.clone();
        matchers
            .entry("alertname".to_owned())
            .or_insert_with(|| self.name.clone());
        Some(matchers)
    }
}

/// The state of one incident after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Incident {
    pub id: IncidentId,
    /// Source, alert name and identifying labels, hashed; equal for repeat notifications.
    pub fingerprint: String,
    pub alert: Alert,
    /// The alert's own Slack message; the diagnosis goes into its thread.
    pub thread: SlackThread,
    pub opened_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// How many notifications of this alert arrived (1 when opened).
    pub notification_count: u32,
    /// The window to look at (around the alert).
    pub window: TimeWindow,
    /// A calm window before it, to compare against.
    pub baseline: TimeWindow,
    #[serde(default)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Incremented on every change; the KV revision the watcher wrote it at.
    pub revision: u64,
    /// Other alerts grouped into this incident by the watcher's storm rules (same channel and
    /// group, within the storm window of its opening) instead of opening threads of their own.
    /// The incident resolves when its own alert and all of these have.
    #[serde(default)]
    pub related: Vec<RelatedAlert>,
    /// Alerts grouped here beyond the number kept in `related` (bounded so one storm cannot make
    /// an incident too large for a message); counted, not tracked.
    #[serde(default)]
    pub related_untracked: u32,
    /// Set when no notification came for the watcher's `incidents.stale_after` and its source
    /// never says when an alert resolves: the thread says so instead of "firing" for ever.
    /// Cleared by the next notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_since: Option<DateTime<Utc>>,
    /// Set when a person asked for this message to be diagnosed (the message shortcut,
    /// `@flamethread diagnose`) rather than an integration posting it: who asked. Such an
    /// incident is its message's alone (no storm joins it, it never resolves an alert), and
    /// no live profile is taken for it unasked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked_by: Option<String>,
}

/// An alert grouped into another alert's incident during a storm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RelatedAlert {
    /// Its own fingerprint (as [`Incident::fingerprint`]).
    pub fingerprint: String,
    pub alert: Alert,
    /// The message it was last seen in.
    pub last_message: SlackThread,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub notification_count: u32,
}

impl Incident {
    /// Whether the incident's own alert and every related alert it tracks have resolved.
    pub fn all_resolved(&self) -> bool {
        self.alert.status == AlertStatus::Resolved
            && self
                .related
                .iter()
                .all(|related| related.alert.status == AlertStatus::Resolved)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentChange {
    Opened,
    Updated,
    Resolved,
}

/// An incident was opened, updated or resolved. Published on `incident.opened`,
/// `incident.updated` or `incident.resolved` according to `change`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentEvent {
    pub schema_version: SchemaVersion,
    pub change: IncidentChange,
    pub incident: Incident,
}

impl Message for IncidentEvent {
    fn subject(&self) -> Subject {
        match self.change {
            IncidentChange::Opened => Subject::IncidentOpened,
            IncidentChange::Updated => Subject::IncidentUpdated,
            IncidentChange::Resolved => Subject::IncidentResolved,
        }
    }

    fn idempotency_key(&self) -> String {
        format!("incident:{}:{}", self.incident.id, self.incident.revision)
    }
}

impl Correlated for IncidentEvent {
    fn correlation(&self) -> Correlation<'_> {
        Correlation {
            incident_id: Some(&self.incident.id.0),
            slack_channel: Some(&self.incident.thread.channel),
            alert_name: Some(&self.incident.alert.name),
        }
    }
}
