//! Profiles, whatever took them: folded stacks and what a reply says about them ([`folded`]),
//! pprof's protobuf format both ways ([`pprof`]), and inferno's interactive and differential
//! flamegraphs ([`flamegraph`]). Shared by profile-fetcher (Pyroscope, live pprof) and
//! sandbox-runner (py-spy), so a flamegraph looks and counts the same whichever drew it. Pure, but
//! for the random bits of [`keys::page_id`].

pub mod flamegraph;
pub mod folded;
pub mod pprof;

pub use folded::Folded;

/// Where drawn pages and stacks live in the object store, by evidence id: whoever draws them
/// (profile-fetcher, sandbox-runner) stores them here, and profile-fetcher's pages serve them.
pub mod keys {
    /// The id a drawing is stored and served under: the evidence's id (for people reading a URL)
    /// and 256 random bits, so that pages cannot be found by guessing an incident's ids.
    pub fn page_id(evidence_id: &str) -> String {
        let name: String = evidence_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .take(48)
            .collect();
        format!(
            "{name}.{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    }

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

    /// The flamegraph's PNG preview, and its diff's.
    pub fn flamegraph_png(evidence_id: &str) -> String {
        format!("flamegraphs/{evidence_id}.png")
    }

    pub fn diff_png(evidence_id: &str) -> String {
        format!("flamegraphs/{evidence_id}.diff.png")
    }

    /// The same chart as a PNG, for Slack (which shows no SVG).
    pub fn chart_png(evidence_id: &str) -> String {
        format!("charts/{evidence_id}.png")
    }
}
