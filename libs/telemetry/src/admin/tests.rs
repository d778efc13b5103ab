use axum::{body::Body, http::Request};
use tower::ServiceExt as _;

use super::*;

async fn get(readiness: &Readiness, path: &str) -> (StatusCode, String) {
    let response = router(readiness.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn readiness_follows_its_checks_and_draining() {
    let readiness = Readiness::new();
    let connected = Arc::new(AtomicBool::new(false));
    let flag = connected.clone();
    readiness.add_check("nats", move || {
        if flag.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("disconnected".to_owned())
        }
    });

    let (status, body) = get(&readiness, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("disconnected"), "{body}");

    connected.store(true, Ordering::SeqCst);
    assert_eq!(get(&readiness, "/readyz").await.0, StatusCode::OK);
    assert_eq!(
        get(&readiness, "/healthz").await,
        (StatusCode::OK, "ok\n".to_owned())
    );

    readiness.set_draining();
    let (status, body) = get(&readiness, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("shutting down"), "{body}");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    crate::metrics_handle();
    metrics::counter!("ft_admin_test_total", "kind" => "probe").increment(3);
    let (status, body) = get(&Readiness::new(), "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("# TYPE ft_admin_test_total counter"),
        "{body}"
    );
    assert!(
        body.contains("ft_admin_test_total{kind=\"probe\"} 3"),
        "{body}"
    );
    // Described metrics say what they mean, and latencies are histograms with buckets.
    metrics::counter!("ft_bus_published_total", "subject" => "probe").increment(1);
    metrics::histogram!("ft_bus_handle_seconds", "consumer" => "probe").record(0.02);
    let (_, body) = get(&Readiness::new(), "/metrics").await;
    assert!(
        body.contains("# HELP ft_bus_published_total Messages published"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE ft_bus_handle_seconds histogram"),
        "{body}"
    );
    assert!(
        body.contains("ft_bus_handle_seconds_bucket{consumer=\"probe\",le=\"0.025\"} 1"),
        "{body}"
    );
    // The process's own figures, read at the scrape (their reading is tested in `process`).
    let value = |name: &str| -> f64 {
        body.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {body}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert!(value("process_cpu_seconds_total") >= 0.0, "{body}");
    assert!(
        value("process_resident_memory_bytes") > 1_000_000.0,
        "{body}"
    );
    assert!(
        body.contains("# TYPE process_cpu_seconds_total counter"),
        "{body}"
    );
}

/// Burns CPU in a function whose name the profile must show (plain operators only, so even an
/// unoptimized build keeps the time in this frame rather than in iterator or intrinsic calls).
#[inline(never)]
fn spin_for_the_profiler(until: std::time::Instant) -> u64 {
    let mut x = 1u64;
    while std::time::Instant::now() < until {
        let mut i = 0u64;
        while i < 100_000 {
            x ^= i;
            x = (x << 3) ^ (x >> 5) ^ 0x9e37;
            i += 1;
        }
    }
    x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_profiles_itself_in_pprof_format_one_profile_at_a_time() {
    let readiness = Readiness::new();
    for bad in ["seconds=0", "seconds=lots", "seconds=100000"] {
        let (status, body) = get(&readiness, &format!("/debug/pprof/profile?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body.contains("seconds must be"), "{body}");
    }
    let burner = std::thread::spawn(|| {
        spin_for_the_profiler(std::time::Instant::now() + std::time::Duration::from_secs(3))
    });
    let first = tokio::spawn({
        let readiness = readiness.clone();
        async move {
            router(readiness)
                .oneshot(
                    Request::get("/debug/pprof/profile?seconds=2")
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, body) = get(&readiness, "/debug/pprof/profile?seconds=1").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let response = first.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap();
    burner.join().unwrap();
    let mut profile = profiling::pprof::decode(&bytes, 64 << 20, None).unwrap();
    if profiling::folded::total(&profile.folded) == 0 {
        // Once in CI the kernel delivered no SIGPROF at all in the window (0 samples: nothing
        // to judge, not a wrong answer). Take one more profile of the same kind and judge that.
        let burner = std::thread::spawn(|| {
            spin_for_the_profiler(std::time::Instant::now() + std::time::Duration::from_secs(3))
        });
        let again = router(readiness.clone())
            .oneshot(
                Request::get("/debug/pprof/profile?seconds=2")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::OK);
        let again = axum::body::to_bytes(again.into_body(), 64 << 20)
            .await
            .unwrap();
        burner.join().unwrap();
        profile = profiling::pprof::decode(&again, 64 << 20, None).unwrap();
    }
    assert_eq!(profile.unit, "nanoseconds");
    // Most of the CPU went through the busy function (its stacks, whatever it called).
    let total = profiling::folded::total(&profile.folded);
    let through: u64 = profile
        .folded
        .iter()
        .filter(|(stack, _)| stack.contains("spin_for_the_profiler"))
        .map(|(_, value)| value)
        .sum();
    assert!(
        through * 2 > total,
        "the busy function has most samples ({through} of {total}):\n{}",
        profiling::folded::to_text(&profile.folded)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_goes_away_mid_profile_does_not_keep_the_profiler() {
    let readiness = Readiness::new();
    // The caller gives up (a client killed, a timeout) while the profile is being taken.
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        get(&readiness, "/debug/pprof/profile?seconds=1"),
    )
    .await;
    assert!(gave_up.is_err(), "the profile takes a second");
    let (status, body) = get(&readiness, "/debug/pprof/profile?seconds=1").await;
    assert_eq!(status, StatusCode::CONFLICT, "still being taken: {body}");
    // Once that profile is done (its report built, which an unoptimized build takes a while
    // for), the next caller gets one.
    let mut status = StatusCode::CONFLICT;
    for _ in 0..30 {
        status = router(readiness.clone())
            .oneshot(
                Request::get("/debug/pprof/profile?seconds=1")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap()
            .status();
        if status != StatusCode::CONFLICT {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(status, StatusCode::OK);
}
