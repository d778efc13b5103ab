//! The flamethread bus: everything services do with NATS goes through here.
//!
//! - [`Bus::connect`] connects from a [`NatsConfig`] (URL, token, user/password or a credentials
//!   file, TLS) and reconnects forever by itself when the server goes away.
//! - [`Bus::provision`] creates or updates, idempotently, every stream of the contract, the
//!   incident and reply KV buckets and the blob object store; every service calls it at start-up, so
//!   start-up order does not matter.
//! - [`Bus::publish`] is typed: the subject comes from the message, `Nats-Msg-Id` from its
//!   idempotency key, and W3C `traceparent` from the current span. It returns only after JetStream
//!   stored the message.
//! - [`consumer::run`] is the one consumer loop: durable pull consumer, explicit ack after the
//!   handler succeeded, nak with backoff for retryable failures, dead letter (with the reason and
//!   the original message) for poison messages and after the last delivery, and a drain of
//!   in-flight work on shutdown.

pub mod config;
pub mod consumer;
mod error;
pub mod follow;
mod headers;
pub mod history;
pub mod json_kv;

use std::time::Duration;

use async_nats::{
    HeaderMap,
    jetstream::{self, kv, message::PublishMessage, object_store, stream},
};
use backon::{ExponentialBuilder, Retryable as _};
use proto::{Message, Subjects};
use tracing::Instrument as _;

pub use config::{NatsConfig, RetentionConfig};

pub mod redrive;
pub use consumer::{ConsumerOptions, Delivery};
pub use error::{BoxError, Disposition, Error, HandlerError, error_chain};
pub use follow::{FollowFrom, Followed};
pub use history::History;

/// How long one provisioning call (creating or updating a stream, a bucket) may take.
const PROVISION_TIMEOUT: Duration = Duration::from_secs(30);
/// How many times a bucket is opened while other processes' provisioning races to set it up.
const KV_OPEN_ROUNDS: usize = 5;

/// A connection to NATS and JetStream, with the names of one flamethread installation. Cheap to
/// clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Bus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    subjects: Subjects,
    config: NatsConfig,
}

impl Bus {
    /// Connects to NATS. The first connection must succeed within `connect_timeout`; after that
    /// the client reconnects by itself for as long as the process lives.
    pub async fn connect(config: &NatsConfig, client_name: &str) -> Result<Bus, Error> {
        config.validate().map_err(Error::Config)?;
        let subjects =
            Subjects::new(&config.prefix).map_err(|err| Error::Config(err.to_string()))?;
        let mut options = async_nats::ConnectOptions::new()
            .name(client_name)
            .connection_timeout(config.connect_timeout)
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                // 0, 100 ms, 200 ms … capped at 2 s: a restarted server is found quickly.
                Duration::from_millis((attempts as u64 * 100).min(2_000))
            })
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Disconnected => tracing::warn!("nats disconnected"),
                    async_nats::Event::Connected => tracing::info!("nats connected"),
                    other => tracing::debug!(event = %other, "nats event"),
                }
            });
        if let Some(token) = &config.token {
            options = options.token(token.expose().to_owned());
        }
        if let (Some(user), Some(password)) = (&config.user, &config.password) {
            options = options.user_and_password(user.clone(), password.expose().to_owned());
        }
        if let Some(path) = &config.credentials_file {
            options = options.credentials_file(path).await.map_err(|err| {
                Error::Config(format!("nats.credentials_file {}: {err}", path.display()))
            })?;
        }
        let tls = &config.tls;
        if tls.required || tls.ca_file.is_some() || tls.cert_file.is_some() {
            options = options.require_tls(true);
        }
        if let Some(ca) = &tls.ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        let servers = config.servers().map_err(Error::Config)?;
        let client = options
            .connect(servers)
            .await
            .map_err(|source| Error::Connect {
                url: config::without_credentials(&config.url),
                source,
            })?;
        let jetstream = jetstream::new(client.clone());
        Ok(Bus {
            client,
            jetstream,
            subjects,
            config: config.clone(),
        })
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    /// True while the client has a live connection.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Creates or updates every stream, the incident bucket and the blob store. Idempotent:
    /// every replica of every service calls it at start-up, so what already is as wanted is
    /// only read, not written again: on a cluster every write is a proposal to the meta
    /// leader, and ten processes starting at once would queue them past their timeouts.
    pub async fn provision(&self) -> Result<(), Error> {
        // Creating a replicated stream waits for its Raft group to elect a leader: on a busy
        // cluster that takes longer than an ordinary API call is given.
        let mut jetstream = self.jetstream.clone();
        jetstream.set_timeout(PROVISION_TIMEOUT);
        let jetstream = &jetstream;
        let replicas = self.config.replicas;
        let retention = &self.config.retention;
        for spec in self.subjects.streams() {
            let config = stream::Config {
                name: spec.name.clone(),
                subjects: spec.subjects.clone(),
                description: Some(spec.description.to_owned()),
                max_age: spec.max_age,
                max_bytes: retention.stream_max_bytes,
                duplicate_window: spec.duplicate_window,
                storage: stream::StorageType::File,
                retention: stream::RetentionPolicy::Limits,
                discard: stream::DiscardPolicy::Old,
                num_replicas: replicas,
                ..Default::default()
            };
            let unchanged = self
                .stream_is(jetstream, &config.name, |current| {
                    current.subjects.clone_from(&config.subjects);
                    current.description.clone_from(&config.description);
                    current.max_age = config.max_age;
                    current.max_bytes = config.max_bytes;
                    current.duplicate_window = config.duplicate_window;
                    current.discard = config.discard;
                    current.num_replicas = config.num_replicas;
                })
                .await;
            if unchanged {
                continue;
            }
            jetstream
                .create_or_update_stream(config)
                .await
                .map_err(|err| Error::Provision {
                    what: format!("stream {}", spec.name),
                    detail: err.to_string(),
                })?;
        }

        for (bucket, description) in [
            (
                self.subjects.incident_bucket(),
                "incident state, updated by compare-and-set",
            ),
            (
                self.subjects.reply_bucket(),
                "each Slack reply's ts and rendered state, updated by compare-and-set",
            ),
        ] {
            let config = kv::Config {
                bucket: bucket.clone(),
                description: description.to_owned(),
                history: 5,
                max_age: retention.state_max_age,
                max_bytes: retention.state_max_bytes,
                max_value_size: retention.state_max_value,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            };
            // A bucket is a stream (`KV_<bucket>`); these are the settings it carries over, and
            // the discard policy `keep_within` sets.
            let unchanged = self
                .stream_is(jetstream, &format!("KV_{bucket}"), |current| {
                    current.description = Some(config.description.clone());
                    current.max_messages_per_subject = config.history;
                    current.max_age = config.max_age;
                    current.max_bytes = config.max_bytes;
                    current.max_message_size = config.max_value_size;
                    current.num_replicas = config.num_replicas;
                    current.discard = stream::DiscardPolicy::Old;
                    current.allow_direct = false;
                })
                .await;
            if unchanged {
                continue;
            }
            jetstream
                .create_or_update_key_value(config)
                .await
                .map_err(|err| Error::Provision {
                    what: format!("KV bucket {bucket}"),
                    detail: err.to_string(),
                })?;
            // A full bucket forgets its oldest entries rather than refusing the next incident
            // (KV buckets discard new writes by default, and a refused write would stop Slack
            // from being acknowledged). Compare-and-set works per key either way.
            self.keep_within(jetstream, &format!("KV_{bucket}"), None)
                .await?;
        }

        let blobs = self.subjects.blob_bucket();
        let provision_error = |detail: String| Error::Provision {
            what: format!("object store {blobs}"),
            detail,
        };
        if jetstream.get_object_store(&blobs).await.is_err() {
            jetstream
                .create_object_store(object_store::Config {
                    bucket: blobs.clone(),
                    description: Some("shared files, profiles, flamegraphs and charts".to_owned()),
                    max_age: retention.blobs_max_age,
                    max_bytes: retention.blobs_max_bytes,
                    storage: stream::StorageType::File,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|err| provision_error(err.to_string()))?;
        }
        // An object store is a stream (`OBJ_<bucket>`): its limits follow the configuration like
        // every other stream's, also when it was made by an earlier version.
        self.keep_within(
            jetstream,
            &format!("OBJ_{blobs}"),
            Some((retention.blobs_max_age, retention.blobs_max_bytes)),
        )
        .await?;
        Ok(())
    }

    /// Sets the stream `name` to discard its oldest messages when full and, with `limits`, to
    /// that age and size; updated only when it differs.
    async fn keep_within(
        &self,
        jetstream: &jetstream::Context,
        name: &str,
        limits: Option<(std::time::Duration, i64)>,
    ) -> Result<(), Error> {
        let provision_error = |detail: String| Error::Provision {
            what: format!("stream {name}"),
            detail,
        };
        let mut stream = self
            .jetstream
            .get_stream(name)
            .await
            .map_err(|err| provision_error(err.to_string()))?;
        let current = stream
            .info()
            .await
            .map_err(|err| provision_error(err.to_string()))?
            .config
            .clone();
        let mut wanted = current.clone();
        wanted.discard = stream::DiscardPolicy::Old;
        // Reads from the leader only (see `key_value`).
        wanted.allow_direct = false;
        if let Some((max_age, max_bytes)) = limits {
            wanted.max_age = max_age;
            wanted.max_bytes = max_bytes;
        }
        if wanted != current {
            jetstream
                .update_stream(wanted)
                .await
                .map_err(|err| provision_error(err.to_string()))?;
        }
        Ok(())
    }

    /// Whether the stream `name` exists and stays the same when `wanted` sets what provisioning
    /// owns. False when it differs, is missing, or cannot be read: then it is written.
    async fn stream_is(
        &self,
        jetstream: &jetstream::Context,
        name: &str,
        wanted: impl FnOnce(&mut stream::Config),
    ) -> bool {
        let Ok(mut stream) = jetstream.get_stream(name).await else {
            return false;
        };
        let Ok(info) = stream.info().await else {
            return false;
        };
        let current = info.config.clone();
        let mut target = current.clone();
        wanted(&mut target);
        target == current
    }

    /// The incident state bucket.
    pub async fn incident_store(&self) -> Result<kv::Store, Error> {
        self.key_value(self.subjects.incident_bucket()).await
    }

    /// remediation-poster's reply bucket.
    pub async fn reply_store(&self) -> Result<kv::Store, Error> {
        self.key_value(self.subjects.reply_bucket()).await
    }

    /// The bucket, read through its stream's leader.
    ///
    /// A bucket made by the client allows *direct* gets, which every replica answers from what
    /// it has: on a cluster a follower still catching up (one just restarted, say) answers with
    /// a value older than the write that was just acknowledged, or with none. Compare-and-set
    /// keeps such a read from overwriting anything, but a reader that decides from it (the
    /// poster's "Slack already shows the latest content") decides wrong and never looks again:
    /// a reply kept its "gathering…" though its profile was in the record. Provisioning turns
    /// direct gets off (`keep_within`); another process provisioning at the same moment can
    /// turn them on again for an instant, so a handle that would read directly is not handed
    /// out: the setting is put right and the bucket opened again.
    async fn key_value(&self, bucket: String) -> Result<kv::Store, Error> {
        let provision_error = |detail: String| Error::Provision {
            what: format!("KV bucket {bucket}"),
            detail,
        };
        for _ in 0..KV_OPEN_ROUNDS {
            let store = self
                .jetstream
                .get_key_value(&bucket)
                .await
                .map_err(|err| provision_error(err.to_string()))?;
            if !store.stream.cached_info().config.allow_direct {
                return Ok(store);
            }
            self.keep_within(&self.jetstream, &store.stream_name, None)
                .await?;
        }
        Err(provision_error(format!(
            "its stream still allowed direct (possibly stale) reads after {KV_OPEN_ROUNDS} attempts to turn them off"
        )))
    }

    /// The blob object store.
    pub async fn blob_store(&self) -> Result<object_store::ObjectStore, Error> {
        let bucket = self.subjects.blob_bucket();
        self.jetstream
            .get_object_store(&bucket)
            .await
            .map_err(|err| Error::Provision {
                what: format!("object store {bucket}"),
                detail: err.to_string(),
            })
    }

    /// Publishes `message` and waits until JetStream stored it. Returns the stream sequence, and
    /// whether JetStream recognized it as a duplicate of an earlier publish.
    pub async fn publish<M: Message>(&self, message: &M) -> Result<Published, Error> {
        let subject = self.subjects.subject(message.subject());
        let correlation = message.correlation();
        // Storing spans is not traced: profile-fetcher exports its own spans to its own intake,
        // and a span for each batch stored would be exported in turn, for ever.
        let span = if message.subject() == proto::Subject::SpanReceived {
            tracing::Span::none()
        } else {
            tracing::info_span!(
                "publish",
                otel.kind = "producer",
                messaging.system = "nats",
                messaging.destination.name = %subject,
                incident.id = correlation.incident_id,
                slack.channel = correlation.slack_channel,
                alert.name = correlation.alert_name,
            )
        };
        let payload = proto::encode(message);
        let message_id = message.idempotency_key();
        self.publish_raw(&subject, &message_id, payload.into())
            .instrument(span)
            .await
    }

    /// Like [`Bus::publish`], retrying with exponential backoff for up to `deadline` while the
    /// server is unreachable. Retries reuse the `Nats-Msg-Id`, so they cannot store twice.
    pub async fn publish_with_retry<M: Message>(
        &self,
        message: &M,
        deadline: Duration,
    ) -> Result<Published, Error> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(2))
            .with_total_delay(Some(deadline))
            .without_max_times();
        (|| self.publish(message))
            .retry(backoff)
            .notify(|err, delay| tracing::warn!(error = %err, ?delay, "publish failed, retrying"))
            .await
    }

    /// Publishes bytes on `subject` with `message_id`, injecting the current trace context.
    pub(crate) async fn publish_raw(
        &self,
        subject: &str,
        message_id: &str,
        payload: bytes::Bytes,
    ) -> Result<Published, Error> {
        let mut headers = HeaderMap::new();
        headers::inject_trace_context(&mut headers);
        headers.insert(async_nats::header::NATS_MESSAGE_ID, message_id);
        headers.insert("Content-Type", "application/json");
        let publish_error = |detail: String| {
            metrics::counter!("ft_bus_publish_errors_total", "subject" => subject.to_owned())
                .increment(1);
            Error::Publish {
                subject: subject.to_owned(),
                detail,
            }
        };
        let ack = self
            .jetstream
            .send_publish(
                subject.to_owned(),
                PublishMessage::build().payload(payload).headers(headers),
            )
            .await
            .map_err(|err| publish_error(err.to_string()))?
            .await
            .map_err(|err| publish_error(err.to_string()))?;
        metrics::counter!("ft_bus_published_total", "subject" => subject.to_owned()).increment(1);
        Ok(Published {
            stream: ack.stream,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// Flushes what this client still buffers and closes the connection after in-flight
    /// subscriptions drained.
    pub async fn drain(&self) {
        if let Err(err) = self.client.drain().await {
            tracing::debug!(error = %err, "nats drain");
        }
    }
}

/// Where JetStream stored a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub stream: String,
    pub sequence: u64,
    /// The `Nats-Msg-Id` was already stored inside the duplicate window; nothing new was stored.
    pub duplicate: bool,
}
