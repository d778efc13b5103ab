#!/usr/bin/env python3
"""Which embedded SQL engine holds flamethread's spans: the benchmark that chose it.

The question the span store must answer fastest is "p95 (and p50, error rate) by span name over the
last hour"; the issue asks for it over 10 million spans in at most a second on this 2-core machine.
This script builds the same 10 million `otel_traces`-shaped rows (20 services, 60 span names,
log-normal durations, 1% errors, one hour) and times that query in the three candidates, through
their Python bindings (the same native engines the Rust crates wrap):

- DataFusion 55 over Parquet files (one file a minute, as the store writes them);
- DuckDB over the same Parquet files, and over its own table;
- SQLite with an index on (ServiceName, SpanName, Timestamp), the way rusqlite would hold them.

Usage: python3 -m venv v && v/bin/pip install duckdb datafusion pyarrow numpy
       v/bin/python tests/load/engines/spans_engines.py [--rows 10000000] [--dir /tmp/spans]
Figures go to BENCHMARKS.md ("The span store").
"""

import argparse
import os
import sqlite3
import statistics
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SERVICES = 20
NAMES = 60
FILES = 60  # one a minute


def columns(rows, rng, start_ns):
    service = rng.integers(0, SERVICES, rows)
    name = rng.integers(0, NAMES, rows)
    # A few names are slow; durations are log-normal around 2 ms..200 ms.
    duration = (rng.lognormal(mean=14.5 + (name % 7) * 0.4, sigma=0.8, size=rows)).astype(np.uint64)
    status = np.where(rng.random(rows) < 0.01, 2, 0).astype(np.int32)
    timestamp = np.sort(start_ns + rng.integers(0, 3600 * 10**9, rows)).astype("datetime64[ns]")
    trace = rng.integers(0, 2**63, rows)
    span = rng.integers(0, 2**63, rows)
    return pa.table(
        {
            "Timestamp": pa.array(timestamp, pa.timestamp("ns", tz="UTC")),
            "TraceId": pa.array(["%032x" % t for t in trace]),
            "SpanId": pa.array(["%016x" % s for s in span]),
            "ParentSpanId": pa.array([""] * rows),
            "SpanName": pa.array(["GET /api/v1/route-%02d" % n for n in name]),
            "SpanKind": pa.array(["Server"] * rows),
            "ServiceName": pa.array(["service-%02d" % s for s in service]),
            "Duration": pa.array(duration, pa.uint64()),
            "StatusCode": pa.array(np.where(status == 2, "Error", "Unset")),
            "StatusMessage": pa.array([""] * rows),
        }
    )


def build(rows, directory):
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(7)
    start_ns = time.time_ns() - 3600 * 10**9
    per_file = rows // FILES
    for minute in range(FILES):
        path = os.path.join(directory, "spans-%02d.parquet" % minute)
        if os.path.exists(path):
            continue
        table = columns(per_file, rng, start_ns + minute * 60 * 10**9)
        pq.write_table(table.sort_by("Timestamp"), path, compression="zstd", row_group_size=128 * 1024)
    return start_ns


P95_DATAFUSION = """
SELECT SpanName, count(*) AS spans,
       approx_percentile_cont(Duration, 0.5) AS p50,
       approx_percentile_cont(Duration, 0.95) AS p95,
       avg(CASE WHEN StatusCode = 'Error' THEN 1.0 ELSE 0.0 END) AS error_rate
FROM otel_traces
WHERE Timestamp >= now() - INTERVAL '1 hour'
GROUP BY SpanName ORDER BY p95 DESC
"""

P95_DUCKDB = """
SELECT SpanName, count(*) AS spans,
       approx_quantile(Duration, 0.5) AS p50,
       approx_quantile(Duration, 0.95) AS p95,
       avg(CASE WHEN StatusCode = 'Error' THEN 1.0 ELSE 0.0 END) AS error_rate
FROM {table}
WHERE Timestamp >= now() - INTERVAL '1 hour'
GROUP BY SpanName ORDER BY p95 DESC
"""

# SQLite has no percentile: rank within each name with a window function.
P95_SQLITE = """
WITH ranked AS (
  SELECT SpanName, Duration,
         percent_rank() OVER (PARTITION BY SpanName ORDER BY Duration) AS rank
  FROM otel_traces WHERE Timestamp >= ?
)
SELECT SpanName, count(*), min(CASE WHEN rank >= 0.95 THEN Duration END) AS p95
FROM ranked GROUP BY SpanName ORDER BY p95 DESC
"""


def timed(run, times=5):
    runs = []
    for _ in range(times):
        began = time.perf_counter()
        result = run()
        runs.append(time.perf_counter() - began)
    return statistics.median(runs), min(runs), result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dir", default="/tmp/spans-bench")
    parser.add_argument("--sqlite", action="store_true", help="also load and time SQLite (slow)")
    args = parser.parse_args()
    began = time.perf_counter()
    start_ns = build(args.rows, args.dir)
    print("built %d rows in %d Parquet files: %.1f s" % (args.rows, FILES, time.perf_counter() - began))
    size = sum(os.path.getsize(os.path.join(args.dir, f)) for f in os.listdir(args.dir))
    print("parquet size: %.0f MiB" % (size / 2**20))

    import datafusion

    config = datafusion.SessionConfig().set("datafusion.sql_parser.enable_ident_normalization", "false")
    context = datafusion.SessionContext(config)
    context.register_parquet("otel_traces", args.dir)
    median, best, result = timed(lambda: context.sql(P95_DATAFUSION).to_arrow_table())
    print("datafusion/parquet: median %.3f s, best %.3f s, %d groups" % (median, best, result.num_rows))

    import duckdb

    connection = duckdb.connect()
    files = os.path.join(args.dir, "*.parquet")
    connection.execute("CREATE VIEW pq AS SELECT * FROM read_parquet('%s')" % files)
    median, best, result = timed(lambda: connection.execute(P95_DUCKDB.format(table="pq")).fetchall())
    print("duckdb/parquet: median %.3f s, best %.3f s, %d groups" % (median, best, len(result)))
    loading = time.perf_counter()
    connection.execute("CREATE TABLE otel_traces AS SELECT * FROM pq")
    print("duckdb load: %.1f s" % (time.perf_counter() - loading))
    median, best, result = timed(
        lambda: connection.execute(P95_DUCKDB.format(table="otel_traces")).fetchall()
    )
    print("duckdb/table: median %.3f s, best %.3f s, %d groups" % (median, best, len(result)))

    if args.sqlite:
        database = sqlite3.connect(os.path.join(args.dir, "..", "spans-bench.sqlite"))
        database.execute(
            "CREATE TABLE IF NOT EXISTS otel_traces (Timestamp INTEGER, TraceId TEXT, SpanId TEXT,"
            " SpanName TEXT, ServiceName TEXT, Duration INTEGER, StatusCode TEXT)"
        )
        if database.execute("SELECT count(*) FROM otel_traces").fetchone()[0] == 0:
            loading = time.perf_counter()
            for f in sorted(os.listdir(args.dir)):
                table = pq.read_table(
                    os.path.join(args.dir, f),
                    columns=["Timestamp", "TraceId", "SpanId", "SpanName", "ServiceName", "Duration", "StatusCode"],
                )
                rows = zip(
                    table["Timestamp"].cast(pa.int64()).to_pylist(),
                    *(table[c].to_pylist() for c in table.column_names[1:]),
                )
                database.executemany("INSERT INTO otel_traces VALUES (?,?,?,?,?,?,?)", rows)
            database.execute(
                "CREATE INDEX IF NOT EXISTS by_name ON otel_traces (ServiceName, SpanName, Timestamp)"
            )
            database.commit()
            print("sqlite load: %.1f s" % (time.perf_counter() - loading))
        median, best, result = timed(
            lambda: database.execute(P95_SQLITE, (start_ns,)).fetchall(), times=1
        )
        print("sqlite: %.3f s, %d groups" % (median, len(result)))


if __name__ == "__main__":
    main()
