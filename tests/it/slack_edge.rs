//! Shared set-up for the Slack-edge tests: a real nats-server, the Slack emulator, and
//! slack-gateway or remediation-poster running in-process against both.

use std::{net::SocketAddr, time::Duration};

use bus::Bus;
use serde_json::{Value, json};
use slack_emulator::{EmulatorConfig, Running};
use test_support::{NatsServer, PortReservation, reserve_port, wait_ready};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::{nats_config, provisioned_bus, stored_messages};

/// An emulator tuned for tests: quick redelivery and retries.
pub(crate) fn emulator_config() -> EmulatorConfig {
    EmulatorConfig {
        socket_ack_timeout: Duration::from_millis(700),
        socket_max_retries: 20,
        http_retry_delays: vec![
            Duration::ZERO,
            Duration::from_millis(500),
            Duration::from_secs(1),
        ],
        ..EmulatorConfig::default()
    }
}

pub(crate) async fn start_emulator(config: EmulatorConfig) -> Running {
    slack_emulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

/// A service running in-process until stopped, on a Tokio runtime of its own: every task it
/// spawns lives there, so [`RunningService::kill`] ends all of them at once, as a crash ends a
/// process (work on blocking threads finishes, as a system call would).
pub(crate) struct RunningService {
    /// Its admin server (`/readyz`, `/metrics`, `/debug/pprof/profile`).
    pub(crate) admin: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), runtime::Error>>,
    runtime: Option<tokio::runtime::Runtime>,
    _reservation: PortReservation,
}

impl RunningService {
    pub(crate) async fn stop(mut self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), &mut self.task)
            .await
            .expect("stops within 20 s of shutdown")
            .expect("does not panic")
            .expect("stops cleanly");
    }

    /// Stops it where it is, as a crash would: every task it spawned is dropped, nothing in
    /// flight is acknowledged or recorded, its sockets close.
    pub(crate) async fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

pub(crate) async fn spawn_service<F, Fut>(run: F) -> RunningService
where
    F: FnOnce(runtime::AdminConfig, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<(), runtime::Error>> + Send + 'static,
{
    let reservation = reserve_port().unwrap();
    let admin = reservation.addr();
    let shutdown = CancellationToken::new();
    let service_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let task = service_runtime.spawn(run(
        runtime::AdminConfig { listen: admin },
        shutdown.clone(),
    ));
    wait_ready(admin, Duration::from_secs(20)).await.unwrap();
    RunningService {
        admin,
        shutdown,
        task,
        runtime: Some(service_runtime),
        _reservation: reservation,
    }
}

pub(crate) fn gateway_config(
    nats: &NatsServer,
    slack: &Running,
    admin: runtime::AdminConfig,
) -> slack_gateway::Config {
    slack_gateway::Config {
        nats: nats_config(nats),
        admin,
        slack: slack_gateway::SlackConfig {
            api_url: slack.api_base(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A channel message's thread replies that are messages (flamethread's reply), not the pictures
/// shared into the thread.
pub(crate) fn replies_of(message: &Value) -> Vec<Value> {
    let replies = message["replies"].as_array().cloned().unwrap_or_default();
    replies
        .into_iter()
        .filter(|reply| reply.get("files").is_none())
        .collect()
}

/// The emulator's control API.
#[derive(Clone)]
pub(crate) struct Control {
    base: String,
    http: reqwest::Client,
}

impl Control {
    pub(crate) fn new(slack: &Running) -> Control {
        Control {
            base: slack.control_base(),
            http: slack::http_client(Duration::from_secs(10)).unwrap(),
        }
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Posts an alert as Alertmanager's default Slack template does (through its webhook bot).
    pub(crate) async fn post_alert(&self, channel: &str, alert: &str) -> String {
        self.post_alert_saying(channel, alert, "").await
    }

    /// [`Control::post_alert`], the attachment's text saying `text` (as a template that lists
    /// the alert's labels does).
    pub(crate) async fn post_alert_saying(&self, channel: &str, alert: &str, text: &str) -> String {
        let answer = self
            .post(
                "/post",
                json!({
                    "channel": channel, "bot_id": "B0AMGR", "username": "Alertmanager",
                    "attachments": [{
                        "color": "danger",
                        "title": format!("[FIRING:1] {alert} checkout (prod)"),
                        "title_link": "http://alertmanager:9093/#/alerts?receiver=slack",
                        "fallback": format!("[FIRING:1] {alert} checkout | http://alertmanager:9093/#/alerts?receiver=slack"),
                        "footer": "Alertmanager", "text": text
                    }]
                }),
            )
            .await;
        answer["ts"].as_str().unwrap().to_owned()
    }

    /// The replies in the thread of the message `ts` in `channel` ([`replies_of`]).
    pub(crate) async fn replies(&self, channel: &str, ts: &str) -> Vec<Value> {
        self.channel(channel)
            .await
            .iter()
            .find(|message| message["ts"] == ts)
            .map(replies_of)
            .unwrap_or_default()
    }

    /// The channel, oldest first, each top-level message with its `replies`.
    pub(crate) async fn channel(&self, channel: &str) -> Vec<Value> {
        self.get(&format!("/channels/{channel}")).await["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Every Socket Mode / HTTP delivery so far.
    pub(crate) async fn deliveries(&self) -> Vec<Value> {
        self.get("/deliveries").await["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until every delivery so far was acknowledged.
    pub(crate) async fn wait_all_acked(&self) {
        test_support::wait_for(Duration::from_secs(20), "every delivery acked", || async {
            self.deliveries()
                .await
                .iter()
                .all(|delivery| delivery["acked"] == true)
        })
        .await
        .unwrap();
    }
}

/// The payloads stored on `subject` (full name) so far, decoded as JSON.
pub(crate) async fn published(bus: &Bus, stream: &str, subject: &str) -> Vec<Value> {
    stored_messages(bus, stream)
        .await
        .into_iter()
        .filter(|message| message.subject.as_str() == subject)
        .map(|message| serde_json::from_slice(&message.payload).unwrap())
        .collect()
}

/// Waits until `subject` holds at least `count` messages, and returns them.
pub(crate) async fn wait_published(
    bus: &Bus,
    stream: &str,
    subject: &str,
    count: usize,
) -> Vec<Value> {
    test_support::wait_for(
        Duration::from_secs(20),
        &format!("{count} messages on {subject}"),
        || async { published(bus, stream, subject).await.len() >= count },
    )
    .await
    .unwrap();
    published(bus, stream, subject).await
}

pub(crate) async fn observer(nats: &NatsServer) -> Bus {
    provisioned_bus(nats, "test-observer").await
}

pub(crate) fn poster_config(
    nats: &NatsServer,
    slack: &Running,
    admin: runtime::AdminConfig,
) -> remediation_poster::Config {
    remediation_poster::Config {
        nats: nats_config(nats),
        admin,
        slack: remediation_poster::SlackConfig {
            api_url: slack.api_base(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// slack-gateway on `nats`, talking to the emulator `slack`.
pub(crate) async fn start_gateway(nats: &NatsServer, slack: &Running) -> RunningService {
    spawn_service(|admin, shutdown| {
        slack_gateway::run(gateway_config(nats, slack, admin), shutdown)
    })
    .await
}

/// alert-watcher on `nats`, its defaults changed by `edit`.
pub(crate) async fn start_watcher(
    nats: &NatsServer,
    edit: impl FnOnce(&mut alert_watcher::Config),
) -> RunningService {
    let mut config = alert_watcher::Config {
        nats: nats_config(nats),
        ..Default::default()
    };
    edit(&mut config);
    spawn_service(|admin, shutdown| {
        alert_watcher::run(alert_watcher::Config { admin, ..config }, shutdown)
    })
    .await
}

/// remediation-poster on `nats`, talking to the emulator `slack`.
pub(crate) async fn start_poster(nats: &NatsServer, slack: &Running) -> RunningService {
    spawn_service(|admin, shutdown| {
        remediation_poster::run(poster_config(nats, slack, admin), shutdown)
    })
    .await
}

/// A Pyroscope emulator in which `checkout` spent its CPU in `regex_backtrack` five minutes ago.
pub(crate) async fn pyroscope_with_checkout() -> pyroscope_emulator::PyroscopeEmulator {
    pyroscope_with_checkout_at(SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// As [`pyroscope_with_checkout`], listening on `addr`.
pub(crate) async fn pyroscope_with_checkout_at(
    addr: SocketAddr,
) -> pyroscope_emulator::PyroscopeEmulator {
    let pyroscope = pyroscope_emulator::PyroscopeEmulator::start_at(addr, None)
        .await
        .unwrap();
    let folded: profile_fetcher::profile::Folded =
        [("main;serve;regex_backtrack".to_owned(), 900u64)]
            .into_iter()
            .collect();
    pyroscope.ingest(
        "checkout",
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
        chrono::Utc::now() - chrono::Duration::minutes(5),
        folded,
    );
    pyroscope
}

/// profile-fetcher on `nats`, reading `pyroscope` and profiling the `live` targets (name, base
/// URL) for a second when asked now.
pub(crate) async fn start_fetcher(
    nats: &NatsServer,
    pyroscope: &pyroscope_emulator::PyroscopeEmulator,
    live: &[(&str, String)],
) -> RunningService {
    let config = profile_fetcher::Config {
        nats: nats_config(nats),
        pyroscope: profile_fetcher::PyroscopeConfig {
            url: pyroscope.url(),
            ..Default::default()
        },
        live: profile_fetcher::LiveConfig {
            targets: live
                .iter()
                .map(|(name, url)| ((*name).to_owned(), url.clone()))
                .collect(),
            default_seconds: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    spawn_service(|admin, shutdown| {
        profile_fetcher::run(profile_fetcher::Config { admin, ..config }, shutdown)
    })
    .await
}
