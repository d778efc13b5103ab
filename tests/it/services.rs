//! The five services run in-process: they wait for NATS while it is down (and say so on
//! `/readyz`), become ready by themselves when it comes up, and stop cleanly when cancelled.

use std::{net::SocketAddr, time::Duration};

use runtime::AdminConfig;
use test_support::{
    NatsServer, PortReservation, http_get_async, reserve_port, wait_for, wait_ready,
};
use tokio_util::sync::CancellationToken;

use crate::support::nats_config;

/// An admin config on a reserved port; keep the reservation until the service has bound it.
fn admin_on_free_port() -> (AdminConfig, SocketAddr, PortReservation) {
    let reservation = reserve_port().unwrap();
    let addr = reservation.addr();
    (AdminConfig { listen: addr }, addr, reservation)
}

#[tokio::test]
async fn a_service_waits_for_nats_then_becomes_ready_and_drains_on_shutdown() {
    let mut nats = NatsServer::start().unwrap();
    nats.kill();

    let (admin, admin_addr, _reservation) = admin_on_free_port();
    let config = alert_watcher::Config {
        nats: nats_config(&nats),
        admin,
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    let service = tokio::spawn(alert_watcher::run(config, shutdown.clone()));

    wait_for(
        Duration::from_secs(10),
        "/readyz to explain the wait",
        || async {
            let (status, body) = http_get_async(admin_addr, "/readyz").await;
            status == 503 && body.contains("waiting for NATS")
        },
    )
    .await
    .unwrap();
    assert_eq!(
        http_get_async(admin_addr, "/healthz").await.0,
        200,
        "alive while not ready"
    );

    nats.restart().unwrap();
    wait_ready(admin_addr, Duration::from_secs(20))
        .await
        .unwrap();

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), service)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        http_get_async(admin_addr, "/healthz").await.0,
        0,
        "the admin server stopped"
    );
}

#[tokio::test]
async fn all_five_services_run_side_by_side_on_one_nats() {
    let nats = NatsServer::start().unwrap();
    let shutdown = CancellationToken::new();
    let mut admins = Vec::new();
    let mut tasks = Vec::new();
    let mut reservations = Vec::new();
    // The two services that talk to Slack talk to the emulator.
    let slack = crate::slack_edge::start_emulator(crate::slack_edge::emulator_config()).await;
    let slack_gateway_defaults = slack_gateway::Config {
        slack: slack_gateway::SlackConfig {
            api_url: slack.api_base(),
            ..Default::default()
        },
        ..Default::default()
    };
    macro_rules! start {
        ($service:ident, $defaults:expr) => {{
            let (admin, addr, reservation) = admin_on_free_port();
            reservations.push(reservation);
            let config = $service::Config {
                nats: nats_config(&nats),
                admin,
                ..$defaults
            };
            admins.push((stringify!($service), addr));
            tasks.push(tokio::spawn($service::run(config, shutdown.clone())));
        }};
    }
    start!(slack_gateway, slack_gateway_defaults);
    start!(alert_watcher, alert_watcher::Config::default());
    start!(profile_fetcher, profile_fetcher::Config::default());
    start!(sandbox_runner, sandbox_runner::Config::default());
    start!(
        remediation_poster,
        remediation_poster::Config {
            slack: remediation_poster::SlackConfig {
                api_url: slack.api_base(),
                ..Default::default()
            },
            ..Default::default()
        }
    );

    for (name, addr) in &admins {
        wait_ready(*addr, Duration::from_secs(20))
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        let (status, metrics) = http_get_async(*addr, "/metrics").await;
        assert_eq!(status, 200, "{name}");
        // The services share this process's recorder; provisioning publishes nothing, but the
        // exposition format is there.
        assert!(
            metrics.is_empty() || metrics.contains("# TYPE"),
            "{name}: {metrics}"
        );
    }
    shutdown.cancel();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn an_admin_port_in_use_is_a_clear_error() {
    let nats = NatsServer::start().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = sandbox_runner::Config {
        nats: nats_config(&nats),
        admin: AdminConfig { listen: addr },
        ..Default::default()
    };
    let err = sandbox_runner::run(config, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot listen on {addr} for the admin server")),
        "{err}"
    );
}

/// When one of a service's tasks fails, the others drain as at shutdown (they see the shutdown
/// cancelled and finish what they hold) before the service ends with the first failure's name.
#[tokio::test]
async fn a_failing_task_stops_the_others_by_shutdown_not_by_abort() {
    let nats = NatsServer::start().unwrap();
    let context = runtime::ServiceContext {
        bus: bus::Bus::connect(&nats_config(&nats), "tasks-test")
            .await
            .unwrap(),
        readiness: runtime::Readiness::new(),
        shutdown: CancellationToken::new(),
        registered: runtime::Stage::pending("registering"),
    };
    let drained = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = runtime::Tasks::new(&context);
    tasks.spawn("the patient job", {
        let (shutdown, drained) = (context.shutdown.clone(), drained.clone());
        async move {
            shutdown.cancelled().await;
            // What it holds takes a moment to finish; an abort would cut this short.
            tokio::time::sleep(Duration::from_millis(200)).await;
            drained.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    });
    tasks.spawn("the failing job", async {
        anyhow::bail!("the disk is gone")
    });
    let err = tokio::time::timeout(Duration::from_secs(10), tasks.run())
        .await
        .expect("the service ends")
        .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "the failing job failed: the disk is gone"
    );
    assert!(
        context.shutdown.is_cancelled(),
        "the others were told to stop"
    );
    assert!(
        drained.load(std::sync::atomic::Ordering::SeqCst),
        "the patient job finished what it held"
    );
}
