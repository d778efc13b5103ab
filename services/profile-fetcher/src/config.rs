//! profile-fetcher's own configuration sections (`[prometheus]`, `[[queries]]`).

use std::time::Duration;

use serde::Deserialize;

/// `[prometheus]`: where metrics come from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusConfig {
    /// Prometheus's base URL, e.g. `http://prometheus:9090`. Empty (the default): the reply says
    /// that no Prometheus is configured.
    pub url: String,
    /// How long one query may take. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Largest answer read; more is an error, not memory. Default 8 MiB.
    pub max_response_bytes: usize,
    /// About how many points a window is split into (the query step). Default 120.
    pub points: u32,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            url: String::new(),
            timeout: Duration::from_secs(10),
            max_response_bytes: 8 << 20,
            points: 120,
        }
    }
}

impl runtime::ConfigSection for PrometheusConfig {
    fn validate(&self) -> Result<(), String> {
        let http = self.url.starts_with("http://") || self.url.starts_with("https://");
        if !(self.url.is_empty() || http) {
            return Err(format!(
                "prometheus.url: {:?} is not an http(s) URL",
                self.url
            ));
        }
        if self.timeout.is_zero() {
            return Err("prometheus.timeout: must be above 0".to_owned());
        }
        if self.points == 0 || self.points > 11_000 {
            return Err("prometheus.points: must be 1 to 11000 (Prometheus's limit)".to_owned());
        }
        Ok(())
    }
}

/// One metric to show for every incident: a PromQL template (see `metrics::template`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricQuery {
    /// A short name shown in the reply, e.g. `cpu`.
    pub name: String,
    /// PromQL with `{{ service }}`, `{{ alertname }}`, `{{ labels.<name> }}`, `{{ rate_interval }}`.
    pub query: String,
    /// Shown after the numbers, e.g. `cores`.
    #[serde(default)]
    pub unit: Option<String>,
}

/// `[[queries]]`: the metrics shown for every incident.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Queries(pub Vec<MetricQuery>);

impl Default for Queries {
    fn default() -> Self {
        let query = |name: &str, query: &str, unit: &str| MetricQuery {
            name: name.to_owned(),
            query: query.to_owned(),
            unit: Some(unit.to_owned()),
        };
        Queries(vec![
            query(
                "cpu",
                r#"sum(rate(process_cpu_seconds_total{job="{{ service }}"}[{{ rate_interval }}]))"#,
                "cores",
            ),
            query(
                "memory",
                r#"sum(process_resident_memory_bytes{job="{{ service }}"}) / 2^20"#,
                "MiB",
            ),
        ])
    }
}

impl runtime::ConfigSection for Queries {
    fn validate(&self) -> Result<(), String> {
        for (index, query) in self.0.iter().enumerate() {
            if query.name.trim().is_empty() {
                return Err(format!("queries[{index}].name: empty"));
            }
            crate::metrics::template::check(&query.query)
                .map_err(|err| format!("queries[{index}].query ({}): {err}", query.name))?;
        }
        Ok(())
    }
}
