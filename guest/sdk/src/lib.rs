//! Safe wrappers over the xstate host ABI (`docs/spec/abi/wasm-host.md`) for WASM modules.
//!
//! A module depends on this crate, exports `call` with `#[unsafe(no_mangle)]`, and uses these
//! functions for everything it needs from the host: its u64 slots and byte-keyed storage, its
//! input and output, reverting, who called it, and read-only access to EVM storage. It is `no_std`
//! and allocation-free: buffers are the caller's. It deliberately offers nothing the host does not
//! meter.
#![no_std]

use sha3::{Digest, Keccak256};

/// The raw imports. Every pointer is a guest address the host bounds-checks.
mod sys {
    #[link(wasm_import_module = "xstate")]
    unsafe extern "C" {
        pub(crate) fn state_get(slot: u64) -> u64;
        pub(crate) fn state_set(slot: u64, value: u64);
        pub(crate) fn storage_read(key: *const u8, key_len: u32, out: *mut u8, out_cap: u32) -> i32;
        pub(crate) fn storage_write(key: *const u8, key_len: u32, value: *const u8, value_len: u32);
        pub(crate) fn storage_remove(key: *const u8, key_len: u32);
        pub(crate) fn input_len() -> u32;
        pub(crate) fn input_read(out: *mut u8);
        pub(crate) fn output_write(data: *const u8, len: u32);
        pub(crate) fn revert(data: *const u8, len: u32) -> !;
        pub(crate) fn caller(out: *mut u8);
        pub(crate) fn self_identity(out: *mut u8);
        pub(crate) fn evm_storage_read(address: *const u8, key: *const u8, out: *mut u8);
    }
}

// SAFETY (for every `unsafe` block below): each import only reads or writes guest memory inside
// the ranges passed, which are always valid Rust slices or arrays of exactly that length, and the
// host traps rather than touching anything out of bounds.

/// Reads u64 slot `slot` of this module (0 when never written).
pub fn state_get(slot: u64) -> u64 {
    unsafe { sys::state_get(slot) }
}

/// Writes u64 slot `slot` of this module; writing 0 removes it.
pub fn state_set(slot: u64, value: u64) {
    unsafe { sys::state_set(slot, value) }
}

/// Reads the value stored under `key` into `out`; returns the value's full length, or `None` when
/// the key is absent. Only `min(length, out.len())` bytes are copied.
pub fn storage_read(key: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = unsafe { sys::storage_read(key.as_ptr(), key.len() as u32, out.as_mut_ptr(), out.len() as u32) };
    usize::try_from(len).ok()
}

/// Stores `value` (1 to 16,384 bytes) under `key` (1 to 128 bytes).
pub fn storage_write(key: &[u8], value: &[u8]) {
    unsafe { sys::storage_write(key.as_ptr(), key.len() as u32, value.as_ptr(), value.len() as u32) }
}

/// Removes `key`.
pub fn storage_remove(key: &[u8]) {
    unsafe { sys::storage_remove(key.as_ptr(), key.len() as u32) }
}

/// Copies the call's input into `buffer` and returns it; reverts if it does not fit.
pub fn input(buffer: &mut [u8]) -> &[u8] {
    let len = unsafe { sys::input_len() } as usize;
    if len > buffer.len() {
        revert(b"input too long");
    }
    unsafe { sys::input_read(buffer.as_mut_ptr()) };
    &buffer[..len]
}

/// Sets the call's output.
pub fn output(data: &[u8]) {
    unsafe { sys::output_write(data.as_ptr(), data.len() as u32) }
}

/// Ends the call with `data` as revert data; every write of the call is discarded.
pub fn revert(data: &[u8]) -> ! {
    unsafe { sys::revert(data.as_ptr(), data.len() as u32) }
}

/// The 20-byte identity of whoever called this module.
pub fn caller() -> [u8; 20] {
    let mut out = [0u8; 20];
    unsafe { sys::caller(out.as_mut_ptr()) };
    out
}

/// This module's own 20-byte identity.
pub fn self_identity() -> [u8; 20] {
    let mut out = [0u8; 20];
    unsafe { sys::self_identity(out.as_mut_ptr()) };
    out
}

/// Reads the 32-byte storage word `key` of EVM contract `address` (zero when absent). Read-only:
/// no host function writes another engine's state.
pub fn evm_storage_read(address: &[u8; 20], key: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    unsafe { sys::evm_storage_read(address.as_ptr(), key.as_ptr(), out.as_mut_ptr()) };
    out
}

/// keccak256 of `parts` concatenated, computed in the guest (and metered as instructions).
pub fn keccak256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Reads a big-endian u64 from `bytes[at..at + 8]`, reverting with `error` if it is out of range.
pub fn read_u64(bytes: &[u8], at: usize, error: &[u8]) -> u64 {
    match bytes.get(at..at + 8) {
        Some(slice) => {
            let mut array = [0u8; 8];
            array.copy_from_slice(slice);
            u64::from_be_bytes(array)
        }
        None => revert(error),
    }
}

/// Reads a 20-byte identity from `bytes[at..at + 20]`, reverting with `error` if it is out of range.
pub fn read_identity(bytes: &[u8], at: usize, error: &[u8]) -> [u8; 20] {
    match bytes.get(at..at + 20) {
        Some(slice) => {
            let mut array = [0u8; 20];
            array.copy_from_slice(slice);
            array
        }
        None => revert(error),
    }
}

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
