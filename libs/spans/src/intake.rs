//! Every way a span comes in, read into [`SpanRow`]s: OTLP over HTTP (protobuf and JSON, as any
//! OpenTelemetry SDK or collector exports) and Slack-style SpanEvent JSON (what a shell script
//! sends with one `curl`).
//!
//! Pure: bytes in, rows or an error out. A request is read whole before anything of it is kept, so
//! a malformed span refuses its whole batch with an error naming the span and what is wrong with
//! it. Ids arrive as bytes (protobuf), hex (OTLP JSON) or hex or base64 (SpanEvents) and leave as
//! lowercase hex; names and attributes are cut to [`MAX_TEXT_BYTES`], attributes beyond
//! [`MAX_ATTRIBUTES`] are dropped and counted.

use std::collections::BTreeMap;

use base64::Engine as _;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::Span,
};
use prost::Message as _;
use proto::span::{
    MAX_ATTRIBUTES, MAX_EVENTS, MAX_TEXT_BYTES, SpanEventRow, SpanKind, SpanLinkRow, SpanRow,
    StatusCode,
};
use serde::Deserialize;

/// Most spans one request may carry.
pub const MAX_SPANS: usize = 20_000;

/// Most bytes of resource and scope text one request may make its spans repeat: each row carries
/// its resource's attributes, so a small request with large ones and many spans would otherwise
/// become gigabytes of rows.
pub const MAX_REPEATED_BYTES: usize = 64 << 20;

/// The attribute that counts what was dropped to stay within [`MAX_ATTRIBUTES`] and
/// [`MAX_EVENTS`].
pub const DROPPED: &str = "flamethread.dropped";

/// OpenTelemetry's name for a service that did not say its name.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// How a request's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `POST /v1/traces` with `Content-Type: application/x-protobuf`.
    OtlpProtobuf,
    /// `POST /v1/traces` with `Content-Type: application/json`.
    OtlpJson,
    /// `POST /api/v1/spans`: one SpanEvent or a list of them.
    SpanEvents,
}

impl Encoding {
    /// The name batches carry as their `source`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::OtlpProtobuf => "otlp-protobuf",
            Encoding::OtlpJson => "otlp-json",
            Encoding::SpanEvents => "span-events",
        }
    }
}

/// Why a request's spans were refused; the text is what the sender reads in the 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    #[error("not an OTLP ExportTraceServiceRequest in protobuf: {0}")]
    NotProtobuf(String),
    #[error("not OTLP JSON: {0}")]
    NotOtlpJson(String),
    #[error("not SpanEvent JSON: {0}")]
    NotSpanEvents(String),
    #[error("more than {MAX_SPANS} spans in one request: send them in smaller batches")]
    TooManySpans,
    #[error(
        "the request's spans would repeat more than {} MiB of resource and scope attributes: send fewer spans per request, or fewer resource attributes",
        MAX_REPEATED_BYTES >> 20
    )]
    TooMuchRepeated,
    #[error("span {index} ({name:?}): {problem}")]
    Span {
        index: usize,
        name: String,
        #[source]
        problem: SpanProblem,
    },
}

/// What is wrong with one span; the sender reads it after the span's index and name. `what`
/// names the field as the sender's format spells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanProblem {
    /// Not the shape of the format at all (serde's words).
    #[error("{0}")]
    Shape(String),
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("{what} ({value}) is past the year 2262")]
    Past2262 { what: &'static str, value: u64 },
    #[error("{0} is past the year 2262")]
    MicrosPast2262(&'static str),
    #[error("{0} is too large")]
    TooLarge(&'static str),
    #[error("end_time_unix_nano ({end}) is before start_time_unix_nano ({start})")]
    EndsBeforeStart { start: u64, end: u64 },
    #[error("{what} must be {len} bytes ({} hex digits), got {got}", 2 * len)]
    IdLength {
        what: &'static str,
        len: usize,
        got: usize,
    },
    #[error("{what} is {got} bytes; at most {len} are kept ({} hex digits)", 2 * len)]
    IdTooLong {
        what: &'static str,
        len: usize,
        got: usize,
    },
    #[error("{0} is all zeros, which OpenTelemetry calls invalid")]
    ZeroId(&'static str),
    #[error("{what} is not hex: {source}")]
    NotHex {
        what: &'static str,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error("{what} {text:?} is neither hex nor base64")]
    NeitherHexNorBase64 { what: &'static str, text: String },
    #[error("tag {0:?} must have exactly one of v_str, v_bool, v_int64, v_float64, v_binary")]
    TagValues(String),
    #[error("tag {key:?} says v_type {declared:?} but holds a {held}")]
    TagType {
        key: String,
        declared: String,
        held: &'static str,
    },
}

/// Reads a request's spans; nothing is returned unless every span is valid.
pub fn decode(encoding: Encoding, body: &[u8]) -> Result<Vec<SpanRow>, IntakeError> {
    match encoding {
        Encoding::OtlpProtobuf => {
            let request = ExportTraceServiceRequest::decode(body)
                .map_err(|err| IntakeError::NotProtobuf(err.to_string()))?;
            from_otlp(request)
        }
        Encoding::OtlpJson => {
            let request: ExportTraceServiceRequest = serde_json::from_slice(body)
                .map_err(|err| IntakeError::NotOtlpJson(err.to_string()))?;
            from_otlp(request)
        }
        Encoding::SpanEvents => from_span_events(body),
    }
}

fn from_otlp(request: ExportTraceServiceRequest) -> Result<Vec<SpanRow>, IntakeError> {
    let total: usize = request
        .resource_spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .map(|scope| scope.spans.len())
        .sum();
    if total > MAX_SPANS {
        return Err(IntakeError::TooManySpans);
    }
    let mut rows = Vec::with_capacity(total);
    let mut repeated = 0usize;
    for resource_spans in request.resource_spans {
        let resource_attributes = resource_spans
            .resource
            .map(|resource| attributes(&resource.attributes))
            .unwrap_or_default();
        let service_name = resource_attributes
            .get("service.name")
            .filter(|name| !name.is_empty())
            .cloned()
            .unwrap_or_else(|| UNKNOWN_SERVICE.to_owned());
        let resource_bytes: usize = resource_attributes
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum();
        for scope_spans in resource_spans.scope_spans {
            let (scope_name, scope_version) = scope_spans
                .scope
                .map(|scope| (cut(&scope.name), cut(&scope.version)))
                .unwrap_or_default();
            repeated = repeated.saturating_add(
                (resource_bytes + scope_name.len() + scope_version.len())
                    .saturating_mul(scope_spans.spans.len()),
            );
            if repeated > MAX_REPEATED_BYTES {
                return Err(IntakeError::TooMuchRepeated);
            }
            for span in scope_spans.spans {
                let index = rows.len();
                let refuse = |problem: SpanProblem| IntakeError::Span {
                    index,
                    name: cut_to(&span.name, 100),
                    problem,
                };
                let row = otlp_row(&span, &service_name, &resource_attributes).map_err(refuse)?;
                rows.push(SpanRow {
                    scope_name: scope_name.clone(),
                    scope_version: scope_version.clone(),
                    ..row
                });
            }
        }
    }
    Ok(rows)
}

fn otlp_row(
    span: &Span,
    service_name: &str,
    resource_attributes: &BTreeMap<String, String>,
) -> Result<SpanRow, SpanProblem> {
    let trace_id = id_bytes(&span.trace_id, 16, "trace_id")?;
    let span_id = id_bytes(&span.span_id, 8, "span_id")?;
    let parent_span_id = if span.parent_span_id.is_empty() {
        String::new()
    } else {
        id_bytes(&span.parent_span_id, 8, "parent_span_id")?
    };
    let (timestamp_ns, duration_ns) = times(span.start_time_unix_nano, span.end_time_unix_nano)?;
    let mut span_attributes = attributes(&span.attributes);
    let dropped =
        span.events.len().saturating_sub(MAX_EVENTS) + span.links.len().saturating_sub(MAX_EVENTS);
    if dropped > 0 {
        span_attributes.insert(DROPPED.to_owned(), dropped.to_string());
    }
    let events = span
        .events
        .iter()
        .take(MAX_EVENTS)
        .map(|event| {
            Ok(SpanEventRow {
                timestamp_ns: nanos(event.time_unix_nano, "an event's time_unix_nano")?,
                name: cut(&event.name),
                attributes: attributes(&event.attributes),
            })
        })
        .collect::<Result<_, SpanProblem>>()?;
    let links = span
        .links
        .iter()
        .take(MAX_EVENTS)
        .map(|link| {
            Ok(SpanLinkRow {
                trace_id: id_bytes(&link.trace_id, 16, "a link's trace_id")?,
                span_id: id_bytes(&link.span_id, 8, "a link's span_id")?,
                trace_state: cut(&link.trace_state),
                attributes: attributes(&link.attributes),
            })
        })
        .collect::<Result<_, SpanProblem>>()?;
    let status = span.status.as_ref();
    Ok(SpanRow {
        timestamp_ns,
        trace_id,
        span_id,
        parent_span_id,
        trace_state: cut(&span.trace_state),
        span_name: cut(&span.name),
        span_kind: SpanKind::from_otlp(span.kind),
        service_name: cut(service_name),
        resource_attributes: resource_attributes.clone(),
        scope_name: String::new(),
        scope_version: String::new(),
        span_attributes,
        duration_ns,
        status_code: status.map_or(StatusCode::Unset, |status| {
            StatusCode::from_otlp(status.code)
        }),
        status_message: status.map_or_else(String::new, |status| cut(&status.message)),
        events,
        links,
    })
}

/// Start and end (ns since the epoch) as the row's start and duration.
fn times(start: u64, end: u64) -> Result<(i64, u64), SpanProblem> {
    let start_ns = nanos(start, "start_time_unix_nano")?;
    if end < start {
        return Err(SpanProblem::EndsBeforeStart { start, end });
    }
    Ok((start_ns, end - start))
}

fn nanos(value: u64, what: &'static str) -> Result<i64, SpanProblem> {
    if value == 0 {
        return Err(SpanProblem::Missing(what));
    }
    i64::try_from(value).map_err(|_| SpanProblem::Past2262 { what, value })
}

/// An id given as bytes: exactly `len` of them, not all zero (OTLP's rule), as lowercase hex.
fn id_bytes(bytes: &[u8], len: usize, what: &'static str) -> Result<String, SpanProblem> {
    if bytes.len() != len {
        return Err(SpanProblem::IdLength {
            what,
            len,
            got: bytes.len(),
        });
    }
    if bytes.iter().all(|&byte| byte == 0) {
        return Err(SpanProblem::ZeroId(what));
    }
    Ok(hex(bytes))
}

/// An id given as text (SpanEvents): hex when every character is a hex digit (at most `2 * len`
/// of them), base64 (standard or URL-safe, padded or not) otherwise; at most `len` bytes, zero
/// bytes on the left when shorter, never all zero.
pub fn id_text(text: &str, len: usize, what: &'static str) -> Result<String, SpanProblem> {
    let text = text.trim();
    if text.is_empty() {
        return Err(SpanProblem::Empty(what));
    }
    let bytes = if text.len() <= 2 * len && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let even = if text.len() % 2 == 1 {
            format!("0{text}")
        } else {
            text.to_owned()
        };
        (0..even.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&even[at..at + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|source| SpanProblem::NotHex { what, source })?
    } else {
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        engines
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or_else(|| SpanProblem::NeitherHexNorBase64 {
                what,
                text: cut_to(text, 40),
            })?
    };
    if bytes.len() > len {
        return Err(SpanProblem::IdTooLong {
            what,
            len,
            got: bytes.len(),
        });
    }
    let mut padded = vec![0; len - bytes.len()];
    padded.extend(bytes);
    id_bytes(&padded, len, what)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// OTLP attributes as the table keeps them: text values, the first [`MAX_ATTRIBUTES`], a later
/// duplicate key winning as in the collector, the rest counted under [`DROPPED`].
fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for pair in pairs.iter().take(MAX_ATTRIBUTES) {
        map.insert(cut(&pair.key), cut(&any_value_text(pair.value.as_ref())));
    }
    if pairs.len() > MAX_ATTRIBUTES {
        map.insert(
            DROPPED.to_owned(),
            (pairs.len() - MAX_ATTRIBUTES).to_string(),
        );
    }
    map
}

/// A value as text: strings as they are, numbers and booleans as they print, bytes in base64,
/// arrays and maps as JSON.
fn any_value_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(text)) => text.clone(),
        Some(other) => match any_value_json(other) {
            serde_json::Value::String(text) => text,
            json => json.to_string(),
        },
    }
}

fn any_value_json(value: &Value) -> serde_json::Value {
    match value {
        Value::StringValue(text) => text.clone().into(),
        Value::BoolValue(flag) => flag.to_string().into(),
        Value::IntValue(number) => number.to_string().into(),
        Value::DoubleValue(number) => number.to_string().into(),
        Value::BytesValue(bytes) => base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into(),
        Value::ArrayValue(array) => array
            .values
            .iter()
            .take(MAX_ATTRIBUTES)
            .map(|item| {
                item.value
                    .as_ref()
                    .map_or(serde_json::Value::Null, any_value_json)
            })
            .collect(),
        // An index into a profile's string table: meaningless in a trace.
        Value::StringValueStrindex(_) => serde_json::Value::Null,
        Value::KvlistValue(list) => list
            .values
            .iter()
            .take(MAX_ATTRIBUTES)
            .map(|pair| {
                (
                    pair.key.clone(),
                    pair.value
                        .as_ref()
                        .and_then(|value| value.value.as_ref())
                        .map_or(serde_json::Value::Null, any_value_json),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

/// At most [`MAX_TEXT_BYTES`], cut at a character and marked with `…`.
fn cut(text: &str) -> String {
    cut_to(text, MAX_TEXT_BYTES)
}

fn cut_to(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A SpanEvent as Slack's tracing stack publishes them: one flat row per span, times in µs,
/// typed tags. The service is the `service_name` tag.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpanEvent {
    id: String,
    trace_id: String,
    #[serde(default)]
    parent_id: Option<String>,
    name: String,
    start_timestamp_micros: u64,
    duration_micros: u64,
    #[serde(default)]
    tags: Vec<Tag>,
    /// `client`, `server`, `internal`, `producer` or `consumer` map onto `SpanKind`; anything else
    /// is kept as the `span_type` attribute.
    #[serde(default)]
    span_type: Option<String>,
}

/// A typed tag: `v_type` says which value field holds the value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tag {
    key: String,
    #[serde(default)]
    v_type: Option<String>,
    #[serde(default)]
    v_str: Option<String>,
    #[serde(default)]
    v_bool: Option<bool>,
    #[serde(default)]
    v_int64: Option<i64>,
    #[serde(default)]
    v_float64: Option<f64>,
    #[serde(default)]
    v_binary: Option<String>,
}

impl Tag {
    fn text(&self) -> Result<String, SpanProblem> {
        let given = [
            ("string", self.v_str.clone()),
            ("bool", self.v_bool.map(|value| value.to_string())),
            ("int64", self.v_int64.map(|value| value.to_string())),
            ("float64", self.v_float64.map(|value| value.to_string())),
            ("binary", self.v_binary.clone()),
        ];
        let present: Vec<_> = given
            .iter()
            .filter_map(|(kind, value)| value.as_ref().map(|value| (*kind, value)))
            .collect();
        let [(kind, value)] = present.as_slice() else {
            return Err(SpanProblem::TagValues(cut_to(&self.key, 100)));
        };
        if let Some(declared) = &self.v_type
            && !declared.eq_ignore_ascii_case(kind)
            && !(declared.eq_ignore_ascii_case("str") && *kind == "string")
        {
            return Err(SpanProblem::TagType {
                key: cut_to(&self.key, 100),
                declared: cut_to(declared, 20),
                held: kind,
            });
        }
        Ok((*value).clone())
    }
}

fn from_span_events(body: &[u8]) -> Result<Vec<SpanRow>, IntakeError> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|err| IntakeError::NotSpanEvents(err.to_string()))?;
    let items = match json {
        serde_json::Value::Array(items) => items,
        object @ serde_json::Value::Object(_) => vec![object],
        _ => {
            return Err(IntakeError::NotSpanEvents(
                "send a SpanEvent object or a list of them".to_owned(),
            ));
        }
    };
    if items.len() > MAX_SPANS {
        return Err(IntakeError::TooManySpans);
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let name = item
                .get("name")
                .and_then(|name| name.as_str())
                .map(|name| cut_to(name, 100))
                .unwrap_or_default();
            let refuse = |problem: SpanProblem| IntakeError::Span {
                index,
                name: name.clone(),
                problem,
            };
            let event: SpanEvent = serde_json::from_value(item)
                .map_err(|err| refuse(SpanProblem::Shape(err.to_string())))?;
            span_event_row(event).map_err(refuse)
        })
        .collect()
}

fn span_event_row(event: SpanEvent) -> Result<SpanRow, SpanProblem> {
    let start = event
        .start_timestamp_micros
        .checked_mul(1000)
        .ok_or(SpanProblem::MicrosPast2262("start_timestamp_micros"))?;
    let duration_ns = event
        .duration_micros
        .checked_mul(1000)
        .ok_or(SpanProblem::TooLarge("duration_micros"))?;
    let timestamp_ns = nanos(start, "start_timestamp_micros")?;
    if event.name.trim().is_empty() {
        return Err(SpanProblem::Empty("name"));
    }
    let mut span_attributes = BTreeMap::new();
    let mut service_name = None;
    for tag in event.tags.iter().take(MAX_ATTRIBUTES) {
        let value = cut(&tag.text()?);
        if tag.key == "service_name" || tag.key == "service.name" {
            service_name = Some(value);
        } else {
            span_attributes.insert(cut(&tag.key), value);
        }
    }
    if event.tags.len() > MAX_ATTRIBUTES {
        span_attributes.insert(
            DROPPED.to_owned(),
            (event.tags.len() - MAX_ATTRIBUTES).to_string(),
        );
    }
    let span_kind = match event.span_type.as_deref().map(str::to_ascii_lowercase) {
        None => SpanKind::Unspecified,
        Some(kind) => match kind.as_str() {
            "client" => SpanKind::Client,
            "server" => SpanKind::Server,
            "internal" => SpanKind::Internal,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => {
                span_attributes.insert("span_type".to_owned(), cut(&kind));
                SpanKind::Unspecified
            }
        },
    };
    let status_code = match span_attributes.get("error").map(String::as_str) {
        Some("true") => StatusCode::Error,
        _ => StatusCode::Unset,
    };
    let service_name = service_name
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| UNKNOWN_SERVICE.to_owned());
    Ok(SpanRow {
        timestamp_ns,
        trace_id: id_text(&event.trace_id, 16, "trace_id")?,
        span_id: id_text(&event.id, 8, "id")?,
        parent_span_id: match event.parent_id.as_deref().map(str::trim) {
            None | Some("") => String::new(),
            Some(parent) => id_text(parent, 8, "parent_id")?,
        },
        trace_state: String::new(),
        span_name: cut(&event.name),
        span_kind,
        resource_attributes: BTreeMap::from([("service.name".to_owned(), service_name.clone())]),
        service_name,
        scope_name: String::new(),
        scope_version: String::new(),
        span_attributes,
        duration_ns,
        status_code,
        status_message: String::new(),
        events: Vec::new(),
        links: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
