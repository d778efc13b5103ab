//! Metrics evidence: the configured PromQL queries, filled from the incident's alert, run over
//! the incident window and the baseline before it, and summarized (now vs baseline, peak, trend).
//! Every query ends in a status: an error, a timeout or no data is said, never left silent.

pub mod prometheus;
pub mod summary;
pub mod template;

use std::time::Duration;

use chrono::Utc;
use pictures::chart::{Baseline, Panel};
use proto::{
    Incident, MetricsEvidence, SchemaVersion, TimeWindow,
    evidence::{EvidenceStatus, MetricPoint, MetricSummary, Trend},
};

use crate::config::{MetricQuery, PrometheusConfig};
use prometheus::{Prometheus, QueryError, Series};

/// Most series summarized per query (those with the highest peaks), so a query that forgot to
/// aggregate cannot flood the reply.
pub const MAX_SERIES_PER_QUERY: usize = 3;

/// Slices of the window each series is summarized into for Slack's chart block (its limit).
pub const MAX_POINTS: usize = 20;

/// Gathers metrics evidence for `incident` (`prometheus` is `None` when none is configured).
pub async fn gather(
    prometheus: Option<&Prometheus>,
    config: &PrometheusConfig,
    queries: &[MetricQuery],
    incident: &Incident,
    evidence_id: String,
) -> MetricsEvidence {
    gather_charted(prometheus, config, queries, incident, evidence_id)
        .await
        .0
}

/// [`gather`], and the series behind the summaries, to draw (`pictures::chart`).
pub async fn gather_charted(
    prometheus: Option<&Prometheus>,
    config: &PrometheusConfig,
    queries: &[MetricQuery],
    incident: &Incident,
    evidence_id: String,
) -> (MetricsEvidence, Vec<Panel>) {
    let mut evidence = MetricsEvidence {
        schema_version: SchemaVersion::CURRENT,
        evidence_id,
        incident_id: incident.id.clone(),
        status: EvidenceStatus::Ok,
        window: incident.window,
        baseline: incident.baseline,
        series: Vec::new(),
        chart: None,
        chart_url: None,
        chart_png: None,
        collected_at: Utc::now(),
    };
    let Some(prometheus) = prometheus else {
        evidence.status = EvidenceStatus::NoData {
            detail: "no Prometheus is configured (profile-fetcher's prometheus.url)".to_owned(),
        };
        return (evidence, Vec::new());
    };
    let step = step(incident.window, config.points);
    let rate_interval = (step * 4).max(Duration::from_secs(60));
    let lookups = queries.iter().map(|query| async move {
        summarize_query(prometheus, query, incident, step, rate_interval).await
    });
    let mut panels = Vec::new();
    for (summaries, drawn) in futures::future::join_all(lookups).await {
        evidence.series.extend(summaries);
        panels.extend(drawn);
    }
    evidence.status = overall(&evidence.series);
    evidence.collected_at = Utc::now();
    (evidence, panels)
}

/// The step that gives about `points` points over `window` (at least a second).
pub fn step(window: TimeWindow, points: u32) -> Duration {
    let seconds = (window.to - window.from).num_seconds().max(1) as u64;
    Duration::from_secs(seconds.div_ceil(u64::from(points.max(1))).max(1))
}

/// Asks Prometheus for `query` over the incident's window and its baseline, then summarizes.
async fn summarize_query(
    prometheus: &Prometheus,
    query: &MetricQuery,
    incident: &Incident,
    step: Duration,
    rate_interval: Duration,
) -> (Vec<MetricSummary>, Vec<Panel>) {
    let promql = match template::render(&query.query, &incident.alert, rate_interval) {
        Ok(promql) => promql,
        Err(err) => {
            return failed(
                query,
                query.query.clone(),
                EvidenceStatus::NoData {
                    detail: format!("{err}, which `{}` needs", query.name),
                },
            );
        }
    };
    let (current, baseline) = tokio::join!(
        prometheus.query_range(&promql, incident.window, step),
        prometheus.query_range(&promql, incident.baseline, step),
    );
    match current {
        // A baseline that fails only leaves the comparison out.
        Ok(current) => summarize(
            query,
            &promql,
            incident,
            current,
            baseline.unwrap_or_default(),
        ),
        Err(err) => failed(query, promql, status_of(&err)),
    }
}

/// One summary that says why `query` has no numbers.
fn failed(
    query: &MetricQuery,
    promql: String,
    status: EvidenceStatus,
) -> (Vec<MetricSummary>, Vec<Panel>) {
    let summary = vec![MetricSummary {
        name: query.name.clone(),
        query: promql,
        unit: query.unit.clone(),
        current: None,
        baseline: None,
        peak: None,
        trend: Trend::Unknown,
        status,
        points: Vec::new(),
    }];
    (summary, Vec::new())
}

/// What the answers to `promql` say (pure): a summary and a chart panel for each of the
/// [`MAX_SERIES_PER_QUERY`] highest series, compared with the same series in the baseline.
fn summarize(
    query: &MetricQuery,
    promql: &str,
    incident: &Incident,
    mut current: Vec<Series>,
    baseline: Vec<Series>,
) -> (Vec<MetricSummary>, Vec<Panel>) {
    if current.iter().all(|series| series.samples.is_empty()) {
        let about = incident
            .alert
            .service
            .as_deref()
            .map(|service| format!(" for `{service}`"))
            .unwrap_or_default();
        return failed(
            query,
            promql.to_owned(),
            EvidenceStatus::NoData {
                detail: format!(
                    "no data{about} in the {} before the alert (`{promql}`)",
                    span(incident.window)
                ),
            },
        );
    }
    current.sort_by(|a, b| peak(b).total_cmp(&peak(a)));
    let several = current.len() > 1;
    current
        .iter()
        .take(MAX_SERIES_PER_QUERY)
        .map(|series| {
            let before = baseline
                .iter()
                .find(|candidate| candidate.labels == series.labels)
                .map_or(&[][..], |series| series.samples.as_slice());
            let summary = summary::summarize(&series.samples, before);
            let name = if several {
                format!("{} {}", query.name, distinguishing(series, &current))
            } else {
                query.name.clone()
            };
            let panel = Panel {
                title: name.clone(),
                unit: query.unit.clone(),
                points: series
                    .samples
                    .iter()
                    .map(|&(at, value)| (at as i64, value))
                    .collect(),
                baseline: summary.baseline.map(|mean| {
                    let (low, high) = summary::band(before).unwrap_or((mean, mean));
                    Baseline { mean, low, high }
                }),
            };
            let points = summary::slices(
                &series.samples,
                incident.window.from.timestamp() as f64,
                incident.window.to.timestamp() as f64,
                MAX_POINTS,
            )
            .into_iter()
            .filter_map(|(at, value)| {
                Some(MetricPoint {
                    at: chrono::DateTime::from_timestamp(at as i64, 0)?,
                    value,
                })
            })
            .collect();
            let summary = MetricSummary {
                name,
                query: promql.to_owned(),
                unit: query.unit.clone(),
                current: summary.current,
                baseline: summary.baseline,
                peak: summary.peak,
                trend: summary.trend,
                status: EvidenceStatus::Ok,
                points,
            };
            (summary, panel)
        })
        .unzip()
}

fn peak(series: &Series) -> f64 {
    series
        .samples
        .iter()
        .map(|&(_, value)| value)
        .filter(|value| value.is_finite())
        .fold(f64::NEG_INFINITY, f64::max)
}

/// The labels that tell `series` apart from the others, as `{pod="a"}`.
fn distinguishing(series: &Series, all: &[Series]) -> String {
    let parts: Vec<String> = series
        .labels
        .iter()
        .filter(|(key, value)| {
            all.iter()
                .any(|other| other.labels.get(*key) != Some(*value))
        })
        .map(|(key, value)| format!("{key}=\"{value}\""))
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn status_of(err: &QueryError) -> EvidenceStatus {
    match err {
        QueryError::TimedOut(_) => EvidenceStatus::TimedOut {
            detail: err.to_string(),
        },
        _ => EvidenceStatus::Failed {
            detail: err.to_string(),
        },
    }
}

/// The evidence's status: ok when any query gave data; otherwise the first failure (a broken
/// source matters more than an empty one), else no data.
fn overall(series: &[MetricSummary]) -> EvidenceStatus {
    if series.is_empty() {
        return EvidenceStatus::NoData {
            detail: "no metric queries are configured ([[queries]])".to_owned(),
        };
    }
    if series
        .iter()
        .any(|series| series.status == EvidenceStatus::Ok)
    {
        return EvidenceStatus::Ok;
    }
    series
        .iter()
        .map(|series| &series.status)
        .find(|status| !matches!(status, EvidenceStatus::NoData { .. }))
        .or_else(|| series.first().map(|series| &series.status))
        .cloned()
        .unwrap_or_default()
}

/// `30m`, `1h 15m`: how long a window is, for people.
fn span(window: TimeWindow) -> String {
    let minutes = (window.to - window.from).num_minutes();
    match (minutes / 60, minutes % 60) {
        (0, 0) => format!("{}s", (window.to - window.from).num_seconds()),
        (0, minutes) => format!("{minutes}m"),
        (hours, 0) => format!("{hours}h"),
        (hours, minutes) => format!("{hours}h {minutes}m"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proto::IncidentChange;
    use test_support::fixtures;

    use super::*;

    fn series(pod: &str, values: &[f64]) -> Series {
        let start = fixtures::at(-900).timestamp() as f64;
        Series {
            labels: BTreeMap::from([("pod".to_owned(), pod.to_owned())]),
            samples: values
                .iter()
                .enumerate()
                .map(|(i, value)| (start + 60.0 * i as f64, *value))
                .collect(),
        }
    }

    /// The highest series comes first, each named by the label that tells it apart and
    /// compared with its own baseline; answers with no samples say so instead of numbers.
    #[test]
    fn answers_become_summaries_and_panels() {
        let incident = fixtures::incident_event("i1", "1.1", IncidentChange::Opened, 1).incident;
        let query = MetricQuery {
            name: "cpu".into(),
            query: "rate(cpu[5m])".into(),
            unit: Some("cores".into()),
        };
        let current = vec![series("a", &[0.1, 0.2]), series("b", &[1.0, 2.0])];
        let baseline = vec![series("b", &[0.5, 0.5])];
        let (summaries, panels) = summarize(&query, "q", &incident, current, baseline);
        let names: Vec<&str> = summaries.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["cpu {pod=\"b\"}", "cpu {pod=\"a\"}"]);
        assert_eq!(summaries[0].baseline, Some(0.5));
        assert_eq!(summaries[1].baseline, None, "no baseline series for a");
        assert_eq!(panels.len(), 2);
        assert_eq!(panels[0].title, summaries[0].name);

        let empty = vec![Series {
            labels: BTreeMap::new(),
            samples: Vec::new(),
        }];
        let (summaries, panels) = summarize(&query, "q", &incident, empty, Vec::new());
        assert!(panels.is_empty());
        let EvidenceStatus::NoData { detail } = &summaries[0].status else {
            panic!("{:?}", summaries[0].status)
        };
        assert!(detail.starts_with("no data for `svc-i1`"), "{detail}");
    }
}
