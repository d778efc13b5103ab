//! Profiles as folded stacks (shared with the sandbox runner, in `libs/profiling`), and
//! Pyroscope's flamegraph encoding ([`flamebearer`]), which both of its APIs answer in. Pure.

pub mod flamebearer;

pub use profiling::folded::*;

#[cfg(test)]
mod tests;
