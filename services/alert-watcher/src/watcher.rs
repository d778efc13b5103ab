//! The watcher's handler for Slack messages: recognize, recover labels, correlate with the
//! incident's state in KV (compare-and-set, so two replicas never open the same incident twice),
//! then publish the incident event.

use std::time::Duration;

use async_nats::jetstream::kv;
use bus::{Bus, HandlerError};
use chrono::Utc;
use proto::{
    SlackMessage, SlackThread,
    incident::{Alert, AlertSource},
};

use crate::{
    alertmanager_api::AlertmanagerApi,
    correlate::{self, Decision, IncidentState, Observation, Windows},
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
}

impl Watcher {
    pub(crate) async fn on_message(&self, message: SlackMessage) -> Result<(), HandlerError> {
        if message.thread_ts.is_some() {
            // A reply in a thread is conversation about an alert, not a new one.
            metrics::counter!("ft_watcher_messages_total", "kind" => "thread_reply").increment(1);
            return Ok(());
        }
        let readings = match recognize::recognize_with(&message.raw, &self.rules) {
            Recognition::Alerts(readings) => readings,
            Recognition::NotAnAlert => {
                metrics::counter!("ft_watcher_messages_total", "kind" => "not_an_alert")
                    .increment(1);
                return Ok(());
            }
        };
        metrics::counter!("ft_watcher_messages_total", "kind" => "alert").increment(1);
        for reading in readings {
            let observation = self.observe(reading, &message).await;
            self.correlate(&observation).await?;
        }
        Ok(())
    }

    /// Keeps what Alertmanager's webhook said about a group (for its Slack message still to come)
    /// and enriches the group's open incident with it.
    pub(crate) async fn learn(&self, fingerprint: &str, known: &Alert) -> Result<(), HandlerError> {
        let value = serde_json::to_vec(known)
            .map_err(|err| HandlerError::reject(format!("cannot encode the alert: {err}")))?;
        self.store
            .put(format!("amhook.{fingerprint}"), value.into())
            .await
            .map_err(|err| HandlerError::retry(format!("storing the webhook's labels: {err}")))?;
        let key = format!("fp.{fingerprint}");
        for _ in 0..MAX_CAS_ROUNDS {
            let Some((current, revision)) = self.read_state(&key).await? else {
                return Ok(()); // the Slack message has not come yet; it will find the labels
            };
            let Some(enriched) = correlate::enrich(&current, known) else {
                return Ok(());
            };
            if self.write_state(&key, &enriched, revision).await? {
                self.bus
                    .publish(&enriched.event())
                    .await
                    .map_err(HandlerError::retry)?;
                return Ok(());
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
            .entry(format!("amhook.{fingerprint}"))
            .await
            .ok()??;
        serde_json::from_slice(&entry.value).ok()
    }

    /// Completes a reading (labels from Alertmanager's webhook or API, the service) into an
    /// observation.
    async fn observe(&self, reading: Reading, message: &SlackMessage) -> Observation {
        let mut alert = reading.alert;
        if alert.source == AlertSource::Alertmanager
            && alert.labels.is_empty()
            && let Some(known) = self
                .learned(&correlate::fingerprint(&alert, &reading.group_values))
                .await
        {
            alert.labels = known.labels;
            alert.annotations.extend(known.annotations);
            alert.starts_at = known.starts_at;
            alert.links.extend(known.links);
        }
        if alert.source == AlertSource::Alertmanager
            && alert.labels.is_empty()
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
        if alert.severity.is_none() {
            alert.severity = alert.labels.get("severity").cloned();
        }
        if alert.service.is_none() {
            let keys: Vec<&str> = self.service_labels.iter().map(String::as_str).collect();
            alert.service = recognize::service_of(&alert.labels, &keys);
        }
        Observation {
            fingerprint: correlate::fingerprint(&alert, &reading.group_values),
            alert,
            message: SlackThread {
                channel: message.channel.clone(),
                ts: message.ts.clone(),
            },
        }
    }

    async fn correlate(&self, observation: &Observation) -> Result<(), HandlerError> {
        let key = format!("fp.{}", observation.fingerprint);
        for _ in 0..MAX_CAS_ROUNDS {
            let (current, revision) = match self.read_state(&key).await? {
                Some((state, revision)) => (Some(state), revision),
                None => (None, 0),
            };
            let decision = correlate::decide(
                current.as_ref(),
                observation,
                Utc::now(),
                self.windows,
                || format!("inc-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            );
            let state = match decision {
                Decision::Ignore(why) => {
                    metrics::counter!("ft_watcher_ignored_total", "reason" => why).increment(1);
                    return Ok(());
                }
                Decision::Republish(event) => {
                    self.bus
                        .publish(&event)
                        .await
                        .map_err(HandlerError::retry)?;
                    return Ok(());
                }
                Decision::Apply(state) => state,
            };
            if self.write_state(&key, &state, revision).await? {
                let event = state.event();
                tracing::info!(incident = %event.incident.id, change = ?event.change, alert = %event.incident.alert.name, "incident");
                self.bus
                    .publish(&event)
                    .await
                    .map_err(HandlerError::retry)?;
                return Ok(());
            }
            // Another replica (or message) changed it first: decide again on what it wrote.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Err(HandlerError::retry(
            "the incident kept changing under concurrent writers",
        ))
    }

    /// The incident state under `key` and its KV revision; `None` when there is none.
    async fn read_state(&self, key: &str) -> Result<Option<(IncidentState, u64)>, HandlerError> {
        let entry = self
            .store
            .entry(key)
            .await
            .map_err(|err| HandlerError::retry(format!("reading the incident: {err}")))?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let state =
                    serde_json::from_slice::<IncidentState>(&entry.value).map_err(|err| {
                        HandlerError::reject(format!(
                            "the incident state {key} is unreadable: {err}"
                        ))
                    })?;
                Ok(Some((state, entry.revision)))
            }
            _ => Ok(None),
        }
    }

    /// Writes `state` if `key` is still at `revision` (0: does not exist yet); false when
    /// someone else wrote first.
    async fn write_state(
        &self,
        key: &str,
        state: &IncidentState,
        revision: u64,
    ) -> Result<bool, HandlerError> {
        let value = serde_json::to_vec(state)
            .map_err(|err| HandlerError::reject(format!("cannot encode the incident: {err}")))?
            .into();
        if revision == 0 {
            match self.store.create(key, value).await {
                Ok(_) => Ok(true),
                Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
                Err(err) => Err(HandlerError::retry(format!("writing the incident: {err}"))),
            }
        } else {
            match self.store.update(key, value, revision).await {
                Ok(_) => Ok(true),
                Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
                Err(err) => Err(HandlerError::retry(format!("writing the incident: {err}"))),
            }
        }
    }
}
