//! The pages profile-fetcher serves at permanent, shareable URLs, and the links to them that
//! replies carry. Whoever links a page (profile-fetcher for profiles, charts and traces,
//! sandbox-runner for a run's flamegraph) builds its URL here, and profile-fetcher routes the same
//! paths, so a link and its page cannot drift apart.
//!
//! `base` is the operator's public URL of the pages (`pages.public_url`); a trailing `/` is
//! ignored.

/// The routes, in axum's path syntax.
pub mod routes {
    pub const FLAMEGRAPH: &str = "/flamegraphs/{id}";
    pub const FLAMEGRAPH_DIFF: &str = "/flamegraphs/{id}/diff";
    pub const FLAMEGRAPH_FOLDED: &str = "/flamegraphs/{id}/folded";
    pub const CHART: &str = "/charts/{id}";
    pub const CHART_PNG: &str = "/charts/{id}/png";
    pub const TRACE: &str = "/traces/{id}";
}

/// A profile's interactive flamegraph, by page id.
pub fn flamegraph(base: &str, page_id: &str) -> String {
    format!("{}/flamegraphs/{page_id}", trimmed(base))
}

/// The differential flamegraph against the baseline.
pub fn flamegraph_diff(base: &str, page_id: &str) -> String {
    format!("{}/flamegraphs/{page_id}/diff", trimmed(base))
}

/// A metrics chart.
pub fn chart(base: &str, page_id: &str) -> String {
    format!("{}/charts/{page_id}", trimmed(base))
}

/// A trace's waterfall, with `span` highlighted.
pub fn trace(base: &str, trace_id: &str, span_id: &str) -> String {
    format!("{}/traces/{trace_id}?span={span_id}", trimmed(base))
}

fn trimmed(base: &str) -> &str {
    base.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each link is a path its route matches, whether or not the base ends in `/`.
    #[test]
    fn links_follow_their_routes() {
        let cases = [
            (flamegraph("http://h/", "p"), routes::FLAMEGRAPH),
            (flamegraph_diff("http://h", "p"), routes::FLAMEGRAPH_DIFF),
            (chart("http://h//", "p"), routes::CHART),
            (trace("http://h", "p", "s"), routes::TRACE),
        ];
        for (url, route) in cases {
            let path = url.strip_prefix("http://h").unwrap();
            let path = path.split('?').next().unwrap();
            assert_eq!(path, route.replace("{id}", "p"), "{url}");
        }
        assert_eq!(trace("http://h", "t", "s"), "http://h/traces/t?span=s");
    }
}
