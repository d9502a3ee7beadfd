//! The host function `evm_storage_read(addr_ptr, key_ptr, out_ptr)` for WASM modules.

use evm_binding::EvmDbError;
use evm_binding::database::storage_word;
use evm_binding::revm::primitives::{Address, U256};
use kv_core::{BackendError, Namespace, StateError};
use wasm_binding::gas::{COLD_ACCESS, WARM_ACCESS};
use wasm_binding::{
    HostEnv, HostExtension, charge, charge_cold_surcharge, read_guest_array, state_failure, write_guest,
};
use wasmer::{Function, FunctionEnv, FunctionEnvMut, RuntimeError, Store};

/// Gas of an `evm_storage_read` of a word the call has not accessed yet: an EVM cold `SLOAD`
/// (2,100 EVM gas) in WASM gas.
pub const EVM_STORAGE_READ_GAS: u64 = COLD_ACCESS;
/// Gas of an `evm_storage_read` of a word the call has accessed before: a warm `SLOAD` (100).
pub const EVM_STORAGE_READ_WARM_GAS: u64 = WARM_ACCESS;

/// Adds `evm_storage_read` to a WASM engine.
pub struct EvmStorageRead;

impl HostExtension for EvmStorageRead {
    fn functions(&self, store: &mut Store, env: &FunctionEnv<HostEnv>) -> Vec<(&'static str, Function)> {
        vec![("evm_storage_read", Function::new_typed_with_env(store, env, evm_storage_read))]
    }
}

/// Reads the 20-byte address at `address_pointer` and the 32-byte key at `key_pointer`, and writes
/// the EVM storage word (zero when absent) to `out_pointer`. It only reads: nothing here can
/// change another engine's state. The word's key joins the call's access set with the module's
/// own keys: the warm price is paid before the arguments are read, the cold surcharge once the
/// key is known, before the lookup.
fn evm_storage_read(
    mut ctx: FunctionEnvMut<'_, HostEnv>,
    address_pointer: u32,
    key_pointer: u32,
    out_pointer: u32,
) -> Result<(), RuntimeError> {
    charge(&mut ctx, EVM_STORAGE_READ_WARM_GAS)?;
    let address: [u8; 20] = read_guest_array(&ctx, "evm_storage_read", "address", address_pointer)?;
    let key: [u8; 32] = read_guest_array(&ctx, "evm_storage_read", "key", key_pointer)?;
    let word_key = Namespace::evm(Address::from(address)).word_key(&key);
    charge_cold_surcharge(&mut ctx, &word_key, EVM_STORAGE_READ_GAS - EVM_STORAGE_READ_WARM_GAS)?;
    let word =
        storage_word(ctx.data().state(), Address::from(address), U256::from_be_bytes(key)).map_err(
            |error| match error {
                // A damaged word is a damaged store: the call fails as a whole, never as a trap
                // of the guest.
                EvmDbError::State(error) => state_failure("evm_storage_read", error),
                other => state_failure("evm_storage_read", StateError::from(BackendError::Corrupt(other.to_string()))),
            },
        )?;
    write_guest(&ctx, "evm_storage_read", "output buffer", out_pointer, &word.to_be_bytes::<32>())
}
