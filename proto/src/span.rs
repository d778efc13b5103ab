//! Spans: one flat row per span, as the span store keeps them.
//!
//! A span arrives from outside (an app's OpenTelemetry exporter, a shell script's `curl` of
//! Slack-style SpanEvent JSON, flamethread's own services) and is checked once at the intake
//! (`libs/spans`), which turns every encoding into [`SpanRow`]s: ids as lowercase hex, whatever
//! encoding they came in, and every text bounded. Rows travel in [`SpanBatch`]es on
//! `span.received`, at least once, deduplicated by the ids they hold; the store reads the stream
//! in order and writes each row once.
//!
//! The field names are the OpenTelemetry collector's ClickHouse exporter's columns (`otel_traces`)
//! in snake case; the store names its columns exactly as that exporter does, so a query written
//! for one runs on the other.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Correlated, Message, SchemaVersion, Subject};

/// Most bytes of a span name, an attribute key or an attribute value kept; longer ones end in `…`.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Most attributes kept per span (and per resource, event or link); the rest are counted in
/// the `flamethread.dropped` attribute.
pub const MAX_ATTRIBUTES: usize = 128;
/// Most events and links kept per span.
pub const MAX_EVENTS: usize = 128;

/// `SpanKind` as the ClickHouse exporter writes it.
#[derive(
    Debug,
    Default,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// OTLP's enum value (`SPAN_KIND_SERVER` is 2); unknown values are `Unspecified`.
    pub fn from_otlp(value: i32) -> SpanKind {
        match value {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// The column's text: `Server`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "Unspecified",
            SpanKind::Internal => "Internal",
            SpanKind::Server => "Server",
            SpanKind::Client => "Client",
            SpanKind::Producer => "Producer",
            SpanKind::Consumer => "Consumer",
        }
    }
}

/// `StatusCode` as the ClickHouse exporter writes it.
#[derive(
    Debug,
    Default,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    /// OTLP's enum value (`STATUS_CODE_ERROR` is 2); unknown values are `Unset`.
    pub fn from_otlp(value: i32) -> StatusCode {
        match value {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StatusCode::Unset => "Unset",
            StatusCode::Ok => "Ok",
            StatusCode::Error => "Error",
        }
    }
}

/// Something that happened during a span (an exception, a retry), at a point in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpanEventRow {
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    pub name: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// A causal link to another span, in this trace or another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpanLinkRow {
    pub trace_id: String,
    pub span_id: String,
    #[serde(default)]
    pub trace_state: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// One span, flat: a row of `otel_traces`.
///
/// Attribute values are text, as in the exporter's `Map(LowCardinality(String), String)`: numbers
/// and booleans as they print, arrays and maps as JSON.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpanRow {
    /// When the span started, in nanoseconds since the Unix epoch (`Timestamp`).
    pub timestamp_ns: i64,
    /// 32 lowercase hex digits, never all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, never all zero.
    pub span_id: String,
    /// 16 lowercase hex digits, or empty for a trace's root span.
    #[serde(default)]
    pub parent_span_id: String,
    #[serde(default)]
    pub trace_state: String,
    pub span_name: String,
    #[serde(default)]
    pub span_kind: SpanKind,
    /// The resource's `service.name` (Slack SpanEvents: the `service_name` tag), or
    /// `unknown_service` as OpenTelemetry names a service that did not say.
    pub service_name: String,
    #[serde(default)]
    pub resource_attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub scope_name: String,
    #[serde(default)]
    pub scope_version: String,
    #[serde(default)]
    pub span_attributes: BTreeMap<String, String>,
    /// Nanoseconds (`Duration`).
    pub duration_ns: u64,
    #[serde(default)]
    pub status_code: StatusCode,
    #[serde(default)]
    pub status_message: String,
    #[serde(default)]
    pub events: Vec<SpanEventRow>,
    #[serde(default)]
    pub links: Vec<SpanLinkRow>,
}

/// Spans accepted together at the intake, in the order they arrived. One intake request becomes
/// one batch or, when it is too large for one NATS message, several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpanBatch {
    pub schema_version: SchemaVersion,
    /// A digest of the batch's spans, so a retried export (an exporter resends the same batch)
    /// is stored once, and different spans that reuse ids are not taken for a retry.
    pub batch_id: String,
    /// Where the spans came in: `otlp-protobuf`, `otlp-json`, `span-events`.
    pub source: String,
    pub spans: Vec<SpanRow>,
}

impl Message for SpanBatch {
    fn subject(&self) -> Subject {
        Subject::SpanReceived
    }

    fn idempotency_key(&self) -> String {
        format!("spans:{}", self.batch_id)
    }
}

impl Correlated for SpanBatch {}

/// Most characters of a query asked in Slack (Slack sends at most 4,000 after a command).
pub const MAX_QUERY_CHARS: usize = 4000;
/// The longest "trace everything" one command turns on.
pub const MAX_TRACE_ALL: std::time::Duration = std::time::Duration::from_secs(3600);

/// `/flamethread sql …` or `/flamethread trace …`: asked in Slack, read by alert-watcher, done by
/// profile-fetcher, which holds the span store and the intake. The answer goes to `reply`, which
/// is the asker only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TracesCommand {
    pub schema_version: SchemaVersion,
    pub command_id: String,
    /// The Slack user who asked.
    pub requested_by: String,
    pub reply: crate::ReplyTarget,
    pub ask: TracesAsk,
}

/// What a [`TracesCommand`] asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TracesAsk {
    /// One read-only query over `otel_traces`; at most [`MAX_QUERY_CHARS`] characters.
    Sql { query: String },
    /// Keep every span of `service` for `seconds` (at most [`MAX_TRACE_ALL`]), whatever its
    /// sampling rate says.
    TraceAll { service: String, seconds: u64 },
}

impl Message for TracesCommand {
    fn subject(&self) -> Subject {
        Subject::TracesCommand
    }

    fn idempotency_key(&self) -> String {
        format!("traces-command:{}", self.command_id)
    }
}

impl Correlated for TracesCommand {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_enums_read_as_the_exporter_writes_them() {
        assert_eq!(SpanKind::from_otlp(2).as_str(), "Server");
        assert_eq!(SpanKind::from_otlp(99), SpanKind::Unspecified);
        assert_eq!(StatusCode::from_otlp(2).as_str(), "Error");
        assert_eq!(StatusCode::from_otlp(-1), StatusCode::Unset);
        assert_eq!(
            serde_json::to_value(SpanKind::Server).unwrap(),
            serde_json::json!("Server")
        );
    }
}
