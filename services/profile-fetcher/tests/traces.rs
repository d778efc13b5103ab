//! Traces end to end, against a real nats-server: a shell script reports a span with `curl` and
//! finds it with `flamethread-sql`; an app traced with the OpenTelemetry SDK exports over OTLP and
//! its spans are stored once across a retry and a restart; bad input of every kind is refused
//! whole, with a reason, and nothing of it is stored; SQL refuses anything but a bounded read.

#![allow(clippy::unwrap_used)]
// Built without the span store (`--no-default-features`), only the last test here runs.
#![cfg_attr(not(feature = "span-store"), allow(dead_code, unused_imports))]

use std::{
    net::SocketAddr,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use opentelemetry::trace::{
    Span as _, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use profile_fetcher::{Config, PagesConfig, Secret, TracesConfig};
use serde_json::{Value, json};
use test_support::{NatsServer, reserve_port, wait_for, wait_ready};
use tokio_util::sync::CancellationToken;

const SQL_TOKEN: &str = "sql-token-0123456789abcdef";
const INTAKE_TOKEN: &str = "intake-token-0123456789ab";

struct Running {
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
    intake: SocketAddr,
    pages: SocketAddr,
}

impl Running {
    fn stop(mut self) {
        self.shutdown.cancel();
        self.thread.take().unwrap().join().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(nats: &NatsServer, dir: &Path, traces: TracesConfig) -> Running {
    let admin = reserve_port().unwrap().addr();
    let intake = reserve_port().unwrap().addr();
    let pages = reserve_port().unwrap().addr();
    let config = Config {
        nats: bus::NatsConfig {
            url: nats.url(),
            ..Default::default()
        },
        admin: runtime::AdminConfig { listen: admin },
        pages: PagesConfig {
            listen: Some(pages),
            public_url: format!("http://{pages}"),
        },
        traces: TracesConfig {
            listen: Some(intake),
            dir: dir.to_owned(),
            sql_token: Secret::new(SQL_TOKEN),
            flush_every: Duration::from_secs(1),
            ..traces
        },
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    let thread = std::thread::spawn({
        let shutdown = shutdown.clone();
        move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime
                .block_on(profile_fetcher::run(config, shutdown))
                .unwrap();
        }
    });
    wait_ready(admin, Duration::from_secs(30)).await.unwrap();
    for listener in [intake, pages] {
        wait_for(Duration::from_secs(10), "the listeners", || async move {
            tokio::net::TcpStream::connect(listener).await.is_ok()
        })
        .await
        .unwrap();
    }
    Running {
        shutdown,
        thread: Some(thread),
        intake,
        pages,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn sql(pages: SocketAddr, query: &str) -> (u16, Value) {
    let response = http()
        .post(format!("http://{pages}/api/v1/sql"))
        .bearer_auth(SQL_TOKEN)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn count(pages: SocketAddr, filter: &str) -> u64 {
    let (status, answer) = sql(
        pages,
        &format!("SELECT count(*) FROM otel_traces WHERE {filter}"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer["rows"][0][0].as_str().unwrap().parse().unwrap()
}

fn flamethread_sql(pages: SocketAddr, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flamethread-sql"))
        .args(args)
        .env("FLAMETHREAD_URL", format!("http://{pages}"))
        .env("FLAMETHREAD_SQL_TOKEN", SQL_TOKEN)
        .output()
        .unwrap()
}

#[cfg(feature = "span-store")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_reports_a_span_with_curl_and_finds_it_with_sql_seconds_later() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fetcher = start(&nats, dir.path(), TracesConfig::default()).await;
    let script = dir.path().join("report-span.sh");
    std::fs::write(
        &script,
        r#"#!/bin/sh
set -eu
now=$(date +%s%6N)
curl -sS --fail-with-body -H 'Content-Type: application/json' \
  -d "{\"id\":\"$SPAN\",\"trace_id\":\"$TRACE\",\"name\":\"nightly-backup\",\"start_timestamp_micros\":$now,\"duration_micros\":1500000,\"tags\":[{\"key\":\"service_name\",\"v_type\":\"string\",\"v_str\":\"cron\"},{\"key\":\"bytes\",\"v_type\":\"int64\",\"v_int64\":1048576}]}" \
  "$URL/api/v1/spans"
"#,
    )
    .unwrap();
    let reported = Instant::now();
    let output = Command::new("sh")
        .arg(&script)
        .env("URL", format!("http://{}", fetcher.intake))
        .env("SPAN", "5b8aa5a2d2c872e8")
        .env("TRACE", "4bf92f3577b34da6a3ce929d0e0e4736")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        serde_json::from_slice::<Value>(&output.stdout).unwrap(),
        json!({"accepted": 1})
    );

    let query = "SELECT ServiceName, SpanName, Duration, SpanAttributes['bytes'] AS bytes \
                 FROM otel_traces WHERE TraceId = '4bf92f3577b34da6a3ce929d0e0e4736'";
    let mut found = None;
    while reported.elapsed() < Duration::from_secs(30) {
        let output = flamethread_sql(fetcher.pages, &[query]);
        assert!(output.status.success(), "{output:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        if text.contains("nightly-backup") {
            found = Some((reported.elapsed(), text));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (after, table) = found.expect("the span is found");
    eprintln!("queryable {} ms after curl returned", after.as_millis());
    let cells: Vec<&str> = table
        .lines()
        .nth(2)
        .unwrap()
        .split('|')
        .map(str::trim)
        .collect();
    assert_eq!(
        cells,
        ["cron", "nightly-backup", "1500000000", "1048576"],
        "{table}"
    );
    assert!(table.contains("(1 row, "), "{table}");

    let json = flamethread_sql(fetcher.pages, &["--json", query]);
    let answer: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(answer["columns"][0], "ServiceName");

    let refused = flamethread_sql(fetcher.pages, &["DELETE FROM otel_traces"]);
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8(refused.stderr).unwrap();
    assert!(said.contains("403") && said.contains("read-only"), "{said}");
    let wrong = Command::new(env!("CARGO_BIN_EXE_flamethread-sql"))
        .arg("SELECT 1")
        .env("FLAMETHREAD_URL", format!("http://{}", fetcher.pages))
        .env("FLAMETHREAD_SQL_TOKEN", "not-the-token-at-all")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("401"),
        "{wrong:?}"
    );
    fetcher.stop();
}

fn export_with_the_sdk(intake: SocketAddr) {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("http://{intake}/v1/traces"))
        .with_headers([("authorization".to_owned(), format!("Bearer {INTAKE_TOKEN}"))].into())
        .build()
        .unwrap();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("checkout")
                .build(),
        )
        .build();
    let tracer = provider.tracer("checkout-app");
    tracer.in_span("GET /checkout", |cx| {
        let mut child = tracer.start_with_context("SELECT orders", &cx);
        child.set_status(Status::error("deadlock detected"));
        child.end();
        cx.span()
            .set_attribute(opentelemetry::KeyValue::new("http.route", "/checkout"));
    });
    provider.shutdown().unwrap();
}

/// Two spans of service `recorded`, as an exporter sends them.
fn recorded_export() -> Vec<u8> {
    use opentelemetry_proto::tonic::{
        collector::trace::v1::ExportTraceServiceRequest,
        common::v1::{AnyValue, KeyValue, any_value},
        resource::v1::Resource,
        trace::v1::{ResourceSpans, ScopeSpans, Span},
    };
    use prost::Message as _;
    let span = |id: u8, name: &str| Span {
        trace_id: vec![0x42; 16],
        span_id: vec![id; 8],
        name: name.to_owned(),
        kind: 2,
        start_time_unix_nano: 1_764_750_000_000_000_000,
        end_time_unix_nano: 1_764_750_000_120_000_000,
        ..Span::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".to_owned(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("recorded".to_owned())),
                    }),
                    ..KeyValue::default()
                }],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![span(1, "GET /a"), span(2, "GET /b")],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

#[cfg(feature = "span-store")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_traced_app_is_stored_once_across_a_retry_and_a_restart() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let traces = TracesConfig {
        intake_token: Secret::new(INTAKE_TOKEN),
        ..TracesConfig::default()
    };
    let fetcher = start(&nats, dir.path(), traces.clone()).await;
    let intake = fetcher.intake;
    tokio::task::spawn_blocking(move || export_with_the_sdk(intake))
        .await
        .unwrap();
    let pages = fetcher.pages;
    wait_for(Duration::from_secs(10), "both spans", || async move {
        count(pages, "ServiceName = 'checkout'").await == 2
    })
    .await
    .unwrap();
    let (_, answer) = sql(
        pages,
        "SELECT child.SpanName, child.StatusCode, child.StatusMessage, parent.SpanName, \
         parent.SpanAttributes['http.route'] \
         FROM otel_traces child JOIN otel_traces parent \
           ON child.ParentSpanId = parent.SpanId AND child.TraceId = parent.TraceId",
    )
    .await;
    assert_eq!(
        answer["rows"],
        json!([[
            "SELECT orders",
            "Error",
            "deadlock detected",
            "GET /checkout",
            "/checkout"
        ]]),
        "{answer}"
    );

    // The trace's waterfall: the child under its parent, failed, the asked-for span marked; the
    // id is found in either encoding, and a bad id or an unknown trace is said as such.
    let (_, ids) = sql(
        pages,
        "SELECT TraceId, SpanId FROM otel_traces WHERE SpanName = 'SELECT orders'",
    )
    .await;
    let trace_id = ids["rows"][0][0].as_str().unwrap().to_owned();
    let span_id = ids["rows"][0][1].as_str().unwrap().to_owned();
    let page = http()
        .get(format!("http://{pages}/traces/{trace_id}?span={span_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.headers().contains_key("content-security-policy"));
    let html = page.text().await.unwrap();
    // The route the span attributes name is shown beside its name.
    let parent_at = html
        .find(r#">GET &#x2f;checkout <span class="detail">&#x2f;checkout<"#)
        .expect("the parent row");
    let child_at = html.find(">SELECT orders<").expect("the child row");
    assert!(parent_at < child_at, "{html}");
    assert!(html.contains(r#"class="error focus""#), "{html}");
    assert!(
        html.contains("padding-left: 20px\">SELECT orders"),
        "{html}"
    );
    assert!(html.contains("2 spans · 1 failed"), "{html}");
    let base64_id = {
        let bytes: Vec<u8> = (0..16)
            .map(|at| u8::from_str_radix(&trace_id[at * 2..at * 2 + 2], 16).unwrap())
            .collect();
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
    };
    let same = http()
        .get(format!("http://{pages}/traces/{base64_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200, "{base64_id}");
    for (path, status) in [
        (format!("/traces/{}", "0".repeat(31) + "1"), 404),
        ("/traces/not-an-id%3Cscript%3E".to_owned(), 400),
        (format!("/traces/{trace_id}?span=%27%3B"), 400),
    ] {
        let refused = http()
            .get(format!("http://{pages}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), status, "{path}");
        // What the id said comes back as text only, never as a page.
        assert_eq!(
            refused.headers()["content-type"],
            "text/plain; charset=utf-8",
            "{path}"
        );
        assert_eq!(refused.headers()["x-content-type-options"], "nosniff");
    }

    // A retried export (the same spans) is stored once; so is a redelivery after a restart.
    let body = recorded_export();
    for _ in 0..2 {
        let response = http()
            .post(format!("http://{intake}/v1/traces"))
            .bearer_auth(INTAKE_TOKEN)
            .header("Content-Type", "application/x-protobuf")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    }
    wait_for(
        Duration::from_secs(10),
        "the recorded export",
        || async move { count(pages, "ServiceName = 'recorded'").await == 2 },
    )
    .await
    .unwrap();
    wait_for(Duration::from_secs(10), "a file written", || async {
        std::fs::read_dir(dir.path()).unwrap().any(|entry| {
            entry
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".parquet")
        })
    })
    .await
    .unwrap();
    fetcher.stop();

    let fetcher = start(&nats, dir.path(), traces).await;
    let pages = fetcher.pages;
    // Give the reader time to catch up on anything after its files, then count exactly.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(pages, "true").await, 4);
    fetcher.stop();

    // A store that starts empty holds every span the stream has, also those taken in before it
    // existed: what a profile-fetcher built with the store, swapped in for one built without it
    // (deploy/local/up.sh), relies on.
    let fresh = tempfile::tempdir().unwrap();
    let fetcher = start(&nats, fresh.path(), TracesConfig::default()).await;
    let pages = fetcher.pages;
    wait_for(
        Duration::from_secs(10),
        "the stream read into an empty store",
        || async move { count(pages, "true").await == 4 },
    )
    .await
    .unwrap();
    fetcher.stop();
}

#[cfg(feature = "span-store")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_spans_are_refused_whole_with_a_reason_and_sql_only_reads() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fetcher = start(
        &nats,
        dir.path(),
        TracesConfig {
            max_body_bytes: 64 * 1024,
            max_rows: 5,
            query_timeout: Duration::from_secs(2),
            ..TracesConfig::default()
        },
    )
    .await;
    let intake = fetcher.intake;
    let post = |path: &'static str, content_type: &'static str, body: Vec<u8>| async move {
        let response = http()
            .post(format!("http://{intake}{path}"))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            String::from_utf8_lossy(&response.bytes().await.unwrap()).into_owned(),
        )
    };
    let good_then_bad = json!([
        {"id": "1", "trace_id": "77", "name": "fine", "start_timestamp_micros": 1_764_750_000_000_000u64, "duration_micros": 5},
        {"id": "not an id!", "trace_id": "77", "name": "broken", "start_timestamp_micros": 1_764_750_000_000_000u64, "duration_micros": 5}
    ]);
    let mut gzip_bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gzip_bomb, &vec![0u8; 10 << 20]).unwrap();
    let gzip_bomb = gzip_bomb.finish().unwrap();
    let cases: Vec<(&str, (u16, String), &str)> = vec![
        (
            "protobuf that is not",
            post(
                "/v1/traces",
                "application/x-protobuf",
                b"\xff\xff\xff\xff".to_vec(),
            )
            .await,
            "not an OTLP ExportTraceServiceRequest in protobuf",
        ),
        (
            "JSON that is not OTLP",
            post(
                "/v1/traces",
                "application/json",
                br#"{"resourceSpans": "x"}"#.to_vec(),
            )
            .await,
            "not OTLP JSON",
        ),
        (
            "a good span with a bad one",
            post(
                "/api/v1/spans",
                "application/json",
                good_then_bad.to_string().into_bytes(),
            )
            .await,
            "span 1 (\\\"broken\\\"): id \\\"not an id!\\\" is neither hex nor base64",
        ),
        (
            "too large",
            post("/api/v1/spans", "application/json", vec![b' '; 100 * 1024]).await,
            "length limit",
        ),
        (
            "form data",
            post(
                "/v1/traces",
                "application/x-www-form-urlencoded",
                b"a=b".to_vec(),
            )
            .await,
            "application/x-protobuf or application/json",
        ),
    ];
    for (what, (status, body), says) in &cases {
        let expected = match *what {
            "too large" => 413,
            "form data" => 415,
            _ => 400,
        };
        assert_eq!(*status, expected, "{what}: {body}");
        assert!(body.contains(says), "{what}: {body}");
    }
    let bomb = http()
        .post(format!("http://{intake}/v1/traces"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(gzip_bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(bomb.status(), 413);
    assert!(bomb.text().await.unwrap().contains("un-gzipped"));

    // Nothing of the refused batch was stored.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pages = fetcher.pages;
    assert_eq!(count(pages, "true").await, 0);

    for (query, status, says) in [
        ("DROP TABLE otel_traces", 403, "read-only"),
        (
            "INSERT INTO otel_traces SELECT * FROM otel_traces",
            403,
            "read-only",
        ),
        ("SELECT * FROM '/etc/passwd'", 400, ""),
        ("SELECT nope FROM otel_traces", 400, "nope"),
        (
            "SELECT count(*) FROM generate_series(1, 100000000000)",
            422,
            "ran longer than",
        ),
    ] {
        let (got, answer) = sql(pages, query).await;
        assert_eq!(got, status, "{query}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{query}: {answer}"
        );
    }
    let (_, cut) = sql(pages, "SELECT value FROM generate_series(1, 100)").await;
    assert_eq!(cut["rows"].as_array().unwrap().len(), 5, "{cut}");
    assert_eq!(cut["truncated"], true);
    let no_token = http()
        .post(format!("http://{pages}/api/v1/sql"))
        .body("SELECT 1")
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    fetcher.stop();
}

/// Built without the span store, the intake still takes spans, and they wait in JetStream for a
/// profile-fetcher that has one; whoever asks SQL of this one is told why there is no answer.
#[cfg(not(feature = "span-store"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_store_spans_wait_in_jetstream_and_sql_says_why() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fetcher = start(&nats, dir.path(), TracesConfig::default()).await;
    let span = json!({
        "id": "5b8aa5a2d2c872e8", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "name": "nightly-backup", "start_timestamp_micros": 1_764_000_000_000_000_u64,
        "duration_micros": 1500,
        "tags": [{"key": "service_name", "v_type": "string", "v_str": "cron"}]
    });
    let response = http()
        .post(format!("http://{}/api/v1/spans", fetcher.intake))
        .json(&span)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"accepted": 1})
    );

    let client = async_nats::connect(nats.url()).await.unwrap();
    let stream = async_nats::jetstream::new(client)
        .get_stream(proto::Subjects::default().stream_name(proto::Subject::SpanReceived.stream()))
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(stream.state.messages, 1, "{stream:?}");

    let (status, answer) = sql(fetcher.pages, "SELECT count(*) FROM otel_traces").await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer.to_string().contains("built without its span store"),
        "{answer}"
    );

    // An incident's reply says why it has no requests, rather than leaving them out.
    let bus = bus::Bus::connect(
        &bus::NatsConfig {
            url: nats.url(),
            ..Default::default()
        },
        "test",
    )
    .await
    .unwrap();
    let opened =
        test_support::fixtures::incident_event("lean", "1.0", proto::IncidentChange::Opened, 1);
    bus.publish(&opened).await.unwrap();
    let evidence = bus
        .follow::<proto::TracesEvidence>(proto::Subject::EvidenceTraces, bus::FollowFrom::After(0))
        .await
        .unwrap();
    let mut evidence = std::pin::pin!(evidence);
    let first = tokio::time::timeout(
        Duration::from_secs(30),
        futures::StreamExt::next(&mut evidence),
    )
    .await
    .expect("the incident's traces evidence")
    .unwrap()
    .unwrap()
    .message
    .unwrap();
    assert_eq!(first.incident_id, opened.incident.id);
    assert_eq!(first.service, "svc-lean");
    match &first.status {
        proto::evidence::EvidenceStatus::NoData { detail } => {
            assert!(detail.contains("built without its span store"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    fetcher.stop();
}
