//! A load harness for the bus: publishes `--messages` Slack messages at `--rate` per second
//! (0 = as fast as possible, `--in-flight` at a time) through a real nats-server on loopback and
//! reports the latency from `publish` to handler as p50/p90/p99/max, plus throughput.
//!
//! `cargo run --release -p bus --example loopback_load -- --messages 20000 --rate 2000`

#![allow(clippy::print_stdout, reason = "a load harness reports on stdout")]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bus::{Bus, ConsumerOptions, Delivery, NatsConfig, consumer};
use hdrhistogram::Histogram;
use proto::SlackMessage;
use test_support::{NatsServer, fixtures};
use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy)]
struct Args {
    messages: u64,
    rate: u64,
    in_flight: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        messages: 20_000,
        rate: 0,
        in_flight: 256,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let value: u64 = iter
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?
            .parse()?;
        match flag.as_str() {
            "--messages" => args.messages = value,
            "--rate" => args.rate = value,
            "--in-flight" => args.in_flight = value as usize,
            other => anyhow::bail!("unknown flag {other}; use --messages N --rate N --in-flight N"),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let server = NatsServer::start()?;
    let config = NatsConfig {
        url: server.url(),
        ..NatsConfig::default()
    };
    let producer = Bus::connect(&config, "load-producer").await?;
    producer.provision().await?;
    let consumer_bus = Bus::connect(&config, "load-consumer").await?;

    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<()>();
    let shutdown = CancellationToken::new();
    let spec = proto::subjects::CONSUMERS
        .iter()
        .find(|c| c.durable == "alert-watcher-messages")
        .expect("declared");
    let recorder = histogram.clone();
    let consumer_task = tokio::spawn(consumer::run(
        consumer_bus,
        spec,
        ConsumerOptions {
            concurrency: 64,
            ..ConsumerOptions::default()
        },
        shutdown.clone(),
        move |delivery: Delivery<SlackMessage>| {
            let recorder = recorder.clone();
            let done_tx = done_tx.clone();
            async move {
                let micros = (chrono::Utc::now() - delivery.message.received_at)
                    .num_microseconds()
                    .unwrap_or(0);
                recorder
                    .lock()
                    .await
                    .saturating_record(micros.max(1) as u64);
                let _ = done_tx.send(());
                Ok(())
            }
        },
    ));

    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(args.in_flight));
    let interval = (args.rate > 0).then(|| Duration::from_secs_f64(1.0 / args.rate as f64));
    for n in 0..args.messages {
        if let Some(interval) = interval {
            let due = started + interval.mul_f64(n as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = permits.clone().acquire_owned().await?;
        let producer = producer.clone();
        tokio::spawn(async move {
            let message = fixtures::slack_message(&format!("Ev{n:012}"));
            if let Err(err) = producer
                .publish_with_retry(&message, Duration::from_secs(30))
                .await
            {
                eprintln!("publish failed: {err}");
            }
            drop(permit);
        });
    }
    for _ in 0..args.messages {
        done_rx
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("consumer stopped"))?;
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    consumer_task.await??;

    let histogram = histogram.lock().await;
    let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    println!(
        "messages={} rate={} in_flight={} elapsed={:.2}s throughput={:.0} msg/s latency_ms p50={:.2} p90={:.2} p99={:.2} max={:.2}",
        args.messages,
        if args.rate == 0 {
            "max".to_owned()
        } else {
            args.rate.to_string()
        },
        args.in_flight,
        elapsed.as_secs_f64(),
        args.messages as f64 / elapsed.as_secs_f64(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        histogram.max() as f64 / 1000.0,
    );
    Ok(())
}
