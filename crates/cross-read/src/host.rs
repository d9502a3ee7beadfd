//! The host function `evm_storage_read(addr_ptr, key_ptr, out_ptr)` for WASM modules.

use evm_binding::EvmDbError;
use evm_binding::database::storage_word;
use evm_binding::revm::primitives::{Address, U256};
use kv_core::{BackendError, StateError};
use wasm_binding::gas::WASM_GAS_PER_EVM_GAS;
use wasm_binding::{HostEnv, HostExtension, charge, read_guest_array, state_failure, write_guest};
use wasmer::{Function, FunctionEnv, FunctionEnvMut, RuntimeError, Store};

/// Gas of one `evm_storage_read`: an EVM cold `SLOAD` (2,100) in WASM gas.
pub const EVM_STORAGE_READ_GAS: u64 = 2_100 * WASM_GAS_PER_EVM_GAS;

/// Adds `evm_storage_read` to a WASM engine.
pub struct EvmStorageRead;

impl HostExtension for EvmStorageRead {
    fn functions(&self, store: &mut Store, env: &FunctionEnv<HostEnv>) -> Vec<(&'static str, Function)> {
        vec![("evm_storage_read", Function::new_typed_with_env(store, env, evm_storage_read))]
    }
}

/// Reads the 20-byte address at `address_pointer` and the 32-byte key at `key_pointer`, and writes
/// the EVM storage word (zero when absent) to `out_pointer`. It only reads: nothing here can
/// change another engine's state.
fn evm_storage_read(
    mut ctx: FunctionEnvMut<'_, HostEnv>,
    address_pointer: u32,
    key_pointer: u32,
    out_pointer: u32,
) -> Result<(), RuntimeError> {
    charge(&mut ctx, EVM_STORAGE_READ_GAS)?;
    let address: [u8; 20] = read_guest_array(&ctx, "evm_storage_read", "address", address_pointer)?;
    let key: [u8; 32] = read_guest_array(&ctx, "evm_storage_read", "key", key_pointer)?;
    let word =
        storage_word(ctx.data().state(), Address::from(address), U256::from_be_bytes(key)).map_err(
            |error| match error {
                // A damaged word is a damaged store: the call fails as a whole, never as a trap
                // of the guest.
                EvmDbError::State(error) => state_failure(error),
                other => state_failure(StateError::Backend(BackendError::Corrupt(other.to_string()))),
            },
        )?;
    write_guest(&ctx, "evm_storage_read", "output buffer", out_pointer, &word.to_be_bytes::<32>())
}
