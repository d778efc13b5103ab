//! The span store of a build with it (`span-store`): opened from `[traces]`, fed from
//! `span.received` by [`keep`], and queried through [`Queries`].

use std::{sync::Arc, time::Duration};

use bus::Bus;
use futures::StreamExt as _;
use proto::{SpanBatch, Subject};
use spans::{Answer, QueryLimits, SpanStore, StoreConfig};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::QueryRefusal;
use crate::config::TracesConfig;

/// What a query meets when there is no store to ask.
pub const STORE_OFF: &str =
    "the span store is off: set profile-fetcher's traces.listen to keep spans";

/// How often the reader looks whether a flush or a retention pass is due.
const TICK: Duration = Duration::from_secs(1);

/// Opens the store `[traces]` names and follows `span.received` into it for as long as the
/// service runs; people and incidents query it through what this returns.
pub fn start_store(
    config: &TracesConfig,
    limits: QueryLimits,
    context: &runtime::ServiceContext,
    tasks: &mut runtime::Tasks,
) -> Result<Option<Queries>, spans::store::StoreError> {
    let store = Arc::new(SpanStore::open(StoreConfig {
        dir: config.dir.clone(),
        flush_every: config.flush_every,
        flush_rows: config.flush_rows,
        retention: config.retention,
        max_bytes: config.max_bytes,
    })?);
    let keeping = keep(context.bus.clone(), store.clone(), context.shutdown.clone());
    tasks.spawn("the span store", async move {
        keeping.await;
        Ok(())
    });
    Ok(Some(Queries::new(store, limits)))
}

/// The span store as people query it (SQL, waterfall pages, `/flamethread sql`): at most two
/// queries at once, since the machine has other work; a third waits up to 5 s for its turn.
#[derive(Clone)]
pub struct Queries {
    store: Arc<SpanStore>,
    limits: QueryLimits,
    running: Arc<Semaphore>,
    /// Waterfall pages have a turn of their own, so that page views (which anyone who reaches
    /// the pages can cause) never take SQL's.
    pages: Arc<Semaphore>,
}

impl std::fmt::Debug for Queries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queries")
            .field("limits", &self.limits)
            .field("free_turns", &self.running.available_permits())
            .finish_non_exhaustive()
    }
}

impl Queries {
    /// Queries over `store`, each under `limits` unless it asks for less.
    pub fn new(store: Arc<SpanStore>, limits: QueryLimits) -> Queries {
        Queries {
            store,
            limits,
            running: Arc::new(Semaphore::new(2)),
            pages: Arc::new(Semaphore::new(1)),
        }
    }

    /// The configured limits.
    pub fn limits(&self) -> QueryLimits {
        self.limits
    }

    /// Runs a page's `sql` under `limits` if no other page is being drawn; busy otherwise.
    pub async fn run_for_page(
        &self,
        sql: &str,
        limits: QueryLimits,
    ) -> Result<Answer, QueryRefusal> {
        let Ok(_turn) = self.pages.try_acquire() else {
            return Err(QueryRefusal::Busy);
        };
        Ok(self.store.query(sql, limits).await?)
    }

    /// Runs an incident's `sql` under `limits` at once: evidence never waits behind people's
    /// queries (an incident asks three, once).
    pub async fn run_for_incident(
        &self,
        sql: &str,
        limits: QueryLimits,
    ) -> Result<Answer, spans::QueryError> {
        self.store.query(sql, limits).await
    }

    /// Runs `sql` under `limits` when it is its turn.
    pub async fn run(&self, sql: &str, limits: QueryLimits) -> Result<Answer, QueryRefusal> {
        let Ok(Ok(_turn)) =
            tokio::time::timeout(Duration::from_secs(5), self.running.acquire()).await
        else {
            return Err(QueryRefusal::Busy);
        };
        Ok(self.store.query(sql, limits).await?)
    }
}

/// Follows `span.received` into the store until `shutdown`, then writes what is pending.
async fn keep(bus: Bus, store: Arc<SpanStore>, shutdown: CancellationToken) {
    let mut retention_due = tokio::time::Instant::now();
    'follow: while !shutdown.is_cancelled() {
        let after = store.resume_after();
        let followed = match bus
            .follow::<SpanBatch>(Subject::SpanReceived, bus::FollowFrom::After(after))
            .await
        {
            Ok(followed) => followed,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the spans stream; trying again");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        tracing::info!(after, "span store following span.received");
        // At 0 from the start, so that an alert on its increase sees the first loss.
        ::metrics::counter!("ft_span_batches_lost_total").increment(0);
        let mut followed = std::pin::pin!(followed);
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break 'follow,
                _ = tick.tick() => {
                    if store.flush_due() {
                        flush(&store).await;
                    }
                    if tokio::time::Instant::now() >= retention_due {
                        retention_due += Duration::from_secs(60);
                        let removed = store.enforce_retention().files_removed;
                        if removed > 0 {
                            tracing::info!(removed, "span files past their retention removed");
                        }
                        ::metrics::gauge!("ft_span_store_bytes").set(store.stored_bytes() as f64);
                    }
                }
                next = followed.next() => match next {
                    Some(Ok(followed)) => {
                        let last = store.resume_after();
                        if followed.sequence > last + 1 && last > 0 {
                            // The stream dropped batches (its byte limit) before they were read.
                            ::metrics::counter!("ft_span_batches_lost_total")
                                .increment(followed.sequence - last - 1);
                            tracing::warn!(from = last + 1, to = followed.sequence - 1, "span batches were lost before the store read them");
                        }
                        let rows = match followed.message {
                            Ok(batch) => batch.spans,
                            Err(err) => {
                                tracing::warn!(error = %err, sequence = followed.sequence, "skipped a span batch that does not decode");
                                Vec::new()
                            }
                        };
                        if store.append(followed.sequence, &rows) {
                            ::metrics::counter!("ft_spans_stored_total").increment(rows.len() as u64);
                        } else {
                            // Only a stream that started its numbering over (recreated, or
                            // NATS lost its state) delivers a sequence the store already holds.
                            ::metrics::counter!("ft_span_batches_ignored_total").increment(1);
                            tracing::warn!(sequence = followed.sequence, held = last, "the spans stream delivered a sequence the store already holds: was FT_SPANS recreated? Move the store's files aside to start over");
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "the spans stream failed; following it again");
                        continue 'follow;
                    }
                    None => continue 'follow,
                }
            }
        }
    }
    flush(&store).await;
}

async fn flush(store: &Arc<SpanStore>) {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.flush()).await {
        Ok(Ok(done)) if done.rows_written > 0 => {
            tracing::debug!(rows = done.rows_written, "spans written");
        }
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::error!(error = %err, "cannot write spans; they stay in memory"),
        Err(err) => tracing::error!(error = %err, "writing spans panicked"),
    }
}
