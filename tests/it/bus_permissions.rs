//! Least privilege on the bus, on a real nats-server configured with the committed
//! `deploy/nats/permissions.conf`: all five services run, each as its own NATS user, and a
//! service is refused outside its part of the contract (the sandbox runner cannot publish an
//! incident, write the incident state, read the Slack stream or delete a stream).

use std::time::Duration;

use proto::{IncidentChange, Message as _};
use test_support::{NatsServer, fixtures, reserve_port, wait_ready};
use tokio_util::sync::CancellationToken;

use crate::support::nats_config;

fn password(service: &str) -> String {
    format!("pw-{service}-0123456789")
}

/// The committed permissions, with this test's passwords in place of the environment's.
fn server() -> NatsServer {
    let mut config = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats/permissions.conf"),
    )
    .unwrap();
    for service in proto::permissions::SERVICES {
        let variable = format!(
            "$FT_NATS_PASSWORD_{}",
            service.to_ascii_uppercase().replace('-', "_")
        );
        config = config.replace(&variable, &format!("\"{}\"", password(service)));
    }
    NatsServer::start_with_config(&config).unwrap()
}

fn as_user(server: &NatsServer, service: &str) -> bus::NatsConfig {
    bus::NatsConfig {
        user: Some(service.to_owned()),
        password: Some(password(service).into()),
        ..nats_config(server)
    }
}

#[tokio::test]
async fn each_service_runs_as_its_own_user_and_is_refused_outside_its_subjects() {
    let nats = server();
    let shutdown = CancellationToken::new();
    let slack = crate::slack_edge::start_emulator(crate::slack_edge::emulator_config()).await;
    let mut admins = Vec::new();
    let mut tasks = Vec::new();
    let mut reservations = Vec::new();
    macro_rules! start {
        ($service:ident, $user:literal, $defaults:expr) => {{
            let reservation = reserve_port().unwrap();
            let addr = reservation.addr();
            reservations.push(reservation);
            let config = $service::Config {
                nats: as_user(&nats, $user),
                admin: runtime::AdminConfig { listen: addr },
                ..$defaults
            };
            admins.push(($user, addr));
            tasks.push(tokio::spawn($service::run(config, shutdown.clone())));
        }};
    }
    start!(
        slack_gateway,
        "slack-gateway",
        slack_gateway::Config {
            slack: slack_gateway::SlackConfig {
                api_url: slack.api_base(),
                ..Default::default()
            },
            ..Default::default()
        }
    );
    start!(
        alert_watcher,
        "alert-watcher",
        alert_watcher::Config::default()
    );
    start!(
        profile_fetcher,
        "profile-fetcher",
        profile_fetcher::Config::default()
    );
    start!(
        sandbox_runner,
        "sandbox-runner",
        sandbox_runner::Config::default()
    );
    start!(
        remediation_poster,
        "remediation-poster",
        remediation_poster::Config {
            slack: remediation_poster::SlackConfig {
                api_url: slack.api_base(),
                ..Default::default()
            },
            ..Default::default()
        }
    );
    // Each provisions, creates its consumers and opens its buckets under its own permissions.
    for (name, addr) in &admins {
        wait_ready(*addr, Duration::from_secs(30))
            .await
            .unwrap_or_else(|err| panic!("{name} under its permissions: {err}"));
    }

    let runner = bus::Bus::connect(&as_user(&nats, "sandbox-runner"), "runner-test")
        .await
        .unwrap();
    // What it is for: its results.
    let result = proto::SandboxResult {
        schema_version: proto::SchemaVersion::CURRENT,
        request_id: "r-1".into(),
        outcome: proto::sandbox::SandboxOutcome::Exited { code: 0 },
        wall_ms: 1,
        stdout_tail: String::new(),
        stdout_truncated: false,
        stderr_tail: String::new(),
        stderr_truncated: false,
        profile: None,
        profile_missing: String::new(),
        limits_hit: Vec::new(),
        reply: proto::ReplyTarget::Thread {
            channel: "C1".into(),
            thread_ts: "1.1".into(),
        },
        requested_by: "U1".into(),
        file_name: "x.py".into(),
        finished_at: None,
    };
    runner.publish(&result).await.unwrap();

    // Not an incident.
    let incident = fixtures::incident_event("inc-forged", "1.1", IncidentChange::Opened, 1);
    assert_eq!(incident.subject(), proto::Subject::IncidentOpened);
    let forged = tokio::time::timeout(Duration::from_secs(20), runner.publish(&incident)).await;
    assert!(
        !matches!(forged, Ok(Ok(_))),
        "the runner published an incident: {forged:?}"
    );
    // Not the incident state.
    let store = runner.incident_store().await;
    if let Ok(store) = store {
        let written =
            tokio::time::timeout(Duration::from_secs(20), store.put("fp.forged", "{}".into()))
                .await;
        assert!(
            !matches!(written, Ok(Ok(_))),
            "the runner wrote the incident state"
        );
    }
    // Not the Slack stream.
    let slack_stream = runner.jetstream().get_stream("FT_SLACK").await.unwrap();
    let reading = slack_stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("snooping".into()),
            ..Default::default()
        })
        .await;
    assert!(reading.is_err(), "the runner read the Slack stream");
    // Not deleting anything.
    assert!(
        runner
            .jetstream()
            .delete_stream("FT_INCIDENTS")
            .await
            .is_err()
    );

    // And what it was refused did not happen.
    let watcher = bus::Bus::connect(&as_user(&nats, "alert-watcher"), "watcher-test")
        .await
        .unwrap();
    let mut incidents = watcher
        .jetstream()
        .get_stream("FT_INCIDENTS")
        .await
        .unwrap();
    assert_eq!(incidents.info().await.unwrap().state.messages, 0);
    assert!(
        watcher
            .incident_store()
            .await
            .unwrap()
            .get("fp.forged")
            .await
            .unwrap()
            .is_none()
    );
    // The same operations succeed for the service they belong to: the refusals were the
    // permissions, not the operations.
    let mut own = fixtures::incident_event("inc-real", "1.1", IncidentChange::Opened, 1);
    own.incident.fingerprint = "fp-real".into();
    watcher.publish(&own).await.unwrap();
    watcher
        .incident_store()
        .await
        .unwrap()
        .put("fp.real", "{}".into())
        .await
        .unwrap();
    assert_eq!(incidents.info().await.unwrap().state.messages, 1);

    shutdown.cancel();
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
}
