//! A local Slack workspace, faithful enough that the real `slack-morphism` client, pointed at it
//! by base URL, works unchanged. It makes flamethread testable without Slack, and lets a newcomer
//! watch the whole system work on one machine.
//!
//! Today it serves Slack's Web API for what flamethread posts and reads (`auth.test`,
//! `chat.postMessage` with threads, blocks and attachments, `chat.update`, `reactions.add/remove`,
//! `chat.postEphemeral`, `users.info`, `files.getUploadURLExternal/completeUploadExternal/info` with
//! uploads and token-checked private downloads, `conversations.history/replies/info`,
//! `apps.connections.open`, `views.open` with `trigger_id`s that expire after 3 seconds), with Slack's token checks, size
//! limits (50 blocks, 3,000 characters per section, 40,000 per message) and per-channel rate limit
//! (answering 429 with `Retry-After`); Socket Mode with `hello`, envelopes for every
//! message, slash commands and button clicks, acks (with a slash command's answer), redelivery of
//! unacked envelopes and `disconnect` on demand; `response_url`s that record what apps post; and
//! a control API for tests (`/control/…`: post as a person or another integration, run a slash
//! command, click a button, read a channel with its threads, list deliveries and responses, force
//! a disconnect); and incoming webhooks (`/services/…`, by default one for Alertmanager and one
//! for Grafana into `#alerts`); and the Events API over HTTP ([`events_api`]: `url_verification`,
//! signed deliveries, retries; slash commands and interactions POSTed as signed forms when their
//! URLs are set). `GET /` is a page that shows the channels and threads as a person would read
//! them, refreshing itself every second, with buttons that click. `/control/faults` makes a
//! method answer late after taking effect, as a slow Slack does.
//!
//! # Layout
//! - [`workspace`]: the workspace as data and Slack's rules, without I/O.
//! - `web_api`: the HTTP layer for `/api/<method>`.
//! - [`socket_mode`]: the WebSocket side: envelopes, acks, redelivery.
//! - `control`: the test control API.

pub mod events_api;
pub mod socket_mode;
pub mod webhooks;
pub mod workspace;

mod control;
mod files;
mod web_api;

use std::{
    net::SocketAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    routing::{get, post},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::oneshot;

use crate::workspace::Workspace;

/// The emulated workspace's identities and limits.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The bot token (`xoxb-…`) our app uses for the Web API.
    pub bot_token: String,
    /// The app-level token (`xapp-…`) for Socket Mode.
    pub app_token: String,
    pub bot_user_id: String,
    pub bot_id: String,
    pub app_id: String,
    /// Channels (id, name) that exist from the start.
    pub channels: Vec<(String, String)>,
    /// `chat.postMessage` per channel and second (Slack: about 1).
    pub posts_per_second: NonZeroU32,
    /// Posts allowed in a burst before the rate limit answers 429.
    pub post_burst: NonZeroU32,
    /// How long a Socket Mode envelope may go unacknowledged before it is delivered again.
    pub socket_ack_timeout: std::time::Duration,
    /// Redeliveries of an unacknowledged envelope.
    pub socket_max_retries: u32,
    /// Incoming webhooks (`/services/<path>`).
    pub webhooks: Vec<webhooks::WebhookConfig>,
    /// The app's signing secret: HTTP event deliveries are signed with it.
    pub signing_secret: String,
    /// Delays before the retries of an HTTP delivery the app did not accept (Slack: at once,
    /// about 1 min, about 5 min).
    pub http_retry_delays: Vec<std::time::Duration>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            bot_token: "xoxb-flamethread-emulator".to_owned(),
            app_token: "xapp-flamethread-emulator".to_owned(),
            bot_user_id: "U0FLAMEBOT".to_owned(),
            bot_id: "B0FLAMEBOT".to_owned(),
            app_id: "A0FLAMEAPP".to_owned(),
            channels: vec![
                ("C0ALERTS".to_owned(), "alerts".to_owned()),
                ("C0GENERAL".to_owned(), "general".to_owned()),
            ],
            posts_per_second: NonZeroU32::MIN,
            post_burst: NonZeroU32::new(3).expect("3 is not zero"),
            socket_ack_timeout: socket_mode::DEFAULT_ACK_TIMEOUT,
            socket_max_retries: 3,
            webhooks: vec![
                webhooks::WebhookConfig::new(
                    "T0FLAME/B0AMGR/alertmanager",
                    "C0ALERTS",
                    "B0AMGR",
                    "Alertmanager",
                ),
                webhooks::WebhookConfig::new(
                    "T0FLAME/B0GRAFANA/grafana",
                    "C0ALERTS",
                    "B0GRAFANA",
                    "Grafana",
                ),
            ],
            signing_secret: "emulator-signing-secret".to_owned(),
            http_retry_delays: vec![
                std::time::Duration::ZERO,
                std::time::Duration::from_secs(60),
                std::time::Duration::from_secs(300),
            ],
        }
    }
}

struct AppState {
    config: EmulatorConfig,
    /// 429 answers given so far.
    rate_limited: std::sync::atomic::AtomicU64,
    /// Injected slowness: (method, delay, calls left).
    faults: Mutex<Vec<(String, std::time::Duration, u32)>>,
    workspace: Mutex<Workspace>,
    post_limiter: DefaultKeyedRateLimiter<String>,
    socket: socket_mode::SocketHub,
    events_api: events_api::EventsApi,
}

type SharedState = Arc<AppState>;

impl AppState {
    fn add_fault(&self, method: String, delay: std::time::Duration, times: u32) {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((method, delay, times));
    }

    /// The delay to apply to this call of `method`, if a fault is armed for it.
    fn take_fault(&self, method: &str) -> Option<std::time::Duration> {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        let index = faults
            .iter()
            .position(|(armed, _, left)| armed == method && *left > 0)?;
        let fault = &mut faults[index];
        fault.2 -= 1;
        let delay = fault.1;
        if fault.2 == 0 {
            faults.remove(index);
        }
        Some(delay)
    }
}

/// The emulator's routes, without a socket.
pub fn router(config: EmulatorConfig) -> Router {
    let channels: Vec<(&str, &str)> = config
        .channels
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .collect();
    let workspace = Workspace::new(&channels, web_api::now_micros());
    let quota = Quota::per_second(config.posts_per_second).allow_burst(config.post_burst);
    let state = Arc::new(AppState {
        workspace: Mutex::new(workspace),
        post_limiter: RateLimiter::keyed(quota),
        socket: socket_mode::SocketHub::default(),
        events_api: events_api::EventsApi::default(),
        faults: Mutex::new(Vec::new()),
        rate_limited: std::sync::atomic::AtomicU64::new(0),
        config,
    });
    Router::new()
        .route("/", get(page))
        .route("/api/{method}", post(web_api::handle).get(web_api::handle))
        .route("/control/post", post(control::post))
        .route("/control/channels", get(control::channels))
        .route("/control/channels/{channel}", get(control::channel))
        .route("/control/socket-mode/disconnect", post(control::disconnect))
        .route("/control/deliveries", get(control::deliveries))
        .route("/control/command", post(control::command))
        .route("/control/click", post(control::click))
        .route("/control/shortcut", post(control::shortcut))
        .route("/control/im", post(control::im))
        .route("/control/home", post(control::open_home))
        .route("/control/homes/{user}", get(control::home))
        .route("/control/home_click", post(control::home_click))
        .route("/archives/{channel}/{message}", get(archives))
        .route("/control/responses", get(control::responses))
        .route("/response/{id}", post(control::response_url))
        .route("/services/{team}/{bot}/{secret}", post(webhooks::post))
        .route(
            "/control/events/request-url",
            post(control::set_request_url),
        )
        .route("/control/share", post(files::share))
        .route("/control/files/{file_id}", get(files::image))
        .route("/control/faults", post(control::fault))
        .route("/control/views", get(control::views))
        .route("/control/stats", get(control::stats))
        .route("/upload/{file_id}", post(files::upload))
        .route(
            "/files-pri/{team_file}/download/{name}",
            get(files::download),
        )
        .route("/files-pri/{team_file}/{name}", get(files::download))
        .route("/socket-mode", get(socket_mode::upgrade))
        .with_state(state)
}

/// The page a person watches: channels, messages and threads, refreshed every second.
async fn page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("page.html"))
}

/// A Slack permalink (`<workspace url>archives/<channel>/p<ts>`) opens the channel on the page.
async fn archives(
    axum::extract::Path((channel, _message)): axum::extract::Path<(String, String)>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if !channel.chars().all(|c| c.is_ascii_alphanumeric()) {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    axum::response::Redirect::to(&format!("/#{channel}")).into_response()
}

/// A running emulator; dropping it stops the server.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Web API base URL to give a Slack client (`with_slack_api_url`).
    pub fn api_base(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn control_base(&self) -> String {
        format!("http://{}/control", self.addr)
    }

    /// The URL of the incoming webhook at `path` (`T…/B…/secret`).
    pub fn webhook_url(&self, path: &str) -> String {
        format!("http://{}/services/{path}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves the emulator on `addr` (port 0 picks a free one) until the returned handle is dropped.
pub async fn start(config: EmulatorConfig, addr: SocketAddr) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let served = axum::serve(listener, router(config))
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "slack emulator stopped");
        }
    });
    Ok(Running {
        addr,
        stop: Some(stop),
    })
}

/// An emulator on its own thread and runtime, for synchronous tests (a service binary's
/// lifecycle test); dropping it stops the server.
#[derive(Debug)]
pub struct Background {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Serves `config` on a free local port.
    pub fn start(config: EmulatorConfig) -> std::io::Result<Background> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                    return;
                }
            };
            runtime.block_on(async move {
                match start(config, SocketAddr::from(([127, 0, 0, 1], 0))).await {
                    Ok(running) => {
                        let _ = ready_tx.send(Ok(running.addr()));
                        let _ = stopped.await;
                        drop(running);
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                    }
                }
            });
        });
        let addr = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the emulator thread died"))??;
        Ok(Background {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn api_base(&self) -> String {
        format!("http://{}/api", self.addr)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
