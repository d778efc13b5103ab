use super::*;
use crate::encode::decode_rgb as decode;

const END: i64 = 1_764_770_400; // 2025-12-03 14:00:00 UTC

fn chart(points: Vec<(i64, f64)>) -> Chart {
    Chart {
        caption: "HighCPU · checkout".into(),
        window: (END - 1800, END),
        alert_at: Some(END - 300),
        panels: vec![Panel {
            title: "cpu".into(),
            unit: Some("cores".into()),
            points,
            baseline: Some(Baseline {
                mean: 0.4,
                low: 0.3,
                high: 0.5,
            }),
        }],
        markers: vec![
            Marker {
                at: END - 420,
                label: "deploy 1.4.2".into(),
            },
            Marker {
                at: END - 5400,
                label: "config <b>".into(),
            },
        ],
    }
}

fn count(pixels: &[[u8; 3]], colour: RGBColor) -> usize {
    pixels
        .iter()
        .filter(|p| **p == [colour.0, colour.1, colour.2])
        .count()
}

#[test]
fn the_svg_has_clock_times_the_alert_the_baseline_band_and_the_changes() {
    let points = (0..30)
        .map(|i| (END - 1800 + i * 60, if i < 20 { 0.4 } else { 1.8 }))
        .collect();
    let svg = chart(points).svg().unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    // HH:MM on the axis, said to be UTC; no "minutes before" labels.
    let text = |t: &str| svg.contains(&format!(">\n{t}\n</text>"));
    for tick in [
        "13:30", "13:35", "13:40", "13:45", "13:50", "13:55", "14:00",
    ] {
        assert!(text(tick), "{tick}: {svg}");
    }
    assert!(text("UTC") && text("cores"), "{svg}");
    assert!(!svg.contains("0m\n"), "{svg}");
    // The alert and each change are labelled lines; text is text, never markup.
    assert!(svg.contains("alert"), "{svg}");
    assert!(svg.contains("deploy 1.4.2"), "{svg}");
    assert!(
        svg.contains("◀ config &lt;b&gt;, 90 min before the end"),
        "{svg}"
    );
    assert!(
        text("usual range") && text("now") && text("change"),
        "{svg}"
    );
    assert!(svg.contains("#E4E4E4"), "the band is drawn: {svg}");
    assert!(svg.contains("HighCPU · checkout") && svg.contains("cpu (cores)"));
}

#[test]
fn three_points_and_three_thousand_points_both_draw_a_visible_line() {
    for n in [3_i64, 3000] {
        let points: Vec<(i64, f64)> = (0..n)
            .map(|i| (END - 1800 + i * 1800 / n, 0.4 + (i % 7) as f64 * 0.2))
            .collect();
        let png = chart(points).png().unwrap();
        std::fs::write(
            std::env::temp_dir().join(format!("flamethread-chart-{n}.png")),
            &png,
        )
        .unwrap();
        let (width, height, pixels) = decode(&png);
        assert_eq!((width, height), (WIDTH, CAPTION_HEIGHT + PANEL_HEIGHT));
        let distinct: std::collections::BTreeSet<[u8; 3]> = pixels.iter().copied().collect();
        assert!(distinct.len() > 20, "{n} points: a picture, not a blank");
        // The series' red is there in quantity (dots make three points visible), and so are
        // the band, the alert line and the change line.
        assert!(
            count(&pixels, SERIES) > 150,
            "{n} points: {} red",
            count(&pixels, SERIES)
        );
        assert!(count(&pixels, BAND) > 1000, "{n} points: the band");
        assert!(count(&pixels, ALERT) > 50, "{n} points: the alert line");
        assert!(count(&pixels, CHANGE) > 50, "{n} points: the change lines");
    }
}

#[test]
fn thinning_keeps_order_peaks_and_one_value_per_instant() {
    let points: Vec<(f64, f64)> = (0..10_000)
        .map(|i| (f64::from(i) / 10.0, f64::from(i % 100)))
        .collect();
    let thinned = thin(&points, 0.0, 1000.0, 100);
    assert!(thinned.len() <= 400, "{}", thinned.len());
    assert!(thinned.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(thinned.iter().map(|p| p.1).fold(0.0, f64::max), 99.0);
    assert_eq!(
        thin(&[(1.0, 1.0), (1.0, 5.0)], 0.0, 2.0, 10),
        vec![(1.0, 1.0)]
    );
}

#[test]
fn a_single_point_and_a_flat_series_still_draw() {
    let png = chart(vec![(END - 60, 2.0)]).png().unwrap();
    let (_, _, pixels) = decode(&png);
    assert!(count(&pixels, SERIES) > 20, "one point is a dot");
    let mut flat = chart(vec![(END - 60, 0.0), (END, 0.0)]);
    flat.panels[0].baseline = None;
    flat.png().unwrap();
}

#[test]
fn nothing_to_draw_is_an_error_that_says_so() {
    let empty = chart(vec![(END, f64::NAN)]);
    assert_eq!(
        empty.png().unwrap_err().to_string(),
        "no series with data to chart"
    );
    assert_eq!(
        empty.svg().unwrap_err().to_string(),
        "no series with data to chart"
    );
}

#[test]
fn huge_values_and_stray_times_are_an_error_or_left_out_never_a_hang() {
    let mut huge = chart(vec![(END - 60, 1.7e308), (END, -1.7e308)]);
    huge.panels[0].baseline = None;
    assert_eq!(
        huge.png().unwrap_err().to_string(),
        "no values in the window, or too large to chart"
    );
    // A point outside the window is not drawn, and does not stretch the axis.
    let stray = chart(vec![(END - 60, 1.0), (i64::MAX, 2.0), (END, 1.5)]);
    let svg = stray.svg().unwrap();
    assert!(svg.contains(">\n14:00\n</text>"), "{svg}");
    assert!(ticks(9.0e18, 9.2e18).len() <= 64);
}

#[test]
fn hostile_titles_are_drawn_as_text() {
    let mut hostile = chart(vec![(END - 60, 1.0), (END, 2.0)]);
    hostile.panels[0].title = "<script>alert(1)</script>\u{202e}".repeat(20);
    hostile.caption = "\0\n\t".into();
    let svg = hostile.svg().unwrap();
    assert!(!svg.contains("<script>"), "{svg}");
    hostile.png().unwrap();
}

#[test]
fn axis_values_are_short_and_times_are_clock_times() {
    assert_eq!(short(1_234_567.0), "1.2M");
    assert_eq!(short(0.25), "0.25");
    assert_eq!(short(42.0), "42");
    assert_eq!(short(0.0), "0");
    assert_eq!(axis_value(12.2, 3.0), "12.2");
    assert_eq!(axis_value(12.25, 0.3), "12.25");
    assert_eq!(axis_value(42.0, 100.0), "42");
    assert_eq!(axis_value(0.5, 0.0), "0.50");
    assert_eq!(clock(END as f64, false), "14:00");
    assert_eq!(clock(END as f64, true), "12-03 14:00");
    let five_minutes: Vec<f64> = (0..7).map(|i| (END - 1800 + i * 300) as f64).collect();
    assert_eq!(ticks((END - 1800) as f64, END as f64), five_minutes);
    assert_eq!(ticks(100.0, 130.0), vec![120.0]);
    assert_eq!(ticks(0.0, 86400.0 * 30.0).len(), 8);
}

#[test]
fn a_long_caption_is_cut_before_the_legend_never_drawn_over_it() {
    let mut long = chart(vec![(END - 60, 1.0), (END, 2.0)]);
    long.caption = "checkout is slow for EU customers since lunch · ".repeat(4);
    assert!(long.svg().unwrap().contains('…'), "cut, and said so");
    let (width, _, pixels) = decode(&long.png().unwrap());
    let width = width as usize;
    let dark_before_legend = (0..CAPTION_HEIGHT as usize)
        .flat_map(|y| ((LEGEND_X - 14) as usize..LEGEND_X as usize).map(move |x| (x, y)))
        .filter(|(x, y)| pixels[y * width + x].iter().all(|channel| *channel < 120))
        .count();
    assert_eq!(
        dark_before_legend, 0,
        "the caption stops short of the legend"
    );
}
