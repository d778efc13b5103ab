//! A load harness for slack-gateway: `--alerts` Alertmanager notifications posted into the Slack
//! emulator's `#alerts` (`--in-flight` at a time), received by the gateway over Socket Mode and
//! published to a real nats-server. Reports the latency from "Slack accepted the post" to
//! "JetStream stored the event" as p50/p90/p99/max, and the throughput.
//!
//! `cargo run --release -p slack-gateway --example socket_mode_load -- --alerts 2000 --in-flight 16`

#![allow(clippy::print_stdout, reason = "a load harness reports on stdout")]

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use test_support::NatsServer;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

fn parse_args() -> anyhow::Result<(usize, usize)> {
    let (mut alerts, mut in_flight) = (2000, 16);
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let value: usize = iter
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?
            .parse()?;
        match flag.as_str() {
            "--alerts" => alerts = value,
            "--in-flight" => in_flight = value.max(1),
            other => anyhow::bail!("unknown flag {other} (use --alerts, --in-flight)"),
        }
    }
    Ok((alerts, in_flight))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (alerts, in_flight) = parse_args()?;
    let nats = NatsServer::start()?;
    let slack = slack_emulator::start(
        slack_emulator::EmulatorConfig::default(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await?;
    let reservation = test_support::reserve_port()?;
    let config = slack_gateway::Config {
        nats: bus::NatsConfig {
            url: nats.url(),
            ..Default::default()
        },
        admin: runtime::AdminConfig {
            listen: reservation.addr(),
        },
        slack: slack_gateway::SlackConfig {
            api_url: slack.api_base(),
            ..Default::default()
        },
        ..Default::default()
    };
    let shutdown = CancellationToken::new();
    let gateway = tokio::spawn(slack_gateway::run(config, shutdown.clone()));
    test_support::wait_ready(reservation.addr(), Duration::from_secs(30)).await?;

    let bus = bus::Bus::connect(
        &bus::NatsConfig {
            url: nats.url(),
            ..Default::default()
        },
        "load-observer",
    )
    .await?;
    let mut stored = bus
        .client()
        .subscribe(bus.subjects().subject(proto::Subject::SlackMessage))
        .await?;

    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let http = slack::http_client(Duration::from_secs(10))?;
    let control = format!("{}/post", slack.control_base());
    let permits = Arc::new(Semaphore::new(in_flight));
    let started = Instant::now();
    let poster = {
        let sent = sent.clone();
        tokio::spawn(async move {
            for i in 0..alerts {
                let permit = permits.clone().acquire_owned().await?;
                let (http, control, sent) = (http.clone(), control.clone(), sent.clone());
                tokio::spawn(async move {
                    let title = format!("[FIRING:1] Load{i} checkout (prod)");
                    let body = json!({"channel": "C0ALERTS", "bot_id": "B0AMGR", "username": "Alertmanager",
                        "attachments": [{"color": "danger", "title": title, "text": ""}]});
                    let before = Instant::now();
                    if http.post(&control).json(&body).send().await.is_ok() {
                        sent.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(title, before);
                    }
                    drop(permit);
                });
            }
            anyhow::Ok(())
        })
    };

    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut received = 0;
    while received < alerts {
        let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(30), stored.next()).await
        else {
            anyhow::bail!("only {received} of {alerts} alerts were stored");
        };
        let now = Instant::now();
        let event: Value = serde_json::from_slice(&message.payload)?;
        let title = event["raw"]["attachments"][0]["title"]
            .as_str()
            .unwrap_or_default();
        let posted = sent.lock().unwrap_or_else(|e| e.into_inner()).remove(title);
        if let Some(posted) = posted {
            latency.record((now - posted).as_micros().max(1) as u64)?;
        }
        received += 1;
    }
    let elapsed = started.elapsed();
    poster.await??;
    shutdown.cancel();
    gateway.await??;

    let ms = |quantile: f64| latency.value_at_quantile(quantile) as f64 / 1000.0;
    println!(
        "{alerts} alerts through Socket Mode into JetStream in {:.2} s: {:.0} alerts/s; \
         Slack-to-stored latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        elapsed.as_secs_f64(),
        alerts as f64 / elapsed.as_secs_f64(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        latency.max() as f64 / 1000.0
    );
    Ok(())
}
