//! Phase B's deterministic figures: instruction counts and estimated cycles of one guest loop of
//! 10,000 WASM host `state_get` calls, against its floor: the same loop over an empty host
//! function plus kv-core's 10,000 reads of the same slots from the host.

// gungraun's macros generate public items (a module per benchmark, constants, functions)
// without documentation.
#![allow(missing_docs)]

use gungraun::{Callgrind, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main};
use xstate_benches::phase_b::WasmHost;

// Each function returns its fixture, so that tearing the engine down is not counted.
#[library_benchmark]
#[bench::loop_of_10k(setup = WasmHost::new)]
fn state_get_loop(mut fixture: WasmHost) -> WasmHost {
    fixture.state_get_loop();
    fixture
}

#[library_benchmark]
#[bench::loop_of_10k(setup = WasmHost::new)]
fn empty_host_call_loop(mut fixture: WasmHost) -> WasmHost {
    fixture.empty_host_call_loop();
    fixture
}

#[library_benchmark]
#[bench::loop_of_10k(setup = WasmHost::new)]
fn kv_core_get(fixture: WasmHost) -> WasmHost {
    fixture.kv_core_get();
    fixture
}

library_benchmark_group!(
    name = wasm;
    benchmarks = state_get_loop, empty_host_call_loop, kv_core_get
);

main!(
    config = LibraryBenchmarkConfig::default().tool(Callgrind::with_args(["--cache-sim=yes"]));
    library_benchmark_groups = wasm
);
