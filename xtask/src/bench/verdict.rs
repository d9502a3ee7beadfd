//! How a figure's samples become a value, a spread and a verdict.
//!
//! A deterministic figure (callgrind counts) is one number, and it either meets its required
//! target or misses it. A wall-clock figure is a set of samples: its value is their median and
//! its spread their interquartile range, and the verdict is `ok` only when the whole range meets
//! the target, `missed` only when none of it does, and `inconclusive` when the range straddles
//! the target, because then the machine's noise, not the code, decides which side the median
//! falls on.

/// The median, quartiles and extremes of a figure's samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) q1: f64,
    pub(crate) q3: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) samples: usize,
}

/// The `fraction` quantile of sorted `values`, interpolating linearly between the two nearest
/// ranks (the common "type 7" definition, as numpy and R use by default).
fn quantile(sorted: &[f64], fraction: f64) -> f64 {
    let position = fraction * (sorted.len() - 1) as f64;
    // The rank just below `position`: how many ranks from 1 up do not exceed it.
    let index = (1..sorted.len()).take_while(|&rank| rank as f64 <= position).count();
    match sorted.get(index + 1) {
        Some(&next) => sorted[index] + (next - sorted[index]) * (position - index as f64),
        None => sorted[index],
    }
}

impl Spread {
    /// The spread of `samples`; `None` when there are none or one is not a number.
    pub(crate) fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() || samples.iter().any(|sample| !sample.is_finite()) {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            median: quantile(&sorted, 0.5),
            q1: quantile(&sorted, 0.25),
            q3: quantile(&sorted, 0.75),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            samples: sorted.len(),
        })
    }
}

/// A bound a figure is checked against, and which side of it is good.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bound {
    pub(crate) value: f64,
    pub(crate) higher_is_better: bool,
}

impl Bound {
    fn meets(self, value: f64) -> bool {
        if self.higher_is_better { value >= self.value } else { value <= self.value }
    }
}

/// The outcome of checking one figure against one bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No bound to check: the figure is reported for information.
    Info,
    /// The value (or, for samples, the whole interquartile range) meets the bound.
    Ok,
    /// The value (or the whole interquartile range) misses the bound.
    Missed,
    /// The interquartile range straddles the bound: the run cannot tell.
    Inconclusive,
}

impl Verdict {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Ok => "ok",
            Self::Missed => "missed",
            Self::Inconclusive => "inconclusive",
        }
    }
}

/// The verdict on one deterministic value.
pub(crate) fn judge_value(value: f64, bound: Option<Bound>) -> Verdict {
    match bound {
        None => Verdict::Info,
        Some(bound) if bound.meets(value) => Verdict::Ok,
        Some(_) => Verdict::Missed,
    }
}

/// The verdict on samples summarised by `spread`: their interquartile range against the bound.
pub(crate) fn judge_spread(spread: &Spread, bound: Option<Bound>) -> Verdict {
    let Some(bound) = bound else { return Verdict::Info };
    match (bound.meets(spread.q1), bound.meets(spread.q3)) {
        (true, true) => Verdict::Ok,
        (false, false) => Verdict::Missed,
        _ => Verdict::Inconclusive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One case per row: samples, then the expected median, first and third quartile.
    #[test]
    fn spreads_follow_the_type_7_quantiles() {
        let cases: &[(&[f64], f64, f64, f64)] = &[
            (&[5.0], 5.0, 5.0, 5.0),
            (&[1.0, 2.0], 1.5, 1.25, 1.75),
            (&[3.0, 1.0, 2.0], 2.0, 1.5, 2.5),
            (&[1.0, 2.0, 3.0, 4.0], 2.5, 1.75, 3.25),
            (&[1.0, 2.0, 3.0, 4.0, 100.0], 3.0, 2.0, 4.0),
            // Fifteen pairs, as a quick run records: an outlier moves neither quartile much.
            (
                &[1.0, 1.01, 1.02, 1.03, 1.04, 1.05, 1.06, 1.07, 1.08, 1.09, 1.10, 1.11, 1.12, 1.13, 9.0],
                1.07,
                1.035,
                1.105,
            ),
        ];
        for &(samples, median, q1, q3) in cases {
            let spread = Spread::of(samples).unwrap();
            let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
            assert!(close(spread.median, median), "{samples:?}: median {}", spread.median);
            assert!(close(spread.q1, q1), "{samples:?}: q1 {}", spread.q1);
            assert!(close(spread.q3, q3), "{samples:?}: q3 {}", spread.q3);
            assert_eq!(spread.samples, samples.len());
            assert!(spread.min <= spread.q1 && spread.q3 <= spread.max);
        }
    }

    #[test]
    fn no_spread_without_usable_samples() {
        for samples in [&[][..], &[1.0, f64::NAN], &[f64::INFINITY]] {
            assert_eq!(Spread::of(samples), None, "{samples:?}");
        }
    }

    fn lower(value: f64) -> Option<Bound> {
        Some(Bound { value, higher_is_better: false })
    }

    fn higher(value: f64) -> Option<Bound> {
        Some(Bound { value, higher_is_better: true })
    }

    #[test]
    fn deterministic_values_meet_or_miss() {
        let cases = [
            (1.05, lower(1.10), Verdict::Ok),
            (1.10, lower(1.10), Verdict::Ok),
            (1.1001, lower(1.10), Verdict::Missed),
            (0.6, higher(0.5), Verdict::Ok),
            (0.4, higher(0.5), Verdict::Missed),
            (7.0, None, Verdict::Info),
        ];
        for (value, bound, expected) in cases {
            assert_eq!(judge_value(value, bound), expected, "{value} against {bound:?}");
        }
    }

    /// One case per row: the interquartile range, the bound, and the verdict.
    #[test]
    fn a_range_that_straddles_its_target_is_inconclusive() {
        let cases = [
            ((1.00, 1.05), lower(1.10), Verdict::Ok),
            ((1.00, 1.10), lower(1.10), Verdict::Ok),
            ((1.05, 1.15), lower(1.10), Verdict::Inconclusive),
            ((1.11, 1.20), lower(1.10), Verdict::Missed),
            ((0.55, 0.70), higher(0.5), Verdict::Ok),
            ((0.45, 0.55), higher(0.5), Verdict::Inconclusive),
            ((0.30, 0.45), higher(0.5), Verdict::Missed),
            ((0.30, 0.45), None, Verdict::Info),
        ];
        for ((q1, q3), bound, expected) in cases {
            let spread = Spread { median: (q1 + q3) / 2.0, q1, q3, min: q1, max: q3, samples: 15 };
            assert_eq!(judge_spread(&spread, bound), expected, "{q1}..{q3} against {bound:?}");
        }
    }

    #[test]
    fn the_median_alone_does_not_decide() {
        // The median meets the target, but a quarter of the pairs miss it by far.
        let samples = [1.0, 1.0, 1.0, 1.05, 1.05, 1.05, 1.06, 1.06, 1.2, 1.2, 1.2, 1.2];
        let spread = Spread::of(&samples).unwrap();
        assert!(spread.median <= 1.10);
        assert_eq!(judge_spread(&spread, lower(1.10)), Verdict::Inconclusive);
    }
}
