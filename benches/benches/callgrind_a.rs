//! Phase A's deterministic figures: instruction counts and estimated cycles (callgrind with its
//! cache simulation) of 4,096 `state_get` reads by the native key, by the cached prefix, by the
//! uncached prefix and through the overlay. Each benchmark runs in its own valgrind process;
//! only the benchmark function is counted, not the fixture's setup or teardown.
//! `cargo xtask bench` installs the runner, runs this and derives the ratios.

// gungraun's macros generate public items (a module per benchmark, constants, functions)
// without documentation.
#![allow(missing_docs)]

use gungraun::{Callgrind, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main};
use std::hint::black_box;
use xstate_benches::phase_a::StateGet;

// Each function returns its fixture, so that dropping 100,000 entries is not counted.
#[library_benchmark]
#[bench::reads(setup = StateGet::native_only)]
fn native(fixture: StateGet) -> (u64, StateGet) {
    (black_box(fixture.native()), fixture)
}

#[library_benchmark]
#[bench::reads(setup = StateGet::shared_only)]
fn prefixed_cached(fixture: StateGet) -> (u64, StateGet) {
    (black_box(fixture.prefixed_cached()), fixture)
}

#[library_benchmark]
#[bench::reads(setup = StateGet::shared_only)]
fn prefixed_uncached(fixture: StateGet) -> (u64, StateGet) {
    (black_box(fixture.prefixed_uncached()), fixture)
}

#[library_benchmark]
#[bench::reads(setup = StateGet::shared_only)]
fn overlay_cached(fixture: StateGet) -> (u64, StateGet) {
    (black_box(fixture.overlay_cached()), fixture)
}

library_benchmark_group!(
    name = state_get;
    benchmarks = native, prefixed_cached, prefixed_uncached, overlay_cached
);

main!(
    config = LibraryBenchmarkConfig::default().tool(Callgrind::with_args(["--cache-sim=yes"]));
    library_benchmark_groups = state_get
);
