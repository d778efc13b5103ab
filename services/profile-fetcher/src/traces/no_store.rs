//! A build without the span store (`span-store` off, as the local run's first build is): the
//! intake still takes spans into JetStream (`span.received`), where they wait for a
//! profile-fetcher built with the store, which reads the stream from its start. Nothing here can
//! query them, so [`Queries`] has no values: every `Option<Queries>` is `None`, and whoever asks
//! is told [`STORE_OFF`].

use spans::{Answer, QueryError, QueryLimits};

use super::QueryRefusal;
use crate::config::TracesConfig;

/// What a query meets in this build.
pub const STORE_OFF: &str = "this profile-fetcher is built without its span store (the span-store feature), so it answers no SQL: spans its intake takes in wait in JetStream (span.received) for one built with it";

/// The span store's queries, which this build has none of.
#[derive(Debug, Clone)]
pub enum Queries {}

impl Queries {
    pub fn limits(&self) -> QueryLimits {
        match *self {}
    }

    pub async fn run_for_page(&self, _: &str, _: QueryLimits) -> Result<Answer, QueryRefusal> {
        match *self {}
    }

    pub async fn run_for_incident(&self, _: &str, _: QueryLimits) -> Result<Answer, QueryError> {
        match *self {}
    }

    pub async fn run(&self, _: &str, _: QueryLimits) -> Result<Answer, QueryRefusal> {
        match *self {}
    }
}

/// Says, once, that spans are taken in but not stored here.
pub fn start_store(
    _: &TracesConfig,
    _: QueryLimits,
    _: &runtime::ServiceContext,
    _: &mut runtime::Tasks,
) -> Result<Option<Queries>, std::convert::Infallible> {
    tracing::warn!("{STORE_OFF}");
    Ok(None)
}
