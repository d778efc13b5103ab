//! remediation-poster end to end: incidents and evidence published on a real nats-server become
//! one threaded reply per incident in the Slack emulator, updated in place, whatever the
//! redeliveries, rate limits, crashes and replicas.

use std::time::{Duration, Instant};

use proto::{IncidentChange, IncidentEvent, SchemaVersion};
use serde_json::{Value, json};
use test_support::{NatsServer, fixtures, wait_for};

use crate::slack_edge::{
    Control, emulator_config, observer, poster_config, spawn_service, start_emulator,
};

fn incident(id: &str, alert_ts: &str, change: IncidentChange, revision: u64) -> IncidentEvent {
    fixtures::incident_event(id, alert_ts, change, revision)
}

fn metrics(incident_id: &str) -> proto::MetricsEvidence {
    fixtures::metrics_evidence(incident_id, &format!("metrics-{incident_id}"), 30)
}

/// The alert message at `ts` in `#alerts`, with its replies and reactions.
async fn alert(control: &Control, ts: &str) -> Value {
    control
        .channel("C0ALERTS")
        .await
        .into_iter()
        .find(|message| message["ts"] == ts)
        .unwrap_or_default()
}

/// The replies under the alert at `ts`.
async fn replies(control: &Control, ts: &str) -> Vec<Value> {
    alert(control, ts).await["replies"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn reactions(control: &Control, ts: &str) -> Vec<String> {
    alert(control, ts).await["reactions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|reaction| reaction["name"].as_str().map(str::to_owned))
        .collect()
}

fn reply_text(reply: &Value) -> String {
    serde_json::to_string(&reply["blocks"]).unwrap()
}

#[tokio::test]
async fn an_incident_gets_one_threaded_reply_updated_in_place() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let poster = spawn_service(|admin, shutdown| {
        remediation_poster::run(poster_config(&nats, &slack, admin), shutdown)
    })
    .await;
    let bus = observer(&nats).await;
    let alert_ts = control.post_alert("C0ALERTS", "HighCPU").await;

    bus.publish(&incident("inc-1", &alert_ts, IncidentChange::Opened, 1))
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(20),
        "the reply and the eyes",
        || async {
            replies(&control, &alert_ts).await.len() == 1
                && reactions(&control, &alert_ts).await == ["eyes"]
        },
    )
    .await
    .unwrap();
    let reply = &replies(&control, &alert_ts).await[0];
    assert_eq!(reply["bot_id"], "B0FLAMEBOT");
    assert!(
        reply_text(reply).contains("🔥 HighCPU · svc-inc-1"),
        "{reply}"
    );
    assert!(reply_text(reply).contains("ft.rerun"), "buttons: {reply}");
    assert!(
        !reply_text(reply).contains("ft.silence_1h"),
        "no silence for labels Alertmanager did not confirm: {reply}"
    );
    let reply_ts = reply["ts"].clone();

    // The same change delivered again (another Nats-Msg-Id, as a republish would be).
    let again = proto::encode(&incident("inc-1", &alert_ts, IncidentChange::Opened, 1));
    bus.jetstream()
        .publish("ft.incident.opened", again.into())
        .await
        .unwrap()
        .await
        .unwrap();
    // Evidence arrives: the same reply, updated.
    bus.publish(&metrics("inc-1")).await.unwrap();
    wait_for(
        Duration::from_secs(20),
        "the metrics in the reply",
        || async {
            replies(&control, &alert_ts)
                .await
                .first()
                .is_some_and(|reply| reply_text(reply).contains("`cpu` 1.800 cores vs 0.400 cores"))
        },
    )
    .await
    .unwrap();

    bus.publish(&incident("inc-1", &alert_ts, IncidentChange::Resolved, 2))
        .await
        .unwrap();
    // A late, older change must not undo the resolution.
    let late = proto::encode(&incident("inc-1", &alert_ts, IncidentChange::Updated, 1));
    bus.jetstream()
        .publish("ft.incident.updated", late.into())
        .await
        .unwrap()
        .await
        .unwrap();
    wait_for(Duration::from_secs(20), "the resolution", || async {
        reactions(&control, &alert_ts).await == ["eyes", "white_check_mark"]
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let final_replies = replies(&control, &alert_ts).await;
    assert_eq!(
        final_replies.len(),
        1,
        "one reply, whatever happened: {final_replies:?}"
    );
    let reply = &final_replies[0];
    assert_eq!(reply["ts"], reply_ts, "updated in place");
    assert!(reply_text(reply).contains("✅ Resolved"), "{reply}");
    assert!(
        reply_text(reply).contains("`cpu`"),
        "the evidence stays: {reply}"
    );
    assert!(
        !reply_text(reply).contains("ft.silence_1h"),
        "no buttons once resolved"
    );
    assert!(
        reply["edited"].is_object(),
        "Slack shows it as edited: {reply}"
    );
    poster.stop().await;
}

#[tokio::test]
async fn a_burst_of_200_incidents_gets_every_reply_once_through_429s() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(slack_emulator::EmulatorConfig {
        posts_per_second: std::num::NonZeroU32::new(20).unwrap(),
        post_burst: std::num::NonZeroU32::new(5).unwrap(),
        ..emulator_config()
    })
    .await;
    let control = Control::new(&slack);
    let poster = spawn_service(|admin, shutdown| {
        let mut config = poster_config(&nats, &slack, admin);
        // Pace faster than the emulator allows, so that its 429s must be waited out.
        config.posting.posts_per_second = 100;
        config.posting.burst = 50;
        remediation_poster::run(config, shutdown)
    })
    .await;
    let bus = observer(&nats).await;

    const INCIDENTS: usize = 200;
    let mut alerts = Vec::new();
    for i in 0..INCIDENTS {
        alerts.push(control.post_alert("C0ALERTS", &format!("Storm{i}")).await);
    }
    let started = Instant::now();
    for (i, ts) in alerts.iter().enumerate() {
        bus.publish(&incident(
            &format!("storm-{i}"),
            ts,
            IncidentChange::Opened,
            1,
        ))
        .await
        .unwrap();
        if i.is_multiple_of(4) {
            bus.publish(&incident(
                &format!("storm-{i}"),
                ts,
                IncidentChange::Resolved,
                2,
            ))
            .await
            .unwrap();
        }
    }
    let settled = |messages: &[Value]| {
        messages
            .iter()
            .filter(|m| m["bot_id"] == "B0AMGR")
            .all(|alert| {
                let Some(replies) = alert["replies"].as_array() else {
                    return false;
                };
                let title = alert["attachments"][0]["title"]
                    .as_str()
                    .unwrap_or_default();
                let i: usize = title
                    .trim_start_matches("[FIRING:1] Storm")
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(usize::MAX);
                replies.len() == 1
                    && (!i.is_multiple_of(4) || reply_text(&replies[0]).contains("✅ Resolved"))
            })
    };
    wait_for(
        Duration::from_secs(180),
        "every incident's reply, in its final state",
        || async { settled(&control.channel("C0ALERTS").await) },
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let channel = control.channel("C0ALERTS").await;
    assert!(settled(&channel), "nothing was posted twice afterwards");
    let alerts_seen = channel.iter().filter(|m| m["bot_id"] == "B0AMGR").count();
    assert_eq!(alerts_seen, INCIDENTS);
    let top_level_from_us = channel
        .iter()
        .filter(|m| m["bot_id"] == "B0FLAMEBOT")
        .count();
    assert_eq!(top_level_from_us, 0, "replies go into threads only");
    let stats = control.get("/stats").await;
    assert!(
        stats["rate_limited"].as_u64().unwrap() > 0,
        "the burst met Slack's rate limit and got through it: {stats}"
    );
    println!(
        "burst: {INCIDENTS} incidents ({} resolved) replied in {:.1} s through {} 429s",
        INCIDENTS / 4,
        elapsed.as_secs_f64(),
        stats["rate_limited"]
    );
    poster.stop().await;
}

#[tokio::test]
async fn two_posters_at_once_still_post_one_reply_per_incident() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(slack_emulator::EmulatorConfig {
        posts_per_second: std::num::NonZeroU32::new(50).unwrap(),
        post_burst: std::num::NonZeroU32::new(50).unwrap(),
        ..emulator_config()
    })
    .await;
    let control = Control::new(&slack);
    let start_poster = || {
        spawn_service(|admin, shutdown| {
            let mut config = poster_config(&nats, &slack, admin);
            config.posting.posts_per_second = 50;
            config.posting.burst = 50;
            remediation_poster::run(config, shutdown)
        })
    };
    let first = start_poster().await;
    let second = start_poster().await;
    let bus = observer(&nats).await;

    const INCIDENTS: usize = 30;
    let mut alerts = Vec::new();
    for i in 0..INCIDENTS {
        alerts.push(control.post_alert("C0ALERTS", &format!("Twin{i}")).await);
    }
    // The incident and its evidence at once: the two replicas race for the same replies.
    for (i, ts) in alerts.iter().enumerate() {
        let id = format!("twin-{i}");
        let (opened, evidence) = (incident(&id, ts, IncidentChange::Opened, 1), metrics(&id));
        let (a, b) = tokio::join!(bus.publish(&opened), bus.publish(&evidence));
        a.unwrap();
        b.unwrap();
    }
    wait_for(
        Duration::from_secs(60),
        "every reply with its metrics",
        || async {
            let mut all = true;
            for ts in &alerts {
                let replies = replies(&control, ts).await;
                all &= replies.len() == 1 && reply_text(&replies[0]).contains("`cpu`");
            }
            all
        },
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for ts in &alerts {
        assert_eq!(replies(&control, ts).await.len(), 1, "one reply under {ts}");
    }
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn a_poster_killed_between_posting_and_recording_does_not_post_twice() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let start_poster = || {
        spawn_service(|admin, shutdown| {
            let mut config = poster_config(&nats, &slack, admin);
            config.posting.claim_timeout = Duration::from_secs(2);
            remediation_poster::run(config, shutdown)
        })
    };
    let doomed = start_poster().await;
    let bus = observer(&nats).await;
    let alert_ts = control.post_alert("C0ALERTS", "Crash").await;

    // Slack takes the post, then answers late: the poster dies waiting for the answer.
    control
        .post(
            "/faults",
            json!({"method": "chat.postMessage", "delay_ms": 5000}),
        )
        .await;
    bus.publish(&incident("crash-1", &alert_ts, IncidentChange::Opened, 1))
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(20),
        "the post to land in Slack",
        || async { replies(&control, &alert_ts).await.len() == 1 },
    )
    .await
    .unwrap();
    doomed.kill().await;

    // A fresh poster gets the redelivered incident, finds the orphaned reply and adopts it.
    let survivor = start_poster().await;
    bus.publish(&metrics("crash-1")).await.unwrap();
    wait_for(
        Duration::from_secs(30),
        "the adopted reply updated with the metrics",
        || async {
            replies(&control, &alert_ts)
                .await
                .first()
                .is_some_and(|reply| reply_text(reply).contains("`cpu`"))
        },
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        replies(&control, &alert_ts).await.len(),
        1,
        "still one reply"
    );
    survivor.stop().await;
}

#[tokio::test]
async fn post_requests_answer_ephemerally_through_response_urls_and_in_threads() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let poster = spawn_service(|admin, shutdown| {
        remediation_poster::run(poster_config(&nats, &slack, admin), shutdown)
    })
    .await;
    let bus = observer(&nats).await;
    let response_url = format!("http://{}/response/4242", slack.addr());
    let post = |post_id: &str, text: &str, target: proto::ReplyTarget, reply_key: Option<&str>| {
        proto::PostRequest {
            schema_version: SchemaVersion::CURRENT,
            post_id: post_id.to_owned(),
            reply_key: reply_key.map(str::to_owned),
            target,
            text: proto::Mrkdwn::plain(text),
            blocks: None,
            incident_id: None,
            stands_for: None,
        }
    };
    bus.publish(&post(
        "p1",
        "Usage: /profile <app> [since]",
        proto::ReplyTarget::ResponseUrl { url: response_url },
        None,
    ))
    .await
    .unwrap();
    wait_for(
        Duration::from_secs(20),
        "the response_url answer",
        || async {
            control.get("/responses").await["responses"]
                .as_array()
                .is_some_and(|responses| {
                    responses.iter().any(|r| {
                        r["id"] == "4242"
                            && r["body"]["response_type"] == "ephemeral"
                            // Escaped: Slack shows `<app>`, never reads it as markup.
                            && r["body"]["text"] == "Usage: /profile &lt;app&gt; [since]"
                    })
                })
        },
    )
    .await
    .unwrap();

    let alert_ts = control.post_alert("C0ALERTS", "Asked").await;
    let thread = proto::ReplyTarget::Thread {
        channel: "C0ALERTS".to_owned(),
        thread_ts: alert_ts.clone(),
    };
    bus.publish(&post("p2", "first answer", thread.clone(), Some("help")))
        .await
        .unwrap();
    bus.publish(&post("p3", "second answer", thread, Some("help")))
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(20),
        "the keyed answer edited in place",
        || async {
            let replies = replies(&control, &alert_ts).await;
            replies.len() == 1 && replies[0]["text"] == "second answer"
        },
    )
    .await
    .unwrap();
    poster.stop().await;
}

#[tokio::test]
async fn what_slack_refuses_is_sent_as_text_or_dead_lettered_with_slacks_reason() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let poster = spawn_service(|admin, shutdown| {
        remediation_poster::run(poster_config(&nats, &slack, admin), shutdown)
    })
    .await;
    let bus = observer(&nats).await;

    // Blocks Slack does not accept: the answer still goes out, as text.
    let alert_ts = control.post_alert("C0ALERTS", "BadBlocks").await;
    bus.publish(&proto::PostRequest {
        schema_version: SchemaVersion::CURRENT,
        post_id: "bad-blocks".to_owned(),
        reply_key: None,
        target: proto::ReplyTarget::Thread {
            channel: "C0ALERTS".to_owned(),
            thread_ts: alert_ts.clone(),
        },
        text: proto::Mrkdwn::plain("the answer, in words"),
        // What another producer could publish: blocks Slack refuses.
        blocks: Some(serde_json::from_value(json!([{"type": "no_such_block"}])).unwrap()),
        incident_id: None,
        stands_for: None,
    })
    .await
    .unwrap();
    wait_for(Duration::from_secs(20), "the text-only answer", || async {
        replies(&control, &alert_ts)
            .await
            .first()
            .is_some_and(|reply| {
                reply_text(reply).contains("the answer, in words")
                    && reply["blocks"][0]["type"] == "section"
            })
    })
    .await
    .unwrap();

    // A channel that does not exist: nothing to retry; dead-lettered with Slack's reason.
    bus.publish(&{
        let mut event = incident("lost-1", "1700000000.000100", IncidentChange::Opened, 1);
        event.incident.thread.channel = "C0NOWHERE".to_owned();
        event
    })
    .await
    .unwrap();
    let dead = crate::slack_edge::wait_published(
        &bus,
        "FT_DEADLETTER",
        "ft.deadletter.incident.opened",
        1,
    )
    .await;
    let reason = dead[0]["reason"].to_string();
    assert!(reason.contains("channel_not_found"), "{}", dead[0]);
    poster.stop().await;
}
