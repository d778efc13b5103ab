//! slack-gateway: the only door from Slack into flamethread.
//!
//! It will take Slack events (Socket Mode by default, signed HTTP Events as the alternative),
//! slash commands, button clicks and shared files, and publish each to JetStream before it
//! acknowledges Slack. Today it joins the bus, provisions the streams and reports its health; the
//! Slack side arrives with the Slack-edge issue.

use bus::NatsConfig;
use runtime::{AdminConfig, LogConfig, ServiceConfig, ServiceName};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub const SERVICE: ServiceName = ServiceName {
    name: "slack-gateway",
    env_prefix: "SLACK_GATEWAY_",
};

/// The configuration (see `deploy/config/slack-gateway.example.toml` for every key and its default).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub nats: NatsConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats: NatsConfig::default(),
            admin: AdminConfig::on_port(9101),
            log: LogConfig::default(),
        }
    }
}

impl ServiceConfig for Config {
    fn nats(&self) -> &NatsConfig {
        &self.nats
    }

    fn admin(&self) -> &AdminConfig {
        &self.admin
    }

    fn log(&self) -> &LogConfig {
        &self.log
    }
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), runtime::Error> {
    runtime::serve(SERVICE, &config, shutdown, |context| async move {
        context.shutdown.cancelled().await;
        Ok(())
    })
    .await
}
