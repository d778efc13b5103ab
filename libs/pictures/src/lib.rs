//! What flamethread draws for people to look at rather than read: the metrics chart (SVG for the
//! pages, PNG for Slack, which shows no SVG) and the flamegraph preview (PNG, the hot path
//! highlighted). Pure: data in, bytes out, so the services decide where pictures go.
//!
//! Text is drawn with DejaVu Sans compiled into the binary ([`font`]), never a system font, so a
//! PNG looks the same on a laptop, in a scratch container and in CI.

pub mod chart;
pub mod flamegraph;
pub mod font;

mod encode;

/// Why a picture could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing in the input can be drawn (every value was NaN, or there were no stacks).
    #[error("{0}")]
    Empty(&'static str),
    /// plotters refused (a backend error, said as plotters says it).
    #[error("cannot draw: {0}")]
    Draw(String),
    #[error("cannot encode the PNG: {0}")]
    Encode(#[from] png::EncodingError),
    #[error("the embedded font cannot be loaded")]
    Font,
}

fn draw_error<E: std::fmt::Debug>(err: E) -> Error {
    Error::Draw(format!("{err:?}"))
}
