//! alert-watcher: decides which Slack messages are alerts, what they concern and whether they
//! are new, and turns them into incidents (`incident.opened/updated/resolved`, state in the
//! incident KV bucket). It also turns commands and clicks into requests, since it holds the
//! Alertmanager credentials a silence needs. Today it joins the bus, provisions the streams and
//! reports its health; recognition and correlation arrive with the alert-watcher issue.

use bus::NatsConfig;
use runtime::{AdminConfig, LogConfig, ServiceConfig, ServiceName};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub const SERVICE: ServiceName = ServiceName {
    name: "alert-watcher",
    env_prefix: "ALERT_WATCHER_",
};

/// The configuration (see `deploy/config/alert-watcher.example.toml` for every key and its default).
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
            admin: AdminConfig::on_port(9102),
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
