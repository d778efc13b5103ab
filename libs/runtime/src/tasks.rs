//! What a service runs until shutdown, registered the same way in every service: its consumers
//! (`consume`), its HTTP servers (`serve`) and its other long-running jobs (`spawn`). `run`
//! awaits them together; the first that fails (or panics) ends the service, named in the error.
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

    /// Awaits every task; the first failure ends the service (the rest are stopped).
    pub async fn run(mut self) -> anyhow::Result<()> {
        while let Some(finished) = self.running.join_next().await {
            match finished {
                Ok((_, Ok(()))) => {}
                Ok((what, Err(err))) => return Err(err.context(format!("{what} failed"))),
                Err(err) => anyhow::bail!("a task panicked: {err}"),
            }
        }
        Ok(())
    }
}
