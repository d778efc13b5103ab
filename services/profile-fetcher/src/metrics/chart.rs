//! A small chart of an incident's metrics (pure): one panel per summarized series, the incident
//! window as a line and the baseline's mean as a dashed level, so "now vs baseline" is seen at a
//! glance. Drawn with plotters as SVG (text is left to the browser, so no font is needed) and
//! served from the pages server next to the flamegraphs; Slack shows it as a link.

use plotters::prelude::*;

/// One series to draw: its samples over the incident window, and the baseline's mean.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub unit: Option<String>,
    /// (minutes relative to the window's end, so the alert is at 0, value).
    pub points: Vec<(f64, f64)>,
    pub baseline: Option<f64>,
}

/// A change drawn on every panel as a vertical line, so a regression lines up with the release
/// that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Minutes relative to the window's end, like the points.
    pub minutes: f64,
    /// `deploy 1.4.2`.
    pub label: String,
}

/// Most panels in one chart (the reply lists at most this many series anyway).
pub const MAX_PANELS: usize = 6;

const WIDTH: u32 = 640;
const PANEL_HEIGHT: u32 = 170;

/// Draws `panels` as one SVG, a panel under the other, with `markers` as vertical lines.
pub fn svg(panels: &[Panel], caption: &str, markers: &[Marker]) -> Result<String, String> {
    let panels: Vec<&Panel> = panels
        .iter()
        .filter(|panel| panel.points.iter().any(|(_, v)| v.is_finite()))
        .take(MAX_PANELS)
        .collect();
    if panels.is_empty() {
        return Err("no series with data to chart".to_owned());
    }
    let mut out = String::new();
    {
        let height = 30 + PANEL_HEIGHT * panels.len() as u32;
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (top, rest) = root.split_vertically(30);
        top.titled(caption, ("sans-serif", 16))
            .map_err(draw_error)?;
        for (panel, area) in panels.iter().zip(rest.split_evenly((panels.len(), 1))) {
            draw_panel(panel, &area, markers)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(out)
}

fn draw_panel<DB: DrawingBackend>(
    panel: &Panel,
    area: &DrawingArea<DB, plotters::coord::Shift>,
    markers: &[Marker],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let finite = || panel.points.iter().filter(|(_, v)| v.is_finite());
    let (x_min, x_max) = finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (x, _)| {
        (lo.min(*x), hi.max(*x))
    });
    let (mut y_min, mut y_max) = finite()
        .map(|(_, y)| *y)
        .chain(panel.baseline.filter(|b| b.is_finite()))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
    if y_min > 0.0 && y_min < y_max * 0.5 {
        y_min = 0.0;
    }
    if (y_max - y_min).abs() < f64::EPSILON {
        y_max += y_max.abs().max(1.0) * 0.1;
        y_min -= y_min.abs().max(1.0) * 0.1;
    }
    let pad = (y_max - y_min) * 0.08;
    let x_range = if x_max > x_min {
        x_min..x_max
    } else {
        x_min - 1.0..x_min + 1.0
    };
    let title = match &panel.unit {
        Some(unit) if !unit.is_empty() => format!("{} ({unit})", panel.title),
        _ => panel.title.clone(),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 13))
        .margin(6)
        .x_label_area_size(22)
        .y_label_area_size(56)
        .build_cartesian_2d(x_range, (y_min - pad)..(y_max + pad))
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_labels(7)
        .y_labels(4)
        .x_label_formatter(&|minutes| format!("{minutes:.0}m"))
        .y_label_formatter(&|value| short(*value))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(draw_error)?;
    if let Some(baseline) = panel.baseline.filter(|b| b.is_finite()) {
        let (from, to) = (chart.x_range().start, chart.x_range().end);
        chart
            .draw_series(DashedLineSeries::new(
                [(from, baseline), (to, baseline)],
                6,
                4,
                RGBColor(120, 120, 120).stroke_width(1),
            ))
            .map_err(draw_error)?
            .label("baseline mean");
    }
    chart
        .draw_series(LineSeries::new(
            finite().copied(),
            RGBColor(214, 39, 40).stroke_width(2),
        ))
        .map_err(draw_error)?;
    let (x_from, x_to) = (chart.x_range().start, chart.x_range().end);
    let (y_from, y_to) = (chart.y_range().start, chart.y_range().end);
    let marker_colour = RGBColor(31, 119, 180);
    for marker in markers {
        // A change before the chart's data is shown at its left edge, saying how long ago it
        // was (one just before the first point is simply drawn there).
        let slack = (x_to - x_from) * 0.05;
        let (x, label) = if marker.minutes < x_from - slack {
            (
                x_from,
                format!("◀ {}, {:.0} min ago", marker.label, -marker.minutes),
            )
        } else if marker.minutes <= x_to {
            (marker.minutes.max(x_from), marker.label.clone())
        } else {
            continue;
        };
        chart
            .draw_series(DashedLineSeries::new(
                [(x, y_from), (x, y_to)],
                4,
                3,
                marker_colour.stroke_width(2),
            ))
            .map_err(draw_error)?;
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                (x, y_to),
                ("sans-serif", 11).into_font().color(&marker_colour),
            )))
            .map_err(draw_error)?;
    }
    Ok(())
}

/// `1.2k`, `3.4M`, `0.25`: values short enough for an axis.
fn short(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e9 {
        format!("{:.1}G", value / 1e9)
    } else if magnitude >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if magnitude >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else if magnitude >= 10.0 || magnitude == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

fn draw_error<E: std::fmt::Debug>(err: E) -> String {
    format!("cannot draw the chart: {err:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_series_is_a_panel_with_its_line_and_baseline() {
        let panels = vec![
            Panel {
                title: "cpu".into(),
                unit: Some("cores".into()),
                points: (0..30)
                    .map(|i| (f64::from(i) - 30.0, if i < 20 { 0.4 } else { 1.8 }))
                    .collect(),
                baseline: Some(0.4),
            },
            Panel {
                title: "memory".into(),
                unit: None,
                points: vec![(-30.0, 1.0e9), (0.0, f64::NAN), (-10.0, 1.5e9)],
                baseline: None,
            },
        ];
        let markers = [
            Marker {
                minutes: -7.0,
                label: "deploy 1.4.2".into(),
            },
            Marker {
                minutes: -90.0,
                label: "config <b>".into(),
            },
        ];
        let svg = svg(&panels, "HighCPU · checkout", &markers).unwrap();
        // Each change is a blue line on every panel whose time it falls in, labelled (the
        // memory panel ends at -10m, before the deploy); one before a panel's window sits at its
        // left edge with its time; labels are text, never markup.
        assert_eq!(svg.matches("deploy 1.4.2").count(), 1, "{svg}");
        assert_eq!(
            svg.matches("◀ config &lt;b&gt;, 90 min ago").count(),
            2,
            "{svg}"
        );
        assert!(svg.matches("stroke=\"#1F77B4\"").count() >= 4, "{svg}");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("HighCPU · checkout"));
        assert!(svg.contains("cpu (cores)") && svg.contains("memory"));
        assert!(
            svg.contains("1.0G") && svg.contains("-30m"),
            "short labels: {svg}"
        );
        // One red line per panel; the baseline is the grey dashed level of the first only.
        assert_eq!(svg.matches("stroke=\"#D62728\"").count(), 2, "{svg}");
        assert!(
            svg.matches("stroke=\"#787878\"").count() > 3,
            "dashes: {svg}"
        );
        // Nothing to draw is an error that says so, not an empty picture.
        let empty = Panel {
            title: "x".into(),
            unit: None,
            points: vec![(0.0, f64::NAN)],
            baseline: None,
        };
        assert_eq!(svg_err(&[empty]), "no series with data to chart");
    }

    fn svg_err(panels: &[Panel]) -> String {
        svg(panels, "t", &[]).unwrap_err()
    }

    #[test]
    fn axis_values_are_short() {
        assert_eq!(short(1_234_567.0), "1.2M");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(42.0), "42");
        assert_eq!(short(0.0), "0");
    }
}
