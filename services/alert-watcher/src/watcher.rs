//! The watcher's handler for Slack messages: recognize, recover labels, correlate with the
//! incident's state in KV (compare-and-set, so two replicas never open the same incident twice),
//! then publish the incident event.

use std::time::Duration;

use async_nats::jetstream::kv;
use bus::{Bus, HandlerError, json_kv};
use chrono::Utc;
use proto::{
    SlackMessage, SlackThread,
    incident::{Alert, AlertSource, AlertStatus},
    keys::incident as keys,
};

use crate::{
    alertmanager_api::AlertmanagerApi,
    correlate::{self, Decision, IncidentState, Observation, StormMark, StormRules, Windows},
    recognize::{self, Reading, Recognition},
};

const MAX_CAS_ROUNDS: usize = 20;

#[derive(Debug)]
pub(crate) struct Watcher {
    pub(crate) bus: Bus,
    pub(crate) store: kv::Store,
    pub(crate) alertmanager: Option<AlertmanagerApi>,
    pub(crate) windows: Windows,
    pub(crate) service_labels: Vec<String>,
    pub(crate) rules: Vec<recognize::rules::Rule>,
    pub(crate) change_rules: Vec<crate::changes::ChangeRule>,
    pub(crate) storm: StormRules,
}

enum Applied {
    Done,
    /// Someone wrote the incident first; decide again.
    Conflict,
}

enum StormLeader {
    Join(Box<IncidentState>, u64),
    Lead,
    Wait,
}

/// Most channels one alert's webhook enriches.
const MAX_CHANNELS_PER_ALERT: usize = 32;

fn redelivered_member(state: &IncidentState, observation: &Observation) -> bool {
    state.related_messages.get(&observation.fingerprint) == Some(&observation.message_key())
}

/// `alert` with what its labels say filled in where the reader left it out (its severity, its
/// service by `service_labels`), within [`recognize::limits`].
fn completed(mut alert: proto::Alert, service_labels: &[String]) -> proto::Alert {
    if alert.severity.is_none() {
        alert.severity = alert.labels.get("severity").cloned();
    }
    if alert.service.is_none() {
        let keys: Vec<&str> = service_labels.iter().map(String::as_str).collect();
        alert.service = recognize::service_of(&alert.labels, &keys);
    }
    recognize::bounded(alert)
}

/// The observation of a message `person` asked to be diagnosed. It is firing whatever it says
/// (a pasted `[RESOLVED]` must not resolve the real alert), its labels are what it says (never
/// confirmed by Alertmanager, so nothing can be silenced from it), and its fingerprint is the
/// message's own: it opens an incident of its own, and asking again about the same message finds
/// that incident, never one an integration's alert opened.
fn asked_observation(
    reading: Reading,
    message: &SlackMessage,
    person: &str,
    service_labels: &[String],
) -> Observation {
    let mut alert = reading.alert;
    alert.status = proto::incident::AlertStatus::Firing;
    alert.labels_confirmed = false;
    alert.alertmanager_fingerprints.clear();
    let alert = completed(alert, service_labels);
    let own = correlate::fingerprint(&alert, &reading.group_values);
    let alert_fingerprint = correlate::fingerprint(
        &proto::Alert {
            name: format!("asked:{}:{}:{own}", message.channel, message.ts),
            ..alert.clone()
        },
        &[],
    );
    Observation {
        fingerprint: correlate::in_channel(&message.channel, &alert_fingerprint),
        alert_fingerprint,
        alert,
        message: SlackThread {
            channel: message.channel.clone(),
            ts: message.ts.clone(),
        },
        edited_ts: None,
        asked_by: Some(person.to_owned()),
    }
}

impl Watcher {
    pub(crate) async fn on_message(&self, message: SlackMessage) -> Result<(), HandlerError> {
        if message.thread_ts.is_some() && message.asked_by.is_none() {
            // A reply in a thread is conversation about an alert, not a new one.
            metrics::counter!("ft_watcher_messages_total", "kind" => "thread_reply").increment(1);
            return Ok(());
        }
        let readings = match &message.asked_by {
            Some(person) => {
                tracing::info!(%person, channel = %message.channel, ts = %message.ts, "asked to diagnose a message");
                metrics::counter!("ft_watcher_messages_total", "kind" => "asked").increment(1);
                recognize::recognize_asked(&message.raw, &self.rules)
            }
            None => match recognize::recognize_with(&message.raw, &self.rules) {
                Recognition::Alerts(readings) => readings,
                Recognition::NotAnAlert => return self.on_other_message(&message).await,
            },
        };
        metrics::counter!("ft_watcher_messages_total", "kind" => "alert").increment(1);
        if let Some(person) = &message.asked_by {
            // What a person asked about opens an incident of its own and changes no other.
            for reading in readings {
                let observation =
                    asked_observation(reading, &message, person, &self.service_labels);
                self.correlate(&observation).await?;
            }
            return Ok(());
        }
        for reading in readings {
            let observation = self.observe(reading, &message).await;
            self.correlate(&observation).await?;
            if observation.alert.source == AlertSource::Alertmanager {
                self.note_channel(&observation).await?;
            }
            if observation.alert.source == AlertSource::Alertmanager
                && !observation.alert.labels_confirmed
                && let Some(known) = self.learned(&observation.alert_fingerprint).await
            {
                // The webhook came while this message was being correlated: it stored its labels
                // before looking for the channels, this message wrote the incident and its channel
                // before looking again, so one of the two always sees the other.
                self.enrich_open(&observation.fingerprint, &known).await?;
            }
        }
        Ok(())
    }

    /// A message that is no alert may announce a change (a deploy bot, Argo CD, Flux): recorded,
    /// once per message, so the next incident's thread can say what changed before it.
    async fn on_other_message(&self, message: &SlackMessage) -> Result<(), HandlerError> {
        let Some(new) = crate::changes::read(&message.raw, &self.change_rules) else {
            metrics::counter!("ft_watcher_messages_total", "kind" => "not_an_alert").increment(1);
            return Ok(());
        };
        let at = message
            .ts
            .split('.')
            .next()
            .and_then(|seconds| seconds.parse::<i64>().ok())
            .and_then(|seconds| chrono::DateTime::from_timestamp(seconds, 0));
        let new = proto::NewChange { at, ..new };
        // A link that is no http(s) URL is dropped, not the change.
        let new = match new.url.as_deref() {
            Some(url) if !proto::mrkdwn::is_safe_url(url) => proto::NewChange { url: None, ..new },
            _ => new,
        };
        let id = format!(
            "slack-{}-{}",
            message.channel,
            message
                .ts
                .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
        );
        match new.into_change(proto::ChangeSource::Slack, chrono::Utc::now(), || id) {
            Ok(change) => {
                self.bus
                    .publish(&change)
                    .await
                    .map_err(HandlerError::retry)?;
                metrics::counter!("ft_watcher_messages_total", "kind" => "change").increment(1);
                tracing::info!(service = %change.service, version = ?change.version, "change read in Slack");
            }
            Err(err) => {
                // Text from outside that does not make a change: counted and said, never fatal.
                metrics::counter!("ft_watcher_messages_total", "kind" => "change_refused")
                    .increment(1);
                tracing::info!(error = %err, channel = %message.channel, "a change message could not be recorded");
            }
        }
        Ok(())
    }

    /// Looks over the open incidents: resolves, in place, those none of whose alerts Alertmanager
    /// still has ([`correlate::resolve_absent`], with `alertmanager`), marks stale those not
    /// heard from for `stale_after` ([`correlate::mark_stale`]), and publishes again the events
    /// of writes whose publish failed (`IncidentState::republish`, closed incidents too); how
    /// many it changed.
    pub(crate) async fn sweep(
        &self,
        alertmanager: Option<&AlertmanagerApi>,
        grace: Duration,
        stale_after: Duration,
    ) -> Result<usize, HandlerError> {
        use futures::TryStreamExt as _;

        let active = match alertmanager {
            Some(api) => Some(
                api.current_fingerprints()
                    .await
                    .map_err(HandlerError::retry)?,
            ),
            None => None,
        };
        let keys: Vec<String> = self
            .store
            .keys()
            .await
            .map_err(|err| HandlerError::retry(format!("listing incidents: {err}")))?
            .try_filter(|key| std::future::ready(key.starts_with(keys::STATE_PREFIX)))
            .try_collect()
            .await
            .map_err(|err| HandlerError::retry(format!("listing incidents: {err}")))?;
        let mut changed = 0;
        // A publish that fails (no stream leader) does not stop the sweep of the others.
        let mut failed = None;
        for key in keys {
            let Some((state, revision)) = self.read_state(&key).await? else {
                continue;
            };
            if state.republish {
                // Written, and its publish failed (or is under way: the same revision's second
                // publish is stored once).
                tracing::info!(incident = %state.incident.id, revision = state.incident.revision, "publishing an incident's event again");
                metrics::counter!("ft_watcher_swept_total", "why" => "unpublished").increment(1);
                match self.announce(&state).await {
                    Ok(()) => changed += 1,
                    Err(err) => failed = Some(err),
                }
                continue;
            }
            let now = Utc::now();
            let (next, why) = match active
                .as_ref()
                .and_then(|active| correlate::resolve_absent(&state, active, now, grace))
            {
                Some(resolved) => (resolved, "alertmanager_no_longer_has_it"),
                None => match correlate::mark_stale(&state, now, stale_after) {
                    Some(stale) => (stale, "stale"),
                    None => continue,
                },
            };
            // A notification that changed it meanwhile wins; the next sweep looks again.
            if self.compare_and_set(&key, &next, revision).await? {
                tracing::info!(incident = %next.incident.id, why, "incident swept");
                metrics::counter!("ft_watcher_swept_total", "why" => why).increment(1);
                // Not published: left for the next sweep (`republish`), after the others.
                match self.announce(&next).await {
                    Ok(()) => changed += 1,
                    Err(err) => failed = Some(err),
                }
            }
        }
        match failed {
            Some(err) => Err(err),
            None => Ok(changed),
        }
    }

    /// Keeps what Alertmanager's webhook said about a group (for its Slack message still to come)
    /// and enriches the group's open incidents, in every channel its message was posted to.
    pub(crate) async fn learn(
        &self,
        alert_fingerprint: &str,
        known: &Alert,
    ) -> Result<(), HandlerError> {
        let value = serde_json::to_vec(known)
            .map_err(|err| HandlerError::reject(format!("cannot encode the alert: {err}")))?;
        self.store
            .put(keys::webhook_alert(alert_fingerprint), value.into())
            .await
            .map_err(|err| HandlerError::retry(format!("storing the webhook's labels: {err}")))?;
        let channels: Vec<String> = self
            .read_json(&keys::alert_channels(alert_fingerprint))
            .await?
            .unwrap_or_default();
        for channel in channels {
            self.enrich_open(&correlate::in_channel(&channel, alert_fingerprint), known)
                .await?;
        }
        Ok(())
    }

    /// Records that the alert has an incident in the observation's channel, so that the webhook
    /// (which knows no channel) finds it.
    async fn note_channel(&self, observation: &Observation) -> Result<(), HandlerError> {
        let key = keys::alert_channels(&observation.alert_fingerprint);
        let channel = &observation.message.channel;
        for _ in 0..MAX_CAS_ROUNDS {
            let (channels, revision) =
                json_kv::read_tolerant::<Vec<String>>(&self.store, &key).await?;
            let mut channels = channels.unwrap_or_default();
            if channels.contains(channel) {
                return Ok(());
            }
            channels.push(channel.clone());
            // Bounded: an alert posted into more channels than this is enriched in the newest.
            let excess = channels.len().saturating_sub(MAX_CHANNELS_PER_ALERT);
            channels.drain(..excess);
            if self.compare_and_set(&key, &channels, revision).await? {
                return Ok(());
            }
        }
        Err(HandlerError::retry(
            "the alert's channels kept changing under concurrent writers",
        ))
    }

    /// Adds what the webhook knows to the open incident with this fingerprint, if there is one.
    async fn enrich_open(&self, fingerprint: &str, known: &Alert) -> Result<(), HandlerError> {
        let key = keys::state(fingerprint);
        for _ in 0..MAX_CAS_ROUNDS {
            let Some((current, revision)) = self.read_state(&key).await? else {
                return Ok(()); // the Slack message has not come yet; it will find the labels
            };
            let Some(enriched) = correlate::enrich(&current, known) else {
                return Ok(());
            };
            if self.compare_and_set(&key, &enriched, revision).await? {
                return self.announce(&enriched).await;
            }
        }
        Err(HandlerError::retry(
            "the incident kept changing under concurrent writers",
        ))
    }

    /// What Alertmanager's webhook said about the group with this fingerprint, if it did.
    async fn learned(&self, fingerprint: &str) -> Option<Alert> {
        let entry = self
            .store
            .entry(keys::webhook_alert(fingerprint))
            .await
            .ok()??;
        serde_json::from_slice(&entry.value).ok()
    }

    /// Completes a reading (labels from Alertmanager's webhook or API, the service) into an
    /// observation.
    async fn observe(&self, reading: Reading, message: &SlackMessage) -> Observation {
        let mut alert = reading.alert;
        // Channel-free, computed before any labels are recovered: the webhook computes the same.
        let alert_fingerprint = correlate::fingerprint(&alert, &reading.group_values);
        if alert.source == AlertSource::Alertmanager
            && let Some(known) = self.learned(&alert_fingerprint).await
            && correlate::describes(&known, &alert)
        {
            alert.labels = known.labels;
            alert.annotations.extend(known.annotations);
            alert.starts_at = known.starts_at;
            alert.links.extend(known.links);
            alert.labels_confirmed = true;
            alert.alertmanager_fingerprints = known.alertmanager_fingerprints;
        }
        if alert.source == AlertSource::Alertmanager
            && !alert.labels_confirmed
            && let Some(api) = &self.alertmanager
        {
            let values: Vec<String> = reading
                .group_values
                .iter()
                .chain(&reading.common_values)
                .cloned()
                .collect();
            match api.recover(&alert.name, &values).await {
                Ok(Some(recovered)) => {
                    alert.labels = recovered.labels;
                    alert.labels_confirmed = true;
                    alert.alertmanager_fingerprints = recovered.fingerprints;
                    alert.annotations.extend(recovered.annotations);
                    alert.starts_at = recovered.starts_at;
                    if let Some(url) = recovered.generator_url {
                        alert.links.push(proto::incident::Link {
                            title: "Source".to_owned(),
                            url,
                        });
                    }
                }
                Ok(None) => {
                    tracing::debug!(alert = %alert.name, "Alertmanager does not list it (resolved?)")
                }
                // Recovery is a bonus: without it the alert is still correlated by its title.
                Err(err) => tracing::warn!(error = %err, "cannot recover labels from Alertmanager"),
            }
        }
        let alert = completed(alert, &self.service_labels);
        Observation {
            fingerprint: correlate::in_channel(&message.channel, &alert_fingerprint),
            alert_fingerprint,
            alert,
            message: SlackThread {
                channel: message.channel.clone(),
                ts: message.ts.clone(),
            },
            edited_ts: message.edited_ts.clone(),
            asked_by: None,
        }
    }

    /// Applies `observation` to the incident it belongs to: its own; else the storm incident it
    /// joined; else, when it fires, the storm incident of its group or a new one.
    async fn correlate(&self, observation: &Observation) -> Result<(), HandlerError> {
        let own_key = keys::state(&observation.fingerprint);
        for _ in 0..MAX_CAS_ROUNDS {
            let own = self.read_state(&own_key).await?;
            // 1. Its own incident, while open (or for a redelivery of the message it last took).
            if let Some((state, revision)) = &own
                && (state.incident.resolved_at.is_none()
                    || state.last_message == observation.message_key())
            {
                match self.apply(Some(state), *revision, observation).await? {
                    Applied::Done => return Ok(()),
                    Applied::Conflict => continue,
                }
            }
            // 2. The storm incident it joined, while open.
            if let Some(leader) = self
                .read_json::<String>(&keys::storm_member(&observation.fingerprint))
                .await?
                && let Some((state, revision)) = self.read_state(&keys::state(&leader)).await?
                && (state.incident.resolved_at.is_none() || redelivered_member(&state, observation))
            {
                match self.apply(Some(&state), revision, observation).await? {
                    Applied::Done => return Ok(()),
                    Applied::Conflict => continue,
                }
            }
            let own_revision = own.as_ref().map_or(0, |(_, revision)| *revision);
            let own_state = own.as_ref().map(|(state, _)| state);
            if observation.alert.status == AlertStatus::Resolved {
                return self
                    .apply(own_state, own_revision, observation)
                    .await
                    .map(|_| ());
            }
            // 3. The storm incident of its group, or a new incident that starts a storm group.
            if let Some(group_key) = self.storm.group_key(observation) {
                let group_key = keys::storm_group(&group_key);
                match self.storm_leader(&group_key, observation).await? {
                    StormLeader::Join(state, revision) => {
                        self.put_json(
                            &keys::storm_member(&observation.fingerprint),
                            &state.incident.fingerprint,
                        )
                        .await?;
                        match self.apply(Some(&state), revision, observation).await? {
                            Applied::Done => return Ok(()),
                            Applied::Conflict => continue,
                        }
                    }
                    StormLeader::Lead => {}
                    StormLeader::Wait => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
            }
            match self.apply(own_state, own_revision, observation).await? {
                Applied::Done => return Ok(()),
                Applied::Conflict => continue,
            }
        }
        Err(HandlerError::retry(
            "the incident kept changing under concurrent writers",
        ))
    }

    /// Decides on `current` (at KV `revision`) and writes and publishes the outcome.
    async fn apply(
        &self,
        current: Option<&IncidentState>,
        revision: u64,
        observation: &Observation,
    ) -> Result<Applied, HandlerError> {
        let decision = correlate::decide(current, observation, Utc::now(), self.windows, || {
            format!("inc-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
        });
        let state = match decision {
            Decision::Ignore(why) => {
                metrics::counter!("ft_watcher_ignored_total", "reason" => why).increment(1);
                return Ok(Applied::Done);
            }
            Decision::Republish(event) => {
                self.bus
                    .publish(&event)
                    .await
                    .map_err(HandlerError::retry)?;
                if let Some(state) = current {
                    self.mark_published(state).await?;
                }
                return Ok(Applied::Done);
            }
            Decision::Apply(state) => state,
        };
        // A closed incident's key takes the new one that the alert opens.
        let key = keys::state(&state.incident.fingerprint);
        if !self.compare_and_set(&key, &state, revision).await? {
            // Another replica (or message) changed it first: decide again on what it wrote.
            tokio::time::sleep(Duration::from_millis(5)).await;
            return Ok(Applied::Conflict);
        }
        let event = state.event();
        tracing::info!(incident = %event.incident.id, change = ?event.change, alert = %event.incident.alert.name, related = event.incident.related.len(), "incident");
        self.announce(&state).await?;
        Ok(Applied::Done)
    }

    /// Publishes the event of `state`, just written; see [`Watcher::mark_published`].
    async fn announce(&self, state: &IncidentState) -> Result<(), HandlerError> {
        self.bus
            .publish(&state.event())
            .await
            .map_err(HandlerError::retry)?;
        self.mark_published(state).await
    }

    /// Records that the event of `state` was published: its incident's opening, so that its
    /// next events say `Updated` (until then they say `Opened`: a publish lost after the write
    /// is made good by the next event, whichever message brings it), and a revision the sweep
    /// would otherwise publish again. Nothing to record (no write) once both are.
    async fn mark_published(&self, state: &IncidentState) -> Result<(), HandlerError> {
        if state.announced && !state.republish {
            return Ok(());
        }
        // The one compare-and-set loop, over an incident that may be gone: a missing key
        // reads as `None`, which is left as it is.
        let key = keys::state(&state.incident.fingerprint);
        json_kv::update::<Option<IncidentState>>(&self.store, &key, MAX_CAS_ROUNDS, |current| {
            let Some(current) = current else {
                return false;
            };
            if current.incident.id != state.incident.id {
                return false;
            }
            let same_revision = current.incident.revision == state.incident.revision;
            let changed = !current.announced || (same_revision && current.republish);
            current.announced = true;
            current.republish &= !same_revision;
            changed
        })
        .await?;
        Ok(())
    }

    /// Whom a firing alert without an incident follows in its storm group: an open incident to
    /// join, itself (it claimed the group), or nobody yet (the group's first alert is still
    /// opening its incident).
    async fn storm_leader(
        &self,
        group_key: &str,
        observation: &Observation,
    ) -> Result<StormLeader, HandlerError> {
        let now = Utc::now();
        let (mark, revision) = json_kv::read_tolerant::<StormMark>(&self.store, group_key).await?;
        if let Some(mark) = &mark
            && self.storm.joins(mark, now)
        {
            if mark.leader == observation.fingerprint {
                return Ok(StormLeader::Lead);
            }
            match self.read_state(&keys::state(&mark.leader)).await? {
                Some((state, revision)) if state.incident.resolved_at.is_none() => {
                    return Ok(StormLeader::Join(Box::new(state), revision));
                }
                Some(_) => {} // the storm is over: this alert starts the next one
                None if now - mark.opened_at < chrono::Duration::seconds(30) => {
                    return Ok(StormLeader::Wait);
                }
                None => {} // its leader never wrote its incident (crashed and gone): take over
            }
        }
        let claim = StormMark {
            leader: observation.fingerprint.clone(),
            opened_at: now,
        };
        let claimed = self.compare_and_set(group_key, &claim, revision).await?;
        // Lost the claim: another alert of the group leads; the next round joins it.
        Ok(if claimed {
            StormLeader::Lead
        } else {
            StormLeader::Wait
        })
    }

    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, HandlerError> {
        Ok(json_kv::read_tolerant(&self.store, key).await?.0)
    }

    async fn put_json<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), HandlerError> {
        Ok(json_kv::put(&self.store, key, value).await?)
    }

    /// The incident state under `key` and its KV revision; `None` when there is none.
    async fn read_state(&self, key: &str) -> Result<Option<(IncidentState, u64)>, HandlerError> {
        let (state, revision) = json_kv::read(&self.store, key).await?;
        Ok(state.map(|state| (state, revision)))
    }

    /// Writes `value` as JSON if `key` is still at `revision` (0: does not exist yet); false
    /// when someone else wrote first.
    async fn compare_and_set<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
        revision: u64,
    ) -> Result<bool, HandlerError> {
        Ok(json_kv::compare_and_set(&self.store, key, value, revision).await?)
    }
}
