//! The demo's business logic, with the bug the demo exists for: coupon codes are checked by a
//! backtracking matcher of the pattern `(a+)+b`, whose work doubles with every extra `a` when the
//! code does not match. A normal code costs microseconds; the codes a "campaign" sends cost
//! milliseconds each, and a few of them at a time fill the cores. The functions are
//! `#[inline(never)]` so a profile shows them by name in any build.

use std::hint::black_box;

/// A basket's price in cents after its coupon.
#[inline(never)]
pub fn price_basket(items: &[u64], coupon: &str) -> u64 {
    let total: u64 = items.iter().sum();
    if validate_coupon(coupon) {
        total - total / 10
    } else {
        total
    }
}

/// Whether `coupon` is a valid code: one or more groups of `a`, then `b` (`(a+)+b`), matched
/// the way a backtracking regex engine does.
#[inline(never)]
pub fn validate_coupon(coupon: &str) -> bool {
    coupon_pattern_matches(black_box(coupon.as_bytes()), 0)
}

/// `(a+)+b` at `start` in `code`, trying every way to split the run of `a`s into groups before
/// giving up — exponential in the run's length when no `b` follows.
/// Plain loops, offsets and indexing by `usize` only (no sub-slices, no iterators), so the time
/// stays in this frame in any build: unoptimized, a sub-slice or an adapter is a frame of its
/// own, and the demo builds its app unoptimized (the dev profile).
#[inline(never)]
fn coupon_pattern_matches(code: &[u8], start: usize) -> bool {
    let mut run = 0;
    while start + run < code.len() && code[start + run] == b'a' {
        run += 1;
    }
    let mut group = 1;
    while group <= run {
        let next = start + group;
        if (next < code.len() && code[next] == b'b') || coupon_pattern_matches(code, next) {
            return true;
        }
        group += 1;
    }
    false
}

/// A coupon code a normal customer sends.
pub const NORMAL_COUPON: &str = "aaab";

/// A code from the campaign that trips the matcher: many `a`s and no `b`.
pub fn campaign_coupon(length: usize) -> String {
    let mut code = "a".repeat(length);
    code.push('!');
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matcher_is_right_on_matching_and_failing_codes() {
        assert!(validate_coupon("ab"));
        assert!(validate_coupon(NORMAL_COUPON));
        assert!(validate_coupon("aaaaaaaab-extra"));
        assert!(!validate_coupon(""));
        assert!(!validate_coupon("b"));
        assert!(!validate_coupon("aaa"));
        assert!(!validate_coupon(&campaign_coupon(12)));
        assert_eq!(price_basket(&[1000, 1000], NORMAL_COUPON), 1800);
        assert_eq!(price_basket(&[1000, 1000], &campaign_coupon(8)), 2000);
    }
}
