//! Prometheus's HTTP API (`/api/v1/query_range`): sample values arrive as strings and timestamps
//! as float seconds; errors are `{"status":"error","errorType":…,"error":…}` with 400, 422 or
//! 503. A slow server is cut at the timeout and a huge answer at `max_response_bytes`, so a lying
//! upstream costs bounded time and memory.

use runtime::body::{ExchangeError, exchange};
use std::{collections::BTreeMap, time::Duration};

use proto::TimeWindow;
use serde::Deserialize;

use super::summary::Sample;

/// One series of a range query.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

/// Why a query gave no series.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("Prometheus refused the query ({kind}): {message}")]
    Refused { kind: String, message: String },
    #[error("Prometheus did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("cannot reach Prometheus: {0}")]
    Unreachable(String),
    #[error("Prometheus answered something that is not its API: {0}")]
    Malformed(String),
    #[error("Prometheus's answer is over {0} bytes")]
    TooLarge(usize),
}

/// A Prometheus server.
#[derive(Debug, Clone)]
pub struct Prometheus {
    client: reqwest::Client,
    base_url: String,
    timeout: Duration,
    max_response_bytes: usize,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<RawSeries>,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
    #[serde(default)]
    value: Option<(f64, String)>,
}

/// One series of an instant query: its labels and its value at that instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Instant {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Prometheus {
    pub fn new(
        base_url: &str,
        timeout: Duration,
        max_response_bytes: usize,
        auth: &runtime::auth::ServerAuth,
    ) -> Result<Self, runtime::auth::AuthError> {
        Ok(Prometheus {
            client: auth.client(Some(timeout))?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            timeout,
            max_response_bytes,
        })
    }

    /// Runs `query` over `window` at `step`.
    pub async fn query_range(
        &self,
        query: &str,
        window: TimeWindow,
        step: Duration,
    ) -> Result<Vec<Series>, QueryError> {
        let params = [
            ("query", query.to_owned()),
            ("start", seconds(aligned_start(window, step))),
            ("end", seconds(window.to)),
            ("step", format!("{}s", step.as_secs().max(1))),
        ];
        let (status, body) = self.post("query_range", &params).await?;
        parse(status, &body)
    }

    /// Runs `query` at the instant `at` (`/api/v1/query`).
    pub async fn query(
        &self,
        query: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Instant>, QueryError> {
        let params = [("query", query.to_owned()), ("time", seconds(at))];
        let (status, body) = self.post("query", &params).await?;
        parse_instant(status, &body)
    }

    /// POSTs a form to `/api/v1/<endpoint>`, bounded in time and size.
    async fn post(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
    ) -> Result<(reqwest::StatusCode, Vec<u8>), QueryError> {
        let request = self
            .client
            .post(format!("{}/api/v1/{endpoint}", self.base_url))
            .form(params);
        exchange(request, self.max_response_bytes, self.timeout)
            .await
            .map_err(|err| match err {
                ExchangeError::TimedOut(after) => QueryError::TimedOut(after),
                ExchangeError::TooLarge(cap) => QueryError::TooLarge(cap),
                ExchangeError::Unreachable(why) => QueryError::Unreachable(why),
            })
    }
}

/// The window's start moved forward to a whole number of steps before its end, so that the last
/// point Prometheus evaluates is the window's end — the moment the incident was looked at —
/// rather than up to a step before it, where a short burst would not show yet.
pub fn aligned_start(window: TimeWindow, step: Duration) -> chrono::DateTime<chrono::Utc> {
    let step_seconds = step.as_secs().max(1) as i64;
    let steps = (window.to - window.from).num_seconds().max(0) / step_seconds;
    window.to - chrono::Duration::seconds(steps * step_seconds)
}

fn seconds(time: chrono::DateTime<chrono::Utc>) -> String {
    format!("{:.3}", time.timestamp_millis() as f64 / 1000.0)
}

/// Reads a `query_range` answer.
fn parse(status: reqwest::StatusCode, body: &[u8]) -> Result<Vec<Series>, QueryError> {
    let data = data(status, body)?;
    if data.result_type != "matrix" {
        return Err(QueryError::Malformed(format!(
            "a range query answered with a {}",
            data.result_type
        )));
    }
    Ok(data
        .result
        .into_iter()
        .map(|series| Series {
            labels: series.metric,
            samples: series
                .values
                .into_iter()
                .map(|(time, value)| (time, value.parse::<f64>().unwrap_or(f64::NAN)))
                .collect(),
        })
        .collect())
}

/// Reads a `query` answer (an instant vector).
fn parse_instant(status: reqwest::StatusCode, body: &[u8]) -> Result<Vec<Instant>, QueryError> {
    let data = data(status, body)?;
    if data.result_type != "vector" {
        return Err(QueryError::Malformed(format!(
            "an instant query answered with a {}",
            data.result_type
        )));
    }
    Ok(data
        .result
        .into_iter()
        .filter_map(|series| {
            let (_, value) = series.value?;
            Some(Instant {
                labels: series.metric,
                value: value.parse::<f64>().unwrap_or(f64::NAN),
            })
        })
        .collect())
}

/// The `data` of a successful answer, or what Prometheus said went wrong.
fn data(status: reqwest::StatusCode, body: &[u8]) -> Result<Data, QueryError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|err| {
        let start = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
        QueryError::Malformed(format!("HTTP {status}, {err}: {start:?}"))
    })?;
    if envelope.status != "success" {
        return Err(QueryError::Refused {
            kind: envelope.error_type.unwrap_or_else(|| status.to_string()),
            message: envelope.error.unwrap_or_default(),
        });
    }
    envelope
        .data
        .ok_or_else(|| QueryError::Malformed("a success without data".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_point_is_the_windows_end() {
        let to = chrono::DateTime::from_timestamp(1_700_000_907, 0).unwrap();
        let window = TimeWindow {
            from: to - chrono::Duration::seconds(907),
            to,
        };
        let start = aligned_start(window, Duration::from_secs(8));
        assert_eq!((to - start).num_seconds(), 904, "113 whole steps of 8 s");
        assert!(start >= window.from, "never before the window");
        let tiny = TimeWindow {
            from: to - chrono::Duration::seconds(3),
            to,
        };
        assert_eq!(aligned_start(tiny, Duration::from_secs(8)), to);
    }

    #[test]
    fn reads_matrices_errors_and_lies() {
        let ok = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"checkout"},"values":[[1700000000,"0.5"],[1700000015.5,"NaN"]]}]},"warnings":["x"]}"#;
        let series = parse(reqwest::StatusCode::OK, ok).unwrap();
        assert_eq!(series[0].labels["job"], "checkout");
        assert_eq!(series[0].samples[0], (1_700_000_000.0, 0.5));
        assert!(series[0].samples[1].1.is_nan());

        let refused =
            br#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            parse(reqwest::StatusCode::BAD_REQUEST, refused).unwrap_err(),
            QueryError::Refused {
                kind: "bad_data".into(),
                message: "parse error at char 5".into()
            }
        );
        let html = b"<html>502 Bad Gateway</html>";
        assert!(matches!(
            parse(reqwest::StatusCode::BAD_GATEWAY, html),
            Err(QueryError::Malformed(detail)) if detail.contains("502")
        ));
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(matches!(
            parse(reqwest::StatusCode::OK, vector),
            Err(QueryError::Malformed(_))
        ));
    }
}
