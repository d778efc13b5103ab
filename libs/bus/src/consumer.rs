//! The consumer loop every service uses.
//!
//! One durable pull consumer per [`ConsumerSpec`], processed with bounded concurrency:
//!
//! | handler says | the message is |
//! |---|---|
//! | `Ok(())` | acked (after the handler made its effect durable) |
//! | [`Disposition::Retry`] | nakked with exponential backoff, then dead-lettered after `max_deliver` deliveries |
//! | [`Disposition::Reject`] | dead-lettered at once and terminated |
//! | (payload does not decode) | dead-lettered at once (`malformed` or `unsupported_schema_version`) |
//! | (runs past `handler_timeout`) | dropped and treated as a retryable failure |
//! | (never answers: the process crashed) | redelivered by JetStream after `ack_wait`; after `max_deliver` such deliveries, dead-lettered without running the handler again |
//!
//! While a handler runs, the loop sends progress acknowledgements (`+WPI`) every third of
//! `ack_wait`, so a slow but healthy handler keeps its message instead of having it redelivered
//! to another replica mid-work.
//!
//! The server-side `max_deliver` is one more than the configured one, so the loop itself sees the
//! delivery after the last allowed one and can dead-letter it; otherwise JetStream would stop
//! delivering silently and the message would be lost to everyone but an advisory.
//!
//! Dead-lettering publishes first and terminates after: a crash between the two redelivers the
//! message, and the dead letter's `Nats-Msg-Id` keeps it from being stored twice.
//!
//! On shutdown the loop stops pulling, lets in-flight handlers finish and ack, and returns.

use std::{future::Future, sync::Arc, time::Duration};

use async_nats::jetstream::{self, AckKind, consumer::pull};
use base64::Engine as _;
use futures::StreamExt as _;
use proto::{ConsumerSpec, DeadLetter, ErrorCode, Inbound, SchemaVersion};
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{Bus, Disposition, Error, HandlerError, headers};

/// Tuning for one consumer loop.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Messages handled at once. Default 8.
    pub concurrency: usize,
    /// Delay before the first redelivery of a retryable failure; doubles each time. Default 1 s.
    pub retry_base_delay: Duration,
    /// Longest delay between redeliveries. Default 60 s.
    pub retry_max_delay: Duration,
    /// Idle heartbeat of pull requests; a missing heartbeat re-issues the pull. Default 5 s.
    pub heartbeat: Duration,
    /// How long one handler call may take. Past it the call is dropped and the message retried
    /// (so handlers must be idempotent, which at-least-once delivery requires anyway). While a
    /// handler runs, the loop tells JetStream it is still working, so a slow handler is not
    /// redelivered elsewhere after `ack_wait`. Default 10 min.
    pub handler_timeout: Duration,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            concurrency: 8,
            retry_base_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(60),
            heartbeat: Duration::from_secs(5),
            handler_timeout: Duration::from_secs(600),
        }
    }
}

impl ConsumerOptions {
    fn retry_delay(&self, delivered: u64) -> Duration {
        let exponent = delivered.saturating_sub(1).min(16) as u32;
        self.retry_base_delay
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.retry_max_delay)
    }
}

/// One decoded message handed to a handler.
#[derive(Debug, Clone)]
pub struct Delivery<M> {
    pub message: M,
    /// The full subject it was published on.
    pub subject: String,
    /// 1 on the first delivery.
    pub delivered: u64,
    pub stream_sequence: u64,
}

struct Context {
    bus: Bus,
    durable: String,
    max_deliver: u64,
    options: ConsumerOptions,
}

/// Runs the consumer described by `spec` until `shutdown` is cancelled, then drains in-flight
/// handlers. Survives server restarts: the client reconnects, pulls are re-issued, and the
/// consumer is re-created if the server lost it.
pub async fn run<M, H, Fut>(
    bus: Bus,
    spec: &ConsumerSpec,
    options: ConsumerOptions,
    shutdown: CancellationToken,
    handler: H,
) -> Result<(), Error>
where
    M: Inbound,
    H: Fn(Delivery<M>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let context = Arc::new(Context {
        durable: spec.durable.to_owned(),
        max_deliver: bus.config().max_deliver as u64,
        options,
        bus,
    });
    // Every outcome's series exists from the start at 0, so that an alert on its increase
    // (`deploy/prometheus/flamethread.rules.yml`) sees the first dead letter too.
    for outcome in ["ack", "retry", "dead_letter"] {
        metrics::counter!("ft_bus_consumed_total", "consumer" => context.durable.clone(), "outcome" => outcome)
            .increment(0);
    }
    let permits = Arc::new(Semaphore::new(context.options.concurrency.max(1)));
    let mut in_flight = JoinSet::new();
    // Consecutive (re)connections that delivered nothing; backs off re-creating the consumer, so
    // a stream that keeps ending at once cannot hammer the server.
    let mut attempt: u32 = 0;

    'connect: while !shutdown.is_cancelled() {
        if attempt > 0 {
            let delay = Duration::from_millis(200 * u64::from(attempt.min(10)));
            tokio::select! {
                _ = shutdown.cancelled() => break 'connect,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        attempt += 1;
        let mut messages = match open_messages(&context, spec).await {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(consumer = %context.durable, error = %err, "consumer not ready, retrying");
                continue 'connect;
            }
        };
        tracing::info!(consumer = %context.durable, "consuming");
        // Heartbeats missed in a row. The stream re-issues its pull after one, but on a cluster
        // a consumer whose leader was lost can leave every re-issued pull unanswered for good:
        // after a few, the consumer is looked up and opened again.
        let mut missed_heartbeats = 0;
        let mut first_missed = tokio::time::Instant::now();

        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break 'connect,
                permit = permits.clone().acquire_owned() => permit.expect("semaphore never closes"),
            };
            let next = tokio::select! {
                _ = shutdown.cancelled() => break 'connect,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    attempt = 0;
                    missed_heartbeats = 0;
                    let context = context.clone();
                    let handler = handler.clone();
                    in_flight.spawn(async move {
                        process::<M, H, Fut>(&context, &*handler, message).await;
                        drop(permit);
                    });
                }
                Some(Err(err)) => {
                    use pull::MessagesErrorKind as Kind;
                    match err.kind() {
                        Kind::MissingHeartbeat
                            if missed_heartbeats + 1 >= MISSED_HEARTBEATS_TO_REOPEN =>
                        {
                            tracing::warn!(consumer = %context.durable, missed = missed_heartbeats + 1, "no heartbeat from the consumer; opening it again");
                            continue 'connect;
                        }
                        Kind::MissingHeartbeat => {
                            // In a row means close together: misses far apart on an idle
                            // consumer (heartbeats that arrive are not seen here) start over.
                            let in_a_row =
                                context.options.heartbeat * 3 * MISSED_HEARTBEATS_TO_REOPEN;
                            if missed_heartbeats == 0 || first_missed.elapsed() > in_a_row {
                                missed_heartbeats = 0;
                                first_missed = tokio::time::Instant::now();
                            }
                            missed_heartbeats += 1;
                            tracing::debug!(consumer = %context.durable, error = %err, "pull interrupted");
                        }
                        // The stream re-issues its pull by itself after these.
                        Kind::Pull | Kind::Other => {
                            tracing::debug!(consumer = %context.durable, error = %err, "pull interrupted");
                        }
                        _ => {
                            tracing::warn!(consumer = %context.durable, error = %err, "consumer lost, re-creating");
                            continue 'connect;
                        }
                    }
                }
                None => continue 'connect,
            }
            // Reap finished tasks so the set does not grow.
            while in_flight.try_join_next().is_some() {}
        }
    }

    tracing::info!(consumer = %context.durable, in_flight = in_flight.len(), "draining");
    while in_flight.join_next().await.is_some() {}
    Ok(())
}

/// Heartbeats missed in a row before a consumer is opened again (three: 15 s at the default
/// heartbeat).
const MISSED_HEARTBEATS_TO_REOPEN: u32 = 3;

async fn open_messages(context: &Context, spec: &ConsumerSpec) -> Result<pull::Stream, Error> {
    let consumer_error = |detail: String| Error::Consumer {
        consumer: context.durable.clone(),
        detail,
    };
    let subjects = context.bus.subjects();
    let stream = context
        .bus
        .jetstream()
        .get_stream(subjects.stream_name(spec.stream))
        .await
        .map_err(|err| consumer_error(err.to_string()))?;
    let config = pull::Config {
        durable_name: Some(context.durable.clone()),
        description: Some(format!("owned by {}", spec.owner)),
        filter_subjects: spec
            .subjects
            .iter()
            .map(|&subject| subjects.subject(subject))
            .collect(),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: context.bus.config().ack_wait,
        // One more than allowed, so that the loop sees the delivery after the last one allowed
        // and dead-letters it (see the module docs).
        max_deliver: context.bus.config().max_deliver + 1,
        max_ack_pending: (context.options.concurrency as i64 * 4).max(64),
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|err| consumer_error(err.to_string()))?;
    let heartbeat = context.options.heartbeat;
    consumer
        .stream()
        .max_messages_per_batch(context.options.concurrency.max(1))
        .heartbeat(heartbeat)
        .expires(heartbeat * 4)
        .messages()
        .await
        .map_err(|err| consumer_error(err.to_string()))
}

async fn process<M, H, Fut>(context: &Context, handler: &H, message: jetstream::Message)
where
    M: Inbound,
    H: Fn(Delivery<M>) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    let (stream_sequence, delivered) = match message.info() {
        Ok(info) => (info.stream_sequence, info.delivered.max(1) as u64),
        Err(err) => {
            tracing::error!(error = %err, "message without JetStream metadata, ignored");
            return;
        }
    };
    let subject = message.subject.to_string();
    let span = tracing::info_span!(
        "consume",
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.destination.name = %subject,
        messaging.consumer.group.name = %context.durable,
        messaging.message.delivery_count = delivered,
        incident.id = tracing::field::Empty,
        slack.channel = tracing::field::Empty,
        alert.name = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let _ = span.set_parent(headers::extract_trace_context(message.headers.as_ref()));

    async {
        let started = std::time::Instant::now();
        let outcome = decide(context, handler, &message, subject.clone(), delivered, stream_sequence).await;
        let label = outcome.label();
        tracing::Span::current().record("outcome", label);
        settle(context, &message, &subject, stream_sequence, delivered, outcome).await;
        metrics::counter!("ft_bus_consumed_total", "consumer" => context.durable.clone(), "outcome" => label)
            .increment(1);
        metrics::histogram!("ft_bus_handle_seconds", "consumer" => context.durable.clone())
            .record(started.elapsed().as_secs_f64());
    }
    .instrument(span)
    .await
}

enum Outcome {
    Ack,
    Retry(Duration, String),
    DeadLetter(ErrorCode, String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Ack => "ack",
            Outcome::Retry(..) => "retry",
            Outcome::DeadLetter(..) => "dead_letter",
        }
    }
}

async fn decide<M, H, Fut>(
    context: &Context,
    handler: &H,
    message: &jetstream::Message,
    subject: String,
    delivered: u64,
    stream_sequence: u64,
) -> Outcome
where
    M: Inbound,
    H: Fn(Delivery<M>) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    if delivered > context.max_deliver {
        return Outcome::DeadLetter(
            ErrorCode::MaxDeliveriesExceeded,
            format!(
                "delivered {} times without being acknowledged (the handler crashed, hung past ack_wait, or kept failing)",
                delivered - 1
            ),
        );
    }
    let Some(contract_subject) = context.bus.subjects().parse(&subject) else {
        return Outcome::DeadLetter(
            ErrorCode::Malformed,
            format!("subject {subject} is not in the contract"),
        );
    };
    let decoded = match M::decode(contract_subject, &message.payload) {
        Ok(decoded) => decoded,
        Err(err) => return Outcome::DeadLetter(err.code(), err.to_string()),
    };
    let correlation = decoded.correlation();
    let span = tracing::Span::current();
    if let Some(id) = correlation.incident_id {
        span.record("incident.id", id);
    }
    if let Some(channel) = correlation.slack_channel {
        span.record("slack.channel", channel);
    }
    if let Some(name) = correlation.alert_name {
        span.record("alert.name", name);
    }

    let handling = handler(Delivery {
        message: decoded,
        subject,
        delivered,
        stream_sequence,
    });
    let result = match with_progress(context, message, handling).await {
        Some(result) => result,
        None => Err(HandlerError::retry(format!(
            "handler did not finish within {:?}",
            context.options.handler_timeout
        ))),
    };
    let Err(err) = result else {
        return Outcome::Ack;
    };
    let reason = err.reason();
    match err.disposition() {
        Disposition::Reject => Outcome::DeadLetter(ErrorCode::Rejected, reason),
        Disposition::Retry if delivered >= context.max_deliver => Outcome::DeadLetter(
            ErrorCode::MaxDeliveriesExceeded,
            format!("failed on all {delivered} deliveries; last error: {reason}"),
        ),
        Disposition::Retry => Outcome::Retry(context.options.retry_delay(delivered), reason),
    }
}

/// Runs `handling` to completion or `handler_timeout` (then `None`), telling JetStream every
/// third of `ack_wait` that the message is still being worked on.
async fn with_progress<F>(
    context: &Context,
    message: &jetstream::Message,
    handling: F,
) -> Option<F::Output>
where
    F: Future,
{
    let period = (context.bus.config().ack_wait / 3).max(Duration::from_millis(100));
    let mut progress = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let deadline = tokio::time::sleep(context.options.handler_timeout);
    tokio::pin!(handling, deadline);
    loop {
        tokio::select! {
            result = &mut handling => return Some(result),
            _ = &mut deadline => return None,
            _ = progress.tick() => {
                if let Err(err) = message.ack_with(AckKind::Progress).await {
                    tracing::debug!(error = %err, "progress not sent");
                }
            }
        }
    }
}

async fn settle(
    context: &Context,
    message: &jetstream::Message,
    subject: &str,
    stream_sequence: u64,
    delivered: u64,
    outcome: Outcome,
) {
    let result = match outcome {
        Outcome::Ack => message.ack().await,
        Outcome::Retry(delay, reason) => {
            tracing::warn!(%reason, ?delay, delivered, "handler failed, will retry");
            message.ack_with(AckKind::Nak(Some(delay))).await
        }
        Outcome::DeadLetter(code, reason) => {
            tracing::warn!(?code, %reason, "dead-lettering message");
            match dead_letter(
                context,
                message,
                subject,
                stream_sequence,
                delivered,
                code,
                reason,
            )
            .await
            {
                Ok(()) => message.ack_with(AckKind::Term).await,
                Err(err) => {
                    // Not stored anywhere yet: leave it to be redelivered rather than lose it.
                    tracing::error!(error = %err, "dead letter not stored; message will be redelivered");
                    message
                        .ack_with(AckKind::Nak(Some(context.options.retry_delay(delivered))))
                        .await
                }
            }
        }
    };
    if let Err(err) = result {
        // The server will redeliver after ack_wait; handlers are idempotent.
        tracing::warn!(error = %err, "acknowledgement not sent");
    }
}

async fn dead_letter(
    context: &Context,
    message: &jetstream::Message,
    subject: &str,
    stream_sequence: u64,
    delivered: u64,
    code: ErrorCode,
    reason: String,
) -> Result<(), Error> {
    let subjects = context.bus.subjects();
    let stream = message
        .info()
        .map(|info| info.stream.to_owned())
        .unwrap_or_default();
    let letter = DeadLetter {
        schema_version: SchemaVersion::CURRENT,
        code,
        reason,
        subject: subject.to_owned(),
        stream: stream.clone(),
        stream_sequence,
        consumer: context.durable.clone(),
        deliveries: delivered,
        headers: headers::to_map(message.headers.as_ref()),
        payload_text: None,
        payload_base64: String::new(),
        payload_object: None,
        dead_lettered_at: chrono::Utc::now(),
    };
    let letter = if message.payload.len() > proto::dead_letter::MAX_INLINE_PAYLOAD {
        let key = proto::keys::object::dead_letter(&stream, stream_sequence);
        let store = context.bus.blob_store().await?;
        store
            .put(key.as_str(), &mut &message.payload[..])
            .await
            .map_err(|err| Error::Publish {
                subject: key.clone(),
                detail: err.to_string(),
            })?;
        DeadLetter {
            payload_object: Some(proto::ObjectRef {
                bucket: subjects.blob_bucket(),
                key,
                size: message.payload.len() as u64,
                content_type: "application/octet-stream".to_owned(),
            }),
            ..letter
        }
    } else {
        match std::str::from_utf8(&message.payload) {
            Ok(text) => DeadLetter {
                payload_text: Some(text.to_owned()),
                ..letter
            },
            Err(_) => DeadLetter {
                payload_base64: base64::engine::general_purpose::STANDARD.encode(&message.payload),
                ..letter
            },
        }
    };
    let payload = serde_json::to_vec(&letter).expect("dead letters serialize");
    context
        .bus
        .publish_raw(
            &subjects.dead_letter_subject(subject),
            &DeadLetter::idempotency_key(&stream, stream_sequence),
            payload.into(),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_and_caps() {
        let options = ConsumerOptions {
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_millis(700),
            ..ConsumerOptions::default()
        };
        let delays: Vec<_> = (1..=6)
            .map(|n| options.retry_delay(n).as_millis())
            .collect();
        assert_eq!(delays, [100, 200, 400, 700, 700, 700]);
        assert_eq!(options.retry_delay(u64::MAX), Duration::from_millis(700));
    }
}
