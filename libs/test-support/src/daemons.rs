//! Servers from Debian packages run for a test (Alertmanager, Prometheus): their own directory
//! and reserved port, killed on drop.

use std::{
    fs,
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::{PortReservation, http_get, http_post_json, reserve_port};

/// A server from a Debian package run for a test: its own directory and reserved port, killed on
/// drop.
#[derive(Debug)]
struct Daemon {
    child: Child,
    reservation: PortReservation,
    dir: tempfile::TempDir,
}

/// When a [`Daemon`] counts as started.
#[derive(Debug, Clone, Copy)]
enum Ready<'a> {
    /// `GET path` over plain HTTP answers 200.
    Http(&'a str),
    /// It accepts connections (behind TLS or authentication, which a plain probe cannot pass:
    /// the test waits for its own first answer).
    Listening,
}

/// A `--web.config.file` (Prometheus's and Alertmanager's TLS and basic auth), written into the
/// daemon's directory.
fn web_config_args(
    dir: &std::path::Path,
    web_config_yaml: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let Some(yaml) = web_config_yaml else {
        return Ok(Vec::new());
    };
    let path = dir.join("web.yml");
    fs::write(&path, yaml)?;
    Ok(vec![format!("--web.config.file={}", path.display())])
}

impl Daemon {
    /// Runs the first of `candidates` (or `$env_var`) with the arguments `args` makes from its
    /// directory and address, and waits until it is [`Ready`].
    fn start(
        what: &str,
        env_var: &str,
        candidates: &[&str],
        install_hint: &str,
        args: impl FnOnce(&std::path::Path, SocketAddr) -> anyhow::Result<Vec<String>>,
        ready: Ready<'_>,
    ) -> anyhow::Result<Daemon> {
        let binary = std::env::var_os(env_var)
            .map(PathBuf::from)
            .or_else(|| {
                candidates
                    .iter()
                    .map(PathBuf::from)
                    .find(|path| path.is_file())
            })
            .with_context(|| format!("{what} is not installed: {install_hint}"))?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("ft-{what}-"))
            .tempdir()?;
        let reservation = reserve_port()?;
        let log = fs::File::create(dir.path().join("daemon.log"))?;
        let child = Command::new(&binary)
            .args(args(dir.path(), reservation.addr())?)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let mut daemon = Daemon {
            child,
            reservation,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let started = match ready {
                Ready::Http(path) => {
                    matches!(http_get(daemon.reservation.addr(), path), Ok((200, _)))
                }
                Ready::Listening => std::net::TcpStream::connect(daemon.reservation.addr()).is_ok(),
            };
            if started {
                return Ok(daemon);
            }
            if let Some(status) = daemon.child.try_wait()? {
                let log = fs::read_to_string(daemon.dir.path().join("daemon.log"))?;
                bail!("{what} exited with {status}: {log}");
            }
            if Instant::now() > deadline {
                bail!("{what} was not ready after 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Prometheus Alertmanager (Debian's `prometheus-alertmanager`, or `$ALERTMANAGER_BIN`)
/// with the given configuration, on a reserved port, clustering off, its own storage. Killed on
/// drop.
#[derive(Debug)]
pub struct Alertmanager {
    daemon: Daemon,
}

impl Alertmanager {
    pub fn start(config_yaml: &str) -> anyhow::Result<Alertmanager> {
        Alertmanager::start_with_web_config(config_yaml, None)
    }

    /// Like [`Alertmanager::start`], behind `web_config_yaml` (TLS, basic auth) when given.
    pub fn start_with_web_config(
        config_yaml: &str,
        web_config_yaml: Option<&str>,
    ) -> anyhow::Result<Alertmanager> {
        let daemon = Daemon::start(
            "alertmanager",
            "ALERTMANAGER_BIN",
            &[
                "/usr/bin/prometheus-alertmanager",
                "/usr/local/bin/alertmanager",
            ],
            "apt-get install prometheus-alertmanager (tests/run.sh does)",
            |dir, addr| {
                let config = dir.join("alertmanager.yml");
                fs::write(&config, config_yaml)?;
                let mut args = vec![
                    format!("--config.file={}", config.display()),
                    format!("--storage.path={}", dir.join("data").display()),
                    format!("--web.listen-address={addr}"),
                    "--cluster.listen-address=".to_owned(),
                ];
                args.extend(web_config_args(dir, web_config_yaml)?);
                Ok(args)
            },
            match web_config_yaml {
                None => Ready::Http("/-/ready"),
                Some(_) => Ready::Listening,
            },
        )?;
        Ok(Alertmanager { daemon })
    }

    pub fn addr(&self) -> SocketAddr {
        self.daemon.reservation.addr()
    }

    /// Sends alerts through the v2 API (`POST /api/v2/alerts`), as Prometheus does.
    pub fn post_alerts(&self, alerts_json: &str) -> anyhow::Result<()> {
        let (status, body) = http_post_json(self.addr(), "/api/v2/alerts", alerts_json)?;
        if status != 200 {
            bail!("alertmanager refused the alerts ({status}): {body}");
        }
        Ok(())
    }
}

/// A real Prometheus server (Debian's `prometheus`, or `$PROMETHEUS_BIN`) with the given
/// configuration (its `scrape_configs` pointing at targets the test runs), on a reserved port,
/// its own storage. Killed on drop.
#[derive(Debug)]
pub struct Prometheus {
    daemon: Daemon,
    _rules: Option<tempfile::TempDir>,
}

impl Prometheus {
    pub fn start(config_yaml: &str) -> anyhow::Result<Prometheus> {
        Prometheus::start_with_web_config(config_yaml, None)
    }

    /// Like [`Prometheus::start`], behind `web_config_yaml` (TLS, basic auth) when given.
    pub fn start_with_web_config(
        config_yaml: &str,
        web_config_yaml: Option<&str>,
    ) -> anyhow::Result<Prometheus> {
        let daemon = Daemon::start(
            "prometheus",
            "PROMETHEUS_BIN",
            &["/usr/bin/prometheus", "/usr/local/bin/prometheus"],
            "apt-get install prometheus (tests/run.sh does)",
            |dir, addr| {
                let config = dir.join("prometheus.yml");
                fs::write(&config, config_yaml)?;
                let mut args = vec![
                    format!("--config.file={}", config.display()),
                    format!("--storage.tsdb.path={}", dir.join("data").display()),
                    format!("--web.listen-address={addr}"),
                ];
                args.extend(web_config_args(dir, web_config_yaml)?);
                Ok(args)
            },
            match web_config_yaml {
                None => Ready::Http("/-/ready"),
                Some(_) => Ready::Listening,
            },
        )?;
        Ok(Prometheus {
            daemon,
            _rules: None,
        })
    }

    /// Like [`Prometheus::start`], with `rules_yaml` as its one rule file (`rule_files` is added
    /// to the configuration).
    pub fn start_with_rules(config_yaml: &str, rules_yaml: &str) -> anyhow::Result<Prometheus> {
        let rules_dir = tempfile::tempdir()?;
        let rules = rules_dir.path().join("rules.yml");
        fs::write(&rules, rules_yaml)?;
        let config = format!("{config_yaml}\nrule_files:\n  - '{}'\n", rules.display());
        let prometheus = Prometheus::start(&config)?;
        Ok(Prometheus {
            _rules: Some(rules_dir),
            ..prometheus
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.daemon.reservation.addr()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }
}
