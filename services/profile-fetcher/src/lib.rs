//! profile-fetcher: gathers evidence for incidents: metrics from Prometheus (the configured
//! queries over the incident window and its baseline, summarized) and the service's profile from
//! Pyroscope (top functions by self time, and what grew against the baseline). Flamegraph pages
//! (and the diff against the baseline) are drawn and served at permanent URLs. `/profile` and
//! "Profile now" ask for a profile of any app and window, or a live one from a pprof endpoint.
//!
//! - [`metrics`]: templates (pure), summaries (pure), the Prometheus client, and `gather`.
//! - [`profile`]: folded stacks, Pyroscope's flamegraph encoding, top functions, growth (pure).
//! - [`pyroscope`]: the client for both of Pyroscope's APIs.
//! - [`continuous`]: profile evidence for an incident, from Pyroscope.
//! - [`flamegraph`]: inferno's interactive and differential SVGs; [`pages`] serves them.
//! - [`live`]: a CPU profile taken now from an app's pprof endpoint.
//! - `fetcher`: the consumer of `incident.*`: an opened incident gets its evidence.
//! - [`changes`]: what changed before an incident (recorded changes, rollouts from
//!   kube-state-metrics), and the markers API that records changes.
//! - [`kubernetes`]: what the alert's workload is doing (kube-state-metrics and cAdvisor through
//!   Prometheus; events, logs and rollout history through the Kubernetes API).
//! - [`traces`]: the span intake (OTLP over HTTP, SpanEvent JSON), the span store it feeds and
//!   SQL over it.
//! - [`requests`]: the consumer of `profile.request` (`/profile`, "Profile now"): pickers,
//!   answers that list what exists, and profile evidence.
//! - [`home`]: its part of App Home, the apps it can profile (`slack.home_opened` → `post.home`).

pub mod changes;
mod config;
pub mod continuous;
mod fetcher;
pub mod home;
mod http_api;
pub mod kubernetes;
pub mod live;
pub mod metrics;
pub mod pages;
pub mod profile;

pub use profiling::flamegraph;
pub mod pyroscope;
pub mod requests;
pub mod traces;

use bus::{ConsumerOptions, Delivery};
use proto::{IncidentEvent, ProfileRequest};
use runtime::ServiceName;
use tokio_util::sync::CancellationToken;

pub use config::{
    ChangesConfig, KubernetesConfig, LiveConfig, MetricQuery, PagesConfig, PrometheusConfig,
    PyroscopeApi, PyroscopeConfig, Queries, Secret, TracesConfig,
};

pub const SERVICE: ServiceName = ServiceName {
    name: "profile-fetcher",
    env_prefix: "PROFILE_FETCHER_",
    about: "Gathers an incident's evidence (Prometheus metrics, Pyroscope or live profiles, changes, the Kubernetes workload, slow traces), draws it, and serves the flamegraph, chart and trace pages.",
};

runtime::service_config! {
    /// The configuration (see `deploy/config/profile-fetcher.example.toml` for every key and its default).
    pub struct Config, admin port 9103 {
        /// Where metrics come from (`[prometheus]`).
        pub prometheus: PrometheusConfig,
        /// The metrics shown for every incident (`[[queries]]`).
        pub queries: Queries,
        /// Where continuous profiles come from (`[pyroscope]`).
        pub pyroscope: PyroscopeConfig,
        /// Where the flamegraph pages are served (`[pages]`).
        pub pages: PagesConfig,
        /// Where live profiles are taken (`[live]`).
        pub live: LiveConfig,
        /// What changed before an alert, and the markers API (`[changes]`).
        pub changes: ChangesConfig,
        /// What the alert's Kubernetes workload is doing (`[kubernetes]`).
        pub kubernetes: KubernetesConfig,
        /// The span intake, the span store and SQL over it (`[traces]`).
        pub traces: TracesConfig,
    }
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), runtime::Error> {
    let service_config = config.clone();
    runtime::serve(SERVICE, &service_config, shutdown, |context| async move {
        let prometheus = if config.prometheus.url.is_empty() {
            None
        } else {
            Some(
                metrics::prometheus::Prometheus::new(
                    &config.prometheus.url,
                    config.prometheus.timeout,
                    config.prometheus.max_response_bytes,
                    &config.prometheus.auth,
                )
                ?,
            )
        };
        let pyroscope = if config.pyroscope.url.is_empty() {
            None
        } else {
            Some(pyroscope::Pyroscope::new(&config.pyroscope)?)
        };
        let query_limits = spans::QueryLimits {
            timeout: config.traces.query_timeout,
            max_rows: config.traces.max_rows,
            memory_bytes: config.traces.query_memory_bytes,
            ..spans::QueryLimits::default()
        };
        let mut tasks = runtime::Tasks::new(&context);
        let (queries, sampler) = match config.traces.listen {
            Some(listen) => {
                let queries =
                    traces::start_store(&config.traces, query_limits, &context, &mut tasks)?;
                let listener = tokio::net::TcpListener::bind(listen).await.map_err(|err| {
                    anyhow::anyhow!("cannot listen on {listen} for spans (traces.listen): {err}")
                })?;
                tracing::info!(addr = %listen, dir = %config.traces.dir.display(), "span intake listening");
                let sampler = std::sync::Arc::new(traces::sampling::Sampler::new(
                    config.traces.sample_rate,
                    config.traces.sample_rates.clone(),
                ));
                let router = traces::intake::router(
                    context.bus.clone(),
                    config.traces.intake_token.clone(),
                    config.traces.max_body_bytes,
                    sampler.clone(),
                );
                tasks.serve("the span intake", listener, router);
                let following = traces::sampling::follow_trace_all(
                    context.bus.clone(),
                    sampler.clone(),
                    context.shutdown.clone(),
                );
                tasks.spawn("following trace-all marks", async move {
                    following.await;
                    Ok(())
                });
                (queries, Some(sampler))
            }
            None => (None, None),
        };
        let fetcher = std::sync::Arc::new(fetcher::Fetcher {
            bus: context.bus.clone(),
            prometheus,
            pyroscope,
            pyroscope_config: config.pyroscope.clone(),
            live: live::LiveProfiler::new(&config.live)?,
            pages_url: config
                .pages
                .listen
                .map(|_| config.pages.public_url.trim_end_matches('/').to_owned()),
            prometheus_config: config.prometheus.clone(),
            queries: config.queries.0.clone(),
            changes: config.changes.clone(),
            kubernetes: config.kubernetes.clone(),
            kube: kubernetes::api::KubeApi::connect(&config.kubernetes)
                .await
                ?,
            spans: queries.clone(),
            span_intake: config.traces.listen.is_some(),
        });
        if let Some(listen) = config.pages.listen {
            let listener = tokio::net::TcpListener::bind(listen).await.map_err(|err| {
                anyhow::anyhow!("cannot listen on {listen} for the flamegraph pages: {err}")
            })?;
            tracing::info!(addr = %listen, url = %config.pages.public_url, "serving flamegraph pages");
            let router = pages::router(context.bus.clone())
                .merge(changes::api::router(
                    context.bus.clone(),
                    config.changes.api_token.clone(),
                ))
                .merge(traces::sql::router(
                    queries.clone(),
                    config.traces.sql_token.clone(),
                ))
                .merge(traces::waterfall::router(queries.clone()));
            tasks.serve("the pages server", listener, router);
        }
        tasks.consume(
            &proto::subjects::PROFILE_FETCHER_INCIDENTS,
            ConsumerOptions::default(),
            fetcher.clone(),
            |fetcher, delivery: Delivery<IncidentEvent>| async move {
                fetcher.on_incident(delivery.message).await
            },
        );
        tasks.consume(
            &proto::subjects::PROFILE_FETCHER_REQUESTS,
            ConsumerOptions::default(),
            fetcher.clone(),
            |fetcher, delivery: Delivery<ProfileRequest>| async move {
                fetcher.on_request(delivery.message).await
            },
        );
        tasks.consume(
            &proto::subjects::PROFILE_FETCHER_HOME,
            ConsumerOptions::default(),
            fetcher,
            |fetcher, delivery: Delivery<proto::HomeOpened>| async move {
                fetcher.on_home_opened(delivery.message).await
            },
        );
        let commands = std::sync::Arc::new(traces::commands::Commands {
            bus: context.bus.clone(),
            queries,
            sampler,
            slack_sql: config.traces.slack_sql,
        });
        tasks.consume(
            &proto::subjects::PROFILE_FETCHER_TRACES,
            ConsumerOptions::default(),
            commands,
            |commands, delivery: Delivery<proto::TracesCommand>| async move {
                commands.on_command(delivery.message).await
            },
        );
        tasks.run().await
    })
    .await
}
