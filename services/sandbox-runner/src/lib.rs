//! sandbox-runner: runs shared scripts in a locked-down Docker container and profiles them. It
//! holds Docker access and nothing else: no Slack token, and NATS rights for its own subjects only.
//! Today it joins the bus, provisions the streams and reports its health; the sandbox arrives
//! with the sandbox-runner issue.

use bus::NatsConfig;
use runtime::{AdminConfig, LogConfig, ServiceConfig, ServiceName};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub const SERVICE: ServiceName = ServiceName {
    name: "sandbox-runner",
    env_prefix: "SANDBOX_RUNNER_",
};

/// The configuration (see `deploy/config/sandbox-runner.example.toml` for every key and its default).
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
            admin: AdminConfig::on_port(9104),
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
