//! slack-gateway: the only door from Slack into flamethread.
//!
//! It will take Slack events (Socket Mode by default, signed HTTP Events as the alternative),
//! slash commands, button clicks and shared files, and publish each to JetStream before it
//! acknowledges Slack. Today it joins the bus, provisions the streams and reports its health; the
//! Slack side arrives with the Slack-edge issue.

use runtime::ServiceName;
use tokio_util::sync::CancellationToken;

pub const SERVICE: ServiceName = ServiceName {
    name: "slack-gateway",
    env_prefix: "SLACK_GATEWAY_",
};

runtime::service_config! {
    /// The configuration (see `deploy/config/slack-gateway.example.toml` for every key and its default).
    pub struct Config, admin port 9101 {}
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), runtime::Error> {
    runtime::serve(SERVICE, &config, shutdown, |context| async move {
        context.shutdown.cancelled().await;
        Ok(())
    })
    .await
}
