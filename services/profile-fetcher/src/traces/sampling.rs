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
mod tests {
    use super::*;

    fn row(service: &str, trace_id: &str) -> SpanRow {
        SpanRow {
            service_name: service.to_owned(),
            trace_id: trace_id.to_owned(),
            ..SpanRow::default()
        }
    }

    #[test]
    fn the_decision_is_opentelemetrys() {
        use opentelemetry::trace::{SpanKind, TraceId};
        use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample as _};
        for rate in [0.0, 0.01, 0.1, 0.5, 0.9] {
            let sampler = Sampler::TraceIdRatioBased(rate);
            for n in 0u128..2000 {
                let id = n.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
                let otel = sampler
                    .should_sample(None, TraceId::from(id), "x", &SpanKind::Server, &[], &[])
                    .decision
                    == SamplingDecision::RecordAndSample;
                assert_eq!(
                    keeps_trace(&format!("{id:032x}"), rate),
                    otel,
                    "{id:032x} at {rate}"
                );
            }
        }
    }

    #[test]
    fn the_rate_keeps_that_share_of_traces_and_whole_traces_only() {
        let kept = (0u64..10_000)
            .filter(|n| {
                keeps_trace(
                    &format!("{:032x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                    0.1,
                )
            })
            .count();
        assert!((900..1100).contains(&kept), "{kept} of 10000 at 10%");
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let sampler = Sampler::new(0.5, BTreeMap::from([("noisy".to_owned(), 0.0)]));
        let mut rows = vec![row("checkout", id), row("cart", id), row("noisy", id)];
        sampler.retain(&mut rows, Utc::now());
        let services: Vec<_> = rows.iter().map(|row| row.service_name.as_str()).collect();
        let kept = keeps_trace(id, 0.5);
        assert_eq!(
            services,
            if kept {
                vec!["checkout", "cart"]
            } else {
                vec![]
            },
            "every service at the same rate keeps the same trace"
        );
    }

    #[test]
    fn trace_all_keeps_everything_of_one_service_until_it_ends() {
        let now = Utc::now();
        let sampler = Sampler::new(0.0, BTreeMap::new());
        sampler.trace_all("checkout", now + chrono::Duration::seconds(120));
        sampler.trace_all("checkout", now + chrono::Duration::seconds(60));
        let mut rows = vec![row("checkout", "01"), row("cart", "02")];
        assert_eq!(sampler.retain(&mut rows, now), 1);
        assert_eq!(rows[0].service_name, "checkout");
        assert_eq!(
            sampler.traced_until("checkout", now),
            Some(now + chrono::Duration::seconds(120)),
            "the later end wins"
        );
        let mut later = vec![row("checkout", "01")];
        assert_eq!(
            sampler.retain(&mut later, now + chrono::Duration::seconds(121)),
            1
        );
    }
}
