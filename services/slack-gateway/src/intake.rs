//! The one path every Slack payload takes, whichever transport brought it: understand it
//! ([`crate::accept`]), publish what is kept to JetStream, and say whether Slack may be
//! acknowledged. Nothing is acknowledged that JetStream did not store.
//!
//! An event JetStream cannot store within Slack's three seconds is not acknowledged, so Slack
//! sends it again, and it is also [`Rescue`]d: kept trying in the background. On a cluster, a
//! stream whose leader dies takes a Raft election (4 to 9 s in nats-server) to accept writes
//! again, longer than Slack's retries may last; whichever of the two stores the event first
//! stores it, once (the publish is deduplicated by the event's id).

use std::{sync::Arc, time::Duration};

use bus::Bus;
use chrono::Utc;
use proto::slack::SlackTransport;
use serde_json::Value;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::accept::{self, Filter, Malformed, Outbound, Verdict};

/// Which kind of payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Event,
    Command,
    Interaction,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Event => "event",
            Kind::Command => "command",
            Kind::Interaction => "interaction",
        }
    }
}

/// What became of a payload; every variant but `Unavailable` may be acknowledged.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Stored in JetStream; `duplicates` of them were already there (a Slack retry).
    Published {
        count: usize,
        duplicates: usize,
    },
    Ignored,
    /// Acknowledged all the same: Slack sending it again would not make it better.
    Malformed(Malformed),
    /// JetStream did not store it in time: do not acknowledge, Slack will send it again.
    Unavailable(bus::Error),
}

impl Outcome {
    pub(crate) fn may_acknowledge(&self) -> bool {
        !matches!(self, Outcome::Unavailable(_))
    }
}

/// How long reading a thread's first message may take: Slack wants its answer within three
/// seconds, and the publish comes after.
const THREAD_READ_DEADLINE: Duration = Duration::from_millis(1500);

/// Events kept trying in the background after Slack's window: how long each is tried, and how
/// many at once (past that, Slack's own retries are all an event gets).
#[derive(Debug, Clone)]
pub(crate) struct Rescue {
    window: Duration,
    slots: Arc<Semaphore>,
    /// The events being kept trying (their first message's idempotency key): Slack's retries
    /// of one event, failing again, do not start more.
    trying: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Rescue {
    /// Each event is tried for `window`; at most `slots` events at once.
    pub(crate) fn new(window: Duration, slots: usize) -> Rescue {
        Rescue {
            window,
            slots: Arc::new(Semaphore::new(slots)),
            trying: Arc::default(),
        }
    }
}

impl Default for Rescue {
    /// Two minutes (several elections' worth), 1,024 events at once.
    fn default() -> Rescue {
        Rescue::new(Duration::from_secs(120), 1024)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Intake {
    pub(crate) bus: Bus,
    pub(crate) filter: Filter,
    pub(crate) publish_deadline: Duration,
    /// What JetStream could not store in time is kept trying (events only).
    pub(crate) rescue: Rescue,
    /// Reads a thread's first message for `@flamethread diagnose` (`conversations.replies`).
    pub(crate) slack: slack::RawApi,
}

impl Intake {
    /// Handles one payload in a span of its own: the trace every alert is starts here, and the
    /// publish carries it on in `traceparent`.
    pub(crate) async fn handle(
        &self,
        kind: Kind,
        payload: &Value,
        transport: SlackTransport,
    ) -> Outcome {
        let channel = payload["event"]["channel"]
            .as_str()
            .or_else(|| payload["event"]["channel_id"].as_str())
            .or_else(|| payload["channel_id"].as_str())
            .or_else(|| payload["channel"]["id"].as_str())
            .unwrap_or_default();
        let span = tracing::info_span!(
            "slack.receive",
            otel.kind = "server",
            slack.kind = kind.label(),
            slack.transport = ?transport,
            slack.channel = channel,
            slack.event_id = payload["event_id"].as_str().unwrap_or_default(),
        );
        self.handle_in_span(kind, payload, transport)
            .instrument(span)
            .await
    }

    async fn handle_in_span(
        &self,
        kind: Kind,
        payload: &Value,
        transport: SlackTransport,
    ) -> Outcome {
        let received_at = Utc::now();
        let verdict = match kind {
            Kind::Event => accept::event_callback(payload, transport, received_at, &self.filter),
            Kind::Command => accept::slash_command(payload, received_at),
            Kind::Interaction => accept::interaction(payload, transport, received_at),
        };
        let verdict = match verdict {
            Ok(Verdict::Publish(outbound)) => Ok(Verdict::Publish(
                self.diagnose_asks(outbound, transport).await,
            )),
            other => other,
        };
        let outcome = match verdict {
            Ok(Verdict::Publish(outbound)) => self.publish(kind, &outbound).await,
            Ok(Verdict::Ignore(why)) => {
                tracing::debug!(?why, kind = kind.label(), "ignored");
                metrics::counter!("ft_gateway_ignored_total", "kind" => kind.label(), "reason" => why.label())
                    .increment(1);
                Outcome::Ignored
            }
            Err(malformed) => {
                tracing::warn!(error = %malformed, kind = kind.label(), "refused a malformed payload");
                Outcome::Malformed(malformed)
            }
        };
        let label = match &outcome {
            Outcome::Published { count, duplicates } => {
                tracing::debug!(kind = kind.label(), count, duplicates, "published");
                "published"
            }
            Outcome::Ignored => "ignored",
            Outcome::Malformed(_) => "malformed",
            Outcome::Unavailable(_) => "unavailable",
        };
        metrics::counter!("ft_gateway_payloads_total", "kind" => kind.label(), "outcome" => label)
            .increment(1);
        outcome
    }

    /// `@flamethread diagnose` in a thread becomes the thread's first message, asked to be
    /// diagnosed. When that message cannot be read in time (Slack must be answered within three
    /// seconds) the ask goes on as it is, and alert-watcher says why nothing was diagnosed.
    async fn diagnose_asks(
        &self,
        outbound: Vec<Outbound>,
        transport: SlackTransport,
    ) -> Vec<Outbound> {
        let mut kept = Vec::with_capacity(outbound.len());
        for item in outbound {
            let Outbound::Ask(ask) = &item else {
                kept.push(item);
                continue;
            };
            let Some((channel, thread_ts)) = accept::diagnose_in_thread(ask) else {
                kept.push(item);
                continue;
            };
            match self.first_message(channel, thread_ts).await {
                Ok(first) => match accept::asked_message(
                    &first,
                    channel,
                    &ask.ask_id,
                    &ask.user,
                    ask.team_id.clone(),
                    transport,
                    ask.received_at,
                ) {
                    Ok(asked) => kept.push(Outbound::Message(Box::new(asked))),
                    Err(err) => {
                        tracing::warn!(error = %err, "the thread's first message is not a message");
                        kept.push(item);
                    }
                },
                Err(err) => {
                    tracing::warn!(error = %err, channel, thread_ts, "could not read the thread to diagnose");
                    metrics::counter!("ft_gateway_thread_reads_failed_total").increment(1);
                    kept.push(item);
                }
            }
        }
        kept
    }

    async fn first_message(
        &self,
        channel: &str,
        thread_ts: &str,
    ) -> Result<Value, slack::CallError> {
        let query = [("channel", channel), ("ts", thread_ts), ("limit", "1")];
        let read = self.slack.get("conversations.replies", &query);
        let answer = tokio::time::timeout(THREAD_READ_DEADLINE, read)
            .await
            .map_err(|_| {
                slack::CallError::Transport(format!(
                    "conversations.replies: no answer within {THREAD_READ_DEADLINE:?}"
                ))
            })??;
        answer["messages"]
            .as_array()
            .and_then(|messages| messages.first())
            .filter(|first| first["ts"].as_str() == Some(thread_ts))
            .cloned()
            .ok_or_else(|| slack::CallError::Slack {
                code: "thread_not_found".to_owned(),
                detail: String::new(),
            })
    }

    async fn publish(&self, kind: Kind, outbound: &[Outbound]) -> Outcome {
        let mut duplicates = 0;
        for (index, message) in outbound.iter().enumerate() {
            match store(&self.bus, message, self.publish_deadline).await {
                Ok(published) if published.duplicate => duplicates += 1,
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "not acknowledging Slack: JetStream did not store the event");
                    // Commands and clicks are not sent again by Slack: the person sees it fail
                    // and tries again, which is better than acting on it a minute late.
                    if kind == Kind::Event {
                        self.rescue(outbound[index..].to_vec());
                    }
                    return Outcome::Unavailable(err);
                }
            }
        }
        if duplicates > 0 {
            tracing::info!(duplicates, "Slack delivered an event again; stored once");
            metrics::counter!("ft_gateway_duplicates_total").increment(duplicates as u64);
        }
        Outcome::Published {
            count: outbound.len(),
            duplicates,
        }
    }

    /// Keeps storing `pending` in the background for the rescue window, when a slot is free.
    fn rescue(&self, pending: Vec<Outbound>) {
        let Some(event) = pending.first().map(Outbound::idempotency_key) else {
            return;
        };
        let trying = self.rescue.trying.clone();
        if !lock(&trying).insert(event.clone()) {
            return; // already being kept trying
        }
        let Ok(slot) = self.rescue.slots.clone().try_acquire_owned() else {
            lock(&trying).remove(&event);
            tracing::warn!("no room to keep trying the event; Slack's retries are all it has");
            metrics::counter!("ft_gateway_rescues_total", "outcome" => "no_room").increment(1);
            return;
        };
        let (bus, window) = (self.bus.clone(), self.rescue.window);
        let keep_trying = async move {
            let _slot = slot;
            let until = tokio::time::Instant::now() + window;
            let mut outcome = "stored";
            for message in &pending {
                let left = until.saturating_duration_since(tokio::time::Instant::now());
                if let Err(err) = store(&bus, message, left).await {
                    tracing::warn!(error = %err, ?window, "gave up storing an event Slack may no longer send");
                    outcome = "gave_up";
                    break;
                }
            }
            if outcome == "stored" {
                tracing::info!("stored an event after Slack's window");
            }
            metrics::counter!("ft_gateway_rescues_total", "outcome" => outcome).increment(1);
            lock(&trying).remove(&event);
        };
        tokio::spawn(keep_trying.in_current_span());
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Publishes one outbound message, retrying for up to `deadline`.
async fn store(
    bus: &Bus,
    outbound: &Outbound,
    deadline: Duration,
) -> Result<bus::Published, bus::Error> {
    match outbound {
        Outbound::Message(message) => store_one(bus, message.as_ref(), deadline).await,
        Outbound::File(file) => store_one(bus, file.as_ref(), deadline).await,
        Outbound::Command(command) => store_one(bus, command.as_ref(), deadline).await,
        Outbound::Action(action) => store_one(bus, action.as_ref(), deadline).await,
        Outbound::Ask(ask) => store_one(bus, ask.as_ref(), deadline).await,
        Outbound::Home(home) => store_one(bus, home.as_ref(), deadline).await,
    }
}

async fn store_one<M: proto::Message>(
    bus: &Bus,
    message: &M,
    deadline: Duration,
) -> Result<bus::Published, bus::Error> {
    match tokio::time::timeout(deadline, bus.publish_with_retry(message, deadline)).await {
        Ok(result) => result,
        Err(_) => Err(bus::Error::Publish {
            subject: bus.subjects().subject(message.subject()),
            detail: format!("not stored within {deadline:?}"),
        }),
    }
}
