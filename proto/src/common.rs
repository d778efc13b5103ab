//! Types shared by several messages.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The version of the message format. This build reads and writes version 1 only; a message with
/// any other version is dead-lettered with the reason `unsupported_schema_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct SchemaVersion(u32);

impl SchemaVersion {
    pub const CURRENT: SchemaVersion = SchemaVersion(1);

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for SchemaVersion {
    fn default() -> Self {
        SchemaVersion::CURRENT
    }
}

impl TryFrom<u32> for SchemaVersion {
    type Error = String;

    fn try_from(version: u32) -> Result<Self, Self::Error> {
        if version == SchemaVersion::CURRENT.0 {
            Ok(SchemaVersion(version))
        } else {
            Err(format!(
                "unsupported schema_version {version} (this build understands {})",
                SchemaVersion::CURRENT.0
            ))
        }
    }
}

impl From<SchemaVersion> for u32 {
    fn from(version: SchemaVersion) -> u32 {
        version.0
    }
}

impl JsonSchema for SchemaVersion {
    fn schema_name() -> Cow<'static, str> {
        "SchemaVersion".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Version of the message format; this contract is version 1.",
            "type": "integer",
            "const": 1
        })
    }
}

/// The id of an incident, assigned by alert-watcher when it opens one.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct IncidentId(pub String);

impl std::fmt::Display for IncidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A blob in the NATS object store (`<prefix>_blobs`): a shared file, folded stacks, a
/// flamegraph, a chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectRef {
    /// The object store bucket.
    pub bucket: String,
    /// The object's name in the bucket.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type, e.g. `text/x-python` or `image/svg+xml`.
    pub content_type: String,
}

/// A half-open time range `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TimeWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The Slack message a conversation hangs off: replies go into its thread.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct SlackThread {
    /// Channel id, e.g. `C024BE91L`.
    pub channel: String,
    /// The `ts` of the thread's parent message.
    pub ts: String,
}

/// Where an answer goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplyTarget {
    /// A reply in a thread, visible to the channel.
    Thread { channel: String, thread_ts: String },
    /// A message only `user` sees (an answer that concerns only them).
    Ephemeral {
        channel: String,
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread_ts: Option<String>,
    },
    /// A slash command's or an interaction's `response_url`.
    ResponseUrl { url: String },
    /// A message in the app's direct messages with `user` (its Messages tab): for what a person
    /// asked from App Home, where there is no channel to answer in.
    Direct { user: String },
}
