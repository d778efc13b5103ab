//! profile-fetcher's metrics against a real Prometheus scraping a target this test runs (a
//! process whose CPU counter grows at 0.4 cores, then at 1.8), and against upstreams that are
//! slow, down, huge or not Prometheus at all.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use axum::{Router, routing::get};
use chrono::Utc;
use profile_fetcher::{MetricQuery, PrometheusConfig, Queries, metrics};
use proto::{IncidentChange, TimeWindow, evidence::EvidenceStatus};
use serde_json::Value;
use test_support::{NatsServer, Prometheus, fixtures};

use crate::{
    slack_edge::{observer, spawn_service, wait_published},
    support::nats_config,
};

/// Serves `router` on a free port until the test ends.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

const SWITCH_AFTER: f64 = 10.0;

/// A target whose CPU counter grows at 0.4 cores for its first 10 s and at 1.8 after, with
/// 100 MiB resident.
async fn checkout_target() -> SocketAddr {
    let started = Instant::now();
    serve(Router::new().route(
        "/metrics",
        get(move || async move {
            let elapsed = started.elapsed().as_secs_f64();
            let cpu = if elapsed < SWITCH_AFTER {
                0.4 * elapsed
            } else {
                0.4 * SWITCH_AFTER + 1.8 * (elapsed - SWITCH_AFTER)
            };
            format!(
                "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu}\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n",
                100u64 << 20
            )
        }),
    ))
    .await
}

fn query(name: &str, query: &str, unit: Option<&str>) -> MetricQuery {
    MetricQuery {
        name: name.into(),
        query: query.into(),
        unit: unit.map(str::to_owned),
    }
}

fn series<'a>(evidence: &'a Value, name: &str) -> &'a Value {
    evidence["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|series| series["name"] == name)
        .unwrap_or_else(|| panic!("no series {name} in {evidence}"))
}

#[tokio::test]
async fn an_opened_incident_gets_now_vs_baseline_from_a_real_prometheus() {
    let target = checkout_target().await;
    let t0 = Utc::now();
    let prometheus = Prometheus::start(&format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: checkout\n    static_configs:\n      - targets: ['{target}']\n"
    ))
    .unwrap();
    let nats = NatsServer::start().unwrap();
    let pages = test_support::reserve_port().unwrap();
    let pages_addr = pages.addr();
    let config = profile_fetcher::Config {
        nats: nats_config(&nats),
        prometheus: PrometheusConfig {
            url: prometheus.url(),
            ..Default::default()
        },
        pages: profile_fetcher::PagesConfig {
            listen: Some(pages_addr),
            public_url: format!("http://{pages_addr}"),
        },
        queries: Queries(vec![
            query(
                "cpu",
                r#"sum(rate(process_cpu_seconds_total{job="{{ service }}"}[3s]))"#,
                Some("cores"),
            ),
            query(
                "memory",
                r#"sum(process_resident_memory_bytes{job="{{ service }}"}) / 2^20"#,
                Some("MiB"),
            ),
            query(
                "broken",
                r#"sum(rate(process_cpu_seconds_total{job="{{ service }}"}[3s])"#,
                None,
            ),
            query("per pod", r#"up{pod="{{ labels.pod }}"}"#, None),
            query("absent", r#"nonexistent_metric{job="{{ service }}"}"#, None),
        ]),
        ..Default::default()
    };
    let fetcher = spawn_service(|admin, shutdown| {
        drop(pages);
        profile_fetcher::run(profile_fetcher::Config { admin, ..config }, shutdown)
    })
    .await;
    let bus = observer(&nats).await;

    // Let Prometheus record the calm and then the busy period.
    tokio::time::sleep(Duration::from_secs(21)).await;
    let at = |seconds: i64| t0 + chrono::Duration::seconds(seconds);
    let mut opened =
        fixtures::incident_event("inc-prom", "1700000000.000100", IncidentChange::Opened, 1);
    opened.incident.alert.service = Some("checkout".into());
    opened.incident.window = TimeWindow {
        from: at(13),
        to: at(20),
    };
    opened.incident.baseline = TimeWindow {
        from: at(3),
        to: at(9),
    };
    bus.publish(&opened).await.unwrap();
    // An update gathers nothing (a storm is one lookup per incident).
    bus.publish(&fixtures::incident_event(
        "inc-prom",
        "1700000000.000100",
        IncidentChange::Updated,
        2,
    ))
    .await
    .unwrap();

    let evidence = wait_published(&bus, "FT_EVIDENCE", "ft.evidence.metrics", 1).await;
    let evidence = &evidence[0];
    assert_eq!(evidence["incident_id"], "inc-prom");
    assert_eq!(evidence["status"]["state"], "ok", "{evidence}");

    let cpu = series(evidence, "cpu");
    let current = cpu["current"].as_f64().unwrap();
    let baseline = cpu["baseline"].as_f64().unwrap();
    assert!((current - 1.8).abs() < 0.2, "busy at 1.8 cores: {cpu}");
    assert!((baseline - 0.4).abs() < 0.1, "calm at 0.4 cores: {cpu}");
    assert_eq!(cpu["unit"], "cores");

    let memory = series(evidence, "memory");
    assert_eq!(memory["current"], 100.0);
    assert_eq!(memory["baseline"], 100.0);
    assert_eq!(memory["peak"], 100.0);
    assert_eq!(memory["trend"], "flat");

    let broken = series(evidence, "broken");
    assert_eq!(broken["status"]["state"], "failed");
    assert!(
        broken["status"]["detail"]
            .as_str()
            .unwrap()
            .contains("Prometheus refused the query (bad_data)"),
        "{broken}"
    );
    let per_pod = series(evidence, "per pod");
    assert_eq!(per_pod["status"]["state"], "no_data");
    assert!(
        per_pod["status"]["detail"]
            .as_str()
            .unwrap()
            .contains("the alert has no `labels.pod`"),
        "{per_pod}"
    );
    let absent = series(evidence, "absent");
    assert_eq!(absent["status"]["state"], "no_data");
    assert!(
        absent["status"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("no data for `checkout` in the 7s before the alert"),
        "{absent}"
    );

    // The chart of the series with data, at its permanent URL: a panel each, the incident
    // window drawn as a line (one point per sample Prometheus returned), the baseline's level.
    let chart_url = evidence["chart_url"]
        .as_str()
        .unwrap_or_else(|| panic!("{evidence}"));
    // Named after the evidence, with 256 random bits nobody can guess.
    let guessable = format!(
        "http://{pages_addr}/charts/{}",
        evidence["evidence_id"].as_str().unwrap()
    );
    let secret = chart_url
        .strip_prefix(&format!("{guessable}."))
        .unwrap_or_else(|| panic!("{chart_url}"));
    assert!(
        secret.len() == 64 && secret.chars().all(|c| c.is_ascii_hexdigit()),
        "{chart_url}"
    );
    assert_eq!(reqwest::get(&guessable).await.unwrap().status(), 404);
    let chart = reqwest::get(chart_url).await.unwrap();
    assert_eq!(chart.status(), 200);
    assert_eq!(chart.headers()["content-type"], "image/svg+xml");
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "private, max-age=86400"),
        ("x-frame-options", "DENY"),
    ] {
        assert_eq!(chart.headers()[name], value, "{name}");
    }
    assert!(
        chart.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    let chart = chart.text().await.unwrap();
    assert!(chart.starts_with("<svg"), "{chart}");
    assert!(
        chart.contains("cpu (cores)") && chart.contains("memory (MiB)"),
        "a panel per series with data: {chart}"
    );
    assert!(!chart.contains("broken"), "failed queries are not drawn");
    // The legend's swatch, then each panel's series drawn segment by segment.
    let panels: Vec<&str> = chart.split("cpu (cores)").collect();
    assert_eq!(panels.len(), 2, "{chart}");
    let (cpu, memory) = panels[1].split_once("memory (MiB)").unwrap();
    for (name, panel) in [("cpu", cpu), ("memory", memory)] {
        assert!(
            panel.contains("stroke=\"#D62728\""),
            "{name} has its line: {chart}"
        );
    }
    // The same chart as a PNG, for Slack.
    let png = reqwest::get(format!("{chart_url}/png")).await.unwrap();
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");
    assert!(png.bytes().await.unwrap().starts_with(b"\x89PNG"));
    let stored = evidence["chart_png"]["key"].as_str().unwrap();
    assert!(
        stored.starts_with("charts/") && stored.ends_with(".png"),
        "{evidence}"
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        crate::slack_edge::published(&bus, "FT_EVIDENCE", "ft.evidence.metrics")
            .await
            .len(),
        1,
        "the update gathered nothing"
    );
    fetcher.stop().await;
}

#[tokio::test]
async fn slow_down_huge_and_lying_upstreams_end_in_a_status_quickly() {
    let huge = "x".repeat(4 << 20);
    let upstream = serve(
        Router::new()
            .route(
                "/slow/api/v1/query_range",
                axum::routing::post(|| async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "{}"
                }),
            )
            .route(
                "/huge/api/v1/query_range",
                axum::routing::post(move || {
                    let huge = huge.clone();
                    async move { format!("{{\"status\":\"success\",\"data\":\"{huge}\"}}") }
                }),
            )
            .route(
                "/lying/api/v1/query_range",
                axum::routing::post(|| async { "<html>Sign in to continue</html>" }),
            )
            .route(
                "/failing/api/v1/query_range",
                axum::routing::post(|| async {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        r#"{"status":"error","errorType":"unavailable","error":"too many queries"}"#,
                    )
                }),
            ),
    )
    .await;
    let closed = test_support::reserve_port().unwrap().addr();
    let config = PrometheusConfig {
        timeout: Duration::from_secs(1),
        max_response_bytes: 1 << 20,
        ..Default::default()
    };
    let mut incident =
        fixtures::incident_event("inc-lies", "1.1", IncidentChange::Opened, 1).incident;
    incident.alert.service = Some("checkout".into());
    let queries = [query("cpu", r#"up{job="{{ service }}"}"#, None)];
    for (base, expected_state, expected_detail) in [
        (
            format!("http://{upstream}/slow"),
            "timed_out",
            "did not answer within 1s",
        ),
        (
            format!("http://{upstream}/huge"),
            "failed",
            "over 1048576 bytes",
        ),
        (format!("http://{upstream}/lying"), "failed", "not its API"),
        (
            format!("http://{upstream}/failing"),
            "failed",
            "(unavailable): too many queries",
        ),
        (
            format!("http://{closed}"),
            "failed",
            "cannot reach Prometheus",
        ),
    ] {
        let prometheus = metrics::prometheus::Prometheus::new(
            &base,
            config.timeout,
            config.max_response_bytes,
            &config.auth,
        )
        .unwrap();
        let started = Instant::now();
        let evidence = metrics::gather(
            Some(&prometheus),
            &config,
            &queries,
            &incident,
            "ev-1".into(),
        )
        .await;
        let took = started.elapsed();
        let json = serde_json::to_value(&evidence).unwrap();
        assert_eq!(json["status"]["state"], expected_state, "{base}: {json}");
        let detail = match &evidence.status {
            EvidenceStatus::Failed { detail } | EvidenceStatus::TimedOut { detail } => detail,
            other => panic!("{base}: {other:?}"),
        };
        assert!(detail.contains(expected_detail), "{base}: {detail}");
        println!("{base}: {expected_state} after {took:?}");
    }

    let unconfigured = metrics::gather(None, &config, &queries, &incident, "ev-2".into()).await;
    assert!(matches!(
        unconfigured.status,
        EvidenceStatus::NoData { ref detail } if detail.contains("no Prometheus is configured")
    ));
}

const PROFILE_TYPE: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

/// A busy service: JSON work as usual, plus a regular expression that backtracks.
const BUSY_PY: &str = r#"
import json, re, time
def parse_json(n):
    return json.loads(json.dumps([{"k": i, "v": str(i) * 5} for i in range(n)]))
def backtrack(n):
    pattern = re.compile(r"(a+)+b")
    return sum(1 for _ in range(n) if pattern.match("a" * 17 + "c"))
end = time.time() + 2
while time.time() < end:
    parse_json(2000)
    backtrack(2)
"#;

/// The same service when calm: only the JSON work.
const CALM_PY: &str = r#"
import json, time
def parse_json(n):
    return json.loads(json.dumps([{"k": i, "v": str(i) * 5} for i in range(n)]))
end = time.time() + 2
while time.time() < end:
    parse_json(2000)
"#;

/// Runs `script` under py-spy, a real sampling profiler, and reads its folded stacks.
fn py_spy(script: &str) -> profile_fetcher::profile::Folded {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("service.py");
    let output = dir.path().join("profile.folded");
    std::fs::write(&source, script).unwrap();
    let binary = std::env::var("PY_SPY_BIN").unwrap_or_else(|_| "py-spy".to_owned());
    let status = std::process::Command::new(&binary)
        .args(["record", "--format", "raw", "--rate", "250", "--output"])
        .arg(&output)
        .arg("--")
        .arg("python3")
        .arg(&source)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|err| panic!("cannot run {binary} (tests/run.sh installs py-spy): {err}"));
    assert!(status.success(), "py-spy failed: {status}");
    profile_fetcher::profile::parse_folded(&std::fs::read_to_string(output).unwrap()).unwrap()
}

/// Self value per leaf function, by a plain scan (independent of the fetcher's code).
fn leaf_shares(
    folded: &profile_fetcher::profile::Folded,
) -> std::collections::BTreeMap<String, f64> {
    let total: u64 = folded.values().sum();
    // Whole sample counts per leaf first, then one division, so a share right at a threshold
    // compares the same way as it does in the fetcher.
    let mut values = std::collections::BTreeMap::<String, u64>::new();
    for (stack, value) in folded {
        let leaf = stack.split(';').next_back().unwrap().to_owned();
        *values.entry(leaf).or_insert(0) += *value;
    }
    values
        .into_iter()
        .map(|(leaf, value)| (leaf, value as f64 / total as f64))
        .collect()
}

#[tokio::test]
async fn an_opened_incident_gets_the_functions_that_grew_from_a_py_spy_profile() {
    let (busy, calm) = tokio::join!(
        tokio::task::spawn_blocking(|| py_spy(BUSY_PY)),
        tokio::task::spawn_blocking(|| py_spy(CALM_PY)),
    );
    let (busy, calm) = (busy.unwrap(), calm.unwrap());
    let pyroscope = pyroscope_emulator::PyroscopeEmulator::start(Some("tenant-a"))
        .await
        .unwrap();
    pyroscope.ingest("checkout", PROFILE_TYPE, fixtures::at(-300), busy.clone());
    pyroscope.ingest("checkout", PROFILE_TYPE, fixtures::at(-1800), calm.clone());
    pyroscope.ingest("cart", PROFILE_TYPE, fixtures::at(-300), calm.clone());

    let nats = NatsServer::start().unwrap();
    let pages = test_support::reserve_port().unwrap();
    let pages_addr = pages.addr();
    let config = profile_fetcher::Config {
        nats: nats_config(&nats),
        pyroscope: profile_fetcher::PyroscopeConfig {
            url: pyroscope.url(),
            tenant: "tenant-a".into(),
            ..Default::default()
        },
        pages: profile_fetcher::PagesConfig {
            listen: Some(pages_addr),
            public_url: format!("http://{pages_addr}/"),
        },
        ..Default::default()
    };
    let fetcher = spawn_service(|admin, shutdown| {
        drop(pages);
        profile_fetcher::run(profile_fetcher::Config { admin, ..config }, shutdown)
    })
    .await;
    let bus = observer(&nats).await;
    let mut opened = fixtures::incident_event("inc-prof", "1.1", IncidentChange::Opened, 1);
    opened.incident.alert.service = Some("checkout".into());
    opened.incident.window = TimeWindow {
        from: fixtures::at(-900),
        to: fixtures::at(0),
    };
    opened.incident.baseline = TimeWindow {
        from: fixtures::at(-2700),
        to: fixtures::at(-900),
    };
    bus.publish(&opened).await.unwrap();

    let evidence = wait_published(&bus, "FT_EVIDENCE", "ft.evidence.profile", 1).await;
    let evidence = &evidence[0];
    assert_eq!(evidence["status"]["state"], "ok", "{evidence}");
    assert_eq!(evidence["app"], "checkout");
    assert_eq!(evidence["unit"], "nanoseconds");
    assert_eq!(evidence["total"], busy.values().sum::<u64>());

    // Top functions and growth against an independent computation on the same stacks.
    let now = leaf_shares(&busy);
    let before = leaf_shares(&calm);
    let mut expected_top: Vec<(&String, &f64)> = now.iter().collect();
    expected_top.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<&str> = evidence["top_functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|function| function["name"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = expected_top
        .iter()
        .take(10)
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(top, expected);
    let mut expected_growth: Vec<(&String, f64)> = now
        .iter()
        .map(|(name, share)| (name, share - before.get(name).copied().unwrap_or(0.0)))
        .filter(|(_, growth)| *growth > 0.005)
        .collect();
    expected_growth.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let grown: Vec<&str> = evidence["grown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|function| function["name"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = expected_growth
        .iter()
        .take(10)
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(grown, expected);
    assert!(
        grown.first().is_some_and(|name| name.contains("backtrack")),
        "the backtracking regex grew most: {grown:?}"
    );

    // The folded stacks are kept for download.
    let folded = &evidence["folded"];
    let mut stored = bus
        .blob_store()
        .await
        .unwrap()
        .get(folded["key"].as_str().unwrap())
        .await
        .unwrap();
    let mut text = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stored, &mut text)
        .await
        .unwrap();
    assert_eq!(profile_fetcher::profile::parse_folded(&text).unwrap(), busy);

    // The flamegraph, the diff and the stacks at their permanent URLs.
    let http = reqwest::Client::new();
    let id = evidence["flamegraph_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        id.starts_with(&format!("{}.", evidence["evidence_id"].as_str().unwrap())),
        "{id}"
    );
    let page = http
        .get(evidence["flamegraph_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "image/svg+xml");
    let page = page.text().await.unwrap();
    assert!(
        page.contains("<script") && page.contains("function search"),
        "interactive"
    );
    assert!(page.contains("backtrack"), "the busy function is drawn");
    let diff = http
        .get(evidence["diff_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(diff.contains("rgb(255,"), "what grew is red in the diff");
    let stacks = http
        .get(format!("http://{pages_addr}/flamegraphs/{id}/folded"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        profile_fetcher::profile::parse_folded(&stacks).unwrap(),
        busy
    );
    // Opened in a browser, the page draws its frames, and searching finds the busy function
    // (inferno's page searches what `?s=` names, as its Search button does).
    let search_url = format!(
        "{}?s=backtrack",
        evidence["flamegraph_url"].as_str().unwrap()
    );
    let dom = tokio::task::spawn_blocking(move || test_support::rendered_dom(&search_url))
        .await
        .unwrap()
        .unwrap();
    // Every frame the server drew is in the browser's document (how many depends on what
    // py-spy caught, so the page itself is the measure).
    let frames_sent = page.matches("<g").count();
    assert!(frames_sent > 1, "the page has frames:\n{page}");
    assert!(
        dom.matches("<g").count() >= frames_sent && dom.contains("backtrack"),
        "frames are drawn ({frames_sent} sent):\n{dom}"
    );
    let matched = dom
        .split("id=\"matched\"")
        .nth(1)
        .and_then(|element| element.split_once('>'))
        .and_then(|(_, text)| text.strip_prefix("Matched: "))
        .and_then(|rest| rest.split('%').next())
        .and_then(|percent| percent.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no search result on the page:\n{dom}"));
    assert!(matched > 0.0 && matched <= 100.0, "matched {matched}%");
    for (path, status) in [("flamegraphs/nope", 404), ("flamegraphs/..%2Fetc", 400)] {
        let answer = http
            .get(format!("http://{pages_addr}/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), status, "{path}");
    }

    // Without Prometheus the metrics say so.
    let metrics = wait_published(&bus, "FT_EVIDENCE", "ft.evidence.metrics", 1).await;
    assert_eq!(metrics[0]["status"]["state"], "no_data");
    fetcher.stop().await;
}

#[tokio::test]
async fn both_pyroscope_apis_agree_and_failures_are_said() {
    let pyroscope = pyroscope_emulator::PyroscopeEmulator::start(Some("tenant-a"))
        .await
        .unwrap();
    let current = profile_fetcher::profile::parse_folded(
        "main;serve;json 40\nmain;serve;regex 50\nmain;gc 10\n",
    )
    .unwrap();
    let baseline =
        profile_fetcher::profile::parse_folded("main;serve;json 80\nmain;gc 20\n").unwrap();
    pyroscope.ingest("checkout", PROFILE_TYPE, fixtures::at(-300), current);
    pyroscope.ingest("checkout", PROFILE_TYPE, fixtures::at(-1800), baseline);
    let mut incident =
        fixtures::incident_event("inc-api", "1.1", IncidentChange::Opened, 1).incident;
    incident.alert.service = Some("checkout".into());
    incident.window = TimeWindow {
        from: fixtures::at(-900),
        to: fixtures::at(0),
    };
    incident.baseline = TimeWindow {
        from: fixtures::at(-2700),
        to: fixtures::at(-900),
    };
    let config = |api, tenant: &str, url: String| profile_fetcher::PyroscopeConfig {
        url,
        api,
        tenant: tenant.into(),
        timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let gather = |config: profile_fetcher::PyroscopeConfig, incident: proto::Incident| async move {
        let client = profile_fetcher::pyroscope::Pyroscope::new(&config).unwrap();
        profile_fetcher::continuous::gather(Some(&client), &config, &incident, "ev".into())
            .await
            .evidence
    };
    let connect = gather(
        config(
            profile_fetcher::PyroscopeApi::Connect,
            "tenant-a",
            pyroscope.url(),
        ),
        incident.clone(),
    )
    .await;
    let render = gather(
        config(
            profile_fetcher::PyroscopeApi::Render,
            "tenant-a",
            pyroscope.url(),
        ),
        incident.clone(),
    )
    .await;
    assert_eq!(connect.status, EvidenceStatus::Ok);
    assert_eq!(connect.top_functions, render.top_functions);
    assert_eq!(connect.grown, render.grown);
    assert_eq!(connect.top_functions[0].name, "regex");
    assert_eq!(connect.grown[0].name, "regex");
    assert_eq!(connect.total, 100);

    let wrong_tenant = gather(
        config(
            profile_fetcher::PyroscopeApi::Connect,
            "tenant-b",
            pyroscope.url(),
        ),
        incident.clone(),
    )
    .await;
    assert_eq!(
        wrong_tenant.status,
        EvidenceStatus::Failed {
            detail: "Pyroscope refused (401): no org id".into()
        }
    );
    let mut elsewhere = incident.clone();
    elsewhere.alert.service = Some("billing".into());
    let none = gather(
        config(
            profile_fetcher::PyroscopeApi::Connect,
            "tenant-a",
            pyroscope.url(),
        ),
        elsewhere,
    )
    .await;
    assert!(
        matches!(&none.status, EvidenceStatus::NoData { detail } if detail.starts_with("no `process_cpu:cpu:nanoseconds:cpu:nanoseconds` samples for `billing`")),
        "{:?}",
        none.status
    );

    let liar = serve(
        Router::new()
            .route(
                "/slow/querier.v1.QuerierService/SelectMergeStacktraces",
                axum::routing::post(|| async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "{}"
                }),
            )
            .route(
                "/html/querier.v1.QuerierService/SelectMergeStacktraces",
                axum::routing::post(|| async { "<html>login</html>" }),
            )
            .route(
                "/ragged/querier.v1.QuerierService/SelectMergeStacktraces",
                axum::routing::post(|| async {
                    r#"{"flamegraph":{"names":["total"],"levels":[{"values":["0","1","0"]}],"total":"1"}}"#
                }),
            ),
    )
    .await;
    for (path, state, detail) in [
        ("slow", "timed_out", "did not answer within 1s"),
        ("html", "failed", "not its API"),
        ("ragged", "failed", "not a multiple of 4"),
    ] {
        let evidence = gather(
            config(
                profile_fetcher::PyroscopeApi::Connect,
                "",
                format!("http://{liar}/{path}"),
            ),
            incident.clone(),
        )
        .await;
        let json = serde_json::to_value(&evidence).unwrap();
        assert_eq!(json["status"]["state"], state, "{path}: {json}");
        assert!(
            json["status"]["detail"].as_str().unwrap().contains(detail),
            "{path}: {json}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_names_its_slowest_span_and_links_that_spans_own_cpu_profile() {
    // Real py-spy stacks: the slow span did calm JSON work; everything else the app did (the
    // fast span and its unlabelled samples) also backtracked in a regex.
    let (busy, calm) = tokio::join!(
        tokio::task::spawn_blocking(|| py_spy(BUSY_PY)),
        tokio::task::spawn_blocking(|| py_spy(CALM_PY)),
    );
    let (busy, calm) = (busy.unwrap(), calm.unwrap());
    const SLOW: &str = "00f067aa0ba902b7";
    const FAST: &str = "00f067aa0ba902b8";
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let pyroscope = pyroscope_emulator::PyroscopeEmulator::start(Some("tenant-a"))
        .await
        .unwrap();
    pyroscope.ingest_span(
        "checkout",
        PROFILE_TYPE,
        fixtures::at(-300),
        SLOW,
        calm.clone(),
    );
    pyroscope.ingest_span(
        "checkout",
        PROFILE_TYPE,
        fixtures::at(-300),
        FAST,
        busy.clone(),
    );
    pyroscope.ingest("checkout", PROFILE_TYPE, fixtures::at(-290), busy.clone());

    let nats = NatsServer::start().unwrap();
    let (pages, intake) = (
        test_support::reserve_port().unwrap(),
        test_support::reserve_port().unwrap(),
    );
    let (pages_addr, intake_addr) = (pages.addr(), intake.addr());
    let store = tempfile::tempdir().unwrap();
    let config = profile_fetcher::Config {
        nats: nats_config(&nats),
        pyroscope: profile_fetcher::PyroscopeConfig {
            url: pyroscope.url(),
            tenant: "tenant-a".into(),
            ..Default::default()
        },
        pages: profile_fetcher::PagesConfig {
            listen: Some(pages_addr),
            public_url: format!("http://{pages_addr}"),
        },
        traces: profile_fetcher::TracesConfig {
            listen: Some(intake_addr),
            dir: store.path().to_owned(),
            ..Default::default()
        },
        ..Default::default()
    };
    let fetcher = spawn_service(|admin, shutdown| {
        drop((pages, intake));
        profile_fetcher::run(profile_fetcher::Config { admin, ..config }, shutdown)
    })
    .await;

    // The app's trace: a slow request with a fast call inside it.
    let start = fixtures::at(-300).timestamp_micros();
    let span = |id: &str, parent: Option<&str>, name: &str, micros: i64| {
        serde_json::json!({
            "id": id, "parent_id": parent, "trace_id": TRACE, "name": name,
            "start_timestamp_micros": start, "duration_micros": micros,
            "tags": [{"key": "service_name", "v_type": "string", "v_str": "checkout"}],
        })
    };
    let response = reqwest::Client::new()
        .post(format!("http://{intake_addr}/api/v1/spans"))
        .json(&[
            span(SLOW, None, "GET /cart", 900_000),
            span(FAST, Some(SLOW), "SELECT coupons", 40_000),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let waterfall = format!("http://{pages_addr}/traces/{TRACE}");
    test_support::wait_for(Duration::from_secs(10), "the trace stored", || {
        let waterfall = waterfall.clone();
        async move { reqwest::get(&waterfall).await.unwrap().status() == 200 }
    })
    .await
    .unwrap();

    let bus = observer(&nats).await;
    let mut opened = fixtures::incident_event("inc-span", "1.1", IncidentChange::Opened, 1);
    opened.incident.alert.service = Some("checkout".into());
    opened.incident.window = TimeWindow {
        from: fixtures::at(-900),
        to: fixtures::at(0),
    };
    opened.incident.baseline = TimeWindow {
        from: fixtures::at(-2700),
        to: fixtures::at(-900),
    };
    bus.publish(&opened).await.unwrap();
    let evidence = wait_published(&bus, "FT_EVIDENCE", "ft.evidence.traces", 1).await;
    let slowest = &evidence[0]["slowest"];
    assert_eq!(slowest["span_id"], SLOW, "{evidence:?}");
    assert_eq!(slowest["span_name"], "GET /cart");
    assert_eq!(
        slowest["waterfall_url"],
        format!("{waterfall}?span={SLOW}"),
        "{slowest}"
    );
    let url = slowest["span_profile_url"]
        .as_str()
        .unwrap_or_else(|| panic!("a span profile: {slowest}"));
    let svg = reqwest::get(url).await.unwrap().text().await.unwrap();
    assert!(svg.contains("parse_json"), "the span's own work");
    assert!(
        !svg.contains("backtrack"),
        "only the samples taken inside the slow span, not the app's others"
    );
    assert!(svg.contains("inside span GET /cart (900 ms)"), "its title");

    // A service whose profiler labels no samples with span ids: the reply says why there is no
    // span profile instead of linking an empty one.
    let cart = serde_json::json!([{
        "id": "00000000000000c1", "trace_id": "000000000000000000000000000000c1",
        "name": "GET /basket", "start_timestamp_micros": start, "duration_micros": 700_000,
        "tags": [{"key": "service_name", "v_type": "string", "v_str": "cart"}],
    }]);
    let response = reqwest::Client::new()
        .post(format!("http://{intake_addr}/api/v1/spans"))
        .json(&cart)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cart_trace = format!("http://{pages_addr}/traces/c1");
    test_support::wait_for(Duration::from_secs(10), "cart's trace stored", || {
        let cart_trace = cart_trace.clone();
        async move { reqwest::get(&cart_trace).await.unwrap().status() == 200 }
    })
    .await
    .unwrap();
    let mut opened = fixtures::incident_event("inc-cart", "1.2", IncidentChange::Opened, 1);
    opened.incident.alert.service = Some("cart".into());
    opened.incident.window = TimeWindow {
        from: fixtures::at(-900),
        to: fixtures::at(0),
    };
    bus.publish(&opened).await.unwrap();
    let evidence = wait_published(&bus, "FT_EVIDENCE", "ft.evidence.traces", 2).await;
    let cart = evidence
        .iter()
        .find(|evidence| evidence["service"] == "cart")
        .unwrap();
    assert!(cart["slowest"]["span_profile_url"].is_null(), "{cart}");
    assert!(
        cart["slowest"]["span_profile_note"]
            .as_str()
            .is_some_and(|note| note.contains("no samples taken inside it")),
        "{cart}"
    );
    fetcher.stop().await;
}
