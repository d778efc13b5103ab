//! Summaries of a series: the mean over the incident window against the mean over the baseline,
//! the peak, and the trend inside the window. Pure, so it is tested on exact numbers.

use proto::evidence::Trend;

/// One sample: Unix seconds and value.
pub type Sample = (f64, f64);

/// What a series did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub current: Option<f64>,
    pub baseline: Option<f64>,
    pub peak: Option<f64>,
    pub trend: Trend,
}

/// Relative change between the first and the last quarter of the window that counts as a trend.
const TREND_THRESHOLD: f64 = 0.10;

/// Summarizes `current` (the incident window) against `baseline`. `NaN` and infinite samples
/// (a division by zero in the query) are left out.
pub fn summarize(current: &[Sample], baseline: &[Sample]) -> Summary {
    let current: Vec<Sample> = finite(current);
    let baseline: Vec<Sample> = finite(baseline);
    Summary {
        current: mean(&current),
        baseline: mean(&baseline),
        peak: current.iter().map(|&(_, value)| value).reduce(f64::max),
        trend: trend(&current),
    }
}

/// `samples` over `from..to` (Unix seconds) in `count` equal slices: each slice's start and the
/// mean of its finite samples; slices without any are left out.
pub fn slices(samples: &[Sample], from: f64, to: f64, count: usize) -> Vec<Sample> {
    let width = (to - from) / count.max(1) as f64;
    if width <= 0.0 || !width.is_finite() {
        return Vec::new();
    }
    let mut sums = vec![(0.0, 0usize); count.max(1)];
    for (at, value) in finite(samples) {
        let slice = (((at - from) / width) as usize).min(sums.len() - 1);
        if at >= from && at <= to {
            sums[slice].0 += value;
            sums[slice].1 += 1;
        }
    }
    sums.iter()
        .enumerate()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(i, (sum, n))| (from + i as f64 * width, sum / *n as f64))
        .collect()
}

/// The range most of `samples` fell in: their 10th and 90th percentiles (finite values only),
/// drawn as the baseline's band.
pub fn band(samples: &[Sample]) -> Option<(f64, f64)> {
    let mut values: Vec<f64> = finite(samples).into_iter().map(|(_, v)| v).collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at = |share: f64| values[((values.len() - 1) as f64 * share).round() as usize];
    Some((at(0.1), at(0.9)))
}

fn finite(samples: &[Sample]) -> Vec<Sample> {
    samples
        .iter()
        .copied()
        .filter(|(time, value)| time.is_finite() && value.is_finite())
        .collect()
}

fn mean(samples: &[Sample]) -> Option<f64> {
    (!samples.is_empty())
        .then(|| samples.iter().map(|&(_, value)| value).sum::<f64>() / samples.len() as f64)
}

/// Rising or falling when the last quarter's mean differs from the first quarter's by more than
/// 10 % (of the larger magnitude); unknown with fewer than four samples.
fn trend(samples: &[Sample]) -> Trend {
    if samples.len() < 4 {
        return Trend::Unknown;
    }
    let quarter = samples.len() / 4;
    let (Some(first), Some(last)) = (
        mean(&samples[..quarter]),
        mean(&samples[samples.len() - quarter..]),
    ) else {
        return Trend::Unknown;
    };
    let scale = first.abs().max(last.abs());
    if scale == 0.0 || (last - first).abs() <= TREND_THRESHOLD * scale {
        Trend::Flat
    } else if last > first {
        Trend::Rising
    } else {
        Trend::Falling
    }
}

#[cfg(test)]
mod tests;
