//! The span intake over HTTP: `POST /v1/traces` (OTLP, protobuf or JSON, gzip or not: what every
//! OpenTelemetry SDK and collector sends) and `POST /api/v1/spans` (SpanEvent JSON: what a shell
//! script sends with `curl`).
//!
//! A request is read whole (bounded before and after gzip), decoded and checked by
//! [`spans::intake`], and only then published on `span.received`, cut into batches that fit a
//! NATS message; nothing of a refused request is stored. Success is answered only once JetStream
//! has every batch, so an exporter that sees an error retries, and the retry (the same spans, so
//! the same batch ids) is stored once. Errors follow OTLP's rules: a `google.rpc.Status` in the
//! request's encoding, 400 for what will never be accepted, 503 when the bus is unavailable (the
//! exporter retries).

use std::{io::Read as _, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use bus::Bus;
use prost::Message as _;
use proto::{SchemaVersion, SpanBatch, SpanRow};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use spans::{Encoding, intake};

use super::sampling::Sampler;
use crate::config::Secret;

/// Most bytes of one published batch (NATS's default message limit is 1 MiB).
const BATCH_BYTES: usize = 768 * 1024;

#[derive(Clone)]
struct Intake {
    bus: Bus,
    token: Arc<Secret>,
    max_body_bytes: usize,
    sampler: Arc<Sampler>,
}

/// The intake's routes.
pub fn router(bus: Bus, token: Secret, max_body_bytes: usize, sampler: Arc<Sampler>) -> Router {
    let intake = Intake {
        bus,
        token: Arc::new(token),
        max_body_bytes,
        sampler,
    };
    Router::new()
        .route("/v1/traces", post(otlp))
        .route("/api/v1/spans", post(span_events))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .route_layer(axum::middleware::from_fn_with_state(
            intake.clone(),
            authenticate,
        ))
        .with_state(intake)
}

/// A refusal in the encoding the sender used: OTLP's `google.rpc.Status` (protobuf or JSON), or
/// `{"error": …}` for SpanEvents.
#[derive(Debug, Clone, Copy)]
enum Answering {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the body of an OTLP error response.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn refuse(answering: Answering, status: StatusCode, message: impl std::fmt::Display) -> Response {
    let message = message.to_string();
    ::metrics::counter!("ft_spans_refused_total", "status" => status.as_u16().to_string())
        .increment(1);
    // gRPC's codes, as OTLP/HTTP asks: INVALID_ARGUMENT, UNAVAILABLE, UNAUTHENTICATED…
    let code = match status {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => 3,
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        _ => 2,
    };
    match answering {
        Answering::Protobuf => (
            status,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            RpcStatus { code, message }.encode_to_vec(),
        )
            .into_response(),
        Answering::Json => (
            status,
            axum::Json(json!({ "code": code, "message": message, "error": message })),
        )
            .into_response(),
    }
}

fn answering(headers: &HeaderMap) -> Answering {
    if crate::http_api::media_type(headers) == "application/x-protobuf" {
        Answering::Protobuf
    } else {
        Answering::Json
    }
}

async fn authenticate(
    State(intake): State<Intake>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let token = intake.token.expose();
    if !token.is_empty() && !crate::http_api::bearer_is(request.headers(), token) {
        return refuse(
            answering(request.headers()),
            StatusCode::UNAUTHORIZED,
            "the span intake needs `Authorization: Bearer <traces.intake_token>`",
        );
    }
    next.run(request).await
}

async fn otlp(
    State(intake): State<Intake>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answering = answering(&headers);
    let encoding = match crate::http_api::media_type(&headers).as_str() {
        "application/x-protobuf" => Encoding::OtlpProtobuf,
        "application/json" => Encoding::OtlpJson,
        other => {
            return refuse(
                answering,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {other:?}: send application/x-protobuf or application/json (OTLP/HTTP)"
                ),
            );
        }
    };
    match accept(&intake, encoding, &headers, body).await {
        Ok(_) => match answering {
            // An empty ExportTraceServiceResponse: all spans accepted.
            Answering::Protobuf => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                Vec::new(),
            )
                .into_response(),
            Answering::Json => (StatusCode::OK, axum::Json(json!({}))).into_response(),
        },
        Err((status, message)) => refuse(answering, status, message),
    }
}

async fn span_events(
    State(intake): State<Intake>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if crate::http_api::media_type(&headers) != "application/json" {
        return refuse(
            Answering::Json,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send SpanEvents as JSON (Content-Type: application/json)",
        );
    }
    match accept(&intake, Encoding::SpanEvents, &headers, body).await {
        Ok(Accepted {
            stored,
            sampled_out: 0,
        }) => (StatusCode::OK, axum::Json(json!({ "accepted": stored }))).into_response(),
        Ok(Accepted {
            stored,
            sampled_out,
        }) => (
            StatusCode::OK,
            axum::Json(json!({ "accepted": stored, "sampled_out": sampled_out })),
        )
            .into_response(),
        Err((status, message)) => refuse(Answering::Json, status, message),
    }
}

/// What became of a request's spans.
struct Accepted {
    stored: usize,
    /// Left out by head sampling (`traces.sample_rate`).
    sampled_out: usize,
}

/// Reads, decodes, samples and publishes one request.
async fn accept(
    intake: &Intake,
    encoding: Encoding,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, (StatusCode, String)> {
    let body = body.map_err(|err| (err.status(), err.body_text()))?;
    let body = decompress(headers, body, intake.max_body_bytes)?;
    let mut rows = intake::decode(encoding, &body).map_err(|err| {
        let status = match err {
            spans::IntakeError::TooManySpans | spans::IntakeError::TooMuchRepeated => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        (status, err.to_string())
    })?;
    let sampled_out = intake.sampler.retain(&mut rows, chrono::Utc::now());
    if sampled_out > 0 {
        ::metrics::counter!("ft_spans_sampled_out_total", "source" => encoding.as_str())
            .increment(sampled_out as u64);
    }
    let batches = batches(rows, encoding).map_err(|err| (StatusCode::BAD_REQUEST, err))?;
    let mut accepted = 0;
    for batch in &batches {
        intake.bus.publish(batch).await.map_err(|err| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the spans could not be stored, retry: {err}"),
            )
        })?;
        accepted += batch.spans.len();
    }
    ::metrics::counter!("ft_spans_received_total", "source" => encoding.as_str())
        .increment(accepted as u64);
    Ok(Accepted {
        stored: accepted,
        sampled_out,
    })
}

/// The body as sent, or un-gzipped, never more than `max` bytes either way.
fn decompress(headers: &HeaderMap, body: Bytes, max: usize) -> Result<Bytes, (StatusCode, String)> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|err| (StatusCode::BAD_REQUEST, format!("not gzip: {err}")))?;
            if out.len() > max {
                return Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("more than {max} bytes once un-gzipped"),
                ));
            }
            Ok(out.into())
        }
        other => Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {other:?}: send gzip or nothing"),
        )),
    }
}

/// Rows as batches that each fit a NATS message, in order. A span that alone does not fit (at
/// most 128 attributes of 4 KiB can) refuses the request.
pub(crate) fn batches(rows: Vec<SpanRow>, encoding: Encoding) -> Result<Vec<SpanBatch>, String> {
    let mut batches = Vec::new();
    let mut chunk = Chunk::default();
    for (index, row) in rows.into_iter().enumerate() {
        // Each row is encoded once: its size decides the cut and its bytes feed the batch's id.
        let json = serde_json::to_vec(&row).unwrap_or_default();
        let bytes = if json.is_empty() {
            usize::MAX
        } else {
            json.len() + 1
        };
        if bytes > BATCH_BYTES {
            return Err(format!(
                "span {index} ({:?}) is larger than {} KiB with its attributes and events",
                row.span_name.chars().take(100).collect::<String>(),
                BATCH_BYTES / 1024
            ));
        }
        if chunk.bytes + bytes > BATCH_BYTES {
            batches.push(std::mem::take(&mut chunk).into_batch(encoding));
        }
        chunk.bytes += bytes;
        chunk.digest.update(&json);
        chunk.spans.push(row);
    }
    if !chunk.spans.is_empty() {
        batches.push(chunk.into_batch(encoding));
    }
    Ok(batches)
}

/// A batch being filled: its spans, their encoded size, and the digest of their encodings.
#[derive(Default)]
struct Chunk {
    spans: Vec<SpanRow>,
    bytes: usize,
    /// Over the whole spans, not only their ids: a retry resends the same bytes, while a script
    /// that reuses ids for new spans must not see them taken for a retry.
    digest: Sha256,
}

impl Chunk {
    fn into_batch(self, encoding: Encoding) -> SpanBatch {
        let batch_id = self
            .digest
            .finalize()
            .iter()
            .take(16)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        SpanBatch {
            schema_version: SchemaVersion::CURRENT,
            batch_id,
            source: encoding.as_str().to_owned(),
            spans: self.spans,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fit_a_nats_message_and_the_same_spans_make_the_same_ids() {
        let body = serde_json::json!(
            (0..3000)
                .map(|i| serde_json::json!({
                    "id": format!("{:x}", i + 1), "trace_id": "1", "name": "x".repeat(200),
                    "start_timestamp_micros": 1_700_000_000_000_000u64, "duration_micros": 5
                }))
                .collect::<Vec<_>>()
        );
        let rows = intake::decode(Encoding::SpanEvents, body.to_string().as_bytes()).unwrap();
        let first = batches(rows.clone(), Encoding::SpanEvents).unwrap();
        assert!(first.len() > 1);
        for batch in &first {
            assert!(proto::encode(batch).len() <= BATCH_BYTES + 1024);
        }
        assert_eq!(first.iter().map(|b| b.spans.len()).sum::<usize>(), 3000);
        let again = batches(rows, Encoding::SpanEvents).unwrap();
        let ids = |b: &[SpanBatch]| b.iter().map(|b| b.batch_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&first), ids(&again));
        assert_ne!(first[0].batch_id, first[1].batch_id);
    }
}
