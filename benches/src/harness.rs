//! Wall-clock measurement side by side.
//!
//! A shared two-core machine drifts by tens of percent within minutes, so two operations timed
//! minutes apart (as criterion times one benchmark after another) carry that drift into their
//! ratio. Here A and B alternate inside one process, A B A B ..., after a warm-up, and every pair
//! gives one ratio: drift slower than one pair cancels out of it. A pair of short operations is
//! itself a few alternations, A B A B A B, and compares the fastest A with the fastest B: another
//! engineer's build preempting one run of a few milliseconds would otherwise decide that pair.
//! `cargo xtask bench` reports the median of the pairs' ratios with their interquartile range;
//! this module only collects samples.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How many pairs (or repetitions) to measure, after how many unrecorded warm-up rounds.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Rounds run and thrown away first: caches, branch predictors and lazy initialisation.
    pub warm_up: usize,
    /// Recorded rounds; the issue asks for at least 15 pairs.
    pub rounds: usize,
    /// Alternations within one pair, of which each side's fastest counts.
    pub alternations: usize,
}

impl Budget {
    /// The budget of a `--quick` run (15 recorded rounds) or of a full one (45).
    pub fn new(quick: bool) -> Self {
        if quick {
            Self { warm_up: 3, rounds: 15, alternations: 5 }
        } else {
            Self { warm_up: 5, rounds: 45, alternations: 5 }
        }
    }

    /// A smaller budget for operations that take a second or more per round, where preemption
    /// is a small part of a run: one alternation per pair, never fewer than 15 recorded rounds.
    pub fn heavy(quick: bool) -> Self {
        if quick {
            Self { warm_up: 1, rounds: 15, alternations: 1 }
        } else {
            Self { warm_up: 2, rounds: 21, alternations: 1 }
        }
    }
}

/// Times `operation`, which runs its own untimed preparation first and returns the time of the
/// part that is measured (see [`timed`]).
pub type Measured<'a> = dyn FnMut() -> Duration + 'a;

/// Times `work` alone.
pub fn timed<T>(work: impl FnOnce() -> T) -> Duration {
    let started = Instant::now();
    let result = work();
    let elapsed = started.elapsed();
    std::hint::black_box(result);
    elapsed
}

/// Measures A and B alternately: `budget.warm_up` unrecorded pairs, then `budget.rounds` pairs,
/// each `(a_ns, b_ns)`: the fastest of `budget.alternations` runs of each, A and B alternating.
pub fn pairs(budget: Budget, a: &mut Measured<'_>, b: &mut Measured<'_>) -> Vec<(f64, f64)> {
    for _ in 0..budget.warm_up {
        a();
        b();
    }
    (0..budget.rounds)
        .map(|_| {
            let (mut fastest_a, mut fastest_b) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..budget.alternations.max(1) {
                fastest_a = fastest_a.min(nanos(a()));
                fastest_b = fastest_b.min(nanos(b()));
            }
            (fastest_a, fastest_b)
        })
        .collect()
}

/// Measures one operation `budget.rounds` times after `budget.warm_up` unrecorded runs, in ns.
pub fn repeats(budget: Budget, operation: &mut Measured<'_>) -> Vec<f64> {
    for _ in 0..budget.warm_up {
        operation();
    }
    (0..budget.rounds).map(|_| nanos(operation())).collect()
}

fn nanos(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e9
}

/// The samples of one run of the wall-clock target, written as JSON for `cargo xtask bench`.
#[derive(Default)]
pub struct Samples {
    figures: Vec<Value>,
}

impl Samples {
    /// Records a figure measured in pairs: one sample per pair, the ratio `top / bottom` of the
    /// pair's two times (so a throughput ratio passes its times the other way round).
    pub fn pair_ratios(&mut self, name: &str, pairs: &[(f64, f64)], ratio: impl Fn(f64, f64) -> f64) {
        let samples: Vec<f64> = pairs.iter().map(|&(a, b)| ratio(a, b)).collect();
        self.push(name, "pairs", &samples);
    }

    /// Records a figure measured by repetition: one sample per repetition, already in the
    /// figure's unit.
    pub fn repeated(&mut self, name: &str, samples: impl IntoIterator<Item = f64>) {
        let samples: Vec<f64> = samples.into_iter().collect();
        self.push(name, "repeats", &samples);
    }

    fn push(&mut self, name: &str, kind: &str, samples: &[f64]) {
        println!("  {name:<44} {kind:<8} {} samples", samples.len());
        self.figures.push(json!({ "name": name, "kind": kind, "samples": samples }));
    }

    /// The samples as the JSON document `cargo xtask bench` reads.
    pub fn to_json(&self) -> String {
        json!({ "figures": self.figures }).to_string()
    }
}
