//! profile-fetcher: gathers evidence for incidents and requests. Today: metrics from Prometheus
//! (the configured queries over the incident window and its baseline, summarized). Profiles from
//! Pyroscope or a live pprof endpoint, and the flamegraphs, are the rest of its issue.
//!
//! - [`metrics`]: templates (pure), summaries (pure), the Prometheus client, and `gather`.
//! - `fetcher`: the consumer of `incident.*`: an opened incident gets its evidence.

mod config;
mod fetcher;
pub mod metrics;

use bus::{ConsumerOptions, Delivery};
use proto::IncidentEvent;
use runtime::ServiceName;
use tokio_util::sync::CancellationToken;

pub use config::{MetricQuery, PrometheusConfig, Queries};

pub const SERVICE: ServiceName = ServiceName {
    name: "profile-fetcher",
    env_prefix: "PROFILE_FETCHER_",
};

runtime::service_config! {
    /// The configuration (see `deploy/config/profile-fetcher.example.toml` for every key and its default).
    pub struct Config, admin port 9103 {
        /// Where metrics come from (`[prometheus]`).
        pub prometheus: PrometheusConfig,
        /// The metrics shown for every incident (`[[queries]]`).
        pub queries: Queries,
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
                )
                .map_err(anyhow::Error::msg)?,
            )
        };
        let fetcher = std::sync::Arc::new(fetcher::Fetcher {
            bus: context.bus.clone(),
            prometheus,
            prometheus_config: config.prometheus.clone(),
            queries: config.queries.0.clone(),
        });
        bus::consumer::run(
            context.bus.clone(),
            proto::subjects::consumer("profile-fetcher-incidents"),
            ConsumerOptions::default(),
            context.shutdown.clone(),
            move |delivery: Delivery<IncidentEvent>| {
                let fetcher = fetcher.clone();
                async move { fetcher.on_incident(delivery.message).await }
            },
        )
        .await?;
        Ok(())
    })
    .await
}
