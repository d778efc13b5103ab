//! What a query over the spans may use, what it answers, and why it may not: the vocabulary the
//! store's callers share whether or not this build has the store (its SQL engine is the
//! `store` feature, the longest part of building flamethread).

use std::time::Duration;

use serde::Serialize;

/// What one query may use.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    pub timeout: Duration,
    pub max_rows: usize,
    pub memory_bytes: usize,
    /// Most characters of one cell in an answer; longer ones end in `…`.
    pub max_cell_chars: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            timeout: Duration::from_secs(10),
            max_rows: 1000,
            memory_bytes: 512 << 20,
            max_cell_chars: 1000,
        }
    }
}

/// Why a query has no answer; the text is for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("the query is empty")]
    Empty,
    #[error("only SELECT (and WITH, EXPLAIN) queries run here; the store is read-only: {0}")]
    NotReadOnly(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the query ran longer than {0:?} and was stopped")]
    TimedOut(Duration),
    #[error("the query needed more than {0} MiB of memory: narrow it (a time range, a service)")]
    TooMuchMemory(usize),
}

/// A query's answer: every cell as text, cut to the row limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// More rows matched than [`QueryLimits::max_rows`].
    pub truncated: bool,
    pub elapsed_ms: u64,
}

/// `text` at most `max` characters long: cut, ending in `…`, when it is longer.
pub fn cut_cell(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
