//! remediation-poster: the only service that speaks to Slack's Web API. It turns incidents,
//! evidence and sandbox results into one threaded reply per alert, updated in place. Today it joins
//! the bus, provisions the streams and reports its health; the replies arrive with the Slack-edge
//! and diagnosis issues.

use bus::NatsConfig;
use runtime::{AdminConfig, LogConfig, ServiceConfig, ServiceName};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub const SERVICE: ServiceName = ServiceName {
    name: "remediation-poster",
    env_prefix: "REMEDIATION_POSTER_",
};

/// The configuration (see `deploy/config/remediation-poster.example.toml` for every key and its default).
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
            admin: AdminConfig::on_port(9105),
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
