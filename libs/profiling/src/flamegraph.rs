//! Flamegraph pages: inferno's interactive SVG (search with Ctrl-F or the Search button, click to
//! zoom, reset) for a profile, and its differential flamegraph against the baseline (red grew,
//! blue shrank; the baseline is normalized to the current profile's total so windows of different
//! load compare). CPU-bound: callers run it off the async runtime.

use inferno::flamegraph::{self, Options};

use crate::folded::{self as profile, Folded};

/// Why a flamegraph could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot render the flamegraph: {0}")]
    Render(#[source] std::io::Error),
    #[error("cannot render the differential flamegraph: {0}")]
    RenderDiff(#[source] std::io::Error),
    #[error("cannot diff the profiles: {0}")]
    Diff(#[source] std::io::Error),
    #[error("the diff is not text: {0}")]
    NotText(#[from] std::string::FromUtf8Error),
}

/// Renders `folded` as an interactive SVG.
pub fn svg(folded: &Folded, title: &str, count_name: &str) -> Result<Vec<u8>, Error> {
    let text = profile::to_text(folded);
    let mut options = options(title, count_name);
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, text.lines(), &mut svg).map_err(Error::Render)?;
    Ok(svg)
}

/// Renders how `current` differs from `baseline` as an interactive SVG.
pub fn diff_svg(
    baseline: &Folded,
    current: &Folded,
    title: &str,
    count_name: &str,
) -> Result<Vec<u8>, Error> {
    let (before, after) = (profile::to_text(baseline), profile::to_text(current));
    let mut diff = Vec::new();
    inferno::differential::from_readers(
        inferno::differential::Options {
            normalize: true,
            strip_hex: false,
        },
        before.as_bytes(),
        after.as_bytes(),
        &mut diff,
    )
    .map_err(Error::Diff)?;
    let diff = String::from_utf8(diff)?;
    let mut options = options(title, count_name);
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, diff.lines(), &mut svg).map_err(Error::RenderDiff)?;
    Ok(svg)
}

fn options(title: &str, count_name: &str) -> Options<'static> {
    let mut options = Options::default();
    options.title = title.to_owned();
    options.count_name = count_name.to_owned();
    // Pyroscope's nanosecond values make wide frames; keep every frame a pixel can show.
    options.min_width = 0.1;
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_interactive_and_diffs_colour_what_grew() {
        let current = profile::parse_folded("main;serve;regex 80\nmain;serve;json 20\n").unwrap();
        let baseline = profile::parse_folded("main;serve;json 90\nmain;serve;regex 10\n").unwrap();
        let page =
            String::from_utf8(svg(&current, "CPU checkout", "nanoseconds").unwrap()).unwrap();
        assert!(page.starts_with("<?xml"));
        assert!(page.contains("<script"), "interactive");
        assert!(page.contains("function search"), "searchable");
        assert!(page.contains("regex"));
        assert!(page.contains("CPU checkout"));
        let diff = String::from_utf8(diff_svg(&baseline, &current, "diff", "nanoseconds").unwrap())
            .unwrap();
        assert!(diff.contains("rgb(255,"), "what grew is red");
        assert!(diff.contains("regex"));
        // Only profiles with samples are drawn; an empty one is an error that says why.
        let empty = svg(&Folded::new(), "nothing", "samples").unwrap_err();
        assert!(
            empty
                .to_string()
                .starts_with("cannot render the flamegraph"),
            "{empty}"
        );
    }
}
