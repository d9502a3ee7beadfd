//! Phase D's deterministic figures: instruction counts and estimated cycles of 1,000 reads of
//! each cross-engine read and of the reading engine's own read: `evm_storage_read` against
//! `state_get` in a WASM guest, the `readU64` precompile against a warm `SLOAD` and against the
//! identity precompile in a contract.

// gungraun's macros generate public items (a module per benchmark, constants, functions)
// without documentation.
#![allow(missing_docs)]

use gungraun::{Callgrind, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main};
use xstate_benches::phase_d::CrossReads;

// Each function returns its fixture, so that tearing both engines down is not counted.
#[library_benchmark]
#[bench::loop_of_1k(setup = CrossReads::new)]
fn wasm_evm_storage_read(mut fixture: CrossReads) -> CrossReads {
    fixture.wasm_evm_storage_read();
    fixture
}

#[library_benchmark]
#[bench::loop_of_1k(setup = CrossReads::new)]
fn wasm_state_get(mut fixture: CrossReads) -> CrossReads {
    fixture.wasm_state_get();
    fixture
}

#[library_benchmark]
#[bench::loop_of_1k(setup = CrossReads::new)]
fn evm_precompile_read(mut fixture: CrossReads) -> CrossReads {
    fixture.evm_precompile_read();
    fixture
}

#[library_benchmark]
#[bench::loop_of_1k(setup = CrossReads::new)]
fn evm_warm_sload(mut fixture: CrossReads) -> CrossReads {
    fixture.evm_warm_sload();
    fixture
}

#[library_benchmark]
#[bench::loop_of_1k(setup = CrossReads::new)]
fn evm_identity_call(mut fixture: CrossReads) -> CrossReads {
    fixture.evm_identity_call();
    fixture
}

library_benchmark_group!(
    name = cross;
    benchmarks = wasm_evm_storage_read, wasm_state_get, evm_precompile_read, evm_warm_sload, evm_identity_call
);

main!(
    config = LibraryBenchmarkConfig::default().tool(Callgrind::with_args(["--cache-sim=yes"]));
    library_benchmark_groups = cross
);
