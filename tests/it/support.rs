//! Helpers shared by the integration tests.

use std::{sync::OnceLock, time::Duration};

use bus::{Bus, ConsumerOptions, NatsConfig};
use opentelemetry_sdk::trace::InMemorySpanExporter;
use test_support::NatsServer;

/// Telemetry for the whole test process, with spans kept in memory. Tests in one process share
/// it (a global subscriber can be installed once).
pub(crate) fn telemetry() -> &'static (telemetry::Telemetry, InMemorySpanExporter) {
    static TELEMETRY: OnceLock<(telemetry::Telemetry, InMemorySpanExporter)> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let installed = telemetry::TelemetryBuilder::new("flamethread-it")
            .default_filter("warn")
            .span_exporter(exporter.clone())
            .init()
            .expect("telemetry installs once per process");
        (installed, exporter)
    })
}

pub(crate) fn nats_config(server: &NatsServer) -> NatsConfig {
    NatsConfig {
        url: server.url(),
        ack_wait: Duration::from_secs(2),
        max_deliver: 3,
        ..NatsConfig::default()
    }
}

pub(crate) async fn connect(server: &NatsServer, name: &str) -> Bus {
    Bus::connect(&nats_config(server), name)
        .await
        .expect("connects")
}

pub(crate) async fn provisioned_bus(server: &NatsServer, name: &str) -> Bus {
    let bus = connect(server, name).await;
    bus.provision().await.expect("provisions");
    bus
}

pub(crate) fn fast_options() -> ConsumerOptions {
    ConsumerOptions {
        concurrency: 4,
        retry_base_delay: Duration::from_millis(50),
        retry_max_delay: Duration::from_millis(200),
        heartbeat: Duration::from_millis(500),
        handler_timeout: Duration::from_secs(3),
    }
}

pub(crate) use test_support::fixtures::slack_message;

/// The durable consumer alert-watcher reads Slack messages with.
pub(crate) fn messages_consumer() -> &'static proto::ConsumerSpec {
    proto::subjects::CONSUMERS
        .iter()
        .find(|spec| spec.durable == "alert-watcher-messages")
        .expect("declared in proto")
}

/// Every message currently stored in `stream`, in order.
pub(crate) async fn stored_messages(
    bus: &Bus,
    stream: &str,
) -> Vec<async_nats::jetstream::message::StreamMessage> {
    let mut stream = bus
        .jetstream()
        .get_stream(stream)
        .await
        .expect("stream exists");
    let info = stream.info().await.expect("stream info").clone();
    let mut messages = Vec::new();
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        if let Ok(message) = stream.get_raw_message(sequence).await {
            messages.push(message);
        }
    }
    messages
}

/// A consumer loop on alert-watcher's message consumer, running in the background.
pub(crate) struct RunningConsumer {
    shutdown: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<Result<(), bus::Error>>,
}

impl RunningConsumer {
    /// Cancels the loop and waits for it to drain.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.task
            .await
            .expect("the consumer task does not panic")
            .expect("the consumer stops cleanly");
    }

    /// Kills the loop where it is, as a crash would: nothing in flight is acked.
    pub(crate) async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

pub(crate) fn spawn_consumer<H, Fut>(bus: &Bus, handler: H) -> RunningConsumer
where
    H: Fn(bus::Delivery<proto::SlackMessage>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), bus::HandlerError>> + Send + 'static,
{
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(bus::consumer::run(
        bus.clone(),
        messages_consumer(),
        fast_options(),
        shutdown.clone(),
        handler,
    ));
    RunningConsumer { shutdown, task }
}

/// Runs `command` (a CLI: docker, docker-compose) and returns what it printed; panics with its
/// output when it fails.
pub(crate) fn run(command: &mut std::process::Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
