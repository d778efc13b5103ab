//! The metrics chart of an incident: one panel per series, read at a glance. The x axis is the
//! incident's window in wall-clock time (HH:MM, UTC, said on the axis), so "when" is a time and
//! not "-0m"; the alert's start is a red line; the baseline is a grey band (its usual range) with
//! its mean dashed; the series is a line with its points marked when there are few, so three
//! samples still show; changes (deploys, config) are blue lines labelled where they happened.
//!
//! The same drawing goes to SVG (pages) and PNG (Slack), through plotters' backends.

use chrono::{DateTime, Utc};
use plotters::{
    coord::{
        Shift,
        ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter},
        types::RangedCoordf64,
    },
    prelude::*,
    style::{
        FontTransform,
        text_anchor::{HPos, Pos, VPos},
    },
};

use crate::{Error, draw_error, encode, font};

/// One series to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub unit: Option<String>,
    /// (seconds since the Unix epoch, value); NaN and infinite values are skipped.
    pub points: Vec<(i64, f64)>,
    /// What the series usually does (from the baseline window), when known.
    pub baseline: Option<Baseline>,
}

/// A series' usual level: its mean and the range most of its values fell in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

/// A change drawn on every panel as a vertical line, so a regression lines up with the release
/// that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Seconds since the Unix epoch.
    pub at: i64,
    /// `deploy 1.4.2`.
    pub label: String,
}

/// Everything one chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub caption: String,
    /// The incident's window (Unix seconds): the x axis, whatever the points cover.
    pub window: (i64, i64),
    /// When the alert started (Unix seconds), marked on every panel.
    pub alert_at: Option<i64>,
    pub panels: Vec<Panel>,
    pub markers: Vec<Marker>,
}

/// Most panels in one chart (the reply lists at most this many series anyway).
pub const MAX_PANELS: usize = 6;
/// Points are marked with dots up to this many per panel (beyond, the line says it all).
const DOTS_UP_TO: usize = 60;

const WIDTH: u32 = 800;
const CAPTION_HEIGHT: u32 = 34;
const PANEL_HEIGHT: u32 = 200;

const SERIES: RGBColor = RGBColor(214, 39, 40);
const BASELINE: RGBColor = RGBColor(120, 120, 120);
const BAND: RGBColor = RGBColor(228, 228, 228);
const ALERT: RGBColor = RGBColor(224, 30, 90);
const CHANGE: RGBColor = RGBColor(31, 119, 180);

impl Chart {
    /// The panels worth drawing: those with at least one finite value, at most [`MAX_PANELS`].
    fn drawable(&self) -> Result<Vec<&Panel>, Error> {
        let panels: Vec<&Panel> = self
            .panels
            .iter()
            .filter(|panel| panel.points.iter().any(|(_, v)| v.is_finite()))
            .take(MAX_PANELS)
            .collect();
        if panels.is_empty() {
            return Err(Error::Empty("no series with data to chart"));
        }
        Ok(panels)
    }

    fn size(panels: usize) -> (u32, u32) {
        (WIDTH, CAPTION_HEIGHT + PANEL_HEIGHT * panels as u32)
    }

    /// The chart as an SVG document (for the pages server).
    pub fn svg(&self) -> Result<String, Error> {
        font::register()?;
        let panels = self.drawable()?;
        let mut out = String::new();
        {
            let root =
                SVGBackend::with_string(&mut out, Self::size(panels.len())).into_drawing_area();
            self.draw(&root, &panels)?;
            root.present().map_err(draw_error)?;
        }
        Ok(out)
    }

    /// The chart as a PNG (for Slack), rasterized here with the embedded font.
    pub fn png(&self) -> Result<Vec<u8>, Error> {
        font::register()?;
        let panels = self.drawable()?;
        let (width, height) = Self::size(panels.len());
        encode::png(width, height, |root| self.draw(root, &panels))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        panels: &[&Panel],
    ) -> Result<(), Error>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(draw_error)?;
        let (top, rest) = root.split_vertically(CAPTION_HEIGHT);
        let caption_font = (font::FAMILY, 17)
            .into_font()
            .style(FontStyle::Bold)
            .color(&BLACK);
        // The caption ends before the legend: a long alert name is cut, never drawn over it.
        let room = (LEGEND_X - 10 - 16).max(0) as u32;
        let caption = fitted(&top, &self.caption, &caption_font, room)?;
        top.draw_text(&caption, &caption_font, (10, 9))
            .map_err(draw_error)?;
        legend(&top)?;
        for (panel, area) in panels.iter().zip(rest.split_evenly((panels.len(), 1))) {
            self.draw_panel(panel, &area)?;
        }
        Ok(())
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        panel: &Panel,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), Error>
    where
        DB::ErrorType: 'static,
    {
        // Only points inside the window are drawn: the axis is the window, never stretched by a
        // stray timestamp.
        let (window_from, window_to) = (self.window.0 as f64, self.window.1 as f64);
        let mut finite: Vec<(f64, f64)> = panel
            .points
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|&(at, v)| (at as f64, v))
            .filter(|(at, _)| (window_from..=window_to).contains(at))
            .collect();
        finite.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (from, to) = self.x_range();
        let finite = thin(&finite, from, to, WIDTH as usize);
        let (y_from, y_to) = y_range(&finite, panel.baseline);
        if !(y_to - y_from).is_finite() || !(to - from).is_finite() {
            return Err(Error::Empty(
                "no values in the window, or too large to chart",
            ));
        }
        let title = match &panel.unit {
            Some(unit) if !unit.is_empty() => format!("{} ({unit})", panel.title),
            _ => panel.title.clone(),
        };
        let mut chart = ChartBuilder::on(area)
            .caption(title, (font::FAMILY, 15))
            .margin(8)
            .margin_right(18)
            .x_label_area_size(34)
            .y_label_area_size(62)
            .build_cartesian_2d(ClockAxis::new(from, to), y_from..y_to)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(5)
            .y_label_formatter(&|value| axis_value(*value, y_to - y_from))
            .x_desc("UTC")
            .y_desc(panel.unit.clone().unwrap_or_default())
            .axis_desc_style((font::FAMILY, 13))
            .label_style((font::FAMILY, 13))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()
            .map_err(draw_error)?;

        if let Some(baseline) = panel.baseline.filter(|b| b.mean.is_finite()) {
            if baseline.low.is_finite() && baseline.high.is_finite() && baseline.high > baseline.low
            {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(from, baseline.low), (to, baseline.high)],
                        BAND.filled(),
                    )))
                    .map_err(draw_error)?;
            }
            chart
                .draw_series(DashedLineSeries::new(
                    [(from, baseline.mean), (to, baseline.mean)],
                    6,
                    4,
                    BASELINE.stroke_width(1),
                ))
                .map_err(draw_error)?;
        }
        // Segment by segment: a polyline's mitred joins spike far past the plot on a jagged
        // series (plotters joins thick lines with miters).
        chart
            .draw_series(
                finite
                    .windows(2)
                    .map(|pair| PathElement::new([pair[0], pair[1]], SERIES.stroke_width(2))),
            )
            .map_err(draw_error)?;
        if finite.len() <= DOTS_UP_TO {
            chart
                .draw_series(
                    finite
                        .iter()
                        .map(|&point| Circle::new(point, 3, SERIES.filled())),
                )
                .map_err(draw_error)?;
        }
        // Each label on a row of its own, so lines close together keep readable labels.
        let mut row = 0;
        if let Some(alert_at) = self.alert_at {
            vertical(&mut chart, alert_at as f64, "alert".to_owned(), ALERT, row)?;
            row += 1;
        }
        for marker in &self.markers {
            let at = marker.at as f64;
            if at > to {
                continue;
            }
            // A change before the window is shown at its left edge with how long before.
            let (x, label) = if at < from {
                let minutes = ((self.window.1 as f64 - at) / 60.0).round();
                (
                    from,
                    format!("◀ {}, {minutes:.0} min before the end", marker.label),
                )
            } else {
                (at, marker.label.clone())
            };
            vertical(&mut chart, x, label, CHANGE, row)?;
            row += 1;
        }
        Ok(())
    }

    /// The window, never empty (points outside it are not drawn).
    fn x_range(&self) -> (f64, f64) {
        let (from, to) = (self.window.0 as f64, self.window.1 as f64);
        if to > from {
            (from, to)
        } else {
            (from - 60.0, from + 60.0)
        }
    }
}

type Coord = Cartesian2d<ClockAxis, RangedCoordf64>;

/// The x axis: Unix seconds, with ticks on round clock times labelled `HH:MM`.
#[derive(Debug, Clone)]
struct ClockAxis {
    from: f64,
    to: f64,
    with_date: bool,
}

impl ClockAxis {
    fn new(from: f64, to: f64) -> ClockAxis {
        ClockAxis {
            from,
            to,
            with_date: to - from > 20.0 * 3600.0,
        }
    }
}

impl Ranged for ClockAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value - self.from) / (self.to - self.from);
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        ticks(self.from, self.to)
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.from..self.to
    }
}

impl ValueFormatter<f64> for ClockAxis {
    fn format_ext(&self, value: &f64) -> String {
        clock(*value, self.with_date)
    }
}

/// Round clock times for the x axis: the largest step of 1, 2, 5, 10, 15, 30 minutes or 1, 2, 3,
/// 6, 12, 24 hours that gives at most 8 ticks, on multiples of that step.
fn ticks(from: f64, to: f64) -> Vec<f64> {
    const STEPS: [i64; 12] = [
        60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
    ];
    let span = (to - from).max(1.0);
    let step = STEPS
        .into_iter()
        .find(|step| span / *step as f64 <= 8.0)
        .unwrap_or(86400 * ((span / 86400.0 / 8.0).ceil() as i64).max(1));
    let first = ((from / step as f64).ceil() as i64).saturating_mul(step);
    (0..)
        .map_while(|i: i64| first.checked_add(i.checked_mul(step)?))
        .map(|tick| tick as f64)
        .take_while(|tick| *tick <= to)
        .take(64)
        .collect()
}

/// At most the first, lowest, highest and last point of each of `columns` slices of the x
/// range, in order: the same picture as every point (peaks stay), drawn in bounded time.
/// Points sharing one x are kept once, as the series cannot be two values at one instant.
fn thin(points: &[(f64, f64)], from: f64, to: f64, columns: usize) -> Vec<(f64, f64)> {
    let column = |x: f64| (((x - from) / (to - from)) * columns as f64) as usize;
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(points.len().min(columns * 4));
    for slice in points.chunk_by(|a, b| column(a.0) == column(b.0)) {
        let lowest = slice.iter().min_by(|a, b| a.1.total_cmp(&b.1));
        let highest = slice.iter().max_by(|a, b| a.1.total_cmp(&b.1));
        let mut kept: Vec<&(f64, f64)> = [slice.first(), lowest, highest, slice.last()]
            .into_iter()
            .flatten()
            .collect();
        kept.sort_by(|a, b| a.0.total_cmp(&b.0));
        for point in kept {
            if out.last().is_none_or(|last| last.0 < point.0) {
                out.push(*point);
            }
        }
    }
    out
}

/// Where the legend starts, from the left.
const LEGEND_X: i32 = WIDTH as i32 - 330;

/// `text` as drawn in `style`, cut (ending in `…`) to at most `room` pixels wide.
fn fitted<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle<'_>,
    room: u32,
) -> Result<String, Error>
where
    DB::ErrorType: 'static,
{
    let width = |text: &str| {
        area.estimate_text_size(text, style)
            .map(|(width, _)| width)
            .map_err(draw_error)
    };
    if width(text)? <= room {
        return Ok(text.to_owned());
    }
    let mut kept: Vec<char> = text.chars().collect();
    while !kept.is_empty() {
        kept.pop();
        let candidate: String = kept.iter().chain(std::iter::once(&'…')).collect();
        if width(&candidate)? <= room {
            return Ok(candidate);
        }
    }
    Ok("…".to_owned())
}

/// What the colours mean, once for the whole chart, at the caption's right.
fn legend<DB: DrawingBackend>(top: &DrawingArea<DB, Shift>) -> Result<(), Error>
where
    DB::ErrorType: 'static,
{
    let style = (font::FAMILY, 13).into_font().color(&RGBColor(60, 60, 60));
    let mut x = LEGEND_X;
    let y = 17;
    let entries: [(&str, RGBColor, bool); 4] = [
        ("now", SERIES, false),
        ("usual range", BAND, true),
        ("alert", ALERT, false),
        ("change", CHANGE, false),
    ];
    for (label, colour, filled) in entries {
        if filled {
            top.draw(&Rectangle::new(
                [(x, y - 6), (x + 16, y + 6)],
                colour.filled(),
            ))
        } else {
            top.draw(&PathElement::new(
                [(x, y), (x + 16, y)],
                colour.stroke_width(3),
            ))
        }
        .map_err(draw_error)?;
        top.draw_text(
            label,
            &style.clone().pos(Pos::new(HPos::Left, VPos::Center)),
            (x + 21, y),
        )
        .map_err(draw_error)?;
        x += 26 + 8 * label.chars().count() as i32;
    }
    Ok(())
}

/// A vertical dashed line across the panel at `x`, labelled near its top on label row `row`.
fn vertical<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Coord>,
    x: f64,
    label: String,
    colour: RGBColor,
    row: usize,
) -> Result<(), Error>
where
    DB::ErrorType: 'static,
{
    let (y_from, y_to) = (chart.y_range().start, chart.y_range().end);
    chart
        .draw_series(DashedLineSeries::new(
            [(x, y_from), (x, y_to)],
            4,
            3,
            colour.stroke_width(2),
        ))
        .map_err(draw_error)?;
    let right = x < (chart.x_range().start + chart.x_range().end) / 2.0;
    let anchor = Pos::new(if right { HPos::Left } else { HPos::Right }, VPos::Top);
    let text = Text::new(
        if right {
            format!(" {label}")
        } else {
            format!("{label} ")
        },
        (0, 2 + 15 * (row % 4) as i32),
        (font::FAMILY, 13)
            .into_font()
            .transform(FontTransform::None)
            .color(&colour)
            .pos(anchor),
    );
    chart
        .draw_series(std::iter::once(EmptyElement::at((x, y_to)) + text))
        .map_err(draw_error)?;
    Ok(())
}

/// The value range: the points and the baseline band, from 0 when the values are all well above
/// it, never empty, with a little room above and below.
fn y_range(finite: &[(f64, f64)], baseline: Option<Baseline>) -> (f64, f64) {
    let band = baseline
        .into_iter()
        .flat_map(|b| [b.mean, b.low, b.high])
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = finite
        .iter()
        .map(|(_, y)| *y)
        .chain(band)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
    if lo > 0.0 && lo < hi * 0.5 {
        lo = 0.0;
    }
    if (hi - lo).abs() < f64::EPSILON {
        hi += hi.abs().max(1.0) * 0.1;
        lo -= lo.abs().max(1.0) * 0.1;
    }
    let pad = (hi - lo) * 0.12;
    (lo - pad.min(if lo >= 0.0 { lo } else { pad }), hi + pad)
}

/// `14:05` (or `12-03 14:05` when the window spans days), in UTC.
fn clock(seconds: f64, with_date: bool) -> String {
    let Some(at) = DateTime::<Utc>::from_timestamp(seconds.round() as i64, 0) else {
        return String::new();
    };
    if with_date {
        at.format("%m-%d %H:%M").to_string()
    } else {
        at.format("%H:%M").to_string()
    }
}

/// A y-axis label with as many decimals as ticks `span` apart need to differ (five ticks):
/// `12.1`, `12.2` rather than `12`, `12`.
fn axis_value(value: f64, span: f64) -> String {
    let step = span / 5.0;
    if value.abs() >= 1e3 || step.is_nan() || step <= 0.0 || step >= 1.0 {
        return short(value);
    }
    let decimals = (-step.log10()).ceil().clamp(1.0, 4.0) as usize;
    format!("{value:.decimals$}")
}

/// `1.2k`, `3.4M`, `0.25`: values short enough for an axis.
pub fn short(value: f64) -> String {
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

#[cfg(test)]
mod tests;
