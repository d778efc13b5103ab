//! Profiles, whatever took them: folded stacks and what a reply says about them ([`folded`]),
//! pprof's protobuf format both ways ([`pprof`]), and inferno's interactive and differential
//! flamegraphs ([`flamegraph`]). Shared by profile-fetcher (Pyroscope, live pprof) and
//! sandbox-runner (py-spy), so a flamegraph looks and counts the same whichever drew it. Pure, but
//! for the random bits of [`page_id`].

pub mod flamegraph;
pub mod folded;
pub mod pprof;

pub use folded::Folded;

/// The id a drawing is stored and served under ([`proto::keys::object`], [`proto::pages`]): the
/// evidence's id (for people reading a URL) and 256 random bits, so that pages cannot be found by
/// guessing an incident's ids.
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
