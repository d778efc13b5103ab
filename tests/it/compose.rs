//! `deploy/docker/compose.yaml`, run for real: the images built here with no registry
//! (`deploy/docker/build-images.sh`, from the binaries this suite built), the stack started with
//! docker-compose, and only Slack and Pyroscope emulated, on this host, reached from the
//! containers through `host.docker.internal`. An alert posted into `#alerts` gets its one reply,
//! with the profile, in its thread: the gateway, NATS, the watcher, the fetcher and the poster
//! each in its own container, as an operator runs them.
//!
//! The sandbox's archive image (k8s/sandbox's init container) is run the way Kubernetes runs it,
//! and what it copies loads into an engine as the sandbox image.
//!
//! The compose file is used as it is, copied beside copies of `deploy/nats` with the env files
//! an operator writes; a small override file only points Slack and Pyroscope at the emulators.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use slack_emulator::EmulatorConfig;
use test_support::{reserve_port, wait_for};

use crate::{
    slack_edge::{Control, pyroscope_with_checkout_at},
    support::run,
};

const SERVICES: [&str; 5] = [
    "slack-gateway",
    "alert-watcher",
    "profile-fetcher",
    "sandbox-runner",
    "remediation-poster",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where cargo put the service binaries this test binary was built with (`target/<profile>`).
fn binaries() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    for service in SERVICES {
        assert!(
            dir.join(service).is_file(),
            "{} is missing: run the suite with `cargo nextest run --workspace` (tests/run.sh), which builds every binary",
            dir.join(service).display()
        );
    }
    dir
}

/// Something no one else knows, for the tokens and passwords of this run.
fn unguessable(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{:x}{:x}", nanos, std::process::id())
}

/// A composed stack in `dir`, taken down (with its volumes, and the images built for it) when
/// dropped.
struct Composed {
    dir: PathBuf,
    images: Vec<String>,
}

impl Composed {
    fn command(&self) -> Command {
        let mut command = Command::new("docker-compose");
        command
            .current_dir(&self.dir)
            .args(["-f", "compose.yaml", "-f", "compose.test.yaml"]);
        command
    }

    fn logs(&self) -> String {
        let output = self
            .command()
            .args(["logs", "--no-color", "--tail", "40"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Composed {
    fn drop(&mut self) {
        let _ = self
            .command()
            .args(["down", "--volumes", "--remove-orphans", "--timeout", "10"])
            .output();
        let _ = Command::new("docker")
            .args(["image", "rm", "--force"])
            .args(&self.images)
            .output();
    }
}

/// k8s/sandbox's init container, run as it is there (its own user, a read-only root, no
/// capabilities): it copies the sandbox image's archive into a volume, and the copy loads into
/// an engine as the sandbox image.
fn sandbox_archive_loads(archive_image: &str) {
    let volume = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        volume.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    run(Command::new("docker")
        .args(["run", "--rm", "--read-only", "--cap-drop", "ALL"])
        .args(["--user", "10001:10001"])
        .arg("--volume")
        .arg(format!("{}:/images", volume.path().display()))
        .arg(archive_image));
    let loaded = run(Command::new("docker")
        .args(["load", "--input"])
        .arg(volume.path().join("sandbox-image.tar")));
    let sandbox_image = sandbox_runner::SandboxConfig::default().image;
    assert!(
        loaded.contains(&sandbox_image),
        "the archive loads as {sandbox_image}: {loaded}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_gets_its_threaded_reply_through_the_composed_stack() {
    let tag = "it";
    let built = run(
        Command::new(workspace().join("deploy/docker/build-images.sh"))
            .env("FT_BIN_DIR", binaries())
            .env("FT_IMAGE_TAG", tag),
    );
    let images: Vec<String> = SERVICES
        .iter()
        .chain(&["nats", "sandbox-archive"])
        .map(|name| format!("flamethread-{name}:{tag}"))
        .collect();
    for image in &images {
        assert!(
            built.contains(image.as_str()),
            "build-images.sh built {image}: {built}"
        );
    }
    sandbox_archive_loads(&format!("flamethread-sandbox-archive:{tag}"));

    // The emulators listen on every interface: the containers reach this host through the
    // bridge's gateway. The secrets are not the emulator's well-known ones, which the services
    // refuse anywhere but on loopback.
    let bot_token = unguessable("xoxb-compose-");
    let app_token = unguessable("xapp-compose-");
    let slack = slack_emulator::start(
        EmulatorConfig {
            bot_token: bot_token.clone(),
            app_token: app_token.clone(),
            signing_secret: unguessable("signing-"),
            ..EmulatorConfig::default()
        },
        SocketAddr::from(([0, 0, 0, 0], 0)),
    )
    .await
    .unwrap();
    let control = Control::new(&slack);
    let pyroscope = pyroscope_with_checkout_at(SocketAddr::from(([0, 0, 0, 0], 0))).await;
    let from_containers = |port: u16| format!("http://host.docker.internal:{port}");

    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("docker");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(work.path().join("nats")).unwrap();
    std::fs::copy(
        workspace().join("deploy/docker/compose.yaml"),
        dir.join("compose.yaml"),
    )
    .unwrap();
    for file in ["nats.conf", "permissions.conf"] {
        std::fs::copy(
            workspace().join("deploy/nats").join(file),
            work.path().join("nats").join(file),
        )
        .unwrap();
    }
    let webhook = reserve_port().unwrap();
    let pages = reserve_port().unwrap();
    let project = unguessable("ft-it-");
    let mut env = format!(
        "COMPOSE_PROJECT_NAME={project}\nCOMPOSE_PROFILES=\nFT_IMAGE_TAG={tag}\n\
         FT_WEBHOOK_PORT={}\nFT_PAGES_PORT={}\nFT_PAGES_URL=http://127.0.0.1:{}\n",
        webhook.port(),
        pages.port(),
        pages.port()
    );
    for service in SERVICES {
        let variable = service.to_uppercase().replace('-', "_");
        env.push_str(&format!(
            "FT_NATS_PASSWORD_{variable}={}\n",
            unguessable("nats-")
        ));
    }
    std::fs::write(dir.join(".env"), env).unwrap();
    std::fs::write(
        dir.join("slack-gateway.env"),
        format!(
            "SLACK_GATEWAY_SLACK__APP_TOKEN={app_token}\nSLACK_GATEWAY_SLACK__BOT_TOKEN={bot_token}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("remediation-poster.env"),
        format!("REMEDIATION_POSTER_SLACK__BOT_TOKEN={bot_token}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("alert-watcher.env"),
        format!(
            "ALERT_WATCHER_ALERTMANAGER__WEBHOOK_TOKEN={}\n",
            unguessable("webhook-")
        ),
    )
    .unwrap();
    let slack_api = format!("{}/api", from_containers(slack.addr().port()));
    std::fs::write(
        dir.join("compose.test.yaml"),
        format!(
            r#"x-host: &host
  extra_hosts: ["host.docker.internal:host-gateway"]
services:
  slack-gateway:
    <<: *host
    environment:
      SLACK_GATEWAY_SLACK__API_URL: {slack_api}
  remediation-poster:
    <<: *host
    environment:
      REMEDIATION_POSTER_SLACK__API_URL: {slack_api}
  profile-fetcher:
    <<: *host
    environment:
      PROFILE_FETCHER_PYROSCOPE__URL: {pyroscope}
"#,
            pyroscope = from_containers(pyroscope.addr.port()),
        ),
    )
    .unwrap();

    let composed = Composed { dir, images };
    run(composed.command().args(["up", "--detach", "--no-build"]));
    let running = run(composed
        .command()
        .args(["ps", "--services", "--filter", "status=running"]));
    for service in [
        "nats",
        "slack-gateway",
        "alert-watcher",
        "profile-fetcher",
        "remediation-poster",
    ] {
        assert!(
            running.lines().any(|line| line == service),
            "{service} is running: {running}\n{}",
            composed.logs()
        );
    }
    assert!(
        !running.lines().any(|line| line.starts_with("sandbox")),
        "the sandbox is a profile, off here: {running}"
    );

    // The gateway is connected once Slack has a Socket Mode session for it; the alert then
    // goes through NATS, the watcher, the fetcher (Pyroscope), the object store and the poster.
    let alert = control
        .post_alert_saying(
            "C0ALERTS",
            "HighCPU",
            "*Alert:* checkout burns its CPU\n*Labels:*\n - alertname = HighCPU\n - service = checkout\n - severity = critical",
        )
        .await;
    let thread = || control.replies("C0ALERTS", &alert);
    let answered = wait_for(
        Duration::from_secs(120),
        "the alert's thread to show the profile",
        || async {
            thread()
                .await
                .iter()
                .any(|reply| reply.to_string().contains("regex_backtrack"))
        },
    )
    .await;
    let replies = thread().await;
    assert!(
        answered.is_ok(),
        "the alert's thread: {replies:?}\n{}",
        composed.logs()
    );
    assert_eq!(replies.len(), 1, "exactly one reply: {replies:?}");
    assert!(
        replies[0].to_string().contains("HighCPU"),
        "the reply names the alert: {}",
        replies[0]
    );
}
