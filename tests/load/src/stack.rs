//! Everything the run needs, started on loopback: a real nats-server, the Slack emulator, a real
//! Prometheus scraping the services, the Pyroscope emulator with a profile for every service, and
//! the five services as separate processes (release binaries), so each one's memory and CPU are
//! its own and the pipeline crosses real process boundaries as it does in production.
//!
//! The [`Topology`] says whether NATS is one server or a 3-node JetStream cluster (every stream,
//! bucket and the object store then at 3 replicas), and how many replicas of each service run.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use chrono::Utc;
use profile_fetcher::profile::Folded;
use pyroscope_emulator::PyroscopeEmulator;
use test_support::{NatsCluster, NatsServer, PortReservation, Prometheus};
use tokio::process::{Child, Command};

use crate::plan::{Shape, service_of};

/// The five services, in the order they are started.
pub const SERVICES: [&str; 5] = [
    "slack-gateway",
    "alert-watcher",
    "profile-fetcher",
    "sandbox-runner",
    "remediation-poster",
];

/// The function that burns the CPU in every service's current profile (absent from its
/// baseline): a reply showing it has the profile evidence in it.
pub const HOT_FUNCTION: &str = "load_hot_loop";

/// Where NATS runs and how many processes of each service run against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Topology {
    /// A 3-node JetStream cluster (streams, buckets and the object store at 3 replicas) instead
    /// of one server.
    pub cluster: bool,
    /// Processes of each service (1 or more); replicas share the work through the bus.
    pub replicas: usize,
}

impl Default for Topology {
    fn default() -> Topology {
        Topology {
            cluster: false,
            replicas: 1,
        }
    }
}

/// The NATS the stack runs on.
#[derive(Debug)]
pub enum Nats {
    Single(NatsServer),
    /// Shared with the fault injector, which kills and restarts its nodes.
    Cluster(Arc<Mutex<NatsCluster>>),
}

impl Nats {
    /// The server list a client connects to.
    pub fn urls(&self) -> String {
        match self {
            Nats::Single(server) => server.url(),
            Nats::Cluster(cluster) => cluster.lock().unwrap_or_else(|e| e.into_inner()).urls(),
        }
    }
}

/// One service process.
#[derive(Debug)]
pub struct Service {
    pub name: &'static str,
    /// Which of the service's replicas (1 for the first).
    pub replica: usize,
    pub child: Child,
    pub admin: SocketAddr,
    _ports: Vec<PortReservation>,
}

impl Service {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `alert-watcher`, or `alert-watcher #2` for a second replica.
    pub fn label(&self) -> String {
        if self.replica == 1 {
            self.name.to_owned()
        } else {
            format!("{} #{}", self.name, self.replica)
        }
    }
}

/// The running stack; dropping it stops everything.
#[derive(Debug)]
pub struct Stack {
    pub nats: Nats,
    pub slack: slack_emulator::Running,
    pub bot_token: String,
    pub bot_user_id: String,
    pub services: Vec<Service>,
    _prometheus: Prometheus,
    _pyroscope: PyroscopeEmulator,
}

/// Where the services' binaries and logs are.
#[derive(Debug)]
pub struct Paths {
    pub bin_dir: PathBuf,
    pub logs: PathBuf,
}

impl Stack {
    pub async fn start(shape: &Shape, topology: Topology, paths: &Paths) -> anyhow::Result<Stack> {
        anyhow::ensure!(
            topology.replicas >= 1,
            "at least one replica of each service"
        );
        for service in SERVICES {
            let binary = paths.bin_dir.join(service);
            anyhow::ensure!(
                binary.is_file(),
                "{} is missing: build the services first (cargo build --release -p {service} …, \
                 as tests/load/run.sh does) or point --bin-dir at them",
                binary.display()
            );
        }
        fs::create_dir_all(&paths.logs)
            .with_context(|| format!("creating {}", paths.logs.display()))?;

        let nats = if topology.cluster {
            let cluster = tokio::task::spawn_blocking(NatsCluster::start)
                .await?
                .context("starting a 3-node nats-server cluster (set NATS_SERVER_BIN)")?;
            Nats::Cluster(Arc::new(Mutex::new(cluster)))
        } else {
            Nats::Single(NatsServer::start().context("starting nats-server (set NATS_SERVER_BIN)")?)
        };
        let stream_replicas = if topology.cluster { "3" } else { "1" };
        let emulator_config = slack_emulator::EmulatorConfig {
            channels: shape.channels(),
            ..Default::default()
        };
        let (bot_token, bot_user_id) = (
            emulator_config.bot_token.clone(),
            emulator_config.bot_user_id.clone(),
        );
        let slack =
            slack_emulator::start(emulator_config, SocketAddr::from(([127, 0, 0, 1], 0))).await?;

        let pyroscope = PyroscopeEmulator::start(None).await?;
        ingest_profiles(&pyroscope, shape.alerts);

        // Every process: its service, its replica number and its admin port.
        let processes: Vec<(&'static str, usize, PortReservation)> = SERVICES
            .iter()
            .flat_map(|&service| (1..=topology.replicas).map(move |replica| (service, replica)))
            .map(|(service, replica)| Ok((service, replica, test_support::reserve_port()?)))
            .collect::<std::io::Result<_>>()?;
        let targets: Vec<String> = SERVICES
            .iter()
            .map(|&service| {
                let addresses: Vec<String> = processes
                    .iter()
                    .filter(|(name, _, _)| *name == service)
                    .map(|(_, _, port)| format!("'{}'", port.addr()))
                    .collect();
                format!(
                    "  - job_name: '{service}'\n    static_configs: [{{targets: [{}]}}]",
                    addresses.join(", ")
                )
            })
            .collect();
        let prometheus = Prometheus::start(&format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{}\n",
            targets.join("\n")
        ))?;

        let mut services = Vec::new();
        for (name, replica, admin_port) in processes {
            let prefix = format!("{}_", name.to_uppercase().replace('-', "_"));
            let mut env = vec![
                ("NATS__URL", nats.urls()),
                ("NATS__REPLICAS", stream_replicas.to_owned()),
                ("ADMIN__LISTEN", admin_port.addr().to_string()),
            ];
            let mut ports = vec![admin_port];
            match name {
                "slack-gateway" | "remediation-poster" => {
                    env.push(("SLACK__API_URL", slack.api_base()));
                }
                "profile-fetcher" => {
                    let pages_port = test_support::reserve_port()?;
                    env.extend([
                        ("PROMETHEUS__URL", prometheus.url()),
                        ("PYROSCOPE__URL", pyroscope.url()),
                        ("PAGES__LISTEN", pages_port.addr().to_string()),
                        ("PAGES__PUBLIC_URL", format!("http://{}", pages_port.addr())),
                    ]);
                    ports.push(pages_port);
                }
                _ => {}
            }
            let log = fs::File::create(log_of(&paths.logs, name, replica))?;
            let mut command = Command::new(paths.bin_dir.join(name));
            command
                .envs(
                    env.into_iter()
                        .map(|(key, value)| (format!("{prefix}{key}"), value)),
                )
                // Quiet by default: logging every message would be measured too.
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
                )
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true);
            let child = command
                .spawn()
                .with_context(|| format!("starting {}", paths.bin_dir.join(name).display()))?;
            services.push(Service {
                name,
                replica,
                child,
                admin: ports[0].addr(),
                _ports: ports,
            });
        }
        for service in &services {
            // The sandbox runner is not on the alert path; without a Docker engine it is not
            // ready, which this run can live with.
            // Ten processes provisioning a fresh 3-node cluster at once take a while.
            let timeout = match (service.name, topology.cluster) {
                ("sandbox-runner", _) => 15,
                (_, true) => 120,
                (_, false) => 60,
            };
            if let Err(err) =
                test_support::wait_ready(service.admin, Duration::from_secs(timeout)).await
            {
                anyhow::ensure!(
                    service.name == "sandbox-runner",
                    "{} did not become ready ({err}); see {}",
                    service.label(),
                    log_of(&paths.logs, service.name, service.replica).display()
                );
                eprintln!("[load] sandbox-runner is not ready (no Docker engine?); going on");
            }
        }
        Ok(Stack {
            nats,
            slack,
            bot_token,
            bot_user_id,
            services,
            _prometheus: prometheus,
            _pyroscope: pyroscope,
        })
    }

    /// Stops the services (they are killed: the figures are taken by then).
    pub async fn stop(mut self) {
        for service in &mut self.services {
            let _ = service.child.start_kill();
        }
        for service in &mut self.services {
            let _ = service.child.wait().await;
        }
    }
}

/// A process's log: `alert-watcher.log`, `alert-watcher-2.log` for a second replica.
pub fn log_of(logs: &Path, service: &str, replica: usize) -> PathBuf {
    if replica == 1 {
        logs.join(format!("{service}.log"))
    } else {
        logs.join(format!("{service}-{replica}.log"))
    }
}

/// A profile per service every 30 s over the last two hours and the next one: calm before the
/// last 15 minutes (the baseline), `load_hot_loop` burning most of the CPU since.
fn ingest_profiles(pyroscope: &PyroscopeEmulator, alerts: usize) {
    let folded = |stacks: &[(&str, u64)]| -> Folded {
        stacks
            .iter()
            .map(|(stack, value)| ((*stack).to_owned(), *value))
            .collect()
    };
    let calm = folded(&[
        ("main;serve;handle_request;render_page", 600),
        ("main;serve;handle_request;query_db", 300),
        ("main;runtime;gc", 100),
    ]);
    let hot = folded(&[
        ("main;serve;handle_request;render_page", 600),
        ("main;serve;handle_request;query_db", 300),
        (
            "main;serve;handle_request;apply_discounts;load_hot_loop",
            4000,
        ),
        ("main;runtime;gc", 100),
    ]);
    let now = Utc::now();
    let profile_type = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
    for alert in 0..alerts {
        let app = service_of(alert);
        for step in -240i64..120 {
            let at = now + chrono::Duration::seconds(step * 30);
            let profile = if step < -30 { &calm } else { &hot };
            pyroscope.ingest(&app, profile_type, at, profile.clone());
        }
    }
}
