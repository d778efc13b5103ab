//! The flamethread wire contract.
//!
//! Every NATS subject, stream, bucket and message that crosses a service boundary is defined here
//! and nowhere else. Services depend on this crate; it depends on no service. A producer written in
//! another language works from the JSON Schemas in `proto/schemas/`, which are generated from these
//! types and checked against them by a test (`cargo test -p proto`; `FT_BLESS=1` regenerates).
//!
//! # Layout
//! - [`subjects`]: the subject namespace (with its configurable prefix), streams, buckets and the
//!   durable consumers each service owns.
//! - [`Message`]: what every message type provides to the bus: its subject, its idempotency key
//!   (sent as `Nats-Msg-Id`) and the correlation fields that tracing spans carry.
//! - [`codec`]: decoding with readable errors, split into "not JSON / wrong shape" and "a schema
//!   version this build does not understand", so the bus can dead-letter with a precise reason.
//! - One module per conversation: [`slack`], [`incident`], [`evidence`], [`change`], [`sandbox`], [`post`], [`span`], [`home`],
//!   and [`dead_letter`] for messages that could not be processed.
//! - [`command`]: the `/profile` grammar, which picker options also carry.
//! - [`mrkdwn`]: the only way to write text and blocks for Slack, so that outside text is never
//!   markup.
//!
//! # Compatibility rules
//! Every message carries `schema_version`. Within one version, changes are additive only: a new
//! field is optional (`#[serde(default)]`) and consumers ignore fields they do not know. Anything
//! else is a new version, and consumers dead-letter versions they do not understand.

pub mod change;
pub mod codec;
pub mod command;
pub mod common;
pub mod dead_letter;
pub mod evidence;
pub mod home;
pub mod incident;
pub mod keys;
pub mod mrkdwn;
pub mod pages;
pub mod permissions;
pub mod post;
pub mod sandbox;
pub mod schema;
pub mod slack;
pub mod span;
pub mod subjects;

pub use change::{Change, ChangeKind, ChangeSource, NewChange};
pub use codec::{DecodeError, decode, encode};
pub use common::{IncidentId, ObjectRef, ReplyTarget, SchemaVersion, SlackThread, TimeWindow};
pub use dead_letter::{DeadLetter, ErrorCode};
pub use evidence::{
    ChangesEvidence, Evidence, MetricsEvidence, ProfileEvidence, ProfileRequest, TracesEvidence,
    WorkloadEvidence,
};
pub use home::{HomeOpened, HomeRequest, KnownApp};
pub use incident::{Alert, Incident, IncidentChange, IncidentEvent};
pub use mrkdwn::{Mrkdwn, blocks::Block};
pub use post::PostRequest;
pub use sandbox::{SandboxRequest, SandboxResult};
pub use slack::{
    AskOrigin, BlockAction, FileReceived, FileShared, SlackAsk, SlackInteraction, SlackMessage,
    SlashCommand, actions,
};
pub use span::{SpanBatch, SpanRow, TracesAsk, TracesCommand};
pub use subjects::{ConsumerSpec, StreamSpec, Subject, Subjects};

/// The fields a tracing span records for a message, so that one alert can be followed across
/// services (`incident.id`, `slack.channel`, `alert.name`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Correlation<'a> {
    pub incident_id: Option<&'a str>,
    pub slack_channel: Option<&'a str>,
    pub alert_name: Option<&'a str>,
}

impl<'a> Correlation<'a> {
    /// Correlation by Slack channel only (events before an incident exists).
    pub fn channel(channel: &'a str) -> Correlation<'a> {
        Correlation {
            slack_channel: Some(channel),
            ..Correlation::default()
        }
    }

    /// Correlation by incident only.
    pub fn incident(incident_id: Option<&'a crate::IncidentId>) -> Correlation<'a> {
        Correlation {
            incident_id: incident_id.map(|id| id.0.as_str()),
            ..Correlation::default()
        }
    }
}

/// Something that carries correlation ids for tracing.
pub trait Correlated {
    /// Correlation ids for tracing.
    fn correlation(&self) -> Correlation<'_> {
        Correlation::default()
    }
}

/// A message that travels on a NATS subject.
///
/// The bus uses this trait to choose the subject, to set `Nats-Msg-Id` (JetStream drops a second
/// publish with the same id inside the stream's duplicate window) and to fill span fields.
pub trait Message:
    serde::Serialize
    + serde::de::DeserializeOwned
    + schemars::JsonSchema
    + Correlated
    + Send
    + Sync
    + 'static
{
    /// The subject this message is published on. Most types have exactly one; an incident event
    /// picks `opened`, `updated` or `resolved` from its content.
    fn subject(&self) -> Subject;

    /// A key that is equal for two messages exactly when they describe the same fact, so that a
    /// retried publish (or a retried Slack delivery) is stored once.
    fn idempotency_key(&self) -> String;
}

/// What a consumer decodes: one message type, or (for a consumer that reads several subjects) a
/// choice among several, made by the subject the message arrived on.
pub trait Inbound: Correlated + Sized + Send + 'static {
    fn decode(subject: Subject, payload: &[u8]) -> Result<Self, DecodeError>;
}

impl<M: Message> Inbound for M {
    fn decode(_subject: Subject, payload: &[u8]) -> Result<M, DecodeError> {
        codec::decode(payload)
    }
}

/// The error for a message on a subject its consumer does not read.
pub(crate) fn unexpected_subject(subject: Subject, expected: &str) -> DecodeError {
    DecodeError::Shape(format!(
        "a {expected} consumer cannot read subject {}",
        subject.token()
    ))
}
