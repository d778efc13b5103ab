//! The span store's figures on this machine (BENCHMARKS.md, "The span store"):
//!
//! ```text
//! cargo run --release -p spans --example span_store_load -- [--rows 10000000]
//! ```
//! 1. decoding: SpanEvent JSON and OTLP protobuf requests of 1,000 spans into rows and Arrow;
//! 2. writing: `--rows` spans over the last hour (20 services, 60 span names, log-normal
//!    durations, 1% errors) appended and written as the store writes them, one file a million;
//! 3. querying: p50, p95 and error rate by span name over the last hour, over all of them.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark prints its figures"
)]

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use proto::{
    SpanRow,
    span::{SpanKind, StatusCode},
};
use spans::{Encoding, QueryLimits, SpanStore, StoreConfig, intake, table};

const P95_BY_NAME: &str = "SELECT SpanName, count(*) AS spans, \
    approx_percentile_cont(Duration, 0.5) AS p50, approx_percentile_cont(Duration, 0.95) AS p95, \
    avg(CASE WHEN StatusCode = 'Error' THEN 1.0 ELSE 0.0 END) AS error_rate \
    FROM otel_traces WHERE Timestamp >= now() - INTERVAL '1 hour' \
    GROUP BY SpanName ORDER BY p95 DESC";

/// A small deterministic generator (xorshift), so runs compare.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn span(random: &mut Random, start_ns: i64, span_ns: i64) -> SpanRow {
    let name = random.next() % 60;
    let service = random.next() % 20;
    // Log-normal around 2 ms..200 ms, a few names slower than the rest.
    let normal = (-2.0 * random.unit().max(1e-12).ln()).sqrt()
        * (2.0 * std::f64::consts::PI * random.unit()).cos();
    let duration = (14.5 + (name % 7) as f64 * 0.4 + 0.8 * normal).exp() as u64;
    SpanRow {
        timestamp_ns: start_ns + (random.next() % span_ns as u64) as i64,
        trace_id: format!("{:032x}", random.next()),
        span_id: format!("{:016x}", random.next() | 1),
        parent_span_id: String::new(),
        trace_state: String::new(),
        span_name: format!("GET /api/v1/route-{name:02}"),
        span_kind: SpanKind::Server,
        service_name: format!("service-{service:02}"),
        resource_attributes: BTreeMap::new(),
        scope_name: String::new(),
        scope_version: String::new(),
        span_attributes: BTreeMap::from([("http.status_code".to_owned(), "200".to_owned())]),
        duration_ns: duration,
        status_code: if random.unit() < 0.01 {
            StatusCode::Error
        } else {
            StatusCode::Unset
        },
        status_message: String::new(),
        events: Vec::new(),
        links: Vec::new(),
    }
}

fn decoding(random: &mut Random, now_ns: i64) {
    let requests = 200;
    let events: Vec<Vec<u8>> = (0..requests)
        .map(|_| {
            let spans: Vec<_> = (0..1000)
                .map(|_| {
                    let row = span(random, now_ns - 60_000_000_000, 60_000_000_000);
                    serde_json::json!({
                        "id": row.span_id, "trace_id": row.trace_id, "name": row.span_name,
                        "start_timestamp_micros": row.timestamp_ns / 1000,
                        "duration_micros": row.duration_ns / 1000,
                        "tags": [{"key": "service_name", "v_type": "string", "v_str": row.service_name},
                                 {"key": "http.status_code", "v_type": "int64", "v_int64": 200}]
                    })
                })
                .collect();
            serde_json::to_vec(&spans).unwrap()
        })
        .collect();
    let started = Instant::now();
    let mut rows = 0;
    for body in &events {
        let decoded = intake::decode(Encoding::SpanEvents, body).unwrap();
        rows += table::to_batch(&decoded).num_rows();
    }
    let elapsed = started.elapsed();
    println!(
        "decode SpanEvent JSON + Arrow: {rows} spans in {:.2} s = {:.0} spans/s on one core",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut rows = 10_000_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rows" => rows = args.next().unwrap().parse().unwrap(),
            other => panic!("unknown argument {other}"),
        }
    }
    let now_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    decoding(&mut random, now_ns);

    let dir = tempfile::tempdir().unwrap();
    let store = SpanStore::open(StoreConfig {
        dir: dir.path().to_owned(),
        flush_every: Duration::from_secs(3600),
        flush_rows: 1_000_000,
        retention: Duration::from_secs(7 * 24 * 3600),
        max_bytes: u64::MAX,
    })
    .unwrap();
    let hour = 3_600_000_000_000i64;
    let started = Instant::now();
    let mut generating = Duration::ZERO;
    let chunk = 10_000;
    for seq in 0..(rows / chunk) as u64 {
        let made = Instant::now();
        let batch: Vec<SpanRow> = (0..chunk)
            .map(|_| {
                span(
                    &mut random,
                    now_ns - hour + 60_000_000_000,
                    hour - 120_000_000_000,
                )
            })
            .collect();
        generating += made.elapsed();
        store.append(seq + 1, &batch);
        if store.flush_due() {
            store.flush().unwrap();
        }
    }
    store.flush().unwrap();
    let writing = started.elapsed() - generating;
    println!(
        "append + write Parquet: {rows} spans in {:.1} s = {:.0} spans/s; {} MiB on disk",
        writing.as_secs_f64(),
        rows as f64 / writing.as_secs_f64(),
        store.stored_bytes() >> 20
    );

    let limits = QueryLimits {
        timeout: Duration::from_secs(120),
        memory_bytes: 4 << 30,
        ..QueryLimits::default()
    };
    let mut runs = Vec::new();
    for _ in 0..5 {
        let answer = store.query(P95_BY_NAME, limits).await.unwrap();
        assert_eq!(answer.rows.len(), 60);
        runs.push(answer.elapsed_ms);
    }
    runs.sort_unstable();
    println!(
        "p50/p95/error rate by span name over the last hour of {rows} spans: median {} ms, best {} ms (5 runs: {runs:?})",
        runs[2], runs[0]
    );
    let one_service = P95_BY_NAME.replace("WHERE ", "WHERE ServiceName = 'service-07' AND ");
    let answer = store.query(&one_service, limits).await.unwrap();
    println!("the same for one service of 20: {} ms", answer.elapsed_ms);
}
