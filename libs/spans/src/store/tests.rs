use std::collections::BTreeMap;

use proto::span::{SpanKind, StatusCode};

use super::*;

fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        dir: dir.to_owned(),
        flush_every: Duration::from_secs(60),
        flush_rows: 1000,
        retention: Duration::from_secs(3600),
        max_bytes: 1 << 30,
    }
}

fn span(service: &str, name: &str, id: u64, millis: u64, error: bool) -> SpanRow {
    SpanRow {
        timestamp_ns: 1_700_000_000_000_000_000 + id as i64,
        trace_id: format!("{:032x}", id + 1),
        span_id: format!("{:016x}", id + 1),
        parent_span_id: String::new(),
        trace_state: String::new(),
        span_name: name.to_owned(),
        span_kind: SpanKind::Server,
        service_name: service.to_owned(),
        resource_attributes: BTreeMap::new(),
        scope_name: String::new(),
        scope_version: String::new(),
        span_attributes: BTreeMap::from([("http.route".into(), name.into())]),
        duration_ns: millis * 1_000_000,
        status_code: if error {
            StatusCode::Error
        } else {
            StatusCode::Unset
        },
        status_message: String::new(),
        events: Vec::new(),
        links: Vec::new(),
    }
}

async fn count(store: &SpanStore) -> String {
    let answer = store
        .query(
            "SELECT count(*) AS n FROM otel_traces",
            QueryLimits::default(),
        )
        .await
        .unwrap();
    answer.rows[0][0].clone()
}

#[tokio::test]
async fn rows_are_queryable_before_and_after_their_file_is_written_and_never_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = SpanStore::open(config(dir.path())).unwrap();
    assert_eq!(count(&store).await, "0");
    assert!(store.append(1, &[span("checkout", "GET /cart", 1, 250, true)]));
    assert!(store.append(2, &[span("checkout", "GET /pay", 2, 5, false)]));
    assert!(
        !store.append(2, &[span("checkout", "again", 3, 5, false)]),
        "a redelivery"
    );
    assert_eq!(count(&store).await, "2");
    assert_eq!(store.flush().unwrap().rows_written, 2);
    assert_eq!(store.pending_rows(), 0);
    assert!(store.append(3, &[span("cart", "GET /cart", 3, 1, false)]));
    assert_eq!(count(&store).await, "3");

    // Reopened: it resumes after the last sequence written; what was pending is read again.
    drop(store);
    let store = SpanStore::open(config(dir.path())).unwrap();
    assert_eq!(store.resume_after(), 2);
    assert_eq!(count(&store).await, "2");
    let answer = store
        .query(
            "SELECT SpanName, \"SpanAttributes\"['http.route'] AS route, Duration FROM otel_traces \
                 WHERE ServiceName = 'checkout' AND StatusCode = 'Error'",
            QueryLimits::default(),
        )
        .await
        .unwrap();
    assert_eq!(answer.columns, ["SpanName", "route", "Duration"]);
    assert_eq!(answer.rows, [["GET /cart", "GET /cart", "250000000"]]);
}

#[tokio::test]
async fn writes_long_queries_and_large_answers_are_refused_or_cut() {
    let dir = tempfile::tempdir().unwrap();
    let store = SpanStore::open(config(dir.path())).unwrap();
    let rows: Vec<SpanRow> = (0..50)
        .map(|i| span("checkout", "GET /cart", i, i, false))
        .collect();
    store.append(1, &rows);
    for write in [
        "DROP TABLE otel_traces",
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO otel_traces SELECT * FROM otel_traces",
        "COPY otel_traces TO '/tmp/stolen.csv'",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let err = store
            .query(write, QueryLimits::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, QueryError::NotReadOnly(_)),
            "{write}: {err:?}"
        );
    }
    let err = store
        .query("SELECT nope FROM otel_traces", QueryLimits::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    let err = store
        .query("  ; ", QueryLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::Empty), "{err:?}");
    // Nothing else can be read: no file functions, no other tables.
    let err = store
        .query("SELECT * FROM '/etc/passwd'", QueryLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::Invalid(_)), "{err:?}");

    let limits = QueryLimits {
        max_rows: 10,
        max_cell_chars: 5,
        ..QueryLimits::default()
    };
    let answer = store
        .query("SELECT SpanName FROM otel_traces", limits)
        .await
        .unwrap();
    assert_eq!(answer.rows.len(), 10);
    assert!(answer.truncated);
    assert_eq!(answer.rows[0][0], "GET …");

    let slow = QueryLimits {
        timeout: Duration::from_millis(50),
        ..QueryLimits::default()
    };
    let err = store
        .query(
            "SELECT count(*) FROM generate_series(1, 10000000000) a",
            slow,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::TimedOut(_)), "{err:?}");

    let small = QueryLimits {
        memory_bytes: 1 << 20,
        ..QueryLimits::default()
    };
    let err = store
            .query(
                "SELECT a.value, array_agg(b.value) FROM generate_series(1, 200000) a, generate_series(1, 3) b GROUP BY a.value ORDER BY a.value",
                small,
            )
            .await
            .unwrap_err();
    assert!(matches!(err, QueryError::TooMuchMemory(1)), "{err:?}");
}

#[tokio::test]
async fn retention_removes_the_oldest_files_but_keeps_where_the_stream_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SpanStore::open(StoreConfig {
        max_bytes: 1,
        ..config(dir.path())
    })
    .unwrap();
    for seq in 1..=3 {
        store.append(seq, &[span("checkout", "GET /cart", seq, 1, false)]);
        store.flush().unwrap();
    }
    assert_eq!(store.enforce_retention().files_removed, 2);
    assert_eq!(count(&store).await, "1");
    assert_eq!(store.resume_after(), 3);
    let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1);
}
