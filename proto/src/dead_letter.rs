//! Messages no consumer could process.
//!
//! A dead letter keeps the original message byte for byte, once: as text when it is UTF-8, as
//! base64 otherwise, or in the object store when it is large; with its subject, headers and
//! stream position, and says why in words a person can act on. Dead letters are not consumed by
//! any service; operators read them (`nats stream view FT_DEADLETTER`) and replay them after
//! fixing the cause with `flamethread-redrive`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::SchemaVersion;

/// Why a message was dead-lettered. Deliberately small: it tells an operator which kind of fix
/// is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or JSON of the wrong shape: fix the producer.
    Malformed,
    /// A `schema_version` this consumer does not understand: upgrade the consumer.
    UnsupportedSchemaVersion,
    /// The consumer understood the message and refused it for good.
    Rejected,
    /// The consumer failed on it, retryably, as often as it is allowed to.
    MaxDeliveriesExceeded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeadLetter {
    pub schema_version: SchemaVersion,
    pub code: ErrorCode,
    /// What went wrong, readable.
    pub reason: String,
    /// The subject the message was published on.
    pub subject: String,
    pub stream: String,
    pub stream_sequence: u64,
    /// The durable consumer that gave up.
    pub consumer: String,
    /// How many times it was delivered.
    pub deliveries: u64,
    #[serde(default)]
    pub headers: BTreeMap<String, Vec<String>>,
    /// The original payload as text, when it is valid UTF-8 (and not stored as an object).
    #[serde(default)]
    pub payload_text: Option<String>,
    /// The original payload, base64, when it is not UTF-8 (and not stored as an object).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub payload_base64: String,
    /// Where a payload too large to carry inline is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_object: Option<crate::ObjectRef>,
    pub dead_lettered_at: DateTime<Utc>,
}

/// Payloads larger than this go to the object store, so that a dead letter of a message near
/// NATS's 1 MiB limit is not itself too large to publish.
pub const MAX_INLINE_PAYLOAD: usize = 256 * 1024;

impl DeadLetter {
    /// The original payload when it is inline (`None` when it is in the object store or the
    /// base64 is damaged).
    pub fn inline_payload(&self) -> Option<Vec<u8>> {
        use base64::Engine as _;
        if let Some(text) = &self.payload_text {
            return Some(text.clone().into_bytes());
        }
        if self.payload_object.is_some() {
            return None;
        }
        base64::engine::general_purpose::STANDARD
            .decode(&self.payload_base64)
            .ok()
    }

    /// The idempotency key of a dead letter: a message is dead-lettered once even when the
    /// consumer crashes between dead-lettering it and terminating it.
    pub fn idempotency_key(stream: &str, stream_sequence: u64) -> String {
        format!("dead-letter:{stream}:{stream_sequence}")
    }
}
