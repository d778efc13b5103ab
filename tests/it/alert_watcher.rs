//! The whole path with the most honest alert source there is: a real Alertmanager's Slack notifier
//! posts into the emulator's `#alerts`, slack-gateway carries the message to NATS, alert-watcher
//! recognizes it (recovering its labels from Alertmanager's API) and opens an incident, and
//! remediation-poster replies in the alert's thread; when Alertmanager posts `[RESOLVED]`, the
//! same incident resolves and the same reply says so.

use std::time::Duration;

use serde_json::Value;
use test_support::{Alertmanager, NatsServer, wait_for};

use crate::{
    slack_edge::{
        Control, emulator_config, gateway_config, observer, poster_config, published,
        spawn_service, start_emulator, start_gateway, start_poster, start_watcher,
    },
    support::nats_config,
};

fn alertmanager_config(webhook_url: &str) -> String {
    format!(
        r#"
route:
  receiver: slack
  group_by: ['alertname', 'service']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: slack
    slack_configs:
      - api_url: '{webhook_url}'
        channel: '#alerts'
        send_resolved: true
"#
    )
}

fn alert(ends_at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    let starts = chrono::Utc::now() - chrono::Duration::minutes(5);
    let mut alert = serde_json::json!({
        "labels": {"alertname": "HighCPU", "service": "checkout", "severity": "page", "namespace": "shop"},
        "annotations": {"summary": "CPU above 90% for 5m", "runbook_url": "https://runbooks.example/cpu"},
        "startsAt": starts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=cpu",
    });
    if let Some(ends_at) = ends_at {
        alert["endsAt"] =
            serde_json::json!(ends_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    serde_json::json!([alert]).to_string()
}

/// Every silence the Alertmanager at `am_url` holds (its API v2).
async fn silences_in(am_url: &str) -> Vec<Value> {
    reqwest::get(format!("{am_url}/api/v2/silences"))
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
}

fn replies_of(message: &Value) -> Vec<Value> {
    message["replies"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_real_alertmanager_alert_gets_one_reply_in_its_thread_resolved_in_place() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let alertmanager = Alertmanager::start(&alertmanager_config(
        &slack.webhook_url("T0FLAME/B0AMGR/alertmanager"),
    ))
    .unwrap();
    let am_url = format!("http://{}", alertmanager.addr());

    let gateway = spawn_service(|admin, shutdown| {
        slack_gateway::run(gateway_config(&nats, &slack, admin), shutdown)
    })
    .await;
    let watcher = spawn_service(|admin, shutdown| {
        let config = alert_watcher::Config {
            nats: nats_config(&nats),
            admin,
            alertmanager: alert_watcher::AlertmanagerConfig {
                url: am_url.clone(),
                ..Default::default()
            },
            ..Default::default()
        };
        alert_watcher::run(config, shutdown)
    })
    .await;
    let poster = spawn_service(|admin, shutdown| {
        remediation_poster::run(poster_config(&nats, &slack, admin), shutdown)
    })
    .await;
    let bus = observer(&nats).await;

    alertmanager.post_alerts(&alert(None)).unwrap();
    wait_for(
        Duration::from_secs(60),
        "the reply under Alertmanager's message",
        || async {
            control
                .channel("C0ALERTS")
                .await
                .first()
                .is_some_and(|message| replies_of(message).len() == 1)
        },
    )
    .await
    .unwrap();
    let channel = control.channel("C0ALERTS").await;
    let firing = &channel[0];
    assert_eq!(
        firing["attachments"][0]["title"],
        "[FIRING:1] HighCPU checkout (shop page)"
    );
    let reply = replies_of(firing).remove(0);
    let blocks = serde_json::to_string(&reply["blocks"]).unwrap();
    assert!(
        blocks.contains("🔥 HighCPU · checkout"),
        "the service came from the recovered labels: {blocks}"
    );
    let opened = published(&bus, "FT_INCIDENTS", "ft.incident.opened").await;
    assert_eq!(opened.len(), 1);
    let incident = &opened[0]["incident"];
    assert_eq!(
        incident["alert"]["labels"]["namespace"], "shop",
        "labels from Alertmanager's API"
    );
    assert_eq!(
        incident["alert"]["annotations"]["summary"],
        "CPU above 90% for 5m"
    );
    assert_eq!(incident["alert"]["severity"], "page");
    assert_eq!(incident["thread"]["ts"], firing["ts"]);
    assert!(
        incident["alert"]["starts_at"].is_string(),
        "startsAt from the API: {incident}"
    );

    // Alertmanager resolves the alert: a new [RESOLVED] message; the answer stays in the first thread.
    alertmanager
        .post_alerts(&alert(Some(chrono::Utc::now())))
        .unwrap();
    wait_for(
        Duration::from_secs(60),
        "the reply to say resolved",
        || async {
            control
                .channel("C0ALERTS")
                .await
                .first()
                .is_some_and(|message| {
                    replies_of(message).first().is_some_and(|reply| {
                        serde_json::to_string(&reply["blocks"])
                            .unwrap()
                            .contains("✅ Resolved")
                    })
                })
        },
    )
    .await
    .unwrap();
    let channel = control.channel("C0ALERTS").await;
    assert_eq!(
        channel.len(),
        2,
        "the alert and its [RESOLVED] message: {channel:?}"
    );
    assert_eq!(
        channel[1]["attachments"][0]["title"],
        "[RESOLVED] HighCPU checkout (shop page)"
    );
    assert!(
        replies_of(&channel[1]).is_empty(),
        "no second thread for the resolution"
    );
    assert_eq!(replies_of(&channel[0]).len(), 1, "still one reply");
    assert_eq!(
        published(&bus, "FT_INCIDENTS", "ft.incident.resolved")
            .await
            .len(),
        1
    );
    assert_eq!(
        published(&bus, "FT_INCIDENTS", "ft.incident.opened")
            .await
            .len(),
        1
    );

    poster.stop().await;
    watcher.stop().await;
    gateway.stop().await;
}

/// Publishes `notifications` firing notifications (plus chatter) for `alerts` distinct alerts
/// spread over `services` services, waits until every one is counted, then resolves them all;
/// returns the latest event of every incident. `replicas` watchers share the work.
async fn storm(
    replicas: usize,
    storm: alert_watcher::StormConfig,
    notifications: usize,
    alerts: usize,
    services: usize,
) -> Vec<Value> {
    let nats = NatsServer::start().unwrap();
    let mut watchers = Vec::new();
    for _ in 0..replicas {
        let storm = storm.clone();
        watchers.push(
            spawn_service(|admin, shutdown| {
                alert_watcher::run(
                    alert_watcher::Config {
                        nats: nats_config(&nats),
                        admin,
                        storm,
                        ..Default::default()
                    },
                    shutdown,
                )
            })
            .await,
        );
    }
    let bus = observer(&nats).await;
    let notify = |n: usize, alert: usize, status: &str| {
        let mut message = test_support::fixtures::slack_message(&format!("EvStorm{status}{n:06}"));
        message.ts = format!("17000{}.{n:06}", u8::from(status == "resolved"));
        message.raw = serde_json::json!({
            "type": "message", "subtype": "bot_message", "bot_id": "B0HOOK", "channel": "C0ALERTS",
            "ts": message.ts,
            "text": format!("*alertname:* Storm{alert}\n*status:* {status}\n*service:* svc{}\n*severity:* critical", alert % services)
        });
        message
    };
    for n in 0..notifications {
        bus.publish(&notify(n, n % alerts, "firing")).await.unwrap();
        if n % 100 == 0 {
            // Chatter in the storm is ignored.
            let mut chatter = test_support::fixtures::slack_message(&format!("EvChat{n:06}"));
            // A person typing what an integration would post is chatter too: never an incident.
            chatter.raw = serde_json::json!({"type": "message", "user": "U0MALLORY", "channel": "C0ALERTS", "text": format!("alertname: Typed{n}\nstatus: firing\nservice: payments"), "ts": "1.1"});
            bus.publish(&chatter).await.unwrap();
        }
    }
    let latest = || async {
        let mut latest = std::collections::BTreeMap::<String, Value>::new();
        for subject in [
            "ft.incident.opened",
            "ft.incident.updated",
            "ft.incident.resolved",
        ] {
            for event in published(&bus, "FT_INCIDENTS", subject).await {
                let id = event["incident"]["id"].as_str().unwrap().to_owned();
                let newer = latest.get(&id).is_none_or(|known| {
                    known["incident"]["revision"].as_u64() < event["incident"]["revision"].as_u64()
                });
                if newer {
                    latest.insert(id, event);
                }
            }
        }
        latest.into_values().collect::<Vec<_>>()
    };
    let counted = |events: &[Value]| -> usize {
        events
            .iter()
            .map(|event| {
                let incident = &event["incident"];
                incident["notification_count"].as_u64().unwrap() as usize
                    + incident["related"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|related| related["notification_count"].as_u64().unwrap() as usize)
                        .sum::<usize>()
            })
            .sum()
    };
    wait_for(
        Duration::from_secs(120),
        "every notification counted",
        || async { counted(&latest().await) == notifications },
    )
    .await
    .unwrap();
    for alert in 0..alerts {
        bus.publish(&notify(alert, alert, "resolved"))
            .await
            .unwrap();
    }
    wait_for(
        Duration::from_secs(60),
        "every incident resolved",
        || async {
            latest()
                .await
                .iter()
                .all(|event| event["change"] == "resolved")
        },
    )
    .await
    .unwrap();
    let events = latest().await;
    assert_eq!(
        counted(&events),
        notifications,
        "every notification counted once"
    );
    for watcher in watchers {
        watcher.stop().await;
    }
    events
}

#[tokio::test]
async fn a_storm_of_2000_notifications_for_30_alerts_of_5_services_makes_5_incidents_across_2_replicas()
 {
    let incidents = storm(2, alert_watcher::StormConfig::default(), 2000, 30, 5).await;
    assert_eq!(incidents.len(), 5, "one incident per service in the storm");
    for event in &incidents {
        let incident = &event["incident"];
        let related = incident["related"].as_array().unwrap();
        assert_eq!(related.len(), 5, "the service's other alerts: {incident}");
        let service = incident["alert"]["service"].as_str().unwrap();
        assert!(
            related
                .iter()
                .all(|related| related["alert"]["service"] == service),
            "{incident}"
        );
        assert_eq!(
            event["change"], "resolved",
            "resolved when all its alerts are"
        );
    }
}

#[tokio::test]
async fn without_storm_grouping_2000_notifications_for_30_alerts_make_exactly_30_incidents() {
    let no_grouping = alert_watcher::StormConfig {
        window: Duration::ZERO,
        ..Default::default()
    };
    let incidents = storm(1, no_grouping, 2000, 30, 5).await;
    assert_eq!(incidents.len(), 30, "one incident per distinct alert");
    for event in &incidents {
        let incident = &event["incident"];
        assert_eq!(incident["related"].as_array().unwrap().len(), 0);
        let count = incident["notification_count"].as_u64().unwrap();
        assert!(
            count == 66 || count == 67,
            "every repeat counted once: {incident}"
        );
    }
}

/// What alert-watcher and this test's Alertmanager share for the webhook.
const HOOK_TOKEN: &str = "hook-token-0123456789abcdef";

#[tokio::test]
async fn alertmanagers_webhook_gives_the_slack_messages_incident_its_labels() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let hook = test_support::reserve_port().unwrap();
    let hook_addr = hook.addr();
    // One receiver, both notifiers: the Slack message (keyless) and the webhook (full labels).
    let config = format!(
        r#"
route:
  receiver: both
  group_by: ['alertname', 'service']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: both
    slack_configs:
      - api_url: '{}'
        channel: '#alerts'
        send_resolved: true
    webhook_configs:
      - url: 'http://{hook_addr}/alertmanager'
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: '{HOOK_TOKEN}'
"#,
        slack.webhook_url("T0FLAME/B0AMGR/alertmanager")
    );
    let alertmanager = Alertmanager::start(&config).unwrap();

    let gateway = spawn_service(|admin, shutdown| {
        slack_gateway::run(gateway_config(&nats, &slack, admin), shutdown)
    })
    .await;
    let watcher = spawn_service(|admin, shutdown| {
        drop(hook);
        let config = alert_watcher::Config {
            nats: nats_config(&nats),
            admin,
            alertmanager: alert_watcher::AlertmanagerConfig {
                webhook_listen: Some(hook_addr),
                webhook_token: HOOK_TOKEN.into(),
                ..Default::default()
            },
            ..Default::default()
        };
        alert_watcher::run(config, shutdown)
    })
    .await;
    let poster = spawn_service(|admin, shutdown| {
        remediation_poster::run(poster_config(&nats, &slack, admin), shutdown)
    })
    .await;
    let bus = observer(&nats).await;

    // Without Alertmanager's credentials, nothing is read: no token, a wrong one, another scheme.
    let http = slack::http_client(Duration::from_secs(5)).unwrap();
    let forged = r#"{"version": "4", "status": "firing", "groupLabels": {"alertname": "HighCPU", "service": "checkout"},
        "commonLabels": {"alertname": "HighCPU", "service": "checkout", "namespace": "forged"},
        "alerts": [{"fingerprint": "f0"}]}"#;
    for authorization in [
        None,
        Some("Bearer wrong-token-of-the-same-len".to_owned()),
        Some(format!("Bearer {HOOK_TOKEN}x")),
        Some(format!("Basic {HOOK_TOKEN}")),
        Some(HOOK_TOKEN.to_owned()),
    ] {
        let mut request = http
            .post(format!("http://{hook_addr}/alertmanager"))
            .body(forged);
        if let Some(authorization) = &authorization {
            request = request.header("authorization", authorization);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 401, "{authorization:?}");
    }
    // What is not Alertmanager's webhook is refused with the reason.
    let refused = http
        .post(format!("http://{hook_addr}/alertmanager"))
        .bearer_auth(HOOK_TOKEN)
        .body("{\"version\": \"4\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    assert!(refused.text().await.unwrap().contains("missing field"));

    alertmanager.post_alerts(&alert(None)).unwrap();
    wait_for(
        Duration::from_secs(60),
        "the incident to carry the webhook's labels",
        || async {
            let mut events = published(&bus, "FT_INCIDENTS", "ft.incident.opened").await;
            events.extend(published(&bus, "FT_INCIDENTS", "ft.incident.updated").await);
            events
                .iter()
                .any(|event| event["incident"]["alert"]["labels"]["namespace"] == "shop")
        },
    )
    .await
    .unwrap();
    wait_for(
        Duration::from_secs(60),
        "the reply to name the service",
        || async {
            control
                .channel("C0ALERTS")
                .await
                .first()
                .is_some_and(|message| {
                    replies_of(message).first().is_some_and(|reply| {
                        serde_json::to_string(&reply["blocks"])
                            .unwrap()
                            .contains("🔥 HighCPU · checkout")
                    })
                })
        },
    )
    .await
    .unwrap();
    assert_eq!(
        published(&bus, "FT_INCIDENTS", "ft.incident.opened")
            .await
            .len(),
        1
    );
    let mut events = published(&bus, "FT_INCIDENTS", "ft.incident.opened").await;
    events.extend(published(&bus, "FT_INCIDENTS", "ft.incident.updated").await);
    assert!(
        events
            .iter()
            .all(|event| event["incident"]["alert"]["labels"]["namespace"] != "forged"),
        "the unauthenticated webhook changed nothing"
    );
    // Confirmed by the webhook, with Alertmanager's fingerprints: a silence can be offered.
    assert!(
        events.iter().any(|event| {
            event["incident"]["alert"]["labels_confirmed"] == true
                && event["incident"]["alert"]["alertmanager_fingerprints"]
                    .as_array()
                    .is_some_and(|fingerprints| !fingerprints.is_empty())
        }),
        "{events:#?}"
    );
    let channel = control.channel("C0ALERTS").await;
    assert_eq!(replies_of(&channel[0]).len(), 1, "one reply");

    poster.stop().await;
    watcher.stop().await;
    gateway.stop().await;
}

/// The buttons under a real Alertmanager alert's reply: "Silence 1h" (offered because
/// Alertmanager's API confirmed the labels, behind a dialog listing them) by someone not allowed is
/// refused (only they see it); by the on-call engineer, clicking twice, it creates one real silence
/// in Alertmanager with every label as a matcher and says so in the thread; "Expire silence" expires it in
/// Alertmanager and the thread says so in place; "Profile now" adds a live profile of the
/// service to the thread.
#[tokio::test]
async fn the_reply_buttons_silence_in_alertmanager_expire_and_profile_now() {
    // The process's metrics recorder: the watcher's counters say how each click ended.
    let _telemetry = telemetry::TelemetryBuilder::new("it")
        .default_filter("warn")
        .init();
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let alertmanager = Alertmanager::start(&alertmanager_config(
        &slack.webhook_url("T0FLAME/B0AMGR/alertmanager"),
    ))
    .unwrap();
    let am_url = format!("http://{}", alertmanager.addr());
    let gateway = start_gateway(&nats, &slack).await;
    let watcher = start_watcher(&nats, |config| {
        config.alertmanager.url = am_url.clone();
        config.actions.silence = vec!["U0ONCALL".into()];
        config.actions.profile_now = vec!["U0DEV".into()];
    })
    .await;
    let watcher_admin = watcher.admin;
    let fetcher = spawn_service(|admin, shutdown| {
        profile_fetcher::run(
            profile_fetcher::Config {
                nats: nats_config(&nats),
                admin,
                live: profile_fetcher::LiveConfig {
                    // "checkout" is played by this test process (alert-watcher's admin port).
                    targets: [("checkout".to_owned(), format!("http://{watcher_admin}"))]
                        .into_iter()
                        .collect(),
                    default_seconds: 2,
                    ..Default::default()
                },
                ..Default::default()
            },
            shutdown,
        )
    })
    .await;
    let poster = start_poster(&nats, &slack).await;

    alertmanager.post_alerts(&alert(None)).unwrap();
    let reply_of = |control: Control| async move {
        control
            .channel("C0ALERTS")
            .await
            .first()
            .map(replies_of)
            .unwrap_or_default()
    };
    wait_for(Duration::from_secs(60), "the incident's reply", || async {
        reply_of(control.clone()).await.len() == 1
    })
    .await
    .unwrap();
    let reply = reply_of(control.clone()).await.remove(0);
    let buttons = reply["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap()["elements"]
        .clone();
    let button = |id: &str| {
        buttons
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["action_id"] == id)
            .unwrap()
            .clone()
    };
    let click = |user: &str, message_ts: &Value, action: &Value| {
        serde_json::json!({"channel": "C0ALERTS", "user": user, "message_ts": message_ts,
            "action_id": action["action_id"], "value": action["value"]})
    };
    // Alertmanager confirmed the labels (its API): "Silence 1h" is offered, behind a dialog that
    // shows every matcher and the duration.
    let dialog = button(proto::actions::SILENCE_1H)["confirm"]["text"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(dialog.starts_with("For 1h"), "{dialog}");
    for matcher in [
        "alertname=\"HighCPU\"",
        "namespace=\"shop\"",
        "service=\"checkout\"",
        "severity=\"page\"",
    ] {
        assert!(dialog.contains(matcher), "{matcher} in {dialog}");
    }

    // Not allowed: refused, to them only; Alertmanager untouched.
    control
        .post(
            "/click",
            click(
                "U0VIEWER",
                &reply["ts"],
                &button(proto::actions::SILENCE_1H),
            ),
        )
        .await;
    wait_for(Duration::from_secs(20), "the refusal", || async {
        control.get("/channels/C0ALERTS").await["ephemeral"]
            .as_array()
            .is_some_and(|all| all.iter().any(|e| e["user"] == "U0VIEWER"))
    })
    .await
    .unwrap();
    let silences = || silences_in(&am_url);
    assert!(silences().await.is_empty());

    // The on-call engineer, clicking twice: one real silence, said once in the thread.
    for _ in 0..2 {
        control
            .post(
                "/click",
                click(
                    "U0ONCALL",
                    &reply["ts"],
                    &button(proto::actions::SILENCE_1H),
                ),
            )
            .await;
    }
    if let Err(err) = wait_for(
        Duration::from_secs(20),
        "the silence in Alertmanager",
        || async { silences().await.len() == 1 },
    )
    .await
    {
        let metrics = reqwest::get(format!("http://{watcher_admin}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let counted: Vec<&str> = metrics
            .lines()
            .filter(|line| line.contains("interactions") || line.contains("consumed_total"))
            .collect();
        panic!(
            "{err}; told: {}; counted: {counted:#?}",
            control.get("/channels/C0ALERTS").await["ephemeral"]
        );
    }
    wait_for(Duration::from_secs(20), "both clicks handled", || async {
        watcher_metric(
            watcher_admin,
            "ft_watcher_interactions_total",
            "outcome=\"already_silenced\"",
        )
        .await
            + watcher_metric(
                watcher_admin,
                "ft_watcher_interactions_total",
                "outcome=\"silenced\"",
            )
            .await
            >= 2.0
    })
    .await
    .unwrap();
    assert_eq!(
        silences().await.len(),
        1,
        "a second click made no second silence"
    );
    let silence = silences().await.remove(0);
    assert_eq!(silence["status"]["state"], "active", "{silence}");
    assert!(
        silence["createdBy"]
            .as_str()
            .unwrap()
            .starts_with("U0ONCALL")
    );
    let matchers: Vec<(String, String)> = silence["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("alertname", "HighCPU"),
        ("service", "checkout"),
        ("namespace", "shop"),
    ] {
        assert!(
            matchers.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {matchers:?}"
        );
    }
    let said = || async {
        reply_of(control.clone())
            .await
            .into_iter()
            .find(|r| r["text"].as_str().unwrap_or("").contains("silence"))
    };
    wait_for(
        Duration::from_secs(20),
        "the silence said in the thread",
        || async { said().await.is_some() },
    )
    .await
    .unwrap();
    let note = said().await.unwrap();
    assert!(
        note["text"]
            .as_str()
            .unwrap()
            .contains("<@U0ONCALL> silenced `HighCPU`"),
        "{note}"
    );

    // Expire it: expired in Alertmanager, and the note says so in place.
    let expire = note["blocks"][1]["elements"][0].clone();
    control
        .post("/click", click("U0ONCALL", &note["ts"], &expire))
        .await;
    wait_for(Duration::from_secs(20), "the silence expired", || async {
        silences().await[0]["status"]["state"] == "expired"
    })
    .await
    .unwrap();
    wait_for(
        Duration::from_secs(20),
        "the note edited in place",
        || async {
            reply_of(control.clone()).await.iter().any(|r| {
                r["ts"] == note["ts"]
                    && r["text"].as_str().unwrap_or("").contains("expired silence")
            })
        },
    )
    .await
    .unwrap();

    // Profile now, by someone not in profile_now: refused, to them only.
    control
        .post(
            "/click",
            click(
                "U0ONCALL",
                &reply["ts"],
                &button(proto::actions::PROFILE_NOW),
            ),
        )
        .await;
    wait_for(Duration::from_secs(20), "the live refusal", || async {
        control.get("/channels/C0ALERTS").await["ephemeral"]
            .as_array()
            .is_some_and(|all| {
                all.iter().any(|e| {
                    e["user"] == "U0ONCALL"
                        && e["text"].as_str().unwrap_or("").contains("not among")
                })
            })
    })
    .await
    .unwrap();
    // Profile now: a live profile of the service, as its own reply in the thread.
    control
        .post(
            "/click",
            click("U0DEV", &reply["ts"], &button(proto::actions::PROFILE_NOW)),
        )
        .await;
    // At once, where the profile will land: a note that it is being taken, by whom.
    let progress = std::sync::Mutex::new(None);
    wait_for(Duration::from_secs(20), "the progress note", || async {
        let found = reply_of(control.clone()).await.into_iter().find(|r| {
            r["text"].as_str().is_some_and(|text| {
                text.contains("Taking a live CPU profile of `checkout` now, asked by <@U0DEV>")
            })
        });
        let seen = found.is_some();
        *progress.lock().unwrap() = found;
        seen
    })
    .await
    .unwrap();
    let progress = progress.into_inner().unwrap().unwrap();
    wait_for(
        Duration::from_secs(40),
        "the live profile in the thread, in place of the note",
        || async {
            // Its own reply: the incident's reply has a live profile of its own, taken when
            // it opened (no Pyroscope here). The note's message now shows the profile.
            reply_of(control.clone()).await.iter().any(|r| {
                r["ts"] == progress["ts"] && r["blocks"].to_string().contains("Where the CPU went")
            })
        },
    )
    .await
    .unwrap();
    // Besides the profiles' pictures (their flamegraph previews, shared as files).
    let messages: Vec<Value> = reply_of(control.clone())
        .await
        .into_iter()
        .filter(|reply| reply.get("files").is_none())
        .collect();
    assert_eq!(
        messages.len(),
        3,
        "the incident's reply, the silence note (edited) and the live profile: {messages:#?}"
    );

    poster.stop().await;
    fetcher.stop().await;
    watcher.stop().await;
    gateway.stop().await;
}

/// The sum of a counter's series with `label` from a service's `/metrics` (0 when absent).
async fn watcher_metric(admin: std::net::SocketAddr, name: &str, label: &str) -> f64 {
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) && line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The same alert posted into two channels is two incidents, and a message in one channel never
/// updates or resolves the incident opened in the other.
#[tokio::test]
async fn a_message_in_one_channel_never_resolves_an_incident_in_another() {
    let nats = NatsServer::start().unwrap();
    let watcher = start_watcher(&nats, |_| {}).await;
    let bus = observer(&nats).await;
    let say = |id: &str, channel: &str, ts: &str, status: &str| {
        let text = format!("alertname: DiskFull\nstatus: {status}\nservice: billing-db");
        webhook_message(id, channel, ts, &text)
    };
    let events = || async {
        let mut all = Vec::new();
        for subject in [
            "ft.incident.opened",
            "ft.incident.updated",
            "ft.incident.resolved",
        ] {
            all.extend(published(&bus, "FT_INCIDENTS", subject).await);
        }
        all
    };
    bus.publish(&say("EvA1", "C0ALERTS", "1700000001.000100", "firing"))
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(20),
        "the incident in #alerts",
        || async { !events().await.is_empty() },
    )
    .await
    .unwrap();
    // Resolved, but in another channel: nothing happens to #alerts' incident.
    bus.publish(&say("EvB1", "C0RANDOM", "1700000002.000100", "resolved"))
        .await
        .unwrap();
    // Firing in the other channel: its own incident, in its own thread.
    bus.publish(&say("EvB2", "C0RANDOM", "1700000003.000100", "firing"))
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(20),
        "the incident in #random",
        || async {
            published(&bus, "FT_INCIDENTS", "ft.incident.opened")
                .await
                .len()
                == 2
        },
    )
    .await
    .unwrap();
    assert!(
        published(&bus, "FT_INCIDENTS", "ft.incident.resolved")
            .await
            .is_empty(),
        "{:?}",
        events().await
    );
    let opened = published(&bus, "FT_INCIDENTS", "ft.incident.opened").await;
    let threads: std::collections::BTreeSet<&str> = opened
        .iter()
        .map(|event| event["incident"]["thread"]["channel"].as_str().unwrap())
        .collect();
    assert_eq!(threads, ["C0ALERTS", "C0RANDOM"].into_iter().collect());
    // Resolved in #alerts: #alerts' incident, and only it.
    bus.publish(&say("EvA2", "C0ALERTS", "1700000004.000100", "resolved"))
        .await
        .unwrap();
    wait_for(
        Duration::from_secs(20),
        "#alerts' incident resolved",
        || async {
            !published(&bus, "FT_INCIDENTS", "ft.incident.resolved")
                .await
                .is_empty()
        },
    )
    .await
    .unwrap();
    let resolved = published(&bus, "FT_INCIDENTS", "ft.incident.resolved").await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["incident"]["thread"]["channel"], "C0ALERTS");
    watcher.stop().await;
}

/// An alert silenced in Alertmanager that then stops firing gets no `[RESOLVED]` (here the
/// receiver sends none at all, so nothing but the comparison can resolve it): alert-watcher
/// compares its open incidents with Alertmanager's alerts and resolves this one in place.
#[tokio::test]
async fn an_alert_alertmanager_no_longer_has_is_resolved_in_place() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let config = alertmanager_config(&slack.webhook_url("T0FLAME/B0AMGR/alertmanager"))
        .replace("send_resolved: true", "send_resolved: false");
    let alertmanager = Alertmanager::start(&config).unwrap();
    let am_url = format!("http://{}", alertmanager.addr());
    let gateway = start_gateway(&nats, &slack).await;
    let watcher = start_watcher(&nats, |config| {
        config.alertmanager.url = am_url.clone();
        config.incidents.sweep_every = Duration::from_millis(500);
        config.alertmanager.reconcile_grace = Duration::ZERO;
    })
    .await;
    let bus = observer(&nats).await;

    alertmanager.post_alerts(&alert(None)).unwrap();
    wait_for(
        Duration::from_secs(60),
        "the incident, its labels confirmed",
        || async {
            published(&bus, "FT_INCIDENTS", "ft.incident.opened")
                .await
                .iter()
                .any(|event| event["incident"]["alert"]["labels_confirmed"] == true)
        },
    )
    .await
    .unwrap();
    // Still firing in Alertmanager: the comparison leaves it open.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        published(&bus, "FT_INCIDENTS", "ft.incident.resolved")
            .await
            .is_empty()
    );

    // Silenced, then it stops firing.
    let http = reqwest::Client::new();
    let now = chrono::Utc::now();
    let silence = serde_json::json!({
        "matchers": [{"name": "alertname", "value": "HighCPU", "isRegex": false, "isEqual": true}],
        "startsAt": now, "endsAt": now + chrono::Duration::hours(1),
        "createdBy": "test", "comment": "maintenance",
    });
    let created = http
        .post(format!("{am_url}/api/v2/silences"))
        .json(&silence)
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    alertmanager
        .post_alerts(&alert(Some(now - chrono::Duration::seconds(1))))
        .unwrap();

    wait_for(Duration::from_secs(30), "the incident resolved", || async {
        !published(&bus, "FT_INCIDENTS", "ft.incident.resolved")
            .await
            .is_empty()
    })
    .await
    .unwrap();
    let resolved = published(&bus, "FT_INCIDENTS", "ft.incident.resolved").await;
    assert_eq!(resolved.len(), 1);
    let opened = published(&bus, "FT_INCIDENTS", "ft.incident.opened").await;
    assert_eq!(
        resolved[0]["incident"]["id"], opened[0]["incident"]["id"],
        "the same incident, resolved in place"
    );
    assert_eq!(
        control.channel("C0ALERTS").await.len(),
        1,
        "Alertmanager said nothing more in Slack"
    );
    watcher.stop().await;
    gateway.stop().await;
}

/// A generic webhook's message (`text`) in `channel` at `ts`, as slack-gateway publishes it.
fn webhook_message(event_id: &str, channel: &str, ts: &str, text: &str) -> proto::SlackMessage {
    let mut message = test_support::fixtures::slack_message(event_id);
    message.channel = channel.to_owned();
    message.ts = ts.to_owned();
    message.raw = serde_json::json!({
        "type": "message", "subtype": "bot_message", "bot_id": "B0HOOK", "channel": channel,
        "ts": ts, "text": text,
    });
    message
}

/// A firing alert of a source that never says it resolved, in `#alerts` at `ts`.
fn webhook_alert(event_id: &str, ts: &str) -> proto::SlackMessage {
    webhook_message(
        event_id,
        "C0ALERTS",
        ts,
        "alertname: QueueBacklog\nstatus: firing\nservice: billing",
    )
}

/// A source that never says an alert resolved (a generic webhook): once nothing is heard for
/// `stale_after`, the incident is marked stale in place, and the next notification revives it.
#[tokio::test]
async fn an_incident_nobody_resolves_is_marked_stale_in_place() {
    let nats = NatsServer::start().unwrap();
    let watcher = start_watcher(&nats, |config| {
        config.incidents.stale_after = Duration::from_secs(1);
        config.incidents.sweep_every = Duration::from_millis(300);
    })
    .await;
    let bus = observer(&nats).await;
    let updates = || async { published(&bus, "FT_INCIDENTS", "ft.incident.updated").await };
    bus.publish(&webhook_alert("EvQ1", "1700000001.000100"))
        .await
        .unwrap();
    wait_for(Duration::from_secs(20), "marked stale", || async {
        updates()
            .await
            .iter()
            .any(|event| event["incident"]["stale_since"].is_string())
    })
    .await
    .unwrap();
    let opened = published(&bus, "FT_INCIDENTS", "ft.incident.opened").await;
    let stale = updates().await;
    assert_eq!(stale[0]["incident"]["id"], opened[0]["incident"]["id"]);
    assert_eq!(stale.len(), 1, "marked once");
    // Heard from again: no longer stale.
    bus.publish(&webhook_alert("EvQ2", "1700000002.000100"))
        .await
        .unwrap();
    wait_for(Duration::from_secs(20), "revived", || async {
        updates().await.iter().any(|event| {
            event["incident"]["notification_count"] == 2
                && event["incident"].get("stale_since").is_none()
        })
    })
    .await
    .unwrap();
    assert!(
        published(&bus, "FT_INCIDENTS", "ft.incident.resolved")
            .await
            .is_empty()
    );
    watcher.stop().await;
}

/// The sweep's own writes (a resolution, staleness) have no message to bring their event back
/// if the publish after the write fails: the sweep publishes any state it finds unpublished.
/// Made here as such a failure leaves it: the incident written stale, its event never published.
#[tokio::test]
async fn a_swept_change_whose_publish_failed_is_published_by_the_next_sweep() {
    use alert_watcher::correlate::{IncidentState, mark_stale};

    let nats = NatsServer::start().unwrap();
    let watcher = start_watcher(&nats, |config| {
        config.incidents.stale_after = Duration::from_secs(3600);
        config.incidents.sweep_every = Duration::from_millis(300);
    })
    .await;
    let bus = observer(&nats).await;
    bus.publish(&webhook_alert("EvP1", "1700000001.000100"))
        .await
        .unwrap();
    wait_for(Duration::from_secs(20), "opened", || async {
        !published(&bus, "FT_INCIDENTS", "ft.incident.opened")
            .await
            .is_empty()
    })
    .await
    .unwrap();
    let opened = published(&bus, "FT_INCIDENTS", "ft.incident.opened").await;
    let fingerprint = opened[0]["incident"]["fingerprint"].as_str().unwrap();
    let key = proto::keys::incident::state(fingerprint);
    let store = bus.incident_store().await.unwrap();
    let read = || async {
        let entry = store.entry(&key).await.unwrap().unwrap();
        let state: IncidentState = serde_json::from_slice(&entry.value).unwrap();
        (state, entry.revision)
    };
    wait_for(Duration::from_secs(10), "the opening recorded", || async {
        read().await.0.announced
    })
    .await
    .unwrap();
    let (state, revision) = read().await;
    let stale = mark_stale(
        &state,
        chrono::Utc::now() + chrono::Duration::hours(2),
        Duration::from_secs(3600),
    )
    .unwrap();
    assert!(stale.republish);
    store
        .update(&key, serde_json::to_vec(&stale).unwrap().into(), revision)
        .await
        .unwrap();

    let updates = || async { published(&bus, "FT_INCIDENTS", "ft.incident.updated").await };
    wait_for(
        Duration::from_secs(20),
        "the stale update published",
        || async {
            updates()
                .await
                .iter()
                .any(|event| event["incident"]["stale_since"].is_string())
        },
    )
    .await
    .unwrap();
    wait_for(Duration::from_secs(10), "its publish recorded", || async {
        !read().await.0.republish
    })
    .await
    .unwrap();
    // Recorded, so the sweeps after it (every 300 ms) leave it alone: not written again.
    let recorded = read().await.1;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(read().await.1, recorded);
    let updates = updates().await;
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0]["incident"]["revision"], stale.incident.revision);
    watcher.stop().await;
}

/// With silences of up to a day allowed, "Silence" is a select of lengths behind a confirmation;
/// picking 4h through the emulator (which sends the picked option as Slack does) creates a real
/// Alertmanager silence that ends four hours from now.
#[tokio::test]
async fn a_silence_of_four_hours_picked_from_the_select_lasts_four_hours() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let alertmanager = Alertmanager::start(&alertmanager_config(
        &slack.webhook_url("T0FLAME/B0AMGR/alertmanager"),
    ))
    .unwrap();
    let am_url = format!("http://{}", alertmanager.addr());
    let _gateway = start_gateway(&nats, &slack).await;
    let _watcher = start_watcher(&nats, |config| {
        config.alertmanager.url = am_url.clone();
        config.actions.silence = vec!["U0ONCALL".into()];
        config.actions.silence_for = Duration::from_secs(24 * 3600);
    })
    .await;
    let _fetcher = spawn_service(|admin, shutdown| {
        profile_fetcher::run(
            profile_fetcher::Config {
                nats: nats_config(&nats),
                admin,
                ..Default::default()
            },
            shutdown,
        )
    })
    .await;
    let _poster = spawn_service(|admin, shutdown| {
        let mut config = poster_config(&nats, &slack, admin);
        config.diagnosis.silence_for = Duration::from_secs(24 * 3600);
        remediation_poster::run(config, shutdown)
    })
    .await;

    alertmanager.post_alerts(&alert(None)).unwrap();
    let select = || async {
        let reply = control
            .channel("C0ALERTS")
            .await
            .first()
            .map(replies_of)
            .unwrap_or_default()
            .into_iter()
            .next()?;
        let select = reply["blocks"]
            .as_array()?
            .iter()
            .filter(|block| block["type"] == "actions")
            .flat_map(|block| block["elements"].as_array().cloned().unwrap_or_default())
            .find(|element| element["action_id"] == proto::actions::SILENCE_1H)?;
        Some((reply["ts"].clone(), select))
    };
    wait_for(Duration::from_secs(60), "the silence select", || async {
        select()
            .await
            .is_some_and(|(_, element)| element["type"] == "static_select")
    })
    .await
    .unwrap();
    let (reply_ts, element) = select().await.unwrap();
    let offered: Vec<&str> = element["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|option| option["text"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        offered,
        ["Silence 30m", "Silence 1h", "Silence 4h", "Silence 24h"],
        "{element}"
    );
    assert!(element["confirm"].is_object(), "behind a confirmation");
    let four_hours = element["options"][2]["value"].clone();

    let before = chrono::Utc::now();
    control
        .post(
            "/click",
            serde_json::json!({"channel": "C0ALERTS", "user": "U0ONCALL", "message_ts": reply_ts,
                "action_id": proto::actions::SILENCE_1H, "value": four_hours}),
        )
        .await;
    let silences = || silences_in(&am_url);
    wait_for(Duration::from_secs(20), "the silence", || async {
        silences().await.len() == 1
    })
    .await
    .unwrap();
    let silence = silences().await.remove(0);
    let ends: chrono::DateTime<chrono::Utc> = silence["endsAt"].as_str().unwrap().parse().unwrap();
    let lasts = ends - before;
    assert!(
        lasts > chrono::Duration::minutes(235) && lasts < chrono::Duration::minutes(245),
        "a silence of {lasts} ({silence})"
    );
}
