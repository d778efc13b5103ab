//! The span store: spans in, SQL out.
//!
//! - [`intake`]: OTLP (protobuf and JSON) and Slack-style SpanEvent JSON read into
//!   [`proto::SpanRow`]s, or refused with a sentence naming the span and what is wrong.
//! - [`query`]: a query's limits, its answer and why it has none.
//! - `table`: rows as Arrow record batches with the OpenTelemetry collector's ClickHouse
//!   exporter's columns (`otel_traces`), so the same queries run on ClickHouse.
//! - `store`: Parquet files written in the order of the `span.received` stream (each file
//!   names the stream sequences it holds, so a restart resumes where the files end and stores
//!   every batch once), the rows not yet written kept queryable in memory, retention by age and
//!   bytes, and read-only SQL with time, row and memory limits (DataFusion).
//!
//! `table` and `store` are the `store` feature (on by default): DataFusion, Arrow and Parquet are
//! 43% of compiling flamethread, so a build that only takes spans in (the local run's first
//! build) can leave them out.
//!
//! Everything here is I/O-free except `store`, which owns one directory.

pub mod intake;
pub mod query;
#[cfg(feature = "store")]
pub mod store;
#[cfg(feature = "store")]
pub mod table;

pub use intake::{Encoding, IntakeError};
pub use query::{Answer, QueryError, QueryLimits, cut_cell};
#[cfg(feature = "store")]
pub use store::{SpanStore, StoreConfig};
