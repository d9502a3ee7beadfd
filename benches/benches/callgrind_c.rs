//! Phase C's deterministic figures: instruction counts and estimated cycles of one ERC-20
//! transfer through the binding on the shared store and through revm's own `CacheDB`, each on an
//! EVM that has already run three transfers.

// gungraun's macros generate public items (a module per benchmark, constants, functions)
// without documentation.
#![allow(missing_docs)]

use gungraun::{Callgrind, LibraryBenchmarkConfig, library_benchmark, library_benchmark_group, main};
use xstate_benches::phase_c::{CacheDbTransfer, SharedTransfer};

// Each function returns its fixture, so that tearing the EVM down is not counted.
#[library_benchmark]
#[bench::one(setup = SharedTransfer::new)]
fn erc20_transfer_shared(mut fixture: SharedTransfer) -> SharedTransfer {
    fixture.transfer();
    fixture
}

#[library_benchmark]
#[bench::one(setup = CacheDbTransfer::new)]
fn erc20_transfer_cachedb(mut fixture: CacheDbTransfer) -> CacheDbTransfer {
    fixture.transfer();
    fixture
}

library_benchmark_group!(
    name = evm;
    benchmarks = erc20_transfer_shared, erc20_transfer_cachedb
);

main!(
    config = LibraryBenchmarkConfig::default().tool(Callgrind::with_args(["--cache-sim=yes"]));
    library_benchmark_groups = evm
);
