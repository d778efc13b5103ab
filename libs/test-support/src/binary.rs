//! Checks on a service's real binary.

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
    ensure!(
        metrics.contains("flamethread_build_info{"),
        "/metrics has no flamethread_build_info"
    );

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

/// `binary --version` names it and `version`; `--help` says what it does (`about`).
pub fn check_version_and_help(
    binary: &str,
    name: &str,
    version: &str,
    about: &str,
) -> anyhow::Result<()> {
    let said = Command::new(binary).arg("--version").output()?;
    ensure!(said.status.success(), "--version failed: {said:?}");
    let said = String::from_utf8(said.stdout)?;
    ensure!(
        said.trim() == format!("{name} {version}"),
        "--version said {said:?}"
    );
    let help = Command::new(binary).arg("--help").output()?;
    ensure!(help.status.success(), "--help failed: {help:?}");
    let help = String::from_utf8(help.stdout)?;
    ensure!(
        help.contains(about) && help.contains("--check-config"),
        "--help said {help:?}"
    );
    Ok(())
}

/// `--check-config` prints TOML that loads back to the same configuration: printed again from
/// the file it wrote, it is the same text. Secrets print as `<redacted>` (a NATS password given
/// here never appears), and the file loads only with each secret given again in its variable.
pub fn check_config_round_trips(binary: &str, env_prefix: &str) -> anyhow::Result<()> {
    let password = "nats-password-that-must-not-be-printed";
    let given = [
        (
            format!("{env_prefix}NATS__URL"),
            "nats://10.0.0.1:4222".to_owned(),
        ),
        (format!("{env_prefix}NATS__USER"), "a-service".to_owned()),
        (format!("{env_prefix}NATS__PASSWORD"), password.to_owned()),
    ];
    let printed = Command::new(binary)
        .arg("--check-config")
        .envs(given.iter().cloned())
        .output()?;
    ensure!(printed.status.success(), "--check-config: {printed:?}");
    let printed = String::from_utf8(printed.stdout)?;
    ensure!(
        !printed.contains(password),
        "a secret was printed: {printed}"
    );
    ensure!(
        printed.contains("10.0.0.1"),
        "the variable's value is missing: {printed}"
    );
    let parsed: toml::Table = toml::from_str(&printed).context("--check-config printed TOML")?;
    let mut redacted = Vec::new();
    redacted_keys(&parsed, &mut Vec::new(), &mut redacted);
    ensure!(
        redacted.contains(&vec!["nats".to_owned(), "password".to_owned()]),
        "nats.password is not <redacted>: {printed}"
    );

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("printed.toml");
    std::fs::write(&file, &printed)?;
    // Each secret again in its variable (`<PREFIX><SECTION>__<KEY>`), as the header says.
    let secrets: Vec<(String, String)> = redacted
        .iter()
        .map(|path| {
            let name = format!("{env_prefix}{}", path.join("__").to_uppercase());
            // Slack's tokens are checked for their kind.
            let value = match path.last().map(String::as_str) {
                Some("bot_token") => "xoxb-given-again",
                Some("app_token") => "xapp-given-again",
                _ => "given-again",
            };
            (name, value.to_owned())
        })
        .collect();
    let reloaded = Command::new(binary)
        .arg("--config")
        .arg(&file)
        .arg("--check-config")
        .envs(secrets)
        .output()?;
    ensure!(reloaded.status.success(), "loading it back: {reloaded:?}");
    let reloaded = String::from_utf8(reloaded.stdout)?;
    ensure!(
        reloaded == printed,
        "printed:\n{printed}\nloaded back and printed:\n{reloaded}"
    );

    let without = Command::new(binary)
        .arg("--config")
        .arg(&file)
        .arg("--check-config")
        .output()?;
    let stderr = String::from_utf8_lossy(&without.stderr);
    ensure!(
        without.status.code() == Some(64) && stderr.contains("<redacted>"),
        "loading <redacted> as a secret: exit {:?}: {stderr}",
        without.status
    );
    Ok(())
}

/// The paths of the values `<redacted>` in `table`.
fn redacted_keys(table: &toml::Table, path: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
    for (key, value) in table {
        path.push(key.clone());
        match value {
            toml::Value::String(text) if text == secret::REDACTED => found.push(path.clone()),
            toml::Value::Table(inner) => redacted_keys(inner, path, found),
            _ => {}
        }
        path.pop();
    }
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
        fn version_and_help_say_what_it_is() {
            $crate::binary::check_version_and_help(
                BINARY,
                $binary,
                runtime::VERSION,
                $library::SERVICE.about,
            )
            .expect("--version and --help");
        }

        #[test]
        fn check_config_prints_toml_that_loads_back_the_same() {
            $crate::binary::check_config_round_trips(BINARY, $library::SERVICE.env_prefix)
                .expect("--check-config round trip");
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
