//! Faults: a consumer that dies before acking, a handler that hangs, and a nats-server killed
//! and restarted in the middle of a stream. Nothing accepted is lost, and effects happen once.

use std::{
    collections::BTreeSet,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bus::{Delivery, HandlerError};
use proto::{DeadLetter, ErrorCode, SlackMessage};
use tokio::sync::{Mutex, Notify};

use crate::support::{connect, provisioned_bus, slack_message, spawn_consumer, stored_messages};
use test_support::{NatsServer, wait_for};

/// The effect of handling a message: a KV entry created once per event. `kv.create` fails when
/// the key exists, which is what makes a redelivered message's effect happen once.
async fn apply_effect(
    store: &async_nats::jetstream::kv::Store,
    event_id: &str,
) -> Result<bool, HandlerError> {
    match store
        .create(format!("effect.{event_id}"), "done".into())
        .await
    {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => {
            Ok(false)
        }
        Err(err) => Err(HandlerError::retry(err)),
    }
}

#[tokio::test]
async fn a_consumer_killed_before_acking_gets_the_message_again_and_the_effect_happens_once() {
    let server = NatsServer::start().unwrap();
    let bus = provisioned_bus(&server, "alert-watcher").await;
    let store = bus.incident_store().await.unwrap();
    bus.publish(&slack_message("Ev-crash")).await.unwrap();

    // First incarnation: applies the effect, then "crashes" before it can ack.
    let effect_applied = Arc::new(Notify::new());
    let first = {
        let store = store.clone();
        let effect_applied = effect_applied.clone();
        spawn_consumer(&bus, move |delivery: Delivery<SlackMessage>| {
            let store = store.clone();
            let effect_applied = effect_applied.clone();
            async move {
                apply_effect(&store, &delivery.message.event_id).await?;
                effect_applied.notify_one();
                std::future::pending::<()>().await;
                Ok(())
            }
        })
    };
    tokio::time::timeout(Duration::from_secs(10), effect_applied.notified())
        .await
        .unwrap();
    first.kill().await;

    // Second incarnation, on another connection (a restarted process).
    let restarted = provisioned_bus(&server, "alert-watcher-restarted").await;
    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let applied_again = Arc::new(AtomicU64::new(0));
    let second = {
        let store = store.clone();
        let deliveries = deliveries.clone();
        let applied_again = applied_again.clone();
        spawn_consumer(&restarted, move |delivery: Delivery<SlackMessage>| {
            let store = store.clone();
            let deliveries = deliveries.clone();
            let applied_again = applied_again.clone();
            async move {
                deliveries.lock().await.push(delivery.delivered);
                if apply_effect(&store, &delivery.message.event_id).await? {
                    applied_again.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            }
        })
    };
    wait_for(Duration::from_secs(15), "the redelivery", || {
        let deliveries = deliveries.clone();
        async move { !deliveries.lock().await.is_empty() }
    })
    .await
    .unwrap();
    // Give a wrong second redelivery time to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    second.stop().await;

    assert_eq!(
        *deliveries.lock().await,
        [2],
        "redelivered once, as delivery 2"
    );
    assert_eq!(
        applied_again.load(Ordering::SeqCst),
        0,
        "the effect was not applied twice"
    );
    let keys: Vec<String> = {
        use futures::TryStreamExt as _;
        store.keys().await.unwrap().try_collect().await.unwrap()
    };
    assert_eq!(keys, ["effect.Ev-crash"]);
    assert!(stored_messages(&bus, "FT_DEADLETTER").await.is_empty());
}

#[tokio::test]
async fn a_handler_that_hangs_times_out_is_retried_and_dead_lettered() {
    let server = NatsServer::start().unwrap();
    let bus = provisioned_bus(&server, "alert-watcher").await;
    bus.publish(&slack_message("Ev-hangs")).await.unwrap();
    bus.publish(&slack_message("Ev-fine")).await.unwrap();

    let fine = Arc::new(AtomicU64::new(0));
    let counter = fine.clone();
    let consumer = spawn_consumer(&bus, move |delivery: Delivery<SlackMessage>| {
        let counter = counter.clone();
        async move {
            if delivery.message.event_id == "Ev-hangs" {
                // Never returns: the loop gives up after `handler_timeout` (3 s here).
                std::future::pending::<()>().await;
            }
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    wait_for(
        Duration::from_secs(40),
        "the hanging message's dead letter",
        || {
            let bus = bus.clone();
            async move { !stored_messages(&bus, "FT_DEADLETTER").await.is_empty() }
        },
    )
    .await
    .unwrap();
    consumer.stop().await;

    let letters = stored_messages(&bus, "FT_DEADLETTER").await;
    assert_eq!(letters.len(), 1);
    let letter: DeadLetter = serde_json::from_slice(&letters[0].payload).unwrap();
    assert_eq!(letter.code, ErrorCode::MaxDeliveriesExceeded);
    assert_eq!(letter.deliveries, 3);
    assert_eq!(
        letter.reason,
        "failed on all 3 deliveries; last error: handler did not finish within 3s"
    );
    assert_eq!(
        fine.load(Ordering::SeqCst),
        1,
        "the next message was handled meanwhile"
    );
}

#[tokio::test]
async fn a_slow_handler_keeps_its_message_past_ack_wait() {
    let server = NatsServer::start().unwrap();
    let bus = provisioned_bus(&server, "sandbox-runner").await;
    bus.publish(&slack_message("Ev-slow")).await.unwrap();

    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let recorder = deliveries.clone();
    let consumer = spawn_consumer(&bus, move |delivery: Delivery<SlackMessage>| {
        let recorder = recorder.clone();
        async move {
            recorder.lock().await.push(delivery.delivered);
            // Longer than ack_wait (2 s), shorter than handler_timeout (3 s).
            tokio::time::sleep(Duration::from_millis(2_600)).await;
            Ok(())
        }
    });
    // Long enough for an unwanted redelivery (at 2 s, and again after) to show up.
    tokio::time::sleep(Duration::from_secs(6)).await;
    consumer.stop().await;
    assert_eq!(
        *deliveries.lock().await,
        [1],
        "progress acks kept the message from being redelivered"
    );
    assert!(stored_messages(&bus, "FT_DEADLETTER").await.is_empty());
}

#[tokio::test]
async fn a_message_that_crashes_its_consumer_every_time_is_dead_lettered_unhandled() {
    let server = NatsServer::start().unwrap();
    let bus = provisioned_bus(&server, "alert-watcher").await;
    bus.publish(&slack_message("Ev-crasher")).await.unwrap();

    // Three incarnations, each killed while handling it (max_deliver is 3 here).
    for incarnation in 1..=3u64 {
        let started = Arc::new(Notify::new());
        let signal = started.clone();
        let consumer = spawn_consumer(&bus, move |delivery: Delivery<SlackMessage>| {
            let signal = signal.clone();
            async move {
                assert_eq!(delivery.delivered, incarnation);
                signal.notify_one();
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        tokio::time::timeout(Duration::from_secs(15), started.notified())
            .await
            .unwrap();
        consumer.kill().await;
    }

    // The fourth sees delivery 4 and dead-letters it without handing it to the handler.
    let handled = Arc::new(AtomicU64::new(0));
    let counter = handled.clone();
    let consumer = spawn_consumer(&bus, move |_: Delivery<SlackMessage>| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    wait_for(Duration::from_secs(15), "the crasher's dead letter", || {
        let bus = bus.clone();
        async move { !stored_messages(&bus, "FT_DEADLETTER").await.is_empty() }
    })
    .await
    .unwrap();
    consumer.stop().await;

    assert_eq!(handled.load(Ordering::SeqCst), 0);
    let letters = stored_messages(&bus, "FT_DEADLETTER").await;
    let letter: DeadLetter = serde_json::from_slice(&letters[0].payload).unwrap();
    assert_eq!(letter.code, ErrorCode::MaxDeliveriesExceeded);
    assert_eq!(letter.deliveries, 4);
    assert!(
        letter
            .reason
            .starts_with("delivered 3 times without being acknowledged"),
        "{}",
        letter.reason
    );
}

#[tokio::test]
async fn nats_server_killed_and_restarted_mid_stream_loses_nothing() {
    const MESSAGES: usize = 300;
    let mut server = NatsServer::start().unwrap();
    let producer_bus = provisioned_bus(&server, "slack-gateway").await;
    let consumer_bus = provisioned_bus(&server, "alert-watcher").await;

    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let handled = Arc::new(AtomicU64::new(0));
    let consumer = {
        let seen = seen.clone();
        let handled = handled.clone();
        spawn_consumer(
            &consumer_bus.clone(),
            move |delivery: Delivery<SlackMessage>| {
                let seen = seen.clone();
                let handled = handled.clone();
                async move {
                    seen.lock().await.insert(delivery.message.event_id);
                    handled.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            },
        )
    };

    // The producer publishes steadily, retrying (with the same Nats-Msg-Id) while the server is
    // down. Every message whose publish returned Ok was accepted and must arrive.
    let accepted = Arc::new(Mutex::new(BTreeSet::new()));
    let producer = {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            for n in 0..MESSAGES {
                let event_id = format!("Ev-{n:04}");
                producer_bus
                    .publish_with_retry(&slack_message(&event_id), Duration::from_secs(60))
                    .await
                    .expect("published before the deadline");
                accepted.lock().await.insert(event_id);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    wait_for(
        Duration::from_secs(20),
        "a third of the stream consumed",
        || {
            let seen = seen.clone();
            async move { seen.lock().await.len() >= MESSAGES / 3 }
        },
    )
    .await
    .unwrap();
    server.kill();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!consumer_bus.is_connected(), "the client noticed the crash");
    server.restart().unwrap();

    producer.await.unwrap();
    wait_for(
        Duration::from_secs(60),
        "every accepted message consumed",
        || {
            let seen = seen.clone();
            async move { seen.lock().await.len() >= MESSAGES }
        },
    )
    .await
    .unwrap();
    assert!(
        consumer_bus.is_connected(),
        "the client reconnected by itself"
    );
    consumer.stop().await;

    let accepted = accepted.lock().await.clone();
    let seen = seen.lock().await.clone();
    assert_eq!(accepted.len(), MESSAGES);
    assert_eq!(seen, accepted, "every accepted message was consumed");
    let stored = stored_messages(&connect(&server, "inspector").await, "FT_SLACK").await;
    assert_eq!(
        stored.len(),
        MESSAGES,
        "retries across the restart were stored once"
    );
}

#[tokio::test]
async fn shutdown_lets_the_handler_in_flight_finish_and_ack() {
    let server = NatsServer::start().unwrap();
    let bus = provisioned_bus(&server, "alert-watcher").await;
    bus.publish(&slack_message("Ev-in-flight")).await.unwrap();

    let started = Arc::new(Notify::new());
    let finished = Arc::new(AtomicU64::new(0));
    let consumer = {
        let started = started.clone();
        let finished = finished.clone();
        spawn_consumer(&bus, move |_: Delivery<SlackMessage>| {
            let started = started.clone();
            let finished = finished.clone();
            async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_millis(800)).await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
    };
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .unwrap();
    // SIGTERM arrives while the handler works: the loop waits for it, and it acks.
    consumer.stop().await;
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "stop returned only after the handler finished"
    );

    let stream = bus.jetstream().get_stream("FT_SLACK").await.unwrap();
    let mut info = stream
        .consumer_info("alert-watcher-messages")
        .await
        .unwrap()
        .clone();
    // The ack may still be on its way to the server when `stop` returns.
    for _ in 0..50 {
        if info.num_ack_pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        info = stream
            .consumer_info("alert-watcher-messages")
            .await
            .unwrap()
            .clone();
    }
    assert_eq!(info.num_ack_pending, 0, "nothing left unacknowledged");
    assert_eq!(info.num_pending, 0, "nothing left undelivered");
    assert_eq!(
        info.ack_floor.stream_sequence, 1,
        "the message was acknowledged"
    );
}
