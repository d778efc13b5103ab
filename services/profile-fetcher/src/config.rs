//! profile-fetcher's own configuration sections (`[prometheus]`, `[[queries]]`, `[pyroscope]`,
//! `[pages]`).

use std::time::Duration;

use serde::Deserialize;

/// `[prometheus]`: where metrics come from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
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
    /// Credentials, tenant headers and a private CA for Prometheus's API (`[prometheus.auth]`:
    /// Grafana Cloud, Mimir, Cortex, a Prometheus with a web.config.file).
    pub auth: runtime::auth::ServerAuth,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            url: String::new(),
            timeout: Duration::from_secs(10),
            max_response_bytes: 8 << 20,
            points: 120,
            auth: runtime::auth::ServerAuth::default(),
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
        self.auth.validate("prometheus.auth")
    }
}

/// One metric to show for every incident: a PromQL template (see `metrics::template`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
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

pub use secret::Secret;

/// Which of Pyroscope's query APIs to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PyroscopeApi {
    /// `querier.v1.QuerierService` (Grafana Pyroscope 1.x).
    Connect,
    /// `/pyroscope/render` flamebearer JSON.
    Render,
}

/// `[pyroscope]`: where continuous profiles come from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PyroscopeConfig {
    /// Pyroscope's base URL, e.g. `http://pyroscope:4040`. Empty (the default): replies say that
    /// no profiler is configured.
    pub url: String,
    /// `connect` (default) or `render`.
    pub api: PyroscopeApi,
    /// Sent as `X-Scope-OrgID` when set (multi-tenant Pyroscope).
    pub tenant: String,
    /// Basic auth, when set.
    pub user: String,
    pub password: Secret,
    /// A bearer token (Grafana Cloud), instead of basic auth.
    pub bearer_token: Secret,
    /// The label that names the app. Default `service_name`.
    pub app_label: String,
    /// The profile type of incidents. Default `process_cpu:cpu:nanoseconds:cpu:nanoseconds`.
    pub profile_type: String,
    /// How long one call may take. Default `15s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Largest flamegraph asked for (nodes). Default 65536.
    pub max_nodes: u32,
    /// Largest answer read; more is an error, not memory. Default 64 MiB.
    pub max_response_bytes: usize,
    /// How many functions the reply lists (top by self time, and grown most). Default 10.
    pub top: usize,
}

impl Default for PyroscopeConfig {
    fn default() -> Self {
        PyroscopeConfig {
            url: String::new(),
            api: PyroscopeApi::Connect,
            tenant: String::new(),
            user: String::new(),
            password: Secret::default(),
            bearer_token: Secret::default(),
            app_label: "service_name".to_owned(),
            profile_type: "process_cpu:cpu:nanoseconds:cpu:nanoseconds".to_owned(),
            timeout: Duration::from_secs(15),
            max_nodes: 65_536,
            max_response_bytes: 64 << 20,
            top: 10,
        }
    }
}

impl runtime::ConfigSection for PyroscopeConfig {
    fn validate(&self) -> Result<(), String> {
        let http = self.url.starts_with("http://") || self.url.starts_with("https://");
        if !(self.url.is_empty() || http) {
            return Err(format!(
                "pyroscope.url: {:?} is not an http(s) URL",
                self.url
            ));
        }
        if self.timeout.is_zero() {
            return Err("pyroscope.timeout: must be above 0".to_owned());
        }
        if self.app_label.trim().is_empty() {
            return Err("pyroscope.app_label: empty".to_owned());
        }
        if self.profile_type.split(':').count() != 5 {
            return Err(format!(
                "pyroscope.profile_type: {:?} is not a Pyroscope profile type ID (name:sample_type:sample_unit:period_type:period_unit)",
                self.profile_type
            ));
        }
        if self.top == 0 {
            return Err("pyroscope.top: must be above 0".to_owned());
        }
        Ok(())
    }
}

/// `[pages]`: where the flamegraph pages are served, and the URL people open them at.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagesConfig {
    /// Where to serve `/flamegraphs/<id>`, e.g. `0.0.0.0:9190`. Default none: no flamegraphs
    /// are drawn and replies carry no links.
    pub listen: Option<std::net::SocketAddr>,
    /// The base URL of those pages as people reach them (an ingress, a load balancer).
    /// Default `http://127.0.0.1:9190`.
    pub public_url: String,
}

impl Default for PagesConfig {
    fn default() -> Self {
        PagesConfig {
            listen: None,
            public_url: "http://127.0.0.1:9190".to_owned(),
        }
    }
}

impl runtime::ConfigSection for PagesConfig {
    fn validate(&self) -> Result<(), String> {
        let http =
            self.public_url.starts_with("http://") || self.public_url.starts_with("https://");
        if !http {
            return Err(format!(
                "pages.public_url: {:?} is not an http(s) URL",
                self.public_url
            ));
        }
        Ok(())
    }
}

/// `[live]`: where to take a profile now, from a Go-style pprof endpoint
/// (`/debug/pprof/profile?seconds=N`, as Go's `net/http/pprof` and every flamethread service
/// serve it), for "Profile now" and `/profile <app> now`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// App → base URL of its pprof endpoint, e.g. `checkout = "http://checkout:6060"`.
    /// `/debug/pprof/profile` is added unless the URL already ends in a path to it.
    pub targets: std::collections::BTreeMap<String, String>,
    /// For apps not in `targets`: a base URL with `{app}` in it, e.g. `http://{app}.prod:6060`.
    /// Only app names that are DNS names fill it, so a Slack user cannot point it elsewhere.
    /// Default empty: only `targets`.
    pub url_template: String,
    /// Seconds profiled when none are asked for. Default 10.
    pub default_seconds: u32,
    /// Most seconds one profile may take. Default 60.
    pub max_seconds: u32,
    /// Time allowed past the profiled seconds for the answer. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub timeout_margin: Duration,
    /// Largest profile read (compressed, and again uncompressed). Default 64 MiB.
    pub max_response_bytes: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            targets: std::collections::BTreeMap::new(),
            url_template: String::new(),
            default_seconds: 10,
            max_seconds: 60,
            timeout_margin: Duration::from_secs(10),
            max_response_bytes: 64 << 20,
        }
    }
}

impl runtime::ConfigSection for LiveConfig {
    fn validate(&self) -> Result<(), String> {
        let http = |url: &str| url.starts_with("http://") || url.starts_with("https://");
        for (app, url) in &self.targets {
            if !http(url) {
                return Err(format!("live.targets.{app}: {url:?} is not an http(s) URL"));
            }
        }
        let template_ok = http(&self.url_template) && self.url_template.contains("{app}");
        if !(self.url_template.is_empty() || template_ok) {
            return Err(format!(
                "live.url_template: {:?} is not an http(s) URL with {{app}} in it",
                self.url_template
            ));
        }
        if self.default_seconds == 0 || self.default_seconds > self.max_seconds {
            return Err(format!(
                "live.default_seconds: must be from 1 to live.max_seconds ({})",
                self.max_seconds
            ));
        }
        Ok(())
    }
}

/// `[changes]`: what changed before an alert, and the markers API that records changes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChangesConfig {
    /// The bearer token `POST`/`GET /api/v1/changes` require (on the pages listener). Empty
    /// (the default): the API answers 503 saying it is not configured. At least 16 characters.
    pub api_token: Secret,
    /// How long before the alert's start changes are looked for. Default `2h`.
    #[serde(with = "humantime_serde")]
    pub lookback: Duration,
    /// Most changes listed in a reply. Default 10.
    pub max_shown: usize,
    /// Also read rollouts (new ReplicaSets of the alert's deployment) from kube-state-metrics
    /// through `[prometheus]`: no cluster credentials needed. Default true.
    pub kube_state_metrics: bool,
}

impl Default for ChangesConfig {
    fn default() -> Self {
        ChangesConfig {
            api_token: Secret::default(),
            lookback: Duration::from_secs(2 * 3600),
            max_shown: 10,
            kube_state_metrics: true,
        }
    }
}

impl runtime::ConfigSection for ChangesConfig {
    fn validate(&self) -> Result<(), String> {
        let token = self.api_token.expose();
        if !token.is_empty() && token.chars().count() < 16 {
            return Err("changes.api_token: at least 16 characters".to_owned());
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("changes.api_token: no spaces or control characters".to_owned());
        }
        if self.lookback.is_zero() || self.lookback > Duration::from_secs(24 * 3600) {
            return Err("changes.lookback: from 1s to 24h".to_owned());
        }
        if self.max_shown == 0 || self.max_shown > 50 {
            return Err("changes.max_shown: 1 to 50".to_owned());
        }
        Ok(())
    }
}

/// `[kubernetes]`: what the alert's workload is doing, through kube-state-metrics and cAdvisor
/// series in `[prometheus]`, and (with `api`) the Kubernetes API's events, logs and rollout
/// history, read-only.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// Read kube-state-metrics and cAdvisor series through Prometheus. Default true.
    pub metrics: bool,
    /// The Kubernetes API: empty (the default) for none, `in-cluster` for the pod's own service
    /// account, or the API server's http(s) URL (with `token_file`, and `ca_file` for https).
    pub api: String,
    /// A file holding the bearer token for `api` as a URL, re-read about once a minute (kube-rs
    /// does), so a projected token that rotates keeps working.
    pub token_file: Option<std::path::PathBuf>,
    /// The CA bundle that signs the API server's certificate, for `api` as an https URL.
    pub ca_file: Option<std::path::PathBuf>,
    /// How long one API call may take. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Lines of a crashing container's log shown. Default 20.
    pub log_lines: u32,
    /// Most bytes of log read. Default 8 KiB.
    pub max_log_bytes: u32,
    /// Most events shown. Default 8.
    pub max_events: usize,
    /// Alert labels that name the namespace, pod, deployment and container, tried in order.
    pub namespace_labels: Vec<String>,
    pub pod_labels: Vec<String>,
    pub deployment_labels: Vec<String>,
    pub container_labels: Vec<String>,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        let labels = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect();
        KubernetesConfig {
            metrics: true,
            api: String::new(),
            token_file: None,
            ca_file: None,
            timeout: Duration::from_secs(5),
            log_lines: 20,
            max_log_bytes: 8 * 1024,
            max_events: 8,
            namespace_labels: labels(&["namespace", "kubernetes_namespace", "exported_namespace"]),
            pod_labels: labels(&["pod", "kubernetes_pod_name", "exported_pod"]),
            deployment_labels: labels(&["deployment", "kubernetes_deployment"]),
            container_labels: labels(&["container", "exported_container"]),
        }
    }
}

impl runtime::ConfigSection for KubernetesConfig {
    fn validate(&self) -> Result<(), String> {
        let url = self.api.starts_with("http://") || self.api.starts_with("https://");
        if !(self.api.is_empty() || self.api == "in-cluster" || url) {
            return Err(format!(
                "kubernetes.api: {:?} is not empty, \"in-cluster\" or an http(s) URL",
                self.api
            ));
        }
        if self.timeout.is_zero() {
            return Err("kubernetes.timeout: must be above 0".to_owned());
        }
        if self.log_lines == 0 || self.log_lines > 200 {
            return Err("kubernetes.log_lines: 1 to 200".to_owned());
        }
        if self.max_log_bytes < 256 || self.max_log_bytes > 64 * 1024 {
            return Err("kubernetes.max_log_bytes: 256 to 65536".to_owned());
        }
        if self.max_events == 0 || self.max_events > 50 {
            return Err("kubernetes.max_events: 1 to 50".to_owned());
        }
        Ok(())
    }
}

/// `[traces]`: the span intake (OTLP over HTTP, SpanEvent JSON), the span store and its SQL.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConfig {
    /// Where the intake listens (`POST /v1/traces`, `POST /api/v1/spans`); OpenTelemetry's
    /// exporters send to port 4318 by default. Unset (the default): no intake, no store.
    pub listen: Option<std::net::SocketAddr>,
    /// A bearer token the intake requires. Empty (the default): anyone who reaches `listen` may
    /// send spans, as with an OpenTelemetry collector; keep `listen` private then.
    pub intake_token: Secret,
    /// The bearer token `POST /api/v1/sql` (on the pages listener) and `flamethread-sql` need.
    /// Empty (the default): SQL over HTTP answers 503. At least 16 characters.
    pub sql_token: Secret,
    /// The span store's directory (Parquet files). Default `/var/lib/flamethread/spans`.
    pub dir: std::path::PathBuf,
    /// How long spans are kept. Default `7d`.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Most bytes of span files kept; the oldest go first. Default 10 GiB.
    pub max_bytes: u64,
    /// Spans are written to a file at least this often (they are queryable before). Default `1m`.
    #[serde(with = "humantime_serde")]
    pub flush_every: Duration,
    /// …or once this many are waiting. Default 200000.
    pub flush_rows: usize,
    /// Largest request body the intake reads (after gzip). Default 8 MiB.
    pub max_body_bytes: usize,
    /// How long one SQL query may run. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub query_timeout: Duration,
    /// Most rows one answer holds; more are cut and said. Default 1000.
    pub max_rows: usize,
    /// Most memory one query may use. Default 512 MiB.
    pub query_memory_bytes: usize,
    /// The share of traces the intake keeps, from 0 to 1, decided by trace id so that every
    /// service keeps or drops the same traces. Default 1 (all): one machine's store holds
    /// far more than most teams send, and a sampled-away slow request is missing evidence.
    pub sample_rate: f64,
    /// Rates for named services (`ServiceName`), over `sample_rate`.
    pub sample_rates: std::collections::BTreeMap<String, f64>,
    /// Whether `/flamethread sql` answers in Slack (to the asker only). Default true; turn it off
    /// when spans carry what not everyone in the workspace may read.
    pub slack_sql: bool,
}

impl Default for TracesConfig {
    fn default() -> Self {
        TracesConfig {
            listen: None,
            intake_token: Secret::default(),
            sql_token: Secret::default(),
            dir: "/var/lib/flamethread/spans".into(),
            retention: Duration::from_secs(7 * 24 * 3600),
            max_bytes: 10 << 30,
            flush_every: Duration::from_secs(60),
            flush_rows: 200_000,
            max_body_bytes: 8 << 20,
            query_timeout: Duration::from_secs(10),
            max_rows: 1000,
            query_memory_bytes: 512 << 20,
            sample_rate: 1.0,
            sample_rates: std::collections::BTreeMap::new(),
            slack_sql: true,
        }
    }
}

impl runtime::ConfigSection for TracesConfig {
    fn validate(&self) -> Result<(), String> {
        for (key, token) in [
            ("traces.intake_token", &self.intake_token),
            ("traces.sql_token", &self.sql_token),
        ] {
            let token = token.expose();
            if !token.is_empty() && token.chars().count() < 16 {
                return Err(format!("{key}: at least 16 characters"));
            }
            if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("{key}: no spaces or control characters"));
            }
        }
        for (key, rate) in std::iter::once(("traces.sample_rate".to_owned(), self.sample_rate))
            .chain(
                self.sample_rates
                    .iter()
                    .map(|(service, rate)| (format!("traces.sample_rates.{service}"), *rate)),
            )
        {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{key}: from 0 to 1 (0.01 keeps 1% of traces)"));
            }
        }
        if self.dir.as_os_str().is_empty() {
            return Err("traces.dir: a directory for the span store".to_owned());
        }
        if self.retention < Duration::from_secs(60) {
            return Err("traces.retention: at least 1m".to_owned());
        }
        if self.flush_every.is_zero() || self.flush_every > Duration::from_secs(3600) {
            return Err("traces.flush_every: from 1s to 1h".to_owned());
        }
        if self.flush_rows == 0 || self.max_rows == 0 || self.max_rows > 100_000 {
            return Err(
                "traces.flush_rows and traces.max_rows: at least 1 (max_rows at most 100000)"
                    .to_owned(),
            );
        }
        if self.max_body_bytes < 1024 || self.max_body_bytes > 64 << 20 {
            return Err("traces.max_body_bytes: from 1 KiB to 64 MiB".to_owned());
        }
        if self.query_timeout.is_zero() || self.query_timeout > Duration::from_secs(300) {
            return Err("traces.query_timeout: from 1ms to 5m".to_owned());
        }
        if self.query_memory_bytes < 1 << 20 {
            return Err("traces.query_memory_bytes: at least 1 MiB".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use runtime::ConfigSection as _;

    use super::*;

    #[test]
    fn sample_rates_outside_zero_to_one_are_refused_by_name() {
        let mut traces = TracesConfig {
            sample_rate: 0.01,
            sample_rates: [("checkout".to_owned(), 0.0)].into_iter().collect(),
            ..TracesConfig::default()
        };
        assert_eq!(traces.validate(), Ok(()));
        traces.sample_rate = 1.5;
        assert!(
            traces
                .validate()
                .unwrap_err()
                .starts_with("traces.sample_rate:"),
            "{:?}",
            traces.validate()
        );
        traces.sample_rate = 1.0;
        traces.sample_rates.insert("cart".to_owned(), -0.1);
        assert!(
            traces
                .validate()
                .unwrap_err()
                .starts_with("traces.sample_rates.cart:"),
            "{:?}",
            traces.validate()
        );
        traces.sample_rates.insert("cart".to_owned(), f64::NAN);
        assert!(traces.validate().is_err(), "NaN is not a rate");
    }
}
