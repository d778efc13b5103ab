//! Publish and publish-to-consume latency through JetStream on loopback, against a real
//! nats-server started for the benchmark (`cargo bench -p bus --bench jetstream`).
//!
//! - `publish_acked`: one typed publish, until JetStream acknowledged it (what the gateway waits
//!   for before it acknowledges Slack).
//! - `publish_to_handler`: one message from `Bus::publish` until the consumer loop handed it to a
//!   handler on another connection.
//! - `pipelined_1000`: a thousand publishes in flight at once, until all were consumed; the
//!   throughput figure is messages per second.

use std::time::Duration;

use bus::{Bus, ConsumerOptions, Delivery, NatsConfig, consumer};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::future::join_all;
use proto::SlackMessage;
use test_support::{NatsServer, fixtures};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn message(n: u64) -> SlackMessage {
    fixtures::slack_message(&format!("Ev{n:012}"))
}

fn benchmarks(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = NatsServer::start().expect("nats-server starts (install it with tests/run.sh)");
    let config = NatsConfig {
        url: server.url(),
        ..NatsConfig::default()
    };
    let (producer, consumer_bus) = runtime.block_on(async {
        let producer = Bus::connect(&config, "bench-producer")
            .await
            .expect("connects");
        producer.provision().await.expect("provisions");
        (
            producer,
            Bus::connect(&config, "bench-consumer")
                .await
                .expect("connects"),
        )
    });

    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<()>();
    let shutdown = CancellationToken::new();
    let spec = proto::subjects::CONSUMERS
        .iter()
        .find(|c| c.durable == "alert-watcher-messages")
        .expect("declared");
    runtime.spawn(consumer::run(
        consumer_bus,
        spec,
        ConsumerOptions {
            concurrency: 64,
            ..ConsumerOptions::default()
        },
        shutdown.clone(),
        move |_: Delivery<SlackMessage>| {
            let seen_tx = seen_tx.clone();
            async move {
                let _ = seen_tx.send(());
                Ok(())
            }
        },
    ));

    let mut sequence = 0u64;
    let mut group = c.benchmark_group("jetstream_loopback");
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(1));
    group.bench_function("publish_acked", |b| {
        b.to_async(&runtime).iter(|| {
            sequence += 1;
            let message = message(sequence);
            let producer = producer.clone();
            async move { producer.publish(&message).await.expect("published") }
        })
    });
    // Drain what the publish benchmark left for the consumer: until nothing arrives for 500 ms,
    // so that no leftover is counted as a round trip below.
    runtime.block_on(async {
        while tokio::time::timeout(Duration::from_millis(500), seen_rx.recv())
            .await
            .is_ok()
        {}
    });

    group.bench_function("publish_to_handler", |b| {
        b.iter(|| {
            sequence += 1;
            let message = message(sequence);
            runtime.block_on(async {
                producer.publish(&message).await.expect("published");
                seen_rx.recv().await.expect("consumed");
            })
        })
    });

    group.throughput(Throughput::Elements(1000));
    group.sample_size(10);
    group.bench_function("pipelined_1000", |b| {
        b.iter(|| {
            let batch: Vec<SlackMessage> = (0..1000)
                .map(|_| {
                    sequence += 1;
                    message(sequence)
                })
                .collect();
            runtime.block_on(async {
                join_all(batch.iter().map(|message| producer.publish(message))).await;
                for _ in 0..1000 {
                    seen_rx.recv().await.expect("consumed");
                }
            })
        })
    });
    group.finish();
    shutdown.cancel();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
