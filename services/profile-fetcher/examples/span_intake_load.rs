//! The span intake's figures on this machine (BENCHMARKS.md, "The span intake"):
//!
//! ```text
//! cargo run --release -p profile-fetcher --example span_intake_load -- [--spans 500000] [--clients 8]
//! ```
//! Starts a nats-server and profile-fetcher (intake, store, SQL), then `--clients` senders post
//! OTLP protobuf requests of 1,000 spans each (as an OpenTelemetry SDK's batch exporter does) as
//! fast as the intake answers. Reports spans/s acknowledged (each on JetStream), then how long
//! until SQL counts every one of them.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark prints its figures"
)]

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use prost::Message as _;
use test_support::{NatsServer, reserve_port, wait_for, wait_ready};
use tokio_util::sync::CancellationToken;

const SQL_TOKEN: &str = "load-sql-token-0123456789";

fn request(first: u64, now_ns: u64) -> Vec<u8> {
    let spans = (first..first + 1000)
        .map(|n| Span {
            trace_id: (n / 8 + 1).to_be_bytes().repeat(2),
            span_id: (n + 1).to_be_bytes().to_vec(),
            name: format!("GET /api/v1/route-{:02}", n % 60),
            kind: 2,
            start_time_unix_nano: now_ns - 1_000_000_000 + n % 1_000_000,
            end_time_unix_nano: now_ns - 1_000_000_000 + n % 1_000_000 + 3_000_000 + n % 50_000_000,
            attributes: vec![KeyValue {
                key: "http.status_code".to_owned(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(200)),
                }),
                ..KeyValue::default()
            }],
            ..Span::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".to_owned(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(format!(
                            "service-{:02}",
                            first / 1000 % 20
                        ))),
                    }),
                    ..KeyValue::default()
                }],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut total = 500_000u64;
    let mut clients = 8u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--spans" => total = args.next().unwrap().parse().unwrap(),
            "--clients" => clients = args.next().unwrap().parse().unwrap(),
            other => panic!("unknown argument {other}"),
        }
    }
    runtime::install_crypto_provider();
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let admin = reserve_port().unwrap().addr();
    let intake = reserve_port().unwrap().addr();
    let pages = reserve_port().unwrap().addr();
    let config = profile_fetcher::Config {
        nats: bus::NatsConfig {
            url: nats.url(),
            ..Default::default()
        },
        admin: runtime::AdminConfig { listen: admin },
        pages: profile_fetcher::PagesConfig {
            listen: Some(pages),
            public_url: format!("http://{pages}"),
        },
        traces: profile_fetcher::TracesConfig {
            listen: Some(intake),
            dir: dir.path().to_owned(),
            sql_token: profile_fetcher::Secret::new(SQL_TOKEN),
            ..Default::default()
        },
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    let service = tokio::spawn(profile_fetcher::run(config, shutdown.clone()));
    wait_ready(admin, Duration::from_secs(30)).await.unwrap();
    wait_for(Duration::from_secs(10), "the intake", || async move {
        tokio::net::TcpStream::connect(intake).await.is_ok()
    })
    .await
    .unwrap();

    let now_ns = u64::try_from(chrono::Utc::now().timestamp_nanos_opt().unwrap()).unwrap();
    let requests: Vec<Vec<u8>> = (0..total / 1000)
        .map(|i| request(i * 1000, now_ns))
        .collect();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let per_client = requests.len() as u64 / clients;
    let mut senders = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        let mine: Vec<Vec<u8>> =
            requests[(c * per_client) as usize..((c + 1) * per_client) as usize].to_vec();
        senders.push(tokio::spawn(async move {
            for body in mine {
                let response = client
                    .post(format!("http://{intake}/v1/traces"))
                    .header("Content-Type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let sent = per_client * clients * 1000;
    let acked = started.elapsed();
    println!(
        "intake: {sent} spans acknowledged in {:.2} s = {:.0} spans/s ({clients} clients, 1,000 spans a request, OTLP protobuf)",
        acked.as_secs_f64(),
        sent as f64 / acked.as_secs_f64()
    );
    loop {
        let answer: serde_json::Value = client
            .post(format!("http://{pages}/api/v1/sql"))
            .bearer_auth(SQL_TOKEN)
            .body("SELECT count(*) FROM otel_traces")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let stored: u64 = answer["rows"][0][0].as_str().unwrap().parse().unwrap();
        if stored >= sent {
            println!(
                "all {sent} queryable {:.2} s after the last acknowledgement ({:.2} s after the first request)",
                (started.elapsed() - acked).as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    let _ = service.await;
}
