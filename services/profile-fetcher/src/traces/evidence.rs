//! Which requests of the alert's service got slow or failing: p50, p95 and error rate by span
//! name in the incident window against the baseline before it, and the window's slowest span.
//!
//! The queries are SQL over `otel_traces`, written so that ClickHouse runs them too with one
//! function renamed: DataFusion's `approx_percentile_cont(Duration, q)` is ClickHouse's
//! `quantile(q)(Duration)` (both approximate; [`percentile`] is the one place that says which).
//! The service name comes from an alert's labels, so it reaches SQL only as an escaped literal:
//! quotes doubled, which is enough in DataFusion's dialect (a backslash is an ordinary character
//! there); ClickHouse also treats `\` as an escape, so a port to it must escape that too.

use chrono::{DateTime, SecondsFormat, Utc};
use proto::{
    Incident, SchemaVersion, TimeWindow, TracesEvidence,
    evidence::{EvidenceStatus, SlowSpan, SpanNameStats},
};
use spans::QueryLimits;

use super::Queries;

/// Span names shown in a reply.
pub const SHOWN: usize = 5;

/// `approx_percentile_cont(Duration, q)`; on ClickHouse, `quantile(q)(Duration)`.
fn percentile(q: f64) -> String {
    format!("approx_percentile_cont(Duration, {q})")
}

/// A string literal: quotes doubled, so no label can end it.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn time(at: DateTime<Utc>) -> String {
    literal(&at.to_rfc3339_opts(SecondsFormat::Nanos, true))
}

fn within(service: &str, window: TimeWindow) -> String {
    format!(
        "ServiceName = {} AND Timestamp >= {} AND Timestamp < {}",
        literal(service),
        time(window.from),
        time(window.to)
    )
}

/// Most span names compared.
const NAMES: usize = 200;

/// p50, p95 (ms) and error rate by span name for `service` in `window`, the slowest
/// [`NAMES`] names; with `names`, only those (the baseline of the names seen now, so that a name
/// is never "new" only because the baseline had many others).
pub fn by_span_name(service: &str, window: TimeWindow, names: Option<&[String]>) -> String {
    let only = match names {
        Some(names) if !names.is_empty() => format!(
            " AND SpanName IN ({})",
            names
                .iter()
                .map(|name| literal(name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => String::new(),
    };
    format!(
        "SELECT SpanName, count(*) AS spans, {p50} / 1e6 AS p50_ms, {p95} / 1e6 AS p95_ms, \
         avg(CASE WHEN StatusCode = 'Error' THEN 1.0 ELSE 0.0 END) AS error_rate \
         FROM otel_traces WHERE {where_}{only} GROUP BY SpanName ORDER BY p95_ms DESC LIMIT {NAMES}",
        p50 = percentile(0.5),
        p95 = percentile(0.95),
        where_ = within(service, window),
    )
}

/// The slowest span of `service` in `window`.
pub fn slowest(service: &str, window: TimeWindow) -> String {
    format!(
        "SELECT TraceId, SpanId, SpanName, Duration / 1e6 AS ms FROM otel_traces \
         WHERE {} ORDER BY Duration DESC LIMIT 1",
        within(service, window)
    )
}

/// Rows of [`by_span_name`] for now and the baseline, worst first: the p95 that grew the most
/// (a name new in the window counts as grown by its whole p95), then the error rate that grew.
pub fn rank(now: &[Vec<String>], baseline: &[Vec<String>]) -> Vec<SpanNameStats> {
    let number = |row: &Vec<String>, at: usize| -> f64 {
        row.get(at)
            .and_then(|cell| cell.parse().ok())
            .unwrap_or(0.0)
    };
    let mut stats: Vec<SpanNameStats> = now
        .iter()
        .filter(|row| row.len() == 5)
        .map(|row| {
            let before = baseline.iter().find(|other| other.first() == row.first());
            SpanNameStats {
                span_name: row[0].clone(),
                spans: number(row, 1) as u64,
                p50_ms: number(row, 2),
                p95_ms: number(row, 3),
                error_rate: number(row, 4),
                baseline_spans: before.map_or(0, |b| number(b, 1) as u64),
                baseline_p95_ms: before.map(|b| number(b, 3)),
                baseline_error_rate: before.map(|b| number(b, 4)),
            }
        })
        .collect();
    let grown = |stats: &SpanNameStats| {
        (
            stats.p95_ms - stats.baseline_p95_ms.unwrap_or(0.0),
            stats.error_rate - stats.baseline_error_rate.unwrap_or(0.0),
        )
    };
    stats.sort_by(|a, b| {
        let (a_slower, a_failing) = grown(a);
        let (b_slower, b_failing) = grown(b);
        b_slower
            .total_cmp(&a_slower)
            .then(b_failing.total_cmp(&a_failing))
    });
    stats.truncate(SHOWN);
    stats
}

/// For `incident` when its service's spans are taken in but cannot be queried here (a build
/// without the store): why there are no requests to show. `None` when the alert names no service.
pub fn unqueryable(incident: &Incident, evidence_id: String) -> Option<TracesEvidence> {
    let service = incident.alert.service.clone()?;
    let status = EvidenceStatus::NoData {
        detail: super::STORE_OFF.to_owned(),
    };
    Some(evidence(incident, service, evidence_id, status))
}

/// `incident`'s evidence about `service`, with no requests yet.
fn evidence(
    incident: &Incident,
    service: String,
    evidence_id: String,
    status: EvidenceStatus,
) -> TracesEvidence {
    TracesEvidence {
        schema_version: SchemaVersion::CURRENT,
        evidence_id,
        incident_id: incident.id.clone(),
        status,
        service,
        window: incident.window,
        baseline: incident.baseline,
        span_names: Vec::new(),
        slowest: None,
        collected_at: Utc::now(),
    }
}

/// The evidence for `incident`, or `None` when the alert names no service, its queries under
/// the configured limits; the slowest span links its waterfall page under `pages_url` when
/// pages are served.
pub async fn gather(
    queries: &Queries,
    incident: &Incident,
    evidence_id: String,
    pages_url: Option<&str>,
) -> Option<TracesEvidence> {
    let service = incident.alert.service.clone()?;
    let mut evidence = evidence(incident, service.clone(), evidence_id, EvidenceStatus::Ok);
    // Span names whole (4 KiB at most), so the baseline's `IN` list matches them.
    let limits = queries.limits();
    let limits = QueryLimits {
        max_cell_chars: limits.max_cell_chars.max(proto::span::MAX_TEXT_BYTES + 1),
        ..limits
    };
    let (now_query, slowest_query) = (
        by_span_name(&service, incident.window, None),
        slowest(&service, incident.window),
    );
    let (now, slow) = tokio::join!(
        queries.run_for_incident(&now_query, limits),
        queries.run_for_incident(&slowest_query, limits),
    );
    let before = match &now {
        Ok(now) if !now.rows.is_empty() => {
            let names: Vec<String> = now
                .rows
                .iter()
                .filter_map(|row| row.first().cloned())
                .collect();
            queries
                .run_for_incident(
                    &by_span_name(&service, incident.baseline, Some(&names)),
                    limits,
                )
                .await
        }
        _ => Ok(spans::Answer {
            columns: Vec::new(),
            rows: Vec::new(),
            truncated: false,
            elapsed_ms: 0,
        }),
    };
    match (now, before) {
        (Ok(now), Ok(before)) => {
            evidence.span_names = rank(&now.rows, &before.rows);
            if evidence.span_names.is_empty() {
                evidence.status = EvidenceStatus::NoData {
                    detail: format!("no spans of {service} in the incident window"),
                };
            }
        }
        (Err(err), _) | (_, Err(err)) => {
            evidence.status = EvidenceStatus::Failed {
                detail: format!("the span store: {err}"),
            };
        }
    }
    if let Ok(slow) = slow
        && let Some(row) = slow.rows.first()
        && row.len() == 4
    {
        evidence.slowest = Some(SlowSpan {
            trace_id: row[0].clone(),
            span_id: row[1].clone(),
            span_name: row[2].clone(),
            duration_ms: row[3].parse().unwrap_or(0.0),
            waterfall_url: pages_url.map(|base| proto::pages::trace(base, &row[0], &row[1])),
            span_profile_url: None,
            span_profile_note: None,
        });
    }
    evidence.collected_at = Utc::now();
    Some(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|cell| (*cell).to_owned()).collect()
    }

    #[test]
    fn a_label_cannot_end_the_literal() {
        let window = TimeWindow {
            from: DateTime::from_timestamp(1_764_750_000, 0).unwrap(),
            to: DateTime::from_timestamp(1_764_750_600, 0).unwrap(),
        };
        let sql = by_span_name("x' OR '1'='1", window, Some(&["a'b".to_owned()]));
        assert!(sql.contains("ServiceName = 'x'' OR ''1''=''1'"), "{sql}");
        assert!(sql.contains("AND SpanName IN ('a''b')"), "{sql}");
        assert!(
            sql.contains("Timestamp >= '2025-12-03T08:20:00.000000000Z'"),
            "{sql}"
        );
    }

    #[test]
    fn the_span_that_grew_the_most_comes_first() {
        let now = vec![
            row(&["GET /health", "100", "1", "2", "0"]),
            row(&["GET /cart", "50", "300", "812", "0.1"]),
            row(&["POST /pay", "20", "40", "90", "0.5"]),
        ];
        let before = vec![
            row(&["GET /health", "100", "1", "2", "0"]),
            row(&["GET /cart", "50", "60", "95", "0"]),
        ];
        let ranked = rank(&now, &before);
        let names: Vec<_> = ranked.iter().map(|s| s.span_name.as_str()).collect();
        assert_eq!(names, ["GET /cart", "POST /pay", "GET /health"]);
        assert_eq!(ranked[0].baseline_p95_ms, Some(95.0));
        assert_eq!(ranked[1].baseline_p95_ms, None, "new in the window");
    }
}
