//! sandbox-runner: runs shared scripts in a locked-down Docker container and profiles them. It
//! holds Docker access and nothing else: no Slack token, and NATS rights for its own subjects only.
//! Today it joins the bus, provisions the streams and reports its health; the sandbox arrives
//! with the sandbox-runner issue.

use runtime::ServiceName;
use tokio_util::sync::CancellationToken;

pub const SERVICE: ServiceName = ServiceName {
    name: "sandbox-runner",
    env_prefix: "SANDBOX_RUNNER_",
};

runtime::service_config! {
    /// The configuration (see `deploy/config/sandbox-runner.example.toml` for every key and its default).
    pub struct Config, admin port 9104 {}
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), runtime::Error> {
    runtime::serve(SERVICE, &config, shutdown, |context| async move {
        context.shutdown.cancelled().await;
        Ok(())
    })
    .await
}
