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
    let config = profile_fetcher::Config {
        nats: nats_config(&nats),
        prometheus: PrometheusConfig {
            url: prometheus.url(),
            ..Default::default()
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
        let prometheus =
            metrics::prometheus::Prometheus::new(&base, config.timeout, config.max_response_bytes)
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
