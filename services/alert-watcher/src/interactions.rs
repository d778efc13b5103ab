//! The consumer of commands, clicks and shared files (`alert-watcher-interactions`): `/profile`
//! and pickers ([`crate::commands`]), sandbox offers ([`crate::sandbox_offer`]) and the buttons
//! under an incident's reply ([`crate::actions`]), which need the incident's state (this
//! service's KV bucket) and, for silences, Alertmanager (whose credentials only this service
//! holds).

use async_nats::jetstream::kv;
use bus::{Bus, HandlerError};
use proto::{
    BlockAction, Message, Mrkdwn,
    slack::{ButtonValue as _, ExpireButton, SlackInteraction, actions as ids},
};

use crate::{
    ActionsConfig,
    actions::{self, IncidentRef},
    alertmanager_api::{AlertmanagerApi, ExistingSilence, NewSilence},
    commands::{self, Outcome},
    correlate::IncidentState,
    sandbox_offer,
};

#[derive(Debug)]
pub(crate) struct Interactions {
    pub(crate) bus: Bus,
    pub(crate) store: kv::Store,
    pub(crate) alertmanager: Option<AlertmanagerApi>,
    pub(crate) approvers: Vec<String>,
    pub(crate) actions: ActionsConfig,
    pub(crate) live_limits: crate::live_limits::LiveLimits,
}

impl Interactions {
    pub(crate) async fn on_interaction(
        &self,
        interaction: SlackInteraction,
    ) -> Result<(), HandlerError> {
        let now = chrono::Utc::now();
        let kind = match &interaction {
            SlackInteraction::Command(command) => {
                self.carry_out(commands::on_command(command, now)).await?
            }
            SlackInteraction::File(file) => self.carry_out(sandbox_offer::on_file(file)).await?,
            SlackInteraction::Ask(ask) => self.carry_out(commands::on_ask(ask, now)).await?,
            SlackInteraction::Action(action) => match action.action_id.as_str() {
                ids::SANDBOX_RUN | ids::SANDBOX_DECLINE => {
                    self.carry_out(sandbox_offer::on_click(action, &self.approvers))
                        .await?
                }
                ids::SILENCE_1H | ids::SILENCE_EXPIRE | ids::PROFILE_NOW | ids::RERUN => {
                    self.on_button(action).await?
                }
                _ => self.carry_out(commands::on_action(action, now)).await?,
            },
        };
        metrics::counter!("ft_watcher_interactions_total", "outcome" => kind).increment(1);
        Ok(())
    }

    async fn carry_out(&self, outcome: Outcome) -> Result<&'static str, HandlerError> {
        Ok(match outcome {
            Outcome::Profile(request) => {
                let user = request.requested_by.as_deref().unwrap_or_default();
                if let Err(why) = self.live_limits.check(user, &request) {
                    let answer = proto::PostRequest {
                        post_id: format!("refused-{}", request.request_id),
                        reply_key: None,
                        target: request.reply.clone(),
                        text: Mrkdwn::plain(&why),
                        blocks: None,
                        incident_id: None,
                        schema_version: proto::SchemaVersion::CURRENT,
                        stands_for: None,
                    };
                    self.publish(&answer).await?;
                    return Ok("live_refused");
                }
                self.publish(request.as_ref()).await?;
                "profile_request"
            }
            Outcome::Traces(command) => {
                if !actions::allowed(
                    &command.requested_by,
                    &self.actions.spans,
                    self.actions.allow_anyone,
                ) {
                    self.publish(&proto::PostRequest {
                        post_id: format!("refused-{}", command.command_id),
                        reply_key: None,
                        target: command.reply.clone(),
                        text: Mrkdwn::plain(
                            "You are not among the people allowed to query spans or trace a service here (alert-watcher's [actions] spans); ask one of them.",
                        ),
                        blocks: None,
                        incident_id: None,
                        schema_version: proto::SchemaVersion::CURRENT,
                        stands_for: None,
                    })
                    .await?;
                    return Ok("traces_refused");
                }
                self.publish(command.as_ref()).await?;
                "traces_command"
            }
            Outcome::Answer(answer) => {
                self.publish(answer.as_ref()).await?;
                "answered"
            }
            Outcome::Sandbox { request, notice } => {
                self.publish(request.as_ref()).await?;
                self.publish(notice.as_ref()).await?;
                "sandbox_request"
            }
            Outcome::Ignore(why) => why,
        })
    }

    async fn publish<M: Message + proto::Correlated>(
        &self,
        message: &M,
    ) -> Result<(), HandlerError> {
        self.bus
            .publish(message)
            .await
            .map(|_| ())
            .map_err(HandlerError::retry)
    }

    /// A button under an incident's reply.
    async fn on_button(&self, action: &BlockAction) -> Result<&'static str, HandlerError> {
        let say = |text: &str| actions::only_you(action, Mrkdwn::plain(text));
        let allowed = match action.action_id.as_str() {
            ids::SILENCE_1H | ids::SILENCE_EXPIRE => &self.actions.silence,
            ids::PROFILE_NOW => &self.actions.profile_now,
            _ => &self.actions.rerun,
        };
        if !actions::allowed(&action.user, allowed, self.actions.allow_anyone) {
            self.publish(&say(
                "You are not among the people allowed to press that button here (alert-watcher's [actions]); ask one of them.",
            ))
            .await?;
            return Ok("refused");
        }
        if action.action_id == ids::SILENCE_EXPIRE {
            return self.expire(action).await;
        }
        let Some((incident, button)) = self.incident(action).await? else {
            self.publish(&say(
                "I cannot find that incident any more; it may have been resolved long ago.",
            ))
            .await?;
            return Ok("unknown_incident");
        };
        match action.action_id.as_str() {
            ids::SILENCE_1H => self.silence(action, &incident, &button).await,
            ids::PROFILE_NOW | ids::RERUN => {
                let request = if action.action_id == ids::PROFILE_NOW {
                    actions::profile_now(&incident, action)
                } else {
                    actions::rerun(&incident, action)
                };
                let Some(request) = request else {
                    self.publish(&say(
                        "The alert names no service, so there is nothing to profile.",
                    ))
                    .await?;
                    return Ok("no_service");
                };
                if action.action_id == ids::PROFILE_NOW
                    && let Err(wait) = self.live_limits.check(&action.user, &request)
                {
                    self.publish(&say(&wait)).await?;
                    return Ok("rate_limited");
                }
                // Shown at once where the answer will land, and replaced by it there.
                self.publish(&actions::progress(&incident, &request))
                    .await?;
                self.publish(&request).await?;
                Ok("profile_request")
            }
            _ => Ok("unhandled_action"),
        }
    }

    /// "Silence": only an alert whose labels Alertmanager confirmed, with all of them as
    /// matchers, when Alertmanager says they match this incident's alerts and no others; a
    /// silence already made for the incident (a retried or redelivered click) is said again,
    /// not made twice.
    async fn silence(
        &self,
        action: &BlockAction,
        incident: &proto::Incident,
        button: &IncidentRef,
    ) -> Result<&'static str, HandlerError> {
        let say = |text: &str| actions::only_you(action, Mrkdwn::plain(text));
        let Some(alertmanager) = &self.alertmanager else {
            self.publish(&say(
                "Silencing needs Alertmanager: set alert-watcher's alertmanager.url.",
            ))
            .await?;
            return Ok("no_alertmanager");
        };
        let asked = button
            .silence_seconds
            .map_or(self.actions.silence_for, std::time::Duration::from_secs);
        let silence = match actions::silence_for(
            incident,
            &action.user,
            action.received_at,
            asked,
            self.actions.silence_for,
        ) {
            Ok(silence) => silence,
            Err(refusal) => {
                self.publish(&say(&refusal.to_string())).await?;
                return Ok("silence_refused");
            }
        };
        match alertmanager.alerts_matching(&silence.matchers).await {
            Ok(matched) => {
                if let Err(refusal) = actions::check_scope(incident, &matched) {
                    self.publish(&say(&refusal.to_string())).await?;
                    return Ok("silence_refused");
                }
            }
            Err(err) => {
                self.publish(&say(&format!(
                    "I could not check what it would silence: {err}"
                )))
                .await?;
                return Ok("silence_failed");
            }
        }
        // Two clicks at once (two replicas, a double click) must not make two silences: under
        // the incident's claim, look for the silence a click already made, else make it.
        let claim = proto::keys::incident::silencing(&incident.id.0);
        // Another click holds it for a moment: wait it out here rather than spend this
        // message's deliveries (a claim left by a crash is taken over after CLAIM_FOR).
        let waited_since = tokio::time::Instant::now();
        let held = loop {
            if let Some(revision) = self.claim(&claim).await? {
                break revision;
            }
            if waited_since.elapsed() > CLAIM_FOR {
                return Err(HandlerError::retry(
                    "another click is silencing this incident; looking again shortly",
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        };
        let outcome = match alertmanager.silences_matching(&silence.matchers).await {
            Ok(existing) => match actions::already_silenced(incident, &silence, &existing) {
                Some(found) => Ok(Silenced::Found(found.clone())),
                None => alertmanager
                    .create_silence(&silence)
                    .await
                    .map(Silenced::Made),
            },
            Err(err) => Err(err),
        };
        // Released only if still ours (a claim taken over after CLAIM_FOR is someone else's).
        let _ = self.store.delete_expect_revision(&claim, Some(held)).await;
        match outcome {
            Ok(Silenced::Made(id)) => {
                self.publish(&actions::silenced(incident, &action.user, &id, &silence))
                    .await?;
                Ok("silenced")
            }
            Ok(Silenced::Found(found)) => {
                // The note has the same post id as when it was made: the poster says it once.
                let made = NewSilence {
                    ends_at: found.ends_at,
                    ..silence
                };
                self.publish(&actions::silenced(incident, &action.user, &found.id, &made))
                    .await?;
                Ok("already_silenced")
            }
            Err(err) => {
                self.publish(&say(&format!("I could not silence it: {err}")))
                    .await?;
                Ok("silence_failed")
            }
        }
    }

    /// Takes the short-lived claim `key` (a claim older than [`CLAIM_FOR`] was left by a crash
    /// and is taken over): the revision it holds, or `None` when someone else holds it.
    async fn claim(&self, key: &str) -> Result<Option<u64>, HandlerError> {
        let now = chrono::Utc::now();
        let value: bytes::Bytes = now.to_rfc3339().into_bytes().into();
        match self.store.create(key, value.clone()).await {
            Ok(revision) => return Ok(Some(revision)),
            Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(err) => return Err(HandlerError::retry(format!("claiming {key}: {err}"))),
        }
        let entry = self
            .store
            .entry(key)
            .await
            .map_err(|err| HandlerError::retry(format!("reading {key}: {err}")))?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        let held_since = std::str::from_utf8(&entry.value)
            .ok()
            .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok());
        let stale = held_since
            .is_none_or(|since| (now - since.to_utc()).to_std().unwrap_or_default() > CLAIM_FOR)
            || entry.operation != kv::Operation::Put;
        if !stale {
            return Ok(None);
        }
        Ok(self.store.update(key, value, entry.revision).await.ok())
    }

    async fn expire(&self, action: &BlockAction) -> Result<&'static str, HandlerError> {
        let Some(ExpireButton {
            silence_id: silence,
            incident_id: incident,
        }) = ExpireButton::parse(action.value.as_deref())
        else {
            self.publish(&actions::only_you(
                action,
                Mrkdwn::plain("That button is not one of mine."),
            ))
            .await?;
            return Ok("bad_value");
        };
        let Some(alertmanager) = &self.alertmanager else {
            self.publish(&actions::only_you(
                action,
                Mrkdwn::plain("Expiring needs Alertmanager: set alert-watcher's alertmanager.url."),
            ))
            .await?;
            return Ok("no_alertmanager");
        };
        if let Err(err) = alertmanager.expire_silence(&silence).await {
            self.publish(&actions::only_you(
                action,
                Mrkdwn::plain(&format!("I could not expire it: {err}")),
            ))
            .await?;
            return Ok("expire_failed");
        }
        let thread = action.thread();
        self.publish(&actions::expired(&incident, thread, &action.user, &silence))
            .await?;
        Ok("expired")
    }

    /// The incident a button names, from this service's state (`fp.<fingerprint>`), and what the
    /// button carried.
    async fn incident(
        &self,
        action: &BlockAction,
    ) -> Result<Option<(proto::Incident, IncidentRef)>, HandlerError> {
        let Some(reference) = IncidentRef::parse(action.value.as_deref()) else {
            return Ok(None);
        };
        let key = proto::keys::incident::state(&reference.fingerprint);
        let entry = self
            .store
            .entry(&key)
            .await
            .map_err(|err| HandlerError::retry(format!("reading {key}: {err}")))?;
        Ok(entry
            .filter(|entry| entry.operation == kv::Operation::Put)
            .and_then(|entry| serde_json::from_slice::<IncidentState>(&entry.value).ok())
            .map(|state| state.incident)
            .filter(|incident| incident.id.0 == reference.incident_id)
            .map(|incident| (incident, reference)))
    }
}

/// What a click on "Silence" came to under the incident's claim.
enum Silenced {
    Made(String),
    /// A click before this one made it.
    Found(ExistingSilence),
}

/// How long a silence claim holds before it is taken as left by a crash.
const CLAIM_FOR: std::time::Duration = std::time::Duration::from_secs(30);
