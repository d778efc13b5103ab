//! The admin HTTP server every service runs: `/healthz`, `/readyz` and `/metrics`.
//!
//! - `/healthz` answers 200 while the process serves requests at all (Kubernetes' liveness).
//! - `/readyz` answers 200 when every registered readiness check passes (NATS connected, streams
//!   provisioned, …) and 503 listing the failing ones otherwise; it also answers 503 once the
//!   service started draining, so that no new work is routed to it.
//! - `/metrics` renders the process's metrics in Prometheus text format, with the process's
//!   CPU time and memory as Prometheus's clients name them (`process_cpu_seconds_total`, …).
//! - `/debug/pprof/profile?seconds=N` answers a CPU profile of the process ([`pprof`]).

use std::{
    fmt,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};

pub mod pprof;
mod process;

type Check = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The named conditions a service must meet to be ready. Cheap to clone; clones share state.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<RwLock<Vec<(String, Check)>>>,
    draining: Arc<AtomicBool>,
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field("report", &self.report())
            .finish()
    }
}

/// The outcome of one readiness check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    pub name: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Readiness {
    pub fn new() -> Readiness {
        Readiness::default()
    }

    /// Registers a check; it runs on every `/readyz` request, so it must be cheap.
    pub fn add_check(
        &self,
        name: &str,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.checks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.to_owned(), Box::new(check)));
    }

    /// From now on the service reports not ready.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn report(&self) -> Vec<CheckReport> {
        let mut reports = Vec::new();
        if self.draining.load(Ordering::SeqCst) {
            reports.push(CheckReport {
                name: "draining".to_owned(),
                ok: false,
                detail: Some("shutting down".to_owned()),
            });
        }
        for (name, check) in self.checks.read().unwrap_or_else(|e| e.into_inner()).iter() {
            let result = check();
            reports.push(CheckReport {
                name: name.clone(),
                ok: result.is_ok(),
                detail: result.err(),
            });
        }
        reports
    }

    pub fn is_ready(&self) -> bool {
        self.report().iter().all(|report| report.ok)
    }
}

/// The admin routes, without a socket (tests call it with `oneshot`).
pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/debug/pprof/profile", get(pprof::profile))
        .with_state(readiness)
}

async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    let report = readiness.report();
    let status = if report.iter().all(|check| check.ok) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}

async fn metrics() -> impl IntoResponse {
    let mut text = crate::metrics_handle().render();
    text.push_str(&process::exposition());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

#[cfg(test)]
mod tests;
