//! `flamethread-demo`: a small "checkout" service for flamethread to watch. It is what the local
//! pipeline (`deploy/local/up.sh`) and the end-to-end alert-path test run so that a real alert
//! has a real cause: a coupon campaign whose codes send a backtracking matcher
//! ([`checkout::validate_coupon`]) into exponential work, a real CPU hot spot.
//!
//! It serves what a production service would: `/metrics` (the process's CPU and memory as
//! Prometheus's clients name them, and `checkout_requests_total`), `/debug/pprof/profile` (a
//! CPU profile, as Go's net/http/pprof answers), `/healthz` and `/readyz` — the admin routes of
//! every flamethread service, from `telemetry`. `POST /campaign/start` and `/campaign/stop` turn
//! the hot spot on and off; `GET /checkout` prices one basket.
//!
//! The work runs on plain threads, not on the async runtime, the way a CPU-bound handler pool
//! would, so the admin routes keep answering while the cores burn.

pub mod checkout;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use axum::{Json, Router, extract::State, routing::get, routing::post};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `/metrics`, `/debug/pprof/profile`, `/checkout` and `/campaign/*` are served.
    pub listen: SocketAddr,
    /// Threads that serve checkouts; during a campaign each of them can fill a core.
    pub workers: usize,
    /// Whether the campaign runs from the start.
    pub campaign: bool,
    /// Length of a campaign's coupon codes: each extra character doubles the matcher's work.
    pub coupon_length: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 6060)),
            workers: 2,
            campaign: false,
            coupon_length: 22,
        }
    }
}

/// The running demo: its worker threads and whether the campaign is on.
#[derive(Debug, Clone)]
pub struct Demo {
    campaign: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
}

#[derive(Serialize)]
struct CampaignState {
    campaign: bool,
}

impl Demo {
    /// Starts the worker threads. They stop when [`Demo::stop`] is called.
    pub fn start(config: &Config) -> Demo {
        // The recorder must exist before the first counter, or the counts go nowhere.
        telemetry::metrics_handle();
        let demo = Demo {
            campaign: Arc::new(AtomicBool::new(config.campaign)),
            stopped: Arc::new(AtomicBool::new(false)),
        };
        let campaign_coupon = checkout::campaign_coupon(config.coupon_length);
        for worker in 0..config.workers.max(1) {
            let demo = demo.clone();
            let campaign_coupon = campaign_coupon.clone();
            let spawned = thread::Builder::new()
                .name(format!("checkout-{worker}"))
                .spawn(move || demo.serve_checkouts(&campaign_coupon));
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start a checkout worker");
            }
        }
        demo
    }

    /// A worker: a normal checkout now and then, and back-to-back campaign checkouts while the
    /// campaign runs.
    fn serve_checkouts(&self, campaign_coupon: &str) {
        let items = [1999, 4550, 125];
        while !self.stopped.load(Ordering::Relaxed) {
            let campaign = self.campaign.load(Ordering::Relaxed);
            let coupon = if campaign { "campaign" } else { "normal" };
            // Each checkout is a request with its own trace (exported over OTLP when
            // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set), so the alert's thread can name the
            // request that got slow and draw one as a waterfall.
            let request = tracing::info_span!("POST /checkout", otel.kind = "server", coupon);
            request.in_scope(|| {
                tracing::info_span!("price_basket").in_scope(|| {
                    checkout::price_basket(
                        &items,
                        if campaign {
                            campaign_coupon
                        } else {
                            checkout::NORMAL_COUPON
                        },
                    )
                })
            });
            drop(request);
            metrics::counter!("checkout_requests_total", "coupon" => coupon).increment(1);
            if !campaign {
                thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Turns the hot spot on or off.
    pub fn set_campaign(&self, running: bool) {
        tracing::info!(running, "campaign");
        self.campaign.store(running, Ordering::Relaxed);
    }

    /// Stops the worker threads (each finishes the checkout it is in).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Every route: the admin routes of a flamethread service, `/checkout` and `/campaign/*`.
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route("/checkout", get(one_checkout))
            .route("/campaign", get(campaign_state))
            .route("/campaign/start", post(start_campaign))
            .route("/campaign/stop", post(stop_campaign))
            .with_state(self.clone());
        telemetry::admin::router(telemetry::admin::Readiness::new()).merge(routes)
    }
}

async fn one_checkout() -> String {
    let price = checkout::price_basket(&[1999, 4550, 125], checkout::NORMAL_COUPON);
    metrics::counter!("checkout_requests_total", "coupon" => "normal").increment(1);
    format!("{price}\n")
}

async fn campaign_state(State(demo): State<Demo>) -> Json<CampaignState> {
    Json(CampaignState {
        campaign: demo.campaign.load(Ordering::Relaxed),
    })
}

async fn start_campaign(State(demo): State<Demo>) -> Json<CampaignState> {
    demo.set_campaign(true);
    campaign_state(State(demo)).await
}

async fn stop_campaign(State(demo): State<Demo>) -> Json<CampaignState> {
    demo.set_campaign(false);
    campaign_state(State(demo)).await
}

/// Serves the demo on `listener` until `shutdown` is cancelled, then stops its workers.
pub async fn serve(
    listener: tokio::net::TcpListener,
    demo: Demo,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let served = axum::serve(listener, demo.router())
        .with_graceful_shutdown(async move { shutdown.cancelled_owned().await })
        .await;
    demo.stop();
    served
}
