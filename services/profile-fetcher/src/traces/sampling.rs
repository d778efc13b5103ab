//! Head sampling at the intake: which spans are kept.
//!
//! A trace is kept or dropped by its id, exactly as OpenTelemetry's `TraceIdRatioBased` sampler
//! decides (the low 64 bits, shifted right by one, against the rate times 2^63): an app that
//! samples at 10% and sends to an intake at 10% keeps its 10%, not 1%, and every replica and
//! every service at the same rate keeps the same traces whole. Each service has its rate
//! (`traces.sample_rate`, overridden per service by `traces.sample_rates`); services at
//! different rates, or one traced whole on demand, keep different parts of a shared trace.
//!
//! `/flamethread trace checkout 2m` keeps every span of a service for a while. The command is a
//! message on `profile.traces`; every replica of this service follows that subject from an hour
//! back ([`follow_trace_all`]), so all of them keep the same spans, and one that restarts
//! mid-way picks up what is still running. The window counts from when JetStream stored the
//! command, not from when a replica read it.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, RwLock},
    time::Duration,
};

use bus::{Bus, FollowFrom};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use proto::{SpanRow, Subject, TracesAsk, TracesCommand, span::MAX_TRACE_ALL};
use tokio_util::sync::CancellationToken;

/// Whether a trace whose id is `trace_id` (32 hex digits) is kept at `rate`, as
/// OpenTelemetry's `TraceIdRatioBased(rate)` decides.
pub fn keeps_trace(trace_id: &str, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    let bound = (rate.max(0.0) * (1u64 << 63) as f64) as u64;
    let low = trace_id
        .get(trace_id.len().saturating_sub(16)..)
        .and_then(|tail| u64::from_str_radix(tail, 16).ok())
        .unwrap_or(0);
    (low >> 1) < bound
}

/// The intake's sampling: rates from the config, and the services being traced whole until a
/// time.
#[derive(Debug)]
pub struct Sampler {
    default_rate: f64,
    rates: BTreeMap<String, f64>,
    trace_all: RwLock<HashMap<String, DateTime<Utc>>>,
}

impl Sampler {
    pub fn new(default_rate: f64, rates: BTreeMap<String, f64>) -> Sampler {
        Sampler {
            default_rate,
            rates,
            trace_all: RwLock::new(HashMap::new()),
        }
    }

    /// The configured rate of `service`.
    pub fn rate(&self, service: &str) -> f64 {
        self.rates
            .get(service)
            .copied()
            .unwrap_or(self.default_rate)
    }

    /// Keeps every span of `service` until `until` (a later end wins over an earlier one).
    pub fn trace_all(&self, service: &str, until: DateTime<Utc>) {
        let mut trace_all = self.trace_all.write().unwrap_or_else(|e| e.into_inner());
        let end = trace_all.entry(service.to_owned()).or_insert(until);
        *end = (*end).max(until);
    }

    /// When tracing `service` whole ends, if it is on at `now`.
    pub fn traced_until(&self, service: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let trace_all = self.trace_all.read().unwrap_or_else(|e| e.into_inner());
        trace_all.get(service).copied().filter(|until| *until > now)
    }

    /// Drops from `rows` what sampling does not keep at `now`; how many were dropped.
    pub fn retain(&self, rows: &mut Vec<SpanRow>, now: DateTime<Utc>) -> usize {
        let before = rows.len();
        let all_kept = self.default_rate >= 1.0 && self.rates.values().all(|rate| *rate >= 1.0);
        if !all_kept {
            let trace_all = self.trace_all.read().unwrap_or_else(|e| e.into_inner());
            rows.retain(|row| {
                trace_all
                    .get(&row.service_name)
                    .is_some_and(|until| *until > now)
                    || keeps_trace(&row.trace_id, self.rate(&row.service_name))
            });
        }
        before - rows.len()
    }

    /// Forgets the windows that ended before `now`.
    fn forget_ended(&self, now: DateTime<Utc>) {
        let mut trace_all = self.trace_all.write().unwrap_or_else(|e| e.into_inner());
        trace_all.retain(|_, until| *until > now);
    }
}

/// Applies every `/flamethread trace` command of the last [`MAX_TRACE_ALL`] to `sampler`, and
/// each new one as it comes, until `shutdown`.
pub async fn follow_trace_all(bus: Bus, sampler: Arc<Sampler>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let since = Utc::now() - chrono::Duration::from_std(MAX_TRACE_ALL).unwrap_or_default();
        let followed = match bus
            .follow::<TracesCommand>(Subject::TracesCommand, FollowFrom::Since(since))
            .await
        {
            Ok(followed) => followed,
            Err(err) => {
                tracing::warn!(error = %err, "cannot follow /flamethread trace commands; trying again");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let mut followed = std::pin::pin!(followed);
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                next = followed.next() => next,
            };
            match next {
                Some(Ok(followed)) => {
                    if let Ok(TracesCommand {
                        ask: TracesAsk::TraceAll { service, seconds },
                        ..
                    }) = followed.message
                    {
                        let length = Duration::from_secs(seconds).min(MAX_TRACE_ALL);
                        let until = followed.published
                            + chrono::Duration::from_std(length).unwrap_or_default();
                        sampler.trace_all(&service, until);
                        sampler.forget_ended(Utc::now());
                        tracing::info!(%service, %until, "keeping every span of a service");
                    }
                }
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "following /flamethread trace commands failed; following again");
                    break;
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests;
