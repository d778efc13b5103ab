//! The bus keeps the contract: typed publish with dedup and trace context, provisioning, dead
//! letters with readable reasons, and messages written by hand from the JSON Schemas.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use bus::{Delivery, HandlerError};
use proto::{DeadLetter, ErrorCode, SlackMessage};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::support::{provisioned_bus, slack_message, spawn_consumer, stored_messages, telemetry};
use test_support::{NatsServer, wait_for};

#[tokio::test]
async fn provisioning_is_idempotent_and_creates_everything() {
    let server = NatsServer::start().unwrap();
    let first = provisioned_bus(&server, "first").await;
    let second = provisioned_bus(&server, "second").await;
    second.provision().await.unwrap();

    let subjects = first.subjects().clone();
    for spec in subjects.streams() {
        let mut stream = first.jetstream().get_stream(&spec.name).await.unwrap();
        let info = stream.info().await.unwrap();
        assert_eq!(info.config.subjects, spec.subjects);
        assert_eq!(info.config.duplicate_window, spec.duplicate_window);
    }
    first.incident_store().await.unwrap();
    first.blob_store().await.unwrap();
}

/// State is read from each bucket's stream leader, never from a replica that may lag behind
/// what was just acknowledged (direct gets): a bucket made or changed by something else that
/// allows them is put right when a service opens it.
#[tokio::test]
async fn state_is_read_from_the_leader_not_from_a_lagging_replica() {
    let server = NatsServer::start().unwrap();
    let bus = provisioned_bus(&server, "first").await;
    let direct = |name: String| {
        let bus = bus.clone();
        async move {
            let mut stream = bus.jetstream().get_stream(&name).await.unwrap();
            stream.info().await.unwrap().config.allow_direct
        }
    };
    let subjects = bus.subjects().clone();
    let kv_streams = [
        format!("KV_{}", subjects.incident_bucket()),
        format!("KV_{}", subjects.reply_bucket()),
    ];
    for name in kv_streams
        .iter()
        .cloned()
        .chain([format!("OBJ_{}", subjects.blob_bucket())])
    {
        assert!(!direct(name.clone()).await, "{name} allows direct gets");
    }
    let store = bus.incident_store().await.unwrap();
    assert!(!store.stream.cached_info().config.allow_direct);

    // Something (an older version, a person with the nats CLI) turns direct gets back on.
    for name in &kv_streams {
        let mut stream = bus.jetstream().get_stream(name).await.unwrap();
        let mut config = stream.info().await.unwrap().config.clone();
        config.allow_direct = true;
        bus.jetstream().update_stream(config).await.unwrap();
        assert!(direct(name.clone()).await);
    }
    let incidents = bus.incident_store().await.unwrap();
    let replies = bus.reply_store().await.unwrap();
    assert!(!incidents.stream.cached_info().config.allow_direct);
    assert!(!replies.stream.cached_info().config.allow_direct);
    for name in kv_streams {
        assert!(
            !direct(name.clone()).await,
            "{name} still allows direct gets"
        );
    }
    // And the handles work.
    incidents.put("k", "v".into()).await.unwrap();
    assert_eq!(
        incidents.get("k").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

/// Every stream JetStream holds for flamethread (its own, the KV buckets', the object store's)
/// has an age and a byte limit, from `[nats.retention]`, and a changed limit is applied by the
/// next start-up's provisioning.
#[tokio::test]
async fn everything_kept_has_retention_and_follows_the_configuration() {
    use futures::TryStreamExt as _;

    let server = NatsServer::start().unwrap();
    let bus = provisioned_bus(&server, "first").await;
    let limits = |bus: bus::Bus| async move {
        let names: Vec<String> = bus.jetstream().stream_names().try_collect().await.unwrap();
        let mut limits = std::collections::BTreeMap::new();
        for name in names {
            let mut stream = bus.jetstream().get_stream(&name).await.unwrap();
            let config = stream.info().await.unwrap().config.clone();
            limits.insert(name, (config.max_age, config.max_bytes));
        }
        limits
    };
    let found = limits(bus.clone()).await;
    // The nine streams, two KV buckets and the object store.
    assert_eq!(found.len(), 12, "{found:?}");
    let defaults = bus::RetentionConfig::default();
    for (name, (age, bytes)) in &found {
        assert!(
            !age.is_zero() && *bytes > 0,
            "{name} keeps forever: {age:?} {bytes}"
        );
        if name.starts_with("KV_") {
            assert_eq!(
                (*age, *bytes),
                (defaults.state_max_age, defaults.state_max_bytes),
                "{name}"
            );
        } else if name.starts_with("OBJ_") {
            assert_eq!(
                (*age, *bytes),
                (defaults.blobs_max_age, defaults.blobs_max_bytes),
                "{name}"
            );
        } else {
            assert_eq!(*bytes, defaults.stream_max_bytes, "{name}");
        }
    }

    // An operator halves every limit and restarts: the next provisioning applies it.
    let mut config = crate::support::nats_config(&server);
    config.retention = bus::RetentionConfig {
        stream_max_bytes: defaults.stream_max_bytes / 2,
        state_max_age: defaults.state_max_age / 2,
        state_max_bytes: defaults.state_max_bytes / 2,
        blobs_max_age: defaults.blobs_max_age / 2,
        blobs_max_bytes: defaults.blobs_max_bytes / 2,
        ..defaults.clone()
    };
    let restarted = bus::Bus::connect(&config, "restarted").await.unwrap();
    restarted.provision().await.unwrap();
    for (name, (age, bytes)) in limits(restarted).await {
        let (old_age, old_bytes) = found[&name];
        assert_eq!(bytes, old_bytes / 2, "{name}");
        if name.starts_with("KV_") || name.starts_with("OBJ_") {
            assert_eq!(age, old_age / 2, "{name}");
        }
    }
}

/// A soak of the incident bucket: many times its byte limit written as distinct incidents, and
/// every write is accepted (the oldest entries go) while what is stored levels off at the limit.
#[tokio::test]
async fn a_full_bucket_levels_off_and_never_refuses_a_write() {
    let server = NatsServer::start().unwrap();
    let mut config = crate::support::nats_config(&server);
    config.retention.state_max_bytes = 1 << 20;
    let bus = bus::Bus::connect(&config, "soak").await.unwrap();
    bus.provision().await.unwrap();
    let store = bus.incident_store().await.unwrap();
    let value = bytes::Bytes::from(vec![b'x'; 2048]);
    let mut sizes = Vec::new();
    for n in 0..4000 {
        store
            .put(format!("fp.incident-{n:05}"), value.clone())
            .await
            .unwrap_or_else(|err| panic!("write {n} refused: {err}"));
        if n % 500 == 499 {
            let mut stream = bus
                .jetstream()
                .get_stream(format!("KV_{}", bus.subjects().incident_bucket()))
                .await
                .unwrap();
            sizes.push(stream.info().await.unwrap().state.bytes);
        }
    }
    // About 8 MiB written into 1 MiB: it grows to the limit, then stays there.
    assert!(sizes.iter().all(|bytes| *bytes <= 1 << 20), "{sizes:?}");
    let levelled = &sizes[sizes.len() - 4..];
    assert!(
        levelled.iter().all(|bytes| *bytes > (1 << 20) * 3 / 4),
        "levelled off near the limit: {sizes:?}"
    );
    // The newest incident is there; the oldest was forgotten.
    assert!(store.get("fp.incident-03999").await.unwrap().is_some());
    assert!(store.get("fp.incident-00000").await.unwrap().is_none());
}

#[tokio::test]
async fn the_same_msg_id_is_stored_once() {
    let server = NatsServer::start().unwrap();
    let bus = provisioned_bus(&server, "gateway").await;
    let message = slack_message("Ev-dup");

    let first = bus.publish(&message).await.unwrap();
    let retried = bus.publish(&message).await.unwrap();
    assert!(!first.duplicate);
    assert!(retried.duplicate, "JetStream recognized the second publish");
    assert_eq!(first.sequence, retried.sequence);

    bus.publish(&slack_message("Ev-other")).await.unwrap();
    let stored = stored_messages(&bus, "FT_SLACK").await;
    assert_eq!(stored.len(), 2);
}

#[tokio::test]
async fn one_trace_from_publisher_to_consumer() {
    let (telemetry, exporter) = telemetry();
    let server = NatsServer::start().unwrap();
    let gateway = provisioned_bus(&server, "slack-gateway").await;
    let watcher = provisioned_bus(&server, "alert-watcher").await;

    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let consumer = spawn_consumer(&watcher, move |delivery: Delivery<SlackMessage>| {
        let seen_tx = seen_tx.clone();
        async move {
            let handler_span = tracing::info_span!("recognize_alert");
            let trace_id = telemetry::propagation::trace_id(&handler_span);
            seen_tx.send((delivery.message.event_id, trace_id)).unwrap();
            Ok(())
        }
    });

    let accept_span = tracing::info_span!("accept_slack_event");
    let published_trace =
        telemetry::propagation::trace_id(&accept_span).expect("spans get trace ids");
    gateway
        .publish(&slack_message("Ev-trace"))
        .instrument(accept_span)
        .await
        .unwrap();

    let (event_id, consumed_trace) = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event_id, "Ev-trace");
    assert_eq!(consumed_trace.as_deref(), Some(published_trace.as_str()));

    consumer.stop().await;

    // The exported spans tell the same story: publish and consume in one trace, with the
    // correlation fields on the consumer span.
    telemetry.flush();
    let spans = exporter.get_finished_spans().unwrap();
    let in_trace: Vec<_> = spans
        .iter()
        .filter(|span| span.span_context.trace_id().to_string() == published_trace)
        .collect();
    let names: BTreeSet<&str> = in_trace.iter().map(|span| span.name.as_ref()).collect();
    for expected in [
        "accept_slack_event",
        "publish",
        "consume",
        "recognize_alert",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    let consume = in_trace.iter().find(|span| span.name == "consume").unwrap();
    let channel = consume
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "slack.channel");
    assert_eq!(
        channel.map(|kv| kv.value.to_string()),
        Some("C0ALERTS".to_owned())
    );
}

#[tokio::test]
async fn hand_written_message_from_the_schema_is_accepted() {
    let server = NatsServer::start().unwrap();
    let bus = provisioned_bus(&server, "alert-watcher").await;

    // A producer in another language: it knows the schema file and NATS, not our Rust types.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../proto/schemas/slack-message.v1.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let message = serde_json::json!({
        "schema_version": 1,
        "event_id": "Ev-by-hand",
        "channel": "C0ALERTS",
        "ts": "1700000001.000100",
        "bot_id": "B0GRAFANA",
        "text": "**Firing**",
        "received_at": "2026-11-21T10:00:00.5+01:00",
        "transport": "http_events",
        "raw": {"type": "message", "attachments": [{"footer": "Grafana v11.2.0"}]}
    });
    assert!(
        jsonschema::validator_for(&schema)
            .unwrap()
            .is_valid(&message)
    );
    let raw_jetstream =
        async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    raw_jetstream
        .publish(
            "ft.slack.message",
            serde_json::to_vec(&message).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let consumer = spawn_consumer(&bus, move |delivery: Delivery<SlackMessage>| {
        let seen_tx = seen_tx.clone();
        async move {
            seen_tx.send(delivery.message).unwrap();
            Ok(())
        }
    });
    let received = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(received.event_id, "Ev-by-hand");
    assert_eq!(received.raw["attachments"][0]["footer"], "Grafana v11.2.0");
    consumer.stop().await;
    assert!(stored_messages(&bus, "FT_DEADLETTER").await.is_empty());
}

fn dead_letters(
    stored: &[async_nats::jetstream::message::StreamMessage],
) -> Vec<(String, DeadLetter)> {
    stored
        .iter()
        .map(|message| {
            let letter: DeadLetter =
                serde_json::from_slice(&message.payload).expect("dead letters are JSON");
            (message.subject.to_string(), letter)
        })
        .collect()
}

#[tokio::test]
async fn poison_messages_are_dead_lettered_and_the_consumer_carries_on() {
    let server = NatsServer::start().unwrap();
    let bus = provisioned_bus(&server, "alert-watcher").await;
    let raw_jetstream =
        async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());

    let mut valid = serde_json::to_value(slack_message("Ev-valid-1")).unwrap();
    let mut future_version = valid.clone();
    future_version["schema_version"] = serde_json::json!(99);
    let mut missing_field = valid.clone();
    missing_field.as_object_mut().unwrap().remove("channel");
    let payloads: Vec<Vec<u8>> = vec![
        b"{not json".to_vec(),
        serde_json::to_vec(&future_version).unwrap(),
        serde_json::to_vec(&missing_field).unwrap(),
        vec![0xff, 0xfe, 0x00],
        serde_json::to_vec(&valid).unwrap(),
        serde_json::to_vec(&serde_json::to_value(slack_message("Ev-refused")).unwrap()).unwrap(),
        serde_json::to_vec(&serde_json::to_value(slack_message("Ev-always-fails")).unwrap())
            .unwrap(),
    ];
    valid["event_id"] = serde_json::json!("Ev-valid-2");
    let mut payloads = payloads;
    payloads.push(serde_json::to_vec(&valid).unwrap());
    for payload in payloads {
        raw_jetstream
            .publish("ft.slack.message", payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let handled = Arc::new(Mutex::new(Vec::new()));
    let recorder = handled.clone();
    let consumer = spawn_consumer(&bus, move |delivery: Delivery<SlackMessage>| {
        let recorder = recorder.clone();
        async move {
            let event_id = delivery.message.event_id;
            recorder
                .lock()
                .await
                .push((event_id.clone(), delivery.delivered));
            match event_id.as_str() {
                "Ev-refused" => Err(HandlerError::reject("not an alert format we can act on")),
                "Ev-always-fails" => Err(HandlerError::retry("prometheus unreachable")),
                _ => Ok(()),
            }
        }
    });

    wait_for(Duration::from_secs(20), "six dead letters", || {
        let bus = bus.clone();
        async move { stored_messages(&bus, "FT_DEADLETTER").await.len() >= 6 }
    })
    .await
    .unwrap();
    consumer.stop().await;

    let letters = dead_letters(&stored_messages(&bus, "FT_DEADLETTER").await);
    assert_eq!(letters.len(), 6, "{letters:#?}");
    for (subject, letter) in &letters {
        assert_eq!(subject, "ft.deadletter.slack.message");
        assert_eq!(letter.subject, "ft.slack.message");
        assert_eq!(letter.consumer, "alert-watcher-messages");
    }
    let codes: Vec<ErrorCode> = letters.iter().map(|(_, letter)| letter.code).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::Malformed,
            ErrorCode::UnsupportedSchemaVersion,
            ErrorCode::Malformed,
            ErrorCode::Malformed,
            ErrorCode::Rejected,
            ErrorCode::MaxDeliveriesExceeded,
        ]
    );
    let reasons: Vec<&str> = letters
        .iter()
        .map(|(_, letter)| letter.reason.as_str())
        .collect();
    assert!(
        reasons[0].starts_with("payload is not valid JSON"),
        "{}",
        reasons[0]
    );
    assert_eq!(
        reasons[1],
        "unsupported schema_version 99 (this build understands 1)"
    );
    assert!(
        reasons[2].starts_with("payload does not match the schema: missing field `channel`"),
        "{}",
        reasons[2]
    );
    assert_eq!(reasons[4], "not an alert format we can act on");
    assert_eq!(
        reasons[5],
        "failed on all 3 deliveries; last error: prometheus unreachable"
    );
    // The original bytes survive, also when they are not text.
    assert_eq!(letters[0].1.payload_text.as_deref(), Some("{not json"));
    assert_eq!(letters[3].1.payload_text, None);
    assert_eq!(letters[3].1.payload_base64, "//4A");

    // Valid messages before and after the poison were handled; the failing one three times.
    let handled = handled.lock().await.clone();
    let ids: Vec<&str> = handled.iter().map(|(id, _)| id.as_str()).collect();
    assert!(
        ids.contains(&"Ev-valid-1") && ids.contains(&"Ev-valid-2"),
        "{ids:?}"
    );
    let failing: Vec<u64> = handled
        .iter()
        .filter(|(id, _)| id == "Ev-always-fails")
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(failing, [1, 2, 3]);
}

#[tokio::test]
async fn a_consumer_of_several_subjects_decodes_each_by_its_subject() {
    use proto::SlackInteraction;

    let server = NatsServer::start().unwrap();
    let bus = provisioned_bus(&server, "alert-watcher").await;
    let raw_jetstream =
        async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let now = "2026-11-21T10:00:00Z";
    let publish = |subject: &'static str, body: serde_json::Value| {
        let raw_jetstream = raw_jetstream.clone();
        async move {
            raw_jetstream
                .publish(subject, serde_json::to_vec(&body).unwrap().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    publish("ft.slack.command", serde_json::json!({
        "schema_version": 1, "trigger_id": "13345224609.738474920.8088930838d88f008e0", "channel": "C0ALERTS",
        "user": "U0ONCALL", "command": "/profile", "text": "checkout 30m",
        "response_url": "https://hooks.slack.com/commands/T0001/1/abc", "received_at": now
    })).await;
    publish(
        "ft.slack.action",
        serde_json::json!({
            "schema_version": 1, "trigger_id": "trig-2", "user": "U0ONCALL", "channel": "C0ALERTS",
            "message_ts": "1700000000.000300", "action_id": "silence_1h", "value": "inc-01",
            "received_at": now, "raw": {"type": "block_actions"}
        }),
    )
    .await;
    publish("ft.slack.file", serde_json::json!({
        "schema_version": 1, "event_id": "Ev-file", "file_id": "F0SCRIPT", "channel": "C0ALERTS",
        "user": "U0DEV", "name": "slow_report.py", "size": 1234, "mimetype": "text/x-python",
        "file": {"kind": "rejected", "reason": "larger than 1 MiB"}, "received_at": now
    })).await;
    // A Slack message where a click belongs: the consumer must refuse it, not misread it.
    publish(
        "ft.slack.action",
        serde_json::to_value(slack_message("Ev-misplaced")).unwrap(),
    )
    .await;

    let interactions = proto::subjects::CONSUMERS
        .iter()
        .find(|spec| spec.durable == "alert-watcher-interactions")
        .unwrap();
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let consumer = tokio::spawn(bus::consumer::run(
        bus.clone(),
        interactions,
        crate::support::fast_options(),
        shutdown.clone(),
        move |delivery: Delivery<SlackInteraction>| {
            let seen_tx = seen_tx.clone();
            async move {
                seen_tx.send(delivery.message).unwrap();
                Ok(())
            }
        },
    ));
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(
            tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    wait_for(
        Duration::from_secs(10),
        "the misplaced message's dead letter",
        || {
            let bus = bus.clone();
            async move { !stored_messages(&bus, "FT_DEADLETTER").await.is_empty() }
        },
    )
    .await
    .unwrap();
    shutdown.cancel();
    consumer.await.unwrap().unwrap();

    assert!(
        matches!(&seen[0], SlackInteraction::Command(command) if command.text == "checkout 30m")
    );
    assert!(
        matches!(&seen[1], SlackInteraction::Action(action) if action.action_id == "silence_1h")
    );
    assert!(matches!(&seen[2], SlackInteraction::File(file) if file.name == "slow_report.py"));
    let letters = dead_letters(&stored_messages(&bus, "FT_DEADLETTER").await);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0, "ft.deadletter.slack.action");
    assert_eq!(letters[0].1.code, ErrorCode::Malformed);
    assert!(
        letters[0]
            .1
            .reason
            .starts_with("payload does not match the schema: user: invalid type: null"),
        "{}",
        letters[0].1.reason
    );
}

#[tokio::test]
async fn the_bus_counts_what_it_publishes_and_consumes() {
    crate::support::telemetry();
    let server = NatsServer::start().unwrap();
    let bus = provisioned_bus(&server, "alert-watcher").await;
    bus.publish(&slack_message("Ev-counted-1")).await.unwrap();
    bus.publish(&slack_message("Ev-counted-2")).await.unwrap();
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let consumer = spawn_consumer(&bus, move |_: Delivery<SlackMessage>| {
        let seen_tx = seen_tx.clone();
        async move {
            seen_tx.send(()).unwrap();
            Ok(())
        }
    });
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
            .await
            .unwrap()
            .unwrap();
    }
    consumer.stop().await;

    let metrics = telemetry::metrics_handle().render();
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find(|line| line.starts_with(series))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{series} missing from:\n{metrics}"))
    };
    // Other tests in this process may publish too; at least ours are there.
    assert!(value("ft_bus_published_total{subject=\"ft.slack.message\"}") >= 2.0);
    assert!(
        value("ft_bus_consumed_total{consumer=\"alert-watcher-messages\",outcome=\"ack\"}") >= 2.0
    );
    assert!(metrics.contains("ft_bus_handle_seconds"), "{metrics}");
}

/// After the cause is fixed, `bus::redrive` replays dead letters on their original subjects (a
/// large one from the object store, where its dead letter kept it), deletes them, and a second
/// run replays nothing; the consumer now takes what it refused.
#[tokio::test]
async fn dead_letters_are_replayed_after_a_fix() {
    let server = NatsServer::start().unwrap();
    let bus = provisioned_bus(&server, "alert-watcher").await;
    let mut large = slack_message("Ev-large");
    large.text = "x".repeat(400 * 1024);
    for message in [slack_message("Ev-refused-once"), large] {
        bus.publish(&message).await.unwrap();
    }
    // Before the fix: refused, dead-lettered.
    let consumer = spawn_consumer(&bus, |_delivery: Delivery<SlackMessage>| async {
        Err(HandlerError::reject("this build cannot handle it"))
    });
    wait_for(Duration::from_secs(20), "two dead letters", || async {
        stored_messages(&bus, "FT_DEADLETTER").await.len() == 2
    })
    .await
    .unwrap();
    consumer.stop().await;
    let letters = dead_letters(&stored_messages(&bus, "FT_DEADLETTER").await);
    let big = letters
        .iter()
        .find(|(_, letter)| letter.payload_object.is_some())
        .expect("the large payload went to the object store");
    assert!(big.1.payload_text.is_none() && big.1.payload_base64.is_empty());
    let small = letters
        .iter()
        .find(|(_, letter)| letter.payload_text.is_some())
        .unwrap();
    assert!(
        small.1.payload_base64.is_empty(),
        "the payload is kept once"
    );

    // A dry run changes nothing.
    let dry = bus::redrive::redrive(&bus, "ft.slack", true).await.unwrap();
    assert_eq!(dry.replayed.len(), 2);
    assert_eq!(stored_messages(&bus, "FT_DEADLETTER").await.len(), 2);
    // Another subject's letters are not touched.
    let other = bus::redrive::redrive(&bus, "ft.incident", false)
        .await
        .unwrap();
    assert!(other.replayed.is_empty());

    // After the fix: replayed, taken, gone from the dead letters.
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let consumer = spawn_consumer(&bus, move |delivery: Delivery<SlackMessage>| {
        let seen_tx = seen_tx.clone();
        async move {
            seen_tx.send(delivery.message).unwrap();
            Ok(())
        }
    });
    let done = bus::redrive::redrive(&bus, "", false).await.unwrap();
    assert_eq!(done.replayed.len(), 2, "{done:?}");
    assert!(done.left.is_empty(), "{done:?}");
    let mut seen = BTreeSet::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
            .await
            .unwrap()
            .unwrap();
        if message.event_id == "Ev-large" {
            assert_eq!(message.text.len(), 400 * 1024, "byte for byte");
        }
        seen.insert(message.event_id);
    }
    assert_eq!(
        seen,
        ["Ev-large".to_owned(), "Ev-refused-once".to_owned()].into()
    );
    assert!(stored_messages(&bus, "FT_DEADLETTER").await.is_empty());
    assert!(
        bus::redrive::redrive(&bus, "", false)
            .await
            .unwrap()
            .replayed
            .is_empty()
    );
    consumer.stop().await;
}
