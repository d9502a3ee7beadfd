//! The chain the proof and witness targets start from: anvil's genesis and one block with a
//! transaction of every kind (transfer, EVM create, WASM deploy, WASM call, precompile call).

use xstate_chain::{BlockInput, Runtime};

/// The committed block the fixture's proofs and witness are of.
pub(crate) const BLOCK: u64 = 1;

/// A runtime with anvil's genesis and block [`BLOCK`].
pub(crate) fn chain_with_a_block() -> Runtime {
    let runtime = super::raw_transaction::dev_runtime();
    let raws = super::raw_transaction::valid_transactions(&runtime);
    let block = BlockInput { timestamp: runtime.latest_timestamp() + 12, ..Default::default() };
    let outcome = runtime.execute_block(&block, &raws, |_| {}).expect("the fixture block commits");
    assert!(outcome.rejected.is_empty(), "the fixture's transactions are all valid: {:?}", outcome.rejected);
    runtime
}
