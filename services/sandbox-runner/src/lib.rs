//! sandbox-runner: runs shared scripts in a locked-down Docker container and profiles them. It
//! holds Docker access and nothing else: no Slack token, and NATS rights for its own subjects.
//!
//! Running code from strangers is the riskiest thing flamethread does, so a run has no network,
//! a read-only root, no capabilities, no new privileges, an unprivileged user, limits on
//! processes, memory (no swap), CPU, `/tmp` and output, a wall clock enforced from inside and
//! from outside, an empty environment, and a container that is always removed (leftovers of a
//! crashed runner are reaped by label at start-up and by name on redelivery).
//!
//! - [`plan`]: the script check, the limits and the container, every flag in one place (pure).
//! - [`outcome`]: the exit status, output tails and profile read back (pure).
//! - [`throttle`]: a token bucket per person and a line for the global limit.
//! - [`engine`]: the Docker engine through bollard.
//! - `runner`: the consumer of `sandbox.request`.

mod config;
pub mod engine;
pub mod outcome;
pub mod plan;
mod runner;
pub mod throttle;

use std::sync::Arc;

use bus::{ConsumerOptions, Delivery};
use proto::SandboxRequest;
use runtime::ServiceName;
use tokio_util::sync::CancellationToken;

pub use config::{SandboxConfig, SandboxRuntime};

pub const SERVICE: ServiceName = ServiceName {
    name: "sandbox-runner",
    env_prefix: "SANDBOX_RUNNER_",
    about: "Runs scripts shared in Slack in a locked-down container (no network, bounded CPU, memory and time) and profiles them with py-spy.",
};

runtime::service_config! {
    /// The configuration (see `deploy/config/sandbox-runner.example.toml` for every key and its default).
    pub struct Config, admin port 9104 {
        /// The engine, the image, the limits and the throttles (`[sandbox]`).
        pub sandbox: SandboxConfig,
    }
}

/// How long after a failed load of the image archive it is tried again.
const ARCHIVE_RETRY: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), runtime::Error> {
    let service_config = config.clone();
    runtime::serve(SERVICE, &service_config, shutdown, |context| async move {
        let sandbox = config.sandbox.clone();
        let engine = engine::Engine::connect(&sandbox.docker_host).await?;
        // Ready while the engine answers and has the image; checked in the background.
        let health = context.readiness.add_stage("docker", "not checked yet");
        let mut tasks = runtime::Tasks::new(&context);
        tasks.spawn("the engine check", {
            let (engine, image, health) = (engine.clone(), sandbox.image.clone(), health.clone());
            let archive = Some(std::path::PathBuf::from(&sandbox.image_archive))
                .filter(|archive| !archive.as_os_str().is_empty());
            let runtime = sandbox.runtime.name();
            let shutdown = context.shutdown.clone();
            async move {
                // An archive that failed to load is tried again only after a while: it is large.
                let mut load_after = tokio::time::Instant::now();
                loop {
                    let now = tokio::time::Instant::now();
                    let archive = archive.as_deref().filter(|_| now >= load_after);
                    let checked = engine.check_or_load(&image, runtime, archive).await;
                    if matches!(
                        checked,
                        Err(engine::Unready::Load { .. } | engine::Unready::NotInArchive { .. })
                    ) {
                        load_after = now + ARCHIVE_RETRY;
                    }
                    health.set(checked);
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                    }
                }
            }
        });
        if engine.remaps_users().await == Some(false) {
            tracing::info!(
                "the Docker engine does not remap user namespaces: a sandbox's root (its init, never the script) is root on the host, held by the sandbox's walls; deploy/sandbox/README.md says how to turn on userns-remap"
            );
        }
        // Containers older than any run can be are what a crashed runner left.
        match engine
            .reap(sandbox.wall_limit + std::time::Duration::from_secs(60))
            .await
        {
            Ok(0) => {}
            Ok(reaped) => tracing::warn!(reaped, "removed sandbox containers left by a crash"),
            Err(err) => tracing::warn!(error = %err, "cannot look for leftover sandbox containers"),
        }
        let runner = Arc::new(runner::Runner {
            bus: context.bus.clone(),
            engine,
            in_progress: Arc::default(),
            throttle: Arc::new(throttle::Throttle::new(
                sandbox.per_user_burst,
                sandbox.per_user_per_minute,
                sandbox.concurrency,
            )),
            config: sandbox.clone(),
        });
        // Waiting runs hold their message (the line is in memory), so take more than the
        // concurrency: a slow run never blocks the rest from being answered.
        let held = (sandbox.concurrency * 4).max(8);
        tasks.consume(
            &proto::subjects::SANDBOX_RUNNER,
            ConsumerOptions {
                concurrency: held,
                handler_timeout: runner::handler_timeout(&sandbox, held),
                ..ConsumerOptions::default()
            },
            runner,
            |runner, delivery: Delivery<SandboxRequest>| async move {
                runner
                    .on_request(delivery.message, delivery.delivered)
                    .await
            },
        );
        tasks.run().await
    })
    .await
}
