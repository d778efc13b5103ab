//! Changes and Kubernetes as evidence, end to end: a CI job records a deploy through the markers
//! API, an alert lands, and its thread lists the change with its lead time, marks it on the chart,
//! names it in the diagnosis, and shows the workload: an OOMKilled container with its last log
//! lines, from a real Prometheus scraping kube-state-metrics' and cAdvisor's series (as those
//! exporters name them) and from the Kubernetes API emulator. Then every new door with bad input:
//! the markers API, and Kubernetes answers that refuse, time out or flood.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use kube_emulator::{KubeEmulator, Logs, objects};
use serde_json::{Value, json};
use test_support::{NatsServer, Prometheus, reserve_port, wait_for};

use crate::{
    slack_edge::{
        Control, RunningService, emulator_config, spawn_service, start_emulator, start_gateway,
        start_poster, start_watcher,
    },
    support::nats_config,
};

const TOKEN: &str = "ci-token-0123456789abcdef";
const KUBE_TOKEN: &str = "kube-token-for-profile-fetcher";
const POD: &str = "checkout-7d9f8b6c5-x2k4z";

/// kube-state-metrics' and cAdvisor's series for the checkout deployment in `shop` (names and
/// labels as those exporters publish them), and the service's own CPU, at `elapsed` seconds.
fn exposition(started: i64, elapsed: f64) -> String {
    let pod = format!("namespace=\"shop\",pod=\"{POD}\",uid=\"uid-{POD}\"");
    let cadvisor = format!(
        "container=\"checkout\",id=\"/kubepods/burstable/pod-uid/abc\",image=\"registry.example/checkout:1.4.2\",name=\"abc\",namespace=\"shop\",pod=\"{POD}\""
    );
    format!(
        "# HELP kube_pod_container_status_restarts_total The number of container restarts per container.\n\
         # TYPE kube_pod_container_status_restarts_total counter\n\
         kube_pod_container_status_restarts_total{{{pod},container=\"checkout\"}} 4\n\
         # HELP kube_pod_container_status_last_terminated_reason Describes the last reason the container was in terminated state.\n\
         # TYPE kube_pod_container_status_last_terminated_reason gauge\n\
         kube_pod_container_status_last_terminated_reason{{{pod},container=\"checkout\",reason=\"OOMKilled\"}} 1\n\
         # HELP kube_pod_container_resource_limits The number of requested limit resource by a container.\n\
         # TYPE kube_pod_container_resource_limits gauge\n\
         kube_pod_container_resource_limits{{{pod},container=\"checkout\",node=\"node-1\",resource=\"memory\",unit=\"byte\"}} 536870912\n\
         kube_pod_container_resource_limits{{{pod},container=\"checkout\",node=\"node-1\",resource=\"cpu\",unit=\"core\"}} 0.5\n\
         # HELP kube_deployment_spec_replicas Number of desired pods for a deployment.\n\
         # TYPE kube_deployment_spec_replicas gauge\n\
         kube_deployment_spec_replicas{{namespace=\"shop\",deployment=\"checkout\"}} 3\n\
         # HELP kube_deployment_status_replicas_ready The number of ready replicas per deployment.\n\
         # TYPE kube_deployment_status_replicas_ready gauge\n\
         kube_deployment_status_replicas_ready{{namespace=\"shop\",deployment=\"checkout\"}} 2\n\
         # HELP kube_replicaset_created Unix creation timestamp\n\
         # TYPE kube_replicaset_created gauge\n\
         kube_replicaset_created{{namespace=\"shop\",replicaset=\"checkout-7d9f8b6c5\"}} {}\n\
         kube_replicaset_created{{namespace=\"shop\",replicaset=\"checkout-5c4b3a2d1\"}} {}\n\
         # HELP kube_replicaset_owner Information about the ReplicaSet's owner.\n\
         # TYPE kube_replicaset_owner gauge\n\
         kube_replicaset_owner{{namespace=\"shop\",replicaset=\"checkout-7d9f8b6c5\",owner_kind=\"Deployment\",owner_name=\"checkout\",owner_is_controller=\"true\"}} 1\n\
         kube_replicaset_owner{{namespace=\"shop\",replicaset=\"checkout-5c4b3a2d1\",owner_kind=\"Deployment\",owner_name=\"checkout\",owner_is_controller=\"true\"}} 1\n\
         # HELP kube_pod_owner Information about the Pod's owner.\n\
         # TYPE kube_pod_owner gauge\n\
         kube_pod_owner{{{pod},owner_kind=\"ReplicaSet\",owner_name=\"checkout-7d9f8b6c5\",owner_is_controller=\"true\"}} 1\n\
         # HELP kube_pod_container_info Information about a container in a pod.\n\
         # TYPE kube_pod_container_info gauge\n\
         kube_pod_container_info{{{pod},container=\"checkout\",image_spec=\"registry.example/checkout:1.4.2\",image=\"registry.example/checkout:1.4.2\",image_id=\"docker-pullable://registry.example/checkout@sha256:ab\",container_id=\"containerd://abc\"}} 1\n\
         # HELP container_memory_working_set_bytes Current working set of the container in bytes\n\
         # TYPE container_memory_working_set_bytes gauge\n\
         container_memory_working_set_bytes{{{cadvisor}}} {}\n\
         # HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.\n\
         # TYPE container_cpu_usage_seconds_total counter\n\
         container_cpu_usage_seconds_total{{{cadvisor},cpu=\"total\"}} {}\n\
         # HELP container_cpu_cfs_periods_total Number of elapsed enforcement period intervals.\n\
         # TYPE container_cpu_cfs_periods_total counter\n\
         container_cpu_cfs_periods_total{{{cadvisor}}} {}\n\
         # HELP container_cpu_cfs_throttled_periods_total Number of throttled period intervals.\n\
         # TYPE container_cpu_cfs_throttled_periods_total counter\n\
         container_cpu_cfs_throttled_periods_total{{{cadvisor}}} {}\n\
         # HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
         # TYPE process_cpu_seconds_total counter\n\
         process_cpu_seconds_total {}\n",
        started - 425,
        started - 86_000,
        // 515 MB of a 512 MiB limit: 96%.
        515_000_000.0 + (elapsed * 10.0).sin() * 1000.0,
        0.45 * elapsed,
        10.0 * elapsed,
        4.0 * elapsed,
        0.45 * elapsed,
    )
}

/// Serves [`exposition`] at `/metrics`, as a test target for a real Prometheus.
async fn start_exporters() -> SocketAddr {
    let started = chrono::Utc::now().timestamp();
    let clock = Arc::new(std::time::Instant::now());
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let clock = clock.clone();
            async move { exposition(started, clock.elapsed().as_secs_f64()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn start_prometheus(target: SocketAddr) -> Prometheus {
    Prometheus::start(&format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: checkout\n    honor_labels: true\n    static_configs:\n      - targets: ['{target}']\n"
    ))
    .unwrap()
}

/// The checkout deployment as the API server holds it: two revisions, a pod whose container was
/// OOMKilled four times, its events and the log of its run before the last restart.
async fn start_kube() -> KubeEmulator {
    let kube = KubeEmulator::start(
        KUBE_TOKEN,
        "system:serviceaccount:flamethread:profile-fetcher",
    )
    .await
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    kube.add_deployment(objects::deployment("shop", "checkout", 3, 2));
    kube.add_replicaset(objects::replicaset(
        "shop",
        "checkout",
        "checkout-5c4b3a2d1",
        1,
        "registry.example/checkout:1.4.1",
        now - 86_000,
    ));
    kube.add_replicaset(objects::replicaset(
        "shop",
        "checkout",
        "checkout-7d9f8b6c5",
        2,
        "registry.example/checkout:1.4.2",
        now - 425,
    ));
    kube.add_pod(objects::pod(
        "shop",
        "checkout",
        "checkout-7d9f8b6c5",
        POD,
        &[("checkout", 4, Some("OOMKilled"))],
    ));
    kube.add_event(objects::event(
        "shop",
        "Pod",
        POD,
        "Warning",
        "BackOff",
        "Back-off restarting failed container checkout in pod <!channel>",
        now - 60,
    ));
    kube.add_event(objects::event(
        "shop",
        "Pod",
        POD,
        "Normal",
        "Pulled",
        "Container image \"registry.example/checkout:1.4.2\" already present on machine",
        now - 120,
    ));
    let previous: String = (1..=300)
        .map(|i| format!("INFO applying coupon batch {i}\n"))
        .chain(["MemoryError: coupon cache grew past 512 MiB\n".to_owned()])
        .collect();
    kube.set_logs(
        "shop",
        POD,
        "checkout",
        Logs {
            current: "INFO starting checkout 1.4.2\n".to_owned(),
            previous: Some(previous),
        },
    );
    kube
}

/// Reads of `kube` with `timeout` each: short where a test waits for one to time out, generous
/// where a busy machine must not turn a slow answer into a missing one.
fn kube_config(
    kube: &KubeEmulator,
    token_file: &std::path::Path,
    timeout: Duration,
) -> profile_fetcher::KubernetesConfig {
    profile_fetcher::KubernetesConfig {
        api: kube.url(),
        token_file: Some(token_file.to_owned()),
        timeout,
        ..Default::default()
    }
}

/// profile-fetcher with its pages on `pages` and its span intake on `spans` (the store in
/// `store`).
async fn start_fetcher(
    nats: &NatsServer,
    prometheus: &Prometheus,
    kubernetes: profile_fetcher::KubernetesConfig,
    pages: SocketAddr,
    spans: Option<(SocketAddr, &std::path::Path)>,
) -> RunningService {
    let config = profile_fetcher::Config {
        nats: nats_config(nats),
        prometheus: profile_fetcher::PrometheusConfig {
            url: prometheus.url(),
            ..Default::default()
        },
        pages: profile_fetcher::PagesConfig {
            listen: Some(pages),
            public_url: format!("http://{pages}"),
        },
        changes: profile_fetcher::ChangesConfig {
            api_token: profile_fetcher::Secret::new(TOKEN),
            ..Default::default()
        },
        kubernetes,
        traces: match spans {
            Some((listen, store)) => profile_fetcher::TracesConfig {
                listen: Some(listen),
                dir: store.to_owned(),
                ..Default::default()
            },
            None => Default::default(),
        },
        ..Default::default()
    };
    spawn_service(|admin, shutdown| {
        profile_fetcher::run(profile_fetcher::Config { admin, ..config }, shutdown)
    })
    .await
}

fn http() -> reqwest::Client {
    slack::http_client(Duration::from_secs(10)).unwrap()
}

async fn post_change(
    pages: SocketAddr,
    token: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let response = http()
        .post(format!("http://{pages}/api/v1/changes"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn list_changes(pages: SocketAddr, query: &str) -> (u16, Value) {
    let response = http()
        .get(format!("http://{pages}/api/v1/changes{query}"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A Grafana alert about the checkout pod, with the labels Grafana writes into its message.
async fn post_grafana_alert(control: &Control) -> String {
    let text = format!(
        "**Firing**\n\nValue: B=4\nLabels:\n - alertname = KubePodCrashLooping\n - namespace = shop\n - pod = {POD}\n - container = checkout\n - service = checkout\n - severity = critical\nAnnotations:\n - summary = checkout is crash looping\n"
    );
    let answer = control
        .post(
            "/post",
            json!({
                "channel": "C0ALERTS", "bot_id": "B0GRAFANA", "username": "Grafana",
                "attachments": [{
                    "color": "#D63232", "title": "[FIRING:1] KubePodCrashLooping (Kubernetes)",
                    "title_link": "http://grafana:3000/alerting/list",
                    "footer": "Grafana v10.4.1", "text": text,
                    "fallback": "[FIRING:1] KubePodCrashLooping (Kubernetes)"
                }]
            }),
        )
        .await;
    answer["ts"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_then_an_alert_gives_a_thread_with_the_change_and_the_workload() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let prometheus = start_prometheus(start_exporters().await);
    let kube = start_kube().await;
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), KUBE_TOKEN).unwrap();
    let pages = reserve_port().unwrap().addr();
    let intake = reserve_port().unwrap().addr();
    let store = tempfile::tempdir().unwrap();
    let _gateway = start_gateway(&nats, &slack).await;
    let _watcher = start_watcher(&nats, |_| {}).await;
    let _poster = start_poster(&nats, &slack).await;
    let _fetcher = start_fetcher(
        &nats,
        &prometheus,
        kube_config(&kube, token_file.path(), Duration::from_secs(15)),
        pages,
        Some((intake, store.path())),
    )
    .await;

    // The app's spans: GET /cart took 95 ms an hour ago and 800 ms (half of them failing) in the
    // last minutes; the health check did not change.
    let now_us = chrono::Utc::now().timestamp_micros();
    let mut spans = Vec::new();
    for (i, (minutes_ago, name, ms, error)) in [
        (30, "GET /cart", 95, false),
        (2, "GET /cart", 800, true),
        (2, "GET /cart", 800, false),
        (30, "GET /health", 2, false),
        (2, "GET /health", 2, false),
    ]
    .into_iter()
    .flat_map(|span| std::iter::repeat_n(span, 4))
    .enumerate()
    {
        spans.push(json!({
            "id": format!("{:x}", i + 1), "trace_id": format!("{:x}", 0xc0ffee + i),
            "name": name, "start_timestamp_micros": now_us - minutes_ago * 60_000_000,
            "duration_micros": ms * 1000,
            "tags": [{"key": "service_name", "v_type": "string", "v_str": "checkout"},
                     {"key": "error", "v_type": "bool", "v_bool": error}]
        }));
    }
    let sent = http()
        .post(format!("http://{intake}/api/v1/spans"))
        .json(&spans)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200, "{}", sent.text().await.unwrap());

    // CI records the deploy seven minutes ago, as its job would with one curl.
    let at = (chrono::Utc::now() - chrono::Duration::minutes(7)).to_rfc3339();
    let deploy = json!({
        "id": "ci-812", "service": "checkout", "version": "1.4.2", "kind": "deploy",
        "who": "CI run 812", "url": "https://ci.example/runs/812", "environment": "prod",
        "message": "raise the coupon cache", "at": at,
    })
    .to_string();
    let (status, answer) = post_change(pages, TOKEN, "application/json", &deploy).await;
    assert_eq!(status, 201, "{answer}");
    // Prometheus must answer the CPU query as the evidence will ask it: with the fetcher's own
    // client, over a window ending now, three times in a row.
    let client = profile_fetcher::metrics::prometheus::Prometheus::new(
        &prometheus.url(),
        Duration::from_secs(5),
        1 << 20,
        &runtime::auth::ServerAuth::default(),
    )
    .unwrap();
    let in_a_row = std::sync::atomic::AtomicU32::new(0);
    wait_for(
        Duration::from_secs(90),
        "Prometheus has a CPU rate to chart",
        || async {
            let now = chrono::Utc::now();
            let window = proto::TimeWindow {
                from: now - chrono::Duration::minutes(15),
                to: now,
            };
            let query = r#"sum(rate(process_cpu_seconds_total{job="checkout"}[60s]))"#;
            let step = profile_fetcher::metrics::step(window, 120);
            let found = client
                .query_range(query, window, step)
                .await
                .is_ok_and(|series| series.iter().any(|series| !series.samples.is_empty()));
            if found {
                tokio::time::sleep(Duration::from_millis(500)).await;
                in_a_row.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 2
            } else {
                in_a_row.store(0, std::sync::atomic::Ordering::Relaxed);
                false
            }
        },
    )
    .await
    .unwrap();

    post_grafana_alert(&control).await;
    let reply = wait_for_reply(&control, |text| {
        text.contains("Changed before this alert")
            && text.contains("Workload")
            && text.contains("Requests")
            && text.contains("Diagnosis* (")
    })
    .await;
    let text = serde_json::to_string(&reply["blocks"]).unwrap();
    // The change, newest first, with its lead time, who made it and its link; the rollout that
    // kube-state-metrics saw is the same deploy and is shown once.
    assert!(
        text.contains(
            "<https://ci.example/runs/812|checkout 1.4.2> deployed 7m before, by CI run 812 in prod"
        ),
        "{text}"
    );
    assert_eq!(
        text.matches("checkout 1.4.2> deployed").count()
            + text.matches("`checkout 1.4.2` deployed").count(),
        1,
        "{text}"
    );
    // The diagnosis ties the crash loop to the deploy.
    assert!(text.contains("crash-loop-after-a-change"), "{text}");
    assert!(
        text.contains(
            "keeps restarting (4 times), and checkout 1.4.2 was deployed 7 min before the alert"
        ),
        "{text}"
    );
    // The workload: replicas, the OOMKilled container against its limit, the warning event
    // (escaped), the log of the run that crashed, and the rollout history.
    assert!(text.contains("2/3 replicas ready"), "{text}");
    assert!(
        text.contains("4 restarts, last terminated *OOMKilled*"),
        "{text}"
    );
    assert!(
        text.contains("memory peaked at 491 of 512 MiB (96%)"),
        "{text}"
    );
    assert!(
        text.contains(
            "BackOff: Back-off restarting failed container checkout in pod &lt;!channel&gt;"
        ),
        "{text}"
    );
    assert!(!text.contains("<!channel>"), "{text}");
    assert!(
        text.contains("before its last restart, last lines"),
        "{text}"
    );
    assert!(
        text.contains("MemoryError: coupon cache grew past 512 MiB"),
        "{text}"
    );
    assert!(
        !text.contains("coupon batch 200\\n"),
        "only the last lines: {text}"
    );
    assert!(text.contains("rev 2"), "{text}");
    // Which requests got slow: from the spans the app reported, now against an hour ago.
    assert!(
        text.contains("*Requests* of `checkout`, the incident window against before:"),
        "{text}"
    );
    assert!(
        text.contains("• `GET /cart` p95 *800 ms* (was 95 ms) · errors 50% (was 0%) · 8 spans"),
        "{text}"
    );
    assert!(
        text.contains("Slowest: `GET /cart` 800 ms in trace `"),
        "{text}"
    );
    // …and its trace is one click away, drawn as a waterfall with that span marked.
    let waterfall = text
        .split('<')
        .find_map(|part| {
            part.strip_suffix("|Waterfall>")
                .or_else(|| part.split_once("|Waterfall>").map(|(url, _)| url))
        })
        .unwrap_or_else(|| panic!("a waterfall link: {text}"))
        .replace("&amp;", "&");
    assert!(
        waterfall.starts_with(&format!("http://{pages}/traces/")),
        "{waterfall}"
    );
    let page = http().get(&waterfall).send().await.unwrap();
    assert_eq!(page.status(), 200, "{waterfall}");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"class="focus""#) || html.contains(r#"class="error focus""#),
        "{html}"
    );
    assert!(html.contains(">GET &#x2f;cart<"), "{html}");

    // The chart marks the deploy.
    let chart = wait_for_chart(&nats).await;
    let svg = http()
        .get(chart)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(svg.contains("deploy 1.4.2"), "{svg}");
}

async fn wait_for_reply(control: &Control, done: impl Fn(&str) -> bool) -> Value {
    let found = wait_for(Duration::from_secs(60), "the alert's reply", || async {
        control
            .channel("C0ALERTS")
            .await
            .first()
            .and_then(|alert| alert["replies"].as_array()?.first().cloned())
            .is_some_and(|reply| done(&serde_json::to_string(&reply["blocks"]).unwrap()))
    })
    .await;
    let channel = control.channel("C0ALERTS").await;
    if let Err(err) = found {
        panic!("{err}; #alerts holds {channel:?}");
    }
    channel[0]["replies"][0].clone()
}

async fn wait_for_chart(nats: &NatsServer) -> String {
    let bus = crate::slack_edge::observer(nats).await;
    let chart_of = |metrics: Vec<Value>| {
        metrics
            .first()
            .and_then(|m| m["chart_url"].as_str().map(str::to_owned))
    };
    wait_for(
        Duration::from_secs(20),
        "the metrics evidence with its chart",
        || async {
            chart_of(crate::slack_edge::published(&bus, "FT_EVIDENCE", "ft.evidence.metrics").await)
                .is_some()
        },
    )
    .await
    .unwrap();
    chart_of(crate::slack_edge::published(&bus, "FT_EVIDENCE", "ft.evidence.metrics").await)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_markers_api_refuses_what_is_not_a_change_and_lists_what_is() {
    let nats = NatsServer::start().unwrap();
    let prometheus = start_prometheus(start_exporters().await);
    let pages = reserve_port().unwrap().addr();
    let _fetcher = start_fetcher(&nats, &prometheus, Default::default(), pages, None).await;
    let json = "application/json";
    let good = r#"{"service":"checkout","version":"1.4.2"}"#;

    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        (
            "no token",
            "",
            good.to_owned(),
            401,
            "Authorization: Bearer",
        ),
        (
            "a wrong token",
            "ci-token-0123456789abcdeX",
            good.to_owned(),
            401,
            "Bearer",
        ),
        (
            "not JSON",
            TOKEN,
            "service=checkout".to_owned(),
            400,
            "not a change",
        ),
        (
            "an unknown field",
            TOKEN,
            r#"{"service":"checkout","sevrice":"x"}"#.to_owned(),
            400,
            "unknown field `sevrice`",
        ),
        (
            "an unknown kind",
            TOKEN,
            r#"{"service":"checkout","kind":"migration"}"#.to_owned(),
            400,
            "unknown variant `migration`",
        ),
        (
            "no service",
            TOKEN,
            r#"{"version":"1"}"#.to_owned(),
            400,
            "missing field `service`",
        ),
        (
            "a script URL",
            TOKEN,
            r#"{"service":"checkout","url":"javascript:alert(1)"}"#.to_owned(),
            422,
            "http(s) URL",
        ),
        (
            "a control character",
            TOKEN,
            "{\"service\":\"check\\u0007out\"}".to_owned(),
            422,
            "control characters",
        ),
        (
            "a time far ahead",
            TOKEN,
            r#"{"service":"checkout","at":"2999-01-01T00:00:00Z"}"#.to_owned(),
            422,
            "in the future",
        ),
        (
            "too large",
            TOKEN,
            format!(
                r#"{{"service":"checkout","message":"{}"}}"#,
                "x".repeat(20_000)
            ),
            413,
            "length limit",
        ),
    ];
    for (what, token, body, status, says) in cases {
        let (got, answer) = post_change(pages, token, json, &body).await;
        assert_eq!(got, status, "{what}: {answer}");
        // Every refusal is JSON with a sentence in `error`.
        assert!(
            answer["error"]
                .as_str()
                .is_some_and(|error| error.contains(says)),
            "{what}: {answer}"
        );
    }
    let wrong_method = http()
        .delete(format!("http://{pages}/api/v1/changes"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status().as_u16(), 405);
    let answer: Value = wrong_method.json().await.unwrap();
    assert!(
        answer["error"].as_str().unwrap().contains("POST"),
        "{answer}"
    );
    let (got, answer) = post_change(pages, TOKEN, "text/plain", good).await;
    assert_eq!(got, 415, "{answer}");

    // Recorded once, however often a CI job retries with its id.
    let with_id = r#"{"id":"ci-900","service":"checkout","version":"1.4.3","kind":"rollback","who":"<@U123> & co"}"#;
    assert_eq!(post_change(pages, TOKEN, json, with_id).await.0, 201);
    assert_eq!(post_change(pages, TOKEN, json, with_id).await.0, 200);
    assert_eq!(
        post_change(pages, TOKEN, json, r#"{"service":"cart"}"#)
            .await
            .0,
        201
    );
    let (status, listed) = list_changes(pages, "?service=CHECKOUT&since=1h").await;
    assert_eq!(status, 200, "{listed}");
    let changes = listed["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{listed}");
    assert_eq!(listed["truncated"], false, "{listed}");
    assert_eq!(changes[0]["kind"], "rollback");
    assert_eq!(
        changes[0]["who"], "<@U123> & co",
        "kept as written; escaped where shown"
    );
    let (_, all) = list_changes(pages, "").await;
    assert_eq!(all["changes"].as_array().unwrap().len(), 2, "{all}");
    let (_, one) = list_changes(pages, "?limit=1").await;
    assert_eq!(
        (one["changes"].as_array().unwrap().len(), &one["truncated"]),
        (1, &Value::Bool(true)),
        "{one}"
    );
    for bad in [
        "?since=yesterday",
        "?limit=0",
        "?limit=100000",
        "?servce=checkout",
    ] {
        let (status, answer) = list_changes(pages, bad).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{bad}: {answer}"
        );
    }

    // Kept for a month, in a stream of its own with a byte limit.
    let bus = crate::slack_edge::observer(&nats).await;
    let mut stream = bus.jetstream().get_stream("FT_CHANGES").await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.max_age, Duration::from_secs(30 * 24 * 3600));
    assert!(info.config.max_bytes > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_answers_that_refuse_time_out_or_flood_end_in_a_sentence() {
    let kube = start_kube().await;
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), KUBE_TOKEN).unwrap();
    let config = kube_config(&kube, token_file.path(), Duration::from_secs(2));
    let client = profile_fetcher::kubernetes::api::KubeApi::connect(&config)
        .await
        .unwrap()
        .unwrap();
    let mut incident =
        test_support::fixtures::incident_event("inc", "1.0", proto::IncidentChange::Opened, 1)
            .incident;
    incident.alert.labels = [("namespace", "shop"), ("pod", POD)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let gather = |config: profile_fetcher::KubernetesConfig,
                  client: profile_fetcher::kubernetes::api::KubeApi,
                  incident: proto::Incident| async move {
        profile_fetcher::kubernetes::gather(None, Some(&client), &config, &incident, "w".into())
            .await
    };

    // Everything readable: events (warnings first), the previous run's last lines, the history.
    let read = gather(config.clone(), client.clone(), incident.clone()).await;
    assert_eq!(read.events[0].reason, "BackOff", "{read:?}");
    let log = read.log.as_ref().unwrap();
    assert!(log.previous && log.truncated, "{log:?}");
    assert_eq!(log.text.lines().count(), 20, "{log:?}");
    assert_eq!(
        read.rollouts.iter().map(|r| r.revision).collect::<Vec<_>>(),
        [2, 1]
    );

    // A huge log is cut to its byte budget.
    let flood: String = (0..50_000)
        .map(|i| format!("{i:08} {}\n", "x".repeat(200)))
        .collect();
    kube.set_logs(
        "shop",
        POD,
        "checkout",
        Logs {
            current: String::new(),
            previous: Some(flood),
        },
    );
    let read = gather(config.clone(), client.clone(), incident.clone()).await;
    let log = read.log.unwrap();
    assert!(
        log.text.len() <= config.max_log_bytes as usize && log.truncated,
        "{}",
        log.text.len()
    );

    // A Role without `list events` says which permission is missing.
    kube.revoke("list", "events");
    let read = gather(config.clone(), client.clone(), incident.clone()).await;
    assert!(read.events.is_empty());
    assert!(
        read.notes
            .iter()
            .any(|note| note.contains("(403): the Role needs `list` on `events`")),
        "{:?}",
        read.notes
    );

    // A wrong token is a 401, said as such.
    std::fs::write(token_file.path(), "not-the-token").unwrap();
    let stranger = profile_fetcher::kubernetes::api::KubeApi::connect(&config)
        .await
        .unwrap()
        .unwrap();
    let read = gather(config.clone(), stranger, incident.clone()).await;
    assert!(
        read.notes.iter().any(|note| note.contains("(401)")),
        "{:?}",
        read.notes
    );

    // An API server slower than the timeout.
    kube.delay(Duration::from_secs(3));
    let read = gather(config.clone(), client.clone(), incident.clone()).await;
    assert!(
        read.notes
            .iter()
            .any(|note| note.contains("did not answer within 2s")),
        "{:?}",
        read.notes
    );
    kube.delay(Duration::ZERO);

    // An alert without the labels that name a workload.
    incident.alert.labels.clear();
    let read = gather(config, client, incident).await;
    assert!(
        matches!(&read.status, proto::evidence::EvidenceStatus::NoData { detail } if detail.contains("no namespace label")),
        "{:?}",
        read.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_announced_in_slack_is_recorded_once_and_people_cannot_forge_one() {
    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let _gateway = start_gateway(&nats, &slack).await;
    let _watcher = start_watcher(&nats, |_| {}).await;
    let argocd = |app: &str, link: &str| {
        json!({
            "channel": "C0ALERTS", "bot_id": "B0ARGO", "username": "Argo CD",
            "text": format!(":white_check_mark: Application {app} is now running new version of deployments manifests."),
            "attachments": [{"title": app, "title_link": link, "color": "#18be52",
                "fields": [{"title": "Revision", "value": "0f9e8d7c6b5a49382716", "short": true}]}]
        })
    };
    control
        .post(
            "/post",
            argocd("checkout", "https://argocd.example/applications/checkout"),
        )
        .await;
    // A hostile link is dropped, the change kept; a person typing the same words records nothing.
    control
        .post("/post", argocd("cart", "javascript:alert(1)"))
        .await;
    control
        .post(
            "/post",
            json!({"channel": "C0ALERTS", "user": "U0MALLORY",
                "text": "Application payments is now running new version of deployments manifests."}),
        )
        .await;
    control
        .post(
            "/post",
            json!({"channel": "C0ALERTS", "bot_id": "B0CI", "text": "build 812 passed"}),
        )
        .await;
    let bus = crate::slack_edge::observer(&nats).await;
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    wait_for(Duration::from_secs(20), "two changes recorded", || async {
        bus.read_since::<proto::Change>(proto::Subject::ChangeRecorded, since, 100)
            .await
            .unwrap()
            .messages
            .len()
            >= 2
    })
    .await
    .unwrap();
    control.wait_all_acked().await;
    let mut recorded = bus
        .read_since::<proto::Change>(proto::Subject::ChangeRecorded, since, 100)
        .await
        .unwrap()
        .messages;
    // The watcher handles messages concurrently: the order stored is not the order posted.
    recorded.sort_by(|a, b| b.service.cmp(&a.service));
    let services: Vec<&str> = recorded
        .iter()
        .map(|change| change.service.as_str())
        .collect();
    assert_eq!(services, ["checkout", "cart"], "{recorded:?}");
    assert_eq!(recorded[0].version.as_deref(), Some("0f9e8d7"));
    assert_eq!(recorded[0].source, proto::ChangeSource::Slack);
    assert_eq!(
        recorded[0].url.as_deref(),
        Some("https://argocd.example/applications/checkout")
    );
    assert_eq!(recorded[1].url, None, "{:?}", recorded[1]);
}

/// The Role shipped in `k8s/workload-reader/` grants exactly what the emulator lets through, so
/// the tests above prove what that Role allows, and no more is granted than the code uses.
#[test]
fn the_shipped_role_grants_exactly_what_the_tests_run_with() {
    let role = include_str!("../../k8s/workload-reader/role.yaml");
    let list = |line: &str| -> Vec<String> {
        let inside = line
            .split_once('[')
            .and_then(|(_, rest)| rest.split_once(']'));
        inside
            .map(|(items, _)| {
                items
                    .split(',')
                    .map(|item| item.trim().trim_matches('"').to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut granted = std::collections::BTreeSet::new();
    let mut resources = Vec::new();
    for line in role.lines().map(str::trim) {
        if line.starts_with("resources:") {
            resources = list(line);
        } else if line.starts_with("verbs:") {
            for verb in list(line) {
                for resource in &resources {
                    granted.insert((verb.clone(), resource.clone()));
                }
            }
        }
    }
    let expected: std::collections::BTreeSet<(String, String)> = kube_emulator::GRANTED
        .iter()
        .map(|(verb, resource)| ((*verb).to_owned(), (*resource).to_owned()))
        .collect();
    assert_eq!(granted, expected);
    let rules = role.split("rules:").nth(1).unwrap();
    assert!(
        !rules.contains("secrets") && !rules.contains("\"*\""),
        "{rules}"
    );
}
