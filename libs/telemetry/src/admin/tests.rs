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
}
