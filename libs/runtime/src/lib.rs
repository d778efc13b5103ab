//! What every flamethread service shares, so that each `main.rs` is a few lines and each service
//! library is only its own logic.
//!
//! - [`config`]: one typed config per service from a TOML file plus environment variables,
//!   unknown keys rejected, errors naming the key and where it came from.
//! - [`serve`]: the lifecycle. Bind the admin server (`/healthz`, `/readyz`, `/metrics`), connect
//!   to NATS (retrying while it is down, reported by `/readyz`), provision the streams, run the
//!   service's body, and on shutdown report not-ready, let the body drain, flush NATS.
//! - [`main`]: the whole of a service's `main`: arguments, config (exit 64 on a bad one),
//!   telemetry, signals (SIGTERM and ctrl-c), exit code.

pub mod auth;
pub mod body;
pub mod config;
pub mod http;
mod tasks;

use std::{future::Future, net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use bus::Bus;
use clap::{CommandFactory as _, FromArgMatches as _, Parser};
use serde::de::DeserializeOwned;
pub use tasks::Tasks;
pub use telemetry::admin::{Readiness, Stage};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

pub use config::{AdminConfig, ConfigSection, LogConfig, ServiceConfig};

#[doc(hidden)]
pub use bus as __bus;

/// Exit code for a bad configuration (`EX_USAGE`).
pub const EXIT_BAD_CONFIG: u8 = 64;

/// A service's identity: its name (logs, traces, NATS client name) and its env prefix.
#[derive(Debug, Clone, Copy)]
pub struct ServiceName {
    pub name: &'static str,
    /// Environment variables that configure it start with this, e.g. `ALERT_WATCHER_`.
    pub env_prefix: &'static str,
    /// What the service does, in a sentence (its `--help`).
    pub about: &'static str,
}

/// flamethread's version, the same for every service (`--version`, `flamethread_build_info`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a running service's body gets.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    pub bus: Bus,
    pub readiness: Readiness,
    /// Cancelled on SIGTERM; the body returns after it drained its in-flight work.
    pub shutdown: CancellationToken,
    /// Not met until the body has registered its work ([`Tasks::run`] meets it): until then
    /// `/readyz` says the service is starting, so the checks the body adds on its way (the
    /// sandbox runner's engine) are in place before anything sees it ready.
    pub registered: Stage,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr} for the admin server: {source}")]
    AdminBind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Bus(#[from] bus::Error),
    #[error("{0:#}")]
    Service(anyhow::Error),
}

/// Runs a service: admin server, NATS, provisioning, then `body` until `shutdown`.
///
/// NATS being down at start-up is not fatal: the service keeps trying (with backoff) and
/// `/readyz` says what it is waiting for, so that Kubernetes starting NATS and the services
/// together needs no ordering. A bad configuration *is* fatal, and is caught before this runs.
pub async fn serve<F, Fut>(
    service: ServiceName,
    config: &impl ServiceConfig,
    shutdown: CancellationToken,
    body: F,
) -> Result<(), Error>
where
    F: FnOnce(ServiceContext) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let admin = config.admin();
    let listener = tokio::net::TcpListener::bind(admin.listen)
        .await
        .map_err(|source| Error::AdminBind {
            addr: admin.listen,
            source,
        })?;
    // With port 0 in the config, this is where the admin server really is.
    let admin_addr = listener.local_addr().unwrap_or(admin.listen);
    let readiness = Readiness::new();
    let admin_shutdown = CancellationToken::new();
    let admin_task = tokio::spawn(http::serve(
        listener,
        telemetry::admin::router(readiness.clone()),
        admin_shutdown.clone(),
        http::Limits::default(),
    ));

    metrics::gauge!("flamethread_build_info", "service" => service.name, "version" => VERSION)
        .set(1.0);
    let stage = readiness.add_stage("startup", "connecting to NATS");
    let result = async {
        let startup = tracing::info_span!("startup", service = service.name);
        let Some(bus) = connect_and_provision(service, config.nats(), &stage, &shutdown)
            .instrument(startup)
            .await
        else {
            return Ok(());
        };
        let connection = bus.clone();
        readiness.add_check("nats", move || {
            if connection.is_connected() {
                Ok(())
            } else {
                Err("disconnected from NATS".to_owned())
            }
        });
        let registered = readiness.add_stage("registered", "registering its work");
        stage.ready();
        tracing::info!(service = service.name, admin = %admin_addr, "connected");

        let context = ServiceContext {
            bus: bus.clone(),
            readiness: readiness.clone(),
            shutdown: shutdown.clone(),
            registered,
        };
        let outcome = body(context).await.map_err(Error::Service);
        readiness.set_draining();
        bus.drain().await;
        outcome
    }
    .await;

    readiness.set_draining();
    admin_shutdown.cancel();
    let _ = admin_task.await;
    tracing::info!(service = service.name, "stopped");
    result
}

/// Connects and provisions, retrying until it works or `shutdown` (then `None`).
async fn connect_and_provision(
    service: ServiceName,
    nats: &bus::NatsConfig,
    stage: &Stage,
    shutdown: &CancellationToken,
) -> Option<Bus> {
    let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    until_it_works("waiting for NATS", stage, backoff, shutdown, || async {
        let bus = Bus::connect(nats, service.name).await?;
        stage.waiting("provisioning streams");
        bus.provision().await?;
        Ok::<_, bus::Error>(bus)
    })
    .await
}

/// How long to wait between tries: `first`, doubling, at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff { first, cap }
    }

    /// The wait after `failures` failed tries in a row (at least one).
    pub fn after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        self.first.saturating_mul(1 << doublings).min(self.cap)
    }
}

/// Tries `attempt` until it works (its value) or `shutdown` is cancelled (`None`): what a
/// service does with a dependency it cannot start without (NATS, Slack's `auth.test`). Each
/// failure is logged, shown on `stage` as "`what`: error" for `/readyz`, and waited out as
/// `backoff` says.
pub async fn until_it_works<T, E, Fut>(
    what: &str,
    stage: &Stage,
    backoff: Backoff,
    shutdown: &CancellationToken,
    mut attempt: impl FnMut() -> Fut,
) -> Option<T>
where
    E: std::fmt::Display,
    Fut: Future<Output = Result<T, E>>,
{
    let mut failures = 0u32;
    loop {
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return None,
            outcome = attempt() => outcome,
        };
        match outcome {
            Ok(value) => return Some(value),
            Err(err) => {
                failures += 1;
                tracing::warn!(error = %err, attempt = failures, "{what}; retrying");
                stage.waiting(format!("{what}: {err}"));
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(backoff.after(failures)) => {}
        }
    }
}

/// Command-line arguments every service takes.
#[derive(Debug, Parser)]
struct Args {
    /// TOML config file; every key is optional (see deploy/config/<service>.example.toml).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Load and validate the config, print it as TOML that loads back to the same
    /// configuration (secrets print as <redacted>: give them again when loading it), and exit.
    #[arg(long)]
    check_config: bool,
}

/// The whole of a service's `main`.
pub fn main<C, F, Fut>(service: ServiceName, run: F) -> ExitCode
where
    C: ServiceConfig + DeserializeOwned + serde::Serialize + std::fmt::Debug,
    F: FnOnce(C, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let command = Args::command()
        .name(service.name)
        .bin_name(service.name)
        .about(service.about)
        .version(VERSION);
    let args = Args::from_arg_matches(&command.get_matches()).unwrap_or_else(|err| err.exit());
    install_crypto_provider();
    // Non-UTF-8 variables cannot be config values; skip them rather than panic.
    let env: std::collections::HashMap<String, String> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect();
    let config: C = match config::load(service, args.config.as_deref(), &env) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{}: bad configuration: {err}", service.name);
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    if args.check_config {
        use std::io::Write as _;
        let printed = match config::to_toml(service, &config) {
            Ok(printed) => printed,
            Err(err) => {
                eprintln!("{}: cannot print the configuration: {err}", service.name);
                return ExitCode::FAILURE;
            }
        };
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = write!(std::io::stdout(), "{printed}");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("{}: cannot start the async runtime: {err}", service.name);
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let telemetry = match telemetry::TelemetryBuilder::new(service.name)
            .log_format(config.log().format)
            .otlp_from_env()
            .and_then(|builder| builder.init())
        {
            Ok(telemetry) => telemetry,
            Err(err) => {
                eprintln!("{}: cannot start telemetry: {err}", service.name);
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        let outcome = run(config, shutdown).await;
        let code = match &outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                tracing::error!(error = %err, "{} failed", service.name);
                ExitCode::FAILURE
            }
        };
        telemetry.shutdown();
        code
    })
}

/// Chooses rustls' ring provider for the process (the workspace builds rustls with ring only and
/// no default, so that nothing pulls in a second provider); HTTP clients need it before they are
/// built. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Cancels `shutdown` on SIGTERM (what Kubernetes sends) or ctrl-c.
pub async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("ctrl-c received, shutting down"),
        _ = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_its_first_wait_up_to_its_cap() {
        let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
        let waits: Vec<_> = (1..=7).map(|failures| backoff.after(failures)).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 10_000, 10_000].map(Duration::from_millis)
        );
        assert_eq!(backoff.after(u32::MAX), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn until_it_works_shows_each_failure_and_stops_at_shutdown() {
        let stage = Stage::pending("not tried");
        let shutdown = CancellationToken::new();
        let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(40));
        let mut tries = 0;
        let value = until_it_works("the server said no", &stage, backoff, &shutdown, || {
            tries += 1;
            let now = tries;
            async move {
                if now < 3 {
                    Err(format!("try {now}"))
                } else {
                    Ok(now)
                }
            }
        })
        .await;
        assert_eq!(value, Some(3));
        assert_eq!(stage.get(), Err("the server said no: try 2".to_owned()));

        shutdown.cancel();
        let never = until_it_works("never", &stage, backoff, &shutdown, || async {
            Err::<(), _>("down")
        })
        .await;
        assert_eq!(never, None);
    }
}
