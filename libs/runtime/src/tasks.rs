//! What a service runs until shutdown, registered the same way in every service: its consumers
//! (`consume`), its HTTP servers (`serve`) and its other long-running jobs (`spawn`). `run`
//! awaits them together; the first that fails (or panics) ends the service, named in the error,
//! after the others have drained as they do at shutdown.
//!
//! Knowing one service's `run` is knowing all five: options → build the state → register its
//! tasks here → `Tasks::run`.

use std::future::Future;

use bus::{ConsumerOptions, Delivery, HandlerError};
use proto::{Inbound, subjects::ConsumerSpec};
use tokio::{net::TcpListener, task::JoinSet};

use crate::ServiceContext;

/// The service's long-running parts.
#[derive(Debug)]
pub struct Tasks {
    context: ServiceContext,
    running: JoinSet<(String, anyhow::Result<()>)>,
}

impl Tasks {
    pub fn new(context: &ServiceContext) -> Tasks {
        Tasks {
            context: context.clone(),
            running: JoinSet::new(),
        }
    }

    /// Runs `handler` with a clone of `state` for each message of the consumer `spec`.
    pub fn consume<S, M, H, Fut>(
        &mut self,
        spec: &'static ConsumerSpec,
        options: ConsumerOptions,
        state: S,
        handler: H,
    ) where
        S: Clone + Send + Sync + 'static,
        M: Inbound,
        H: Fn(S, Delivery<M>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let consuming = bus::consumer::run(
            self.context.bus.clone(),
            spec,
            options,
            self.context.shutdown.clone(),
            move |delivery| handler(state.clone(), delivery),
        );
        self.running.spawn(async move {
            let result = consuming.await.map_err(anyhow::Error::from);
            (format!("the consumer {}", spec.durable), result)
        });
    }

    /// Serves `router` on `listener` until shutdown (`what` names it in errors).
    pub fn serve(&mut self, what: &str, listener: TcpListener, router: axum::Router) {
        let serving = crate::http::serve(
            listener,
            router,
            self.context.shutdown.clone(),
            crate::http::Limits::default(),
        );
        let what = what.to_owned();
        self.running.spawn(async move {
            let result = serving.await.map_err(anyhow::Error::from);
            (what, result)
        });
    }

    /// Runs `job` until it ends (it watches the shutdown token itself).
    pub fn spawn(
        &mut self,
        what: &str,
        job: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        let what = what.to_owned();
        self.running.spawn(async move { (what, job.await) });
    }

    /// Awaits every task. The first failure (or panic) ends the service the way a shutdown
    /// does: the service's shutdown is cancelled, so the others finish what they hold (a consumer
    /// acks or naks its message, a server answers its open requests) for up to [`DRAIN_LIMIT`],
    /// and only then is anything still running aborted. The first failure is returned.
    pub async fn run(mut self) -> anyhow::Result<()> {
        // Everything the service runs is registered, with the checks it added on the way.
        self.context.registered.ready();
        tracing::info!(tasks = self.running.len(), "ready");
        let mut failure: Option<anyhow::Error> = None;
        // Set at the first failure: the others have until then, all together.
        let mut drained_by = None;
        loop {
            let next = match drained_by {
                None => self.running.join_next().await,
                Some(deadline) => {
                    match tokio::time::timeout_at(deadline, self.running.join_next()).await {
                        Ok(next) => next,
                        Err(_) => {
                            tracing::warn!(
                                still_running = self.running.len(),
                                "tasks did not stop within {DRAIN_LIMIT:?} of a failure; aborting them"
                            );
                            self.running.abort_all();
                            break;
                        }
                    }
                }
            };
            let Some(finished) = next else { break };
            let failed = match finished {
                Ok((_, Ok(()))) => continue,
                Ok((what, Err(err))) => err.context(format!("{what} failed")),
                Err(err) if err.is_cancelled() => continue,
                Err(err) => anyhow::anyhow!("a task panicked: {err}"),
            };
            match failure {
                None => {
                    tracing::error!(error = %format!("{failed:#}"), "stopping the service");
                    self.context.shutdown.cancel();
                    drained_by = Some(tokio::time::Instant::now() + DRAIN_LIMIT);
                    failure = Some(failed);
                }
                Some(_) => {
                    tracing::warn!(error = %format!("{failed:#}"), "also failed while stopping")
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// How long the other tasks get to finish after one failed.
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);
