use proptest::prelude::*;

use super::*;

#[test]
fn slices_are_means_of_equal_parts_and_empty_ones_are_left_out() {
    let samples: Vec<Sample> = (0..100)
        .map(|i| (f64::from(i), if i < 50 { 1.0 } else { 3.0 }))
        .chain([(10.5, f64::NAN), (-5.0, 99.0)])
        .collect();
    let sliced = slices(&samples, 0.0, 100.0, 4);
    assert_eq!(
        sliced,
        vec![(0.0, 1.0), (25.0, 1.0), (50.0, 3.0), (75.0, 3.0)]
    );
    let sparse = slices(&[(1.0, 2.0), (99.0, 4.0)], 0.0, 100.0, 20);
    assert_eq!(sparse, vec![(0.0, 2.0), (95.0, 4.0)]);
    assert!(slices(&samples, 5.0, 5.0, 20).is_empty());
    assert_eq!(band(&samples), Some((1.0, 3.0)));
}

fn series(values: &[f64]) -> Vec<Sample> {
    values
        .iter()
        .enumerate()
        .map(|(index, &value)| (index as f64 * 15.0, value))
        .collect()
}

#[test]
fn means_peak_and_trend() {
    let summary = summarize(
        &series(&[1.0, 1.2, 1.6, 2.0, 2.2, f64::NAN, 2.4, 2.6]),
        &series(&[0.5, 0.5, 0.5]),
    );
    assert_eq!(summary.current, Some(13.0 / 7.0));
    assert_eq!(summary.baseline, Some(0.5));
    assert_eq!(summary.peak, Some(2.6));
    assert_eq!(summary.trend, Trend::Rising);
    assert_eq!(
        summarize(&series(&[5.0, 5.1, 4.9, 5.0]), &[]).trend,
        Trend::Flat
    );
    assert_eq!(
        summarize(&series(&[9.0, 8.0, 2.0, 1.0]), &[]).trend,
        Trend::Falling
    );
    let empty = summarize(&[], &[]);
    assert_eq!(
        (empty.current, empty.peak, empty.trend),
        (None, None, Trend::Unknown)
    );
}

proptest! {
    #[test]
    fn the_peak_bounds_the_mean(values in proptest::collection::vec(-1e12f64..1e12, 1..200)) {
        let summary = summarize(&series(&values), &[]);
        let (current, peak) = (summary.current.unwrap(), summary.peak.unwrap());
        prop_assert!(current <= peak + peak.abs() * 1e-9 + 1e-9);
    }
}
