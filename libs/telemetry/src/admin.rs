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

/// A condition a service is not ready without, and why not meanwhile ("connecting to NATS",
/// "auth.test with the bot token failed: …"): the one shape of every check that something in the
/// service sets as it learns. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct Stage(Arc<std::sync::Mutex<Result<(), String>>>);

impl Stage {
    /// Not met yet, because of `why`.
    pub fn pending(why: impl Into<String>) -> Stage {
        Stage(Arc::new(std::sync::Mutex::new(Err(why.into()))))
    }

    /// Not met (any more), because of `why`.
    pub fn waiting(&self, why: impl Into<String>) {
        self.set(Err(why.into()));
    }

    pub fn ready(&self) {
        self.set(Ok::<(), String>(()));
    }

    /// Met, or not because of the error (said as it displays).
    pub fn set<E: fmt::Display>(&self, state: Result<(), E>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = state.map_err(|err| err.to_string());
    }

    pub fn get(&self) -> Result<(), String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
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

    /// Registers a [`Stage`] as the check `name`, not met until it is told so; returns it.
    pub fn add_stage(&self, name: &str, why_not_yet: &str) -> Stage {
        let stage = Stage::pending(why_not_yet);
        let check = stage.clone();
        self.add_check(name, move || check.get());
        stage
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
