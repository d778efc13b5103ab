//! Profiles, whatever took them: folded stacks and what a reply says about them ([`folded`]),
//! pprof's protobuf format both ways ([`pprof`]), and inferno's interactive and differential
//! flamegraphs ([`flamegraph`]). Shared by profile-fetcher (Pyroscope, live pprof) and
//! sandbox-runner (py-spy), so a flamegraph looks and counts the same whichever drew it. Pure.

pub mod flamegraph;
pub mod folded;
pub mod pprof;

pub use folded::Folded;

/// Where drawn pages and stacks live in the object store, by evidence id: whoever draws them
/// (profile-fetcher, sandbox-runner) stores them here, and profile-fetcher's pages serve them.
pub mod keys {
    pub fn flamegraph(evidence_id: &str) -> String {
        format!("flamegraphs/{evidence_id}.svg")
    }

    pub fn diff(evidence_id: &str) -> String {
        format!("flamegraphs/{evidence_id}.diff.svg")
    }

    pub fn folded(evidence_id: &str) -> String {
        format!("profiles/{evidence_id}.folded")
    }

    pub fn chart(evidence_id: &str) -> String {
        format!("charts/{evidence_id}.svg")
    }
}
