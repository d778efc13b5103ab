//! Profiles as folded stacks, and what the reply says about them: the top functions by self
//! time, and the functions whose share grew most against the baseline. Pure.
//!
//! Every source ends here (Pyroscope's flamegraphs, pprof protobufs, py-spy's output), so the
//! numbers never depend on which profiler or API answered.

use std::collections::{BTreeMap, HashMap};

use proto::evidence::{FunctionGrowth, FunctionShare};

/// Folded stacks: `root;caller;callee` → the value of samples ending in that exact stack.
pub type Folded = BTreeMap<String, u64>;

/// The stack of samples a profiler could not attribute (as inferno names it).
pub const UNKNOWN_STACK: &str = "[unknown]";

/// Why a folded-stacks text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct FoldedError {
    pub line: usize,
    pub reason: String,
}

/// Reads `a;b;c 42` lines (the format of inferno, py-spy and Pyroscope's ingest); equal stacks add up.
pub fn parse_folded(text: &str) -> Result<Folded, FoldedError> {
    let mut folded = Folded::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let error = |reason: &str| FoldedError {
            line: index + 1,
            reason: reason.to_owned(),
        };
        let (stack, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| error("no sample count after the stack"))?;
        let value: u64 = value
            .parse()
            .map_err(|_| error("the sample count is not a whole number"))?;
        // py-spy writes samples it could not attribute (idle) with an empty stack.
        let stack = if stack.trim().is_empty() {
            UNKNOWN_STACK
        } else {
            stack
        };
        let entry = folded.entry(stack.to_owned()).or_default();
        *entry = entry.saturating_add(value);
    }
    Ok(folded)
}

/// The total of all samples.
pub fn total(folded: &Folded) -> u64 {
    folded
        .values()
        .fold(0u64, |sum, value| sum.saturating_add(*value))
}

/// Self value per function: a stack's value belongs to its last frame.
pub fn self_values(folded: &Folded) -> HashMap<&str, u64> {
    let mut values = HashMap::<&str, u64>::new();
    for (stack, value) in folded {
        let leaf = stack.rsplit(';').next().unwrap_or(stack);
        *values.entry(leaf).or_default() += value;
    }
    values
}

/// The `n` functions with the most self time (ties by name, so the answer is stable).
pub fn top_functions(folded: &Folded, n: usize) -> Vec<FunctionShare> {
    let total = total(folded).max(1) as f64;
    let mut values: Vec<(&str, u64)> = self_values(folded).into_iter().collect();
    values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    values
        .into_iter()
        .take(n)
        .map(|(name, value)| FunctionShare {
            name: name.to_owned(),
            self_value: value,
            self_share: value as f64 / total,
        })
        .collect()
}

/// The `n` functions whose share of self time grew most from `baseline` to `current` (shares,
/// not values, so windows of different lengths compare); only growth above `min_growth`.
pub fn grown(
    current: &Folded,
    baseline: &Folded,
    n: usize,
    min_growth: f64,
) -> Vec<FunctionGrowth> {
    let current_total = total(current).max(1) as f64;
    let baseline_total = total(baseline).max(1) as f64;
    let before = self_values(baseline);
    let mut growth: Vec<FunctionGrowth> = self_values(current)
        .into_iter()
        .map(|(name, value)| FunctionGrowth {
            name: name.to_owned(),
            baseline_share: before.get(name).copied().unwrap_or(0) as f64 / baseline_total,
            current_share: value as f64 / current_total,
        })
        .filter(|growth| growth.current_share - growth.baseline_share > min_growth)
        .collect();
    growth.sort_by(|a, b| {
        (b.current_share - b.baseline_share)
            .total_cmp(&(a.current_share - a.baseline_share))
            .then_with(|| a.name.cmp(&b.name))
    });
    growth.truncate(n);
    growth
}

/// Folded stacks as text, one `stack value` line each (for download and for inferno).
pub fn to_text(folded: &Folded) -> String {
    let mut text = String::new();
    for (stack, value) in folded {
        text.push_str(stack);
        text.push(' ');
        text.push_str(&value.to_string());
        text.push('\n');
    }
    text
}
