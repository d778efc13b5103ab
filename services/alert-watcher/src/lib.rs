//! alert-watcher: decides which Slack messages are alerts, what they concern and whether they
//! are new, and turns them into incidents (`incident.opened/updated/resolved`, state in the
//! incident KV bucket). It also turns commands and clicks into requests, since it holds the
//! Alertmanager credentials a silence needs. Today it joins the bus, provisions the streams and
//! reports its health; recognition and correlation arrive with the alert-watcher issue.

pub mod recognize;

use runtime::ServiceName;
use tokio_util::sync::CancellationToken;

pub const SERVICE: ServiceName = ServiceName {
    name: "alert-watcher",
    env_prefix: "ALERT_WATCHER_",
};

runtime::service_config! {
    /// The configuration (see `deploy/config/alert-watcher.example.toml` for every key and its default).
    pub struct Config, admin port 9102 {}
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), runtime::Error> {
    runtime::serve(SERVICE, &config, shutdown, |context| async move {
        context.shutdown.cancelled().await;
        Ok(())
    })
    .await
}
