//! Traces: the span intake, the span store it feeds, and SQL over it.
//!
//! Spans come in over HTTP ([`intake`]), go onto JetStream first (`span.received`), and are
//! written into the store by one reader that follows the stream in order from where the store's
//! files end (`store::keep`). So a span the intake acknowledged survives a restart of this
//! service, a batch delivered twice is stored once, and several replicas each build the same
//! store. People query it through [`Queries`]: SQL on the pages listener ([`sql`]) and the
//! waterfall pages ([`waterfall`]); an incident's evidence through the same ([`evidence`]).
//!
//! The store is the `span-store` feature (on by default). Built without it, the intake still takes
//! spans into JetStream, where they wait for a profile-fetcher built with it ([`STORE_OFF`]): the
//! local run starts that way because DataFusion is most of its first build.

pub mod commands;
pub mod evidence;
pub mod intake;
pub mod sampling;
pub mod sql;
pub mod waterfall;

#[cfg(not(feature = "span-store"))]
#[path = "traces/no_store.rs"]
mod store;
#[cfg(feature = "span-store")]
mod store;

pub use store::{Queries, STORE_OFF, start_store};

/// Why a person's query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryRefusal {
    #[error("two queries are running already; try again in a moment")]
    Busy,
    #[error(transparent)]
    Query(#[from] spans::QueryError),
}
