//! profile-fetcher: gathers evidence for incidents and requests: metrics from Prometheus,
//! profiles from Pyroscope or a live pprof endpoint, rendered as shareable flamegraphs. Today it
//! joins the bus, provisions the streams and reports its health; the evidence arrives with the
//! profile-fetcher issue.

use runtime::ServiceName;
use tokio_util::sync::CancellationToken;

pub const SERVICE: ServiceName = ServiceName {
    name: "profile-fetcher",
    env_prefix: "PROFILE_FETCHER_",
};

runtime::service_config! {
    /// The configuration (see `deploy/config/profile-fetcher.example.toml` for every key and its default).
    pub struct Config, admin port 9103 {}
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), runtime::Error> {
    runtime::serve(SERVICE, &config, shutdown, |context| async move {
        context.shutdown.cancelled().await;
        Ok(())
    })
    .await
}
