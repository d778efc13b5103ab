//! Profiles, whatever took them: folded stacks and what a reply says about them ([`folded`]),
//! pprof's protobuf format both ways ([`pprof`]), and inferno's interactive and differential
//! flamegraphs ([`flamegraph`]). Shared by profile-fetcher (Pyroscope, live pprof) and
//! sandbox-runner (py-spy), so a flamegraph looks and counts the same whichever drew it. Pure.

pub mod flamegraph;
pub mod folded;
pub mod pprof;

pub use folded::Folded;
