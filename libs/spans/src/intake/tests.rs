use opentelemetry_proto::tonic::{
    common::v1::InstrumentationScope,
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Status},
};

use super::*;

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string("service.name", "checkout")],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "io.opentelemetry.http".to_owned(),
                    version: "1.2".to_owned(),
                    ..InstrumentationScope::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn span(name: &str) -> Span {
    Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0x01; 8],
        name: name.to_owned(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_250_000_000,
        attributes: vec![
            string("http.route", "/cart/{id}"),
            KeyValue {
                key: "http.status_code".to_owned(),
                value: Some(AnyValue {
                    value: Some(Value::IntValue(503)),
                }),
                ..KeyValue::default()
            },
        ],
        status: Some(Status {
            code: 2,
            message: "upstream timed out".to_owned(),
        }),
        ..Span::default()
    }
}

#[test]
fn otlp_protobuf_and_json_read_alike() {
    let request = request(vec![span("GET /cart/{id}")]);
    let from_protobuf = decode(Encoding::OtlpProtobuf, &request.encode_to_vec()).unwrap();
    let json = serde_json::to_vec(&request).unwrap();
    let from_json = decode(Encoding::OtlpJson, &json).unwrap();
    assert_eq!(from_protobuf, from_json);
    let row = &from_protobuf[0];
    assert_eq!(row.trace_id, "ab".repeat(16));
    assert_eq!(row.span_id, "0101010101010101");
    assert_eq!(row.parent_span_id, "");
    assert_eq!(row.service_name, "checkout");
    assert_eq!(row.scope_name, "io.opentelemetry.http");
    assert_eq!(row.span_kind, SpanKind::Server);
    assert_eq!(row.duration_ns, 250_000_000);
    assert_eq!(row.status_code, StatusCode::Error);
    assert_eq!(row.span_attributes["http.status_code"], "503");
    assert_eq!(row.status_message, "upstream timed out");
}

#[test]
fn a_bad_span_refuses_its_batch_and_says_which_and_why() {
    let mut short = span("short id");
    short.span_id = vec![1, 2, 3];
    let mut backwards = span("backwards");
    backwards.end_time_unix_nano = 1;
    let mut zero = span("zero trace");
    zero.trace_id = vec![0; 16];
    for (bad, says) in [
        (short, "span_id must be 8 bytes"),
        (backwards, "before start_time_unix_nano"),
        (zero, "all zeros"),
    ] {
        let request = request(vec![span("fine"), bad]);
        let err = decode(Encoding::OtlpProtobuf, &request.encode_to_vec()).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("span 1 ("), "{text}");
        assert!(text.contains(says), "{text}");
    }
    for (encoding, body, says) in [
        (Encoding::OtlpProtobuf, &b"\xff\xff\xff"[..], "protobuf"),
        (Encoding::OtlpJson, b"{\"resourceSpans\": 3}", "OTLP JSON"),
        (Encoding::SpanEvents, b"[{\"id\": 1}]", "span 0"),
        (Encoding::SpanEvents, b"\"hello\"", "SpanEvent"),
    ] {
        let err = decode(encoding, body).unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
    }
}

#[test]
fn span_events_take_hex_or_base64_ids_and_typed_tags() {
    let body = serde_json::json!([
        {
            "id": "AAAAAAAAAAE=", "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "name": "backup.sh", "start_timestamp_micros": 1_700_000_000_000_000u64,
            "duration_micros": 1500, "span_type": "cron",
            "tags": [
                {"key": "service_name", "v_type": "string", "v_str": "nightly"},
                {"key": "bytes", "v_type": "int64", "v_int64": 42},
                {"key": "error", "v_type": "bool", "v_bool": true}
            ]
        },
        {
            "id": "2", "parent_id": "0000000000000001", "trace_id": "CvdlGRbNQ92ESOshHIAxnA==",
            "name": "upload", "start_timestamp_micros": 1_700_000_000_000_500u64,
            "duration_micros": 700
        }
    ]);
    let rows = decode(Encoding::SpanEvents, body.to_string().as_bytes()).unwrap();
    assert_eq!(rows[0].span_id, "0000000000000001", "base64");
    assert_eq!(rows[1].parent_span_id, "0000000000000001", "hex");
    assert_eq!(rows[1].span_id, "0000000000000002", "short hex, padded");
    assert_eq!(
        rows[0].trace_id, rows[1].trace_id,
        "hex and base64 of one id"
    );
    assert_eq!(rows[0].service_name, "nightly");
    assert_eq!(rows[1].service_name, UNKNOWN_SERVICE);
    assert_eq!(rows[0].span_attributes["bytes"], "42");
    assert_eq!(rows[0].span_attributes["span_type"], "cron");
    assert_eq!(rows[0].status_code, StatusCode::Error);
    assert_eq!(rows[0].timestamp_ns, 1_700_000_000_000_000_000);
    assert_eq!(rows[0].duration_ns, 1_500_000);

    let lying = serde_json::json!({
        "id": "1", "trace_id": "1", "name": "x", "start_timestamp_micros": 1,
        "duration_micros": 1, "tags": [{"key": "n", "v_type": "int64", "v_str": "1"}]
    });
    let err = decode(Encoding::SpanEvents, lying.to_string().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("holds a string"), "{err}");
    let unknown = serde_json::json!({
        "id": "1", "trace_id": "1", "name": "x", "start_timestamp_micros": 1,
        "duration_micros": 1, "durtion": 3
    });
    let err = decode(Encoding::SpanEvents, unknown.to_string().as_bytes()).unwrap_err();
    assert!(err.to_string().contains("unknown field `durtion`"), "{err}");
}

#[test]
fn long_names_and_many_attributes_are_bounded_and_counted() {
    let mut big = span(&"ą".repeat(10_000));
    big.attributes = (0..500).map(|i| string(&format!("k{i}"), "v")).collect();
    let rows = decode(Encoding::OtlpProtobuf, &request(vec![big]).encode_to_vec()).unwrap();
    assert!(rows[0].span_name.len() <= MAX_TEXT_BYTES);
    assert!(rows[0].span_name.ends_with('…'));
    assert_eq!(rows[0].span_attributes.len(), MAX_ATTRIBUTES + 1);
    assert_eq!(rows[0].span_attributes[DROPPED], "372");
    // 128 resource attributes of 8 KiB repeated on 20,000 spans would be 20 GiB of rows.
    let mut amplified = request(vec![span("x"); MAX_SPANS]);
    amplified.resource_spans[0]
        .resource
        .as_mut()
        .unwrap()
        .attributes = (0..128)
        .map(|i| string(&format!("{i:0>4096}"), &"v".repeat(4096)))
        .collect();
    assert_eq!(
        decode(Encoding::OtlpProtobuf, &amplified.encode_to_vec()).unwrap_err(),
        IntakeError::TooMuchRepeated
    );
    let many = vec![span("x"); MAX_SPANS + 1];
    assert_eq!(
        decode(Encoding::OtlpProtobuf, &request(many).encode_to_vec()).unwrap_err(),
        IntakeError::TooManySpans
    );
}
