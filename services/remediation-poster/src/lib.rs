//! remediation-poster: the only service that speaks to Slack's Web API. It turns incidents,
//! evidence and sandbox results into one threaded reply per alert, updated in place. Today it joins
//! the bus, provisions the streams and reports its health; the replies arrive with the Slack-edge
//! and diagnosis issues.

use runtime::ServiceName;
use tokio_util::sync::CancellationToken;

pub const SERVICE: ServiceName = ServiceName {
    name: "remediation-poster",
    env_prefix: "REMEDIATION_POSTER_",
};

runtime::service_config! {
    /// The configuration (see `deploy/config/remediation-poster.example.toml` for every key and its default).
    pub struct Config, admin port 9105 {}
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), runtime::Error> {
    runtime::serve(SERVICE, &config, shutdown, |context| async move {
        context.shutdown.cancelled().await;
        Ok(())
    })
    .await
}
