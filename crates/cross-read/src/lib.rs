//! cross-read lets each engine read the other's state, and never write it.
//!
//! It sits on both bindings: it adds the host function `evm_storage_read` to the WASM engine
//! ([`EvmStorageRead`], through `wasm-binding`'s `HostExtension`) and the precompile at
//! `0x…0a00` with `readU64(address,uint64)` and `moduleAddress(string,uint32)` to revm
//! ([`XStatePrecompiles`], through `evm-binding`'s `transact_with`). Both read the same block
//! overlay the engines write, so a cross read sees earlier transactions of the same block.
//!
//! It deliberately offers no write path: the host function gets the block state through
//! `HostEnv::state` (read-only) and the precompile is an evm-binding `StatePrecompile`, whose only
//! handle on the state reads; tests also call every entry point and compare the other engine's
//! state before and after. Cross-engine writes are left to a future RFC.

pub mod abi;
mod host;
mod precompile;

pub use host::{EVM_STORAGE_READ_GAS, EVM_STORAGE_READ_WARM_GAS, EvmStorageRead};
pub use precompile::{
    BASE_GAS, CrossReadPrecompile, DecodedCall, GAS_PER_WORD, MODULE_ADDRESS_GAS, WARM_READ_GAS, XSTATE_PRECOMPILE,
    XStatePrecompiles, gas_cost,
};

use evm_binding::revm::context::BlockEnv;
use evm_binding::revm::context::TxEnv;
use evm_binding::revm::context::result::ExecutionResult;
use evm_binding::{EvmError, EvmExecutor};
use kv_core::Overlay;
use std::sync::Arc;
use wasm_binding::WasmEngine;

/// A WASM engine for `chain_id` with the core host ABI and `evm_storage_read`.
pub fn wasm_engine(chain_id: u64) -> WasmEngine {
    WasmEngine::new(chain_id)
        .with_extension(Arc::new(EvmStorageRead))
        .expect("the core host ABI has no function named evm_storage_read")
}

/// Executes an EVM transaction with Ethereum's precompiles and the cross-read precompile.
pub fn evm_transact(
    executor: &EvmExecutor,
    overlay: &mut Overlay,
    block: &BlockEnv,
    tx: TxEnv,
) -> Result<ExecutionResult, EvmError> {
    executor.transact_with(overlay, block, tx, XStatePrecompiles::new(executor.spec()))
}
