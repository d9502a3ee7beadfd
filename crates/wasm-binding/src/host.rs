//! The host side of the ABI: the per-call environment, the helpers every host function uses
//! (gas, bounds-checked guest memory access), and the core host functions.
//!
//! Every pointer and length a guest passes is checked against the guest's memory before use; a
//! violation is a trap whose message names the function, the pointer, the length and the memory
//! size. Every host function charges its gas before doing any work. State writes go through the
//! instance's own cached namespace prefix, so no host function can write another module's, or
//! another engine's, state.

use crate::gas;
use kv_core::key::{MAX_KEY_LEN, MAX_USER_VALUE_LEN};
use kv_core::{Identity, Namespace, Overlay, StateError};
use wasmer::{Function, FunctionEnv, FunctionEnvMut, Global, Memory, RuntimeError, Store, Value};

/// Why a host function stopped the guest.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The guest called `revert` with this data.
    #[error("reverted with {} bytes", .0.len())]
    Revert(Vec<u8>),
    /// The guest ran out of gas inside a host function.
    #[error("out of gas")]
    OutOfGas,
    /// The guest passed something invalid (a pointer out of bounds, an oversized key).
    #[error("{0}")]
    Trap(String),
    /// The state failed underneath (a backend error): the whole call fails, not just the guest.
    #[error("state failure: {0}")]
    State(#[from] StateError),
}

impl HostError {
    fn trap(message: impl Into<String>) -> RuntimeError {
        RuntimeError::user(Box::new(Self::Trap(message.into())))
    }
}

fn fail(error: HostError) -> RuntimeError {
    RuntimeError::user(Box::new(error))
}

/// The metering globals of one instance.
#[derive(Clone)]
pub(crate) struct GasMeter {
    pub(crate) remaining: Global,
    pub(crate) exhausted: Global,
}

/// The environment of one call: the block state (moved in for the duration of the call), the
/// called module's cached namespace prefix, the call's context and the instance's memory and
/// gas meter.
pub struct HostEnv {
    state: Overlay,
    namespace: Namespace,
    caller: Identity,
    input: Vec<u8>,
    pub(crate) output: Vec<u8>,
    pub(crate) memory: Option<Memory>,
    pub(crate) meter: Option<GasMeter>,
}

impl HostEnv {
    pub(crate) fn new(state: Overlay, namespace: Namespace, caller: Identity, input: Vec<u8>) -> Self {
        Self { state, namespace, caller, input, output: Vec::new(), memory: None, meter: None }
    }

    /// Hands the block state back after the call, leaving an empty overlay behind.
    pub(crate) fn take_state(&mut self) -> Overlay {
        self.state.take()
    }

    /// The namespace of the module being called.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The block state, read-only. Extensions read other engines' state through it.
    pub fn state(&self) -> &Overlay {
        &self.state
    }

    fn state_mut(&mut self) -> &mut Overlay {
        &mut self.state
    }
}

/// Charges `cost` WASM gas; when less is left, the call ends as out of gas.
pub fn charge(ctx: &mut FunctionEnvMut<'_, HostEnv>, cost: u64) -> Result<(), RuntimeError> {
    let (env, mut store) = ctx.data_and_store_mut();
    let Some(meter) = env.meter.as_ref() else {
        return Err(HostError::trap("gas meter is not attached to this instance"));
    };
    let remaining = match meter.remaining.get(&mut store) {
        // The metering global holds the counter's bits as an i64.
        Value::I64(bits) => bits.cast_unsigned(),
        _ => return Err(HostError::trap("gas meter has the wrong type")),
    };
    if remaining < cost {
        meter.remaining.set(&mut store, Value::I64(0))?;
        meter.exhausted.set(&mut store, Value::I32(1))?;
        return Err(fail(HostError::OutOfGas));
    }
    let left = remaining - cost;
    meter.remaining.set(&mut store, Value::I64(left.cast_signed()))?;
    Ok(())
}

fn memory(ctx: &FunctionEnvMut<'_, HostEnv>) -> Result<Memory, RuntimeError> {
    ctx.data().memory.clone().ok_or_else(|| HostError::trap("the instance has no memory"))
}

fn out_of_bounds(function: &str, what: &str, pointer: u32, len: u64, size: u64) -> RuntimeError {
    HostError::trap(format!(
        "{function}: {what} at 0x{pointer:08x} with length {len} is outside guest memory of {size} bytes"
    ))
}

/// A guest range: where it is and what it is, for the trap message if it is out of bounds.
struct GuestRange<'a> {
    function: &'a str,
    what: &'a str,
    pointer: u32,
    len: usize,
}

impl GuestRange<'_> {
    /// Runs `access` on the guest's memory view once the range is known to lie inside it.
    fn access(
        &self,
        ctx: &FunctionEnvMut<'_, HostEnv>,
        access: impl FnOnce(&wasmer::MemoryView<'_>, u64) -> Result<(), wasmer::MemoryAccessError>,
    ) -> Result<(), RuntimeError> {
        let memory = memory(ctx)?;
        let view = memory.view(ctx);
        let (len, size) = (self.len as u64, view.data_size());
        let failure = || out_of_bounds(self.function, self.what, self.pointer, len, size);
        if u64::from(self.pointer) + len > size {
            return Err(failure());
        }
        access(&view, u64::from(self.pointer)).map_err(|_| failure())
    }
}

/// Copies `buffer.len()` bytes from guest memory at `pointer`, bounds-checked.
pub fn read_guest(
    ctx: &FunctionEnvMut<'_, HostEnv>,
    function: &str,
    what: &str,
    pointer: u32,
    buffer: &mut [u8],
) -> Result<(), RuntimeError> {
    GuestRange { function, what, pointer, len: buffer.len() }.access(ctx, |view, offset| view.read(offset, buffer))
}

/// Copies `data` into guest memory at `pointer`, bounds-checked.
pub fn write_guest(
    ctx: &FunctionEnvMut<'_, HostEnv>,
    function: &str,
    what: &str,
    pointer: u32,
    data: &[u8],
) -> Result<(), RuntimeError> {
    GuestRange { function, what, pointer, len: data.len() }.access(ctx, |view, offset| view.write(offset, data))
}

/// Reads a guest byte string whose length the guest chose, refusing lengths above `limit`
/// before touching memory (so a huge length can never cause a huge allocation).
fn read_guest_bytes(
    ctx: &FunctionEnvMut<'_, HostEnv>,
    function: &str,
    what: &str,
    pointer: u32,
    len: u32,
    limit: usize,
) -> Result<Vec<u8>, RuntimeError> {
    let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
    if len_usize > limit {
        return Err(HostError::trap(format!("{function}: {what} of {len} bytes exceeds the limit of {limit} bytes")));
    }
    let mut buffer = vec![0u8; len_usize];
    read_guest(ctx, function, what, pointer, &mut buffer)?;
    Ok(buffer)
}

/// Converts a state failure into the error that aborts the call as a whole.
pub fn state_failure(error: StateError) -> RuntimeError {
    fail(HostError::State(error))
}

/// A set of host functions. The core ABI is one; `cross-read` adds `evm_storage_read` as another.
pub trait HostExtension: Send + Sync {
    /// Creates this extension's functions for one instance, named as the guest imports them from
    /// the `xstate` namespace.
    fn functions(&self, store: &mut Store, env: &FunctionEnv<HostEnv>) -> Vec<(&'static str, Function)>;
}

/// The core host ABI (see `docs/spec/abi/wasm-host.md`).
pub struct CoreHost;

impl HostExtension for CoreHost {
    fn functions(&self, store: &mut Store, env: &FunctionEnv<HostEnv>) -> Vec<(&'static str, Function)> {
        vec![
            ("state_get", Function::new_typed_with_env(store, env, state_get)),
            ("state_set", Function::new_typed_with_env(store, env, state_set)),
            ("storage_read", Function::new_typed_with_env(store, env, storage_read)),
            ("storage_write", Function::new_typed_with_env(store, env, storage_write)),
            ("storage_remove", Function::new_typed_with_env(store, env, storage_remove)),
            ("input_len", Function::new_typed_with_env(store, env, input_len)),
            ("input_read", Function::new_typed_with_env(store, env, input_read)),
            ("output_write", Function::new_typed_with_env(store, env, output_write)),
            ("revert", Function::new_typed_with_env(store, env, revert)),
            ("caller", Function::new_typed_with_env(store, env, caller)),
            ("self_identity", Function::new_typed_with_env(store, env, self_identity)),
        ]
    }
}

/// `state_get(slot: i64) -> i64`: the u64 slot's value, 0 when absent.
fn state_get(mut ctx: FunctionEnvMut<'_, HostEnv>, slot: u64) -> Result<u64, RuntimeError> {
    charge(&mut ctx, gas::STATE_GET)?;
    let env = ctx.data();
    let key = env.namespace.slot_key(slot);
    env.state().get_u64(&key).map_err(|error| match error {
        StateError::SlotValueLength(len) => {
            HostError::trap(format!("state_get: slot {slot} holds a {len}-byte value, not a u64"))
        }
        other => state_failure(other),
    })
}

/// `state_set(slot: i64, value: i64)`: writes the u64 slot; 0 removes it.
fn state_set(mut ctx: FunctionEnvMut<'_, HostEnv>, slot: u64, value: u64) -> Result<(), RuntimeError> {
    charge(&mut ctx, gas::STATE_SET)?;
    let env = ctx.data_mut();
    let key = env.namespace.slot_key(slot);
    env.state_mut().set_u64(&key, value).map_err(state_failure)
}

/// Reads and validates a user key from guest memory into `buffer`, returning the full key.
fn user_key<'b>(
    ctx: &FunctionEnvMut<'_, HostEnv>,
    function: &str,
    pointer: u32,
    len: u32,
    buffer: &'b mut [u8; MAX_KEY_LEN],
) -> Result<&'b [u8], RuntimeError> {
    let bytes = read_guest_bytes(ctx, function, "key", pointer, len, kv_core::key::MAX_USER_KEY_LEN)?;
    ctx.data().namespace.user_key(&bytes, buffer).map_err(|error| HostError::trap(format!("{function}: {error}")))
}

/// `storage_read(key_ptr, key_len, out_ptr, out_cap) -> i32`: the value's length, or -1 when
/// absent; copies `min(length, out_cap)` bytes to `out_ptr`.
fn storage_read(
    mut ctx: FunctionEnvMut<'_, HostEnv>,
    key_pointer: u32,
    key_len: u32,
    out_pointer: u32,
    out_capacity: u32,
) -> Result<i32, RuntimeError> {
    charge(&mut ctx, gas::STORAGE_READ)?;
    let mut buffer = [0u8; MAX_KEY_LEN];
    let key = user_key(&ctx, "storage_read", key_pointer, key_len, &mut buffer)?.to_vec();
    charge(&mut ctx, gas::per_byte(key_len, gas::PER_BYTE_READ))?;
    let value = ctx.data().state().get(&key).map_err(state_failure)?;
    let Some(value) = value else { return Ok(-1) };
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    let copied = len.min(out_capacity);
    charge(&mut ctx, gas::per_byte(copied, gas::PER_BYTE_READ))?;
    write_guest(&ctx, "storage_read", "output buffer", out_pointer, &value[..copied as usize])?;
    Ok(i32::try_from(len).unwrap_or(i32::MAX))
}

/// `storage_write(key_ptr, key_len, value_ptr, value_len)`: stores a non-empty value. Lengths are
/// checked before any per-byte price is charged, so an absurd length is a clear trap.
fn storage_write(
    mut ctx: FunctionEnvMut<'_, HostEnv>,
    key_pointer: u32,
    key_len: u32,
    value_pointer: u32,
    value_len: u32,
) -> Result<(), RuntimeError> {
    charge(&mut ctx, gas::STORAGE_WRITE)?;
    if value_len == 0 {
        return Err(HostError::trap("storage_write: empty value; use storage_remove to delete a key"));
    }
    let mut buffer = [0u8; MAX_KEY_LEN];
    let key = user_key(&ctx, "storage_write", key_pointer, key_len, &mut buffer)?.to_vec();
    let value = read_guest_bytes(&ctx, "storage_write", "value", value_pointer, value_len, MAX_USER_VALUE_LEN)?;
    let bytes = u64::from(key_len) + u64::from(value_len);
    charge(&mut ctx, bytes * gas::PER_BYTE_WRITTEN)?;
    ctx.data_mut().state_mut().set(&key, &value).map_err(state_failure)
}

/// `storage_remove(key_ptr, key_len)`: deletes a key (absent keys are fine).
fn storage_remove(mut ctx: FunctionEnvMut<'_, HostEnv>, key_pointer: u32, key_len: u32) -> Result<(), RuntimeError> {
    charge(&mut ctx, gas::STORAGE_REMOVE)?;
    let mut buffer = [0u8; MAX_KEY_LEN];
    let key = user_key(&ctx, "storage_remove", key_pointer, key_len, &mut buffer)?.to_vec();
    charge(&mut ctx, gas::per_byte(key_len, gas::PER_BYTE_READ))?;
    ctx.data_mut().state_mut().remove(&key).map_err(state_failure)
}

/// `input_len() -> i32`.
fn input_len(mut ctx: FunctionEnvMut<'_, HostEnv>) -> Result<u32, RuntimeError> {
    charge(&mut ctx, gas::CONTEXT)?;
    Ok(u32::try_from(ctx.data().input.len()).unwrap_or(u32::MAX))
}

/// `input_read(out_ptr)`: copies the whole input to `out_ptr`.
fn input_read(mut ctx: FunctionEnvMut<'_, HostEnv>, out_pointer: u32) -> Result<(), RuntimeError> {
    let len = u32::try_from(ctx.data().input.len()).unwrap_or(u32::MAX);
    charge(&mut ctx, gas::CONTEXT + gas::per_byte(len, gas::PER_BYTE_READ))?;
    let input = std::mem::take(&mut ctx.data_mut().input);
    let result = write_guest(&ctx, "input_read", "output buffer", out_pointer, &input);
    ctx.data_mut().input = input;
    result
}

/// `output_write(ptr, len)`: sets the call's output (replacing any earlier one).
fn output_write(mut ctx: FunctionEnvMut<'_, HostEnv>, pointer: u32, len: u32) -> Result<(), RuntimeError> {
    charge(&mut ctx, gas::CONTEXT)?;
    let output = read_guest_bytes(&ctx, "output_write", "output", pointer, len, MAX_OUTPUT_BYTES)?;
    charge(&mut ctx, gas::per_byte(len, gas::PER_BYTE_READ))?;
    ctx.data_mut().output = output;
    Ok(())
}

/// The largest output or revert data a call may return.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// `revert(ptr, len)`: ends the call, discarding its writes, with `len` bytes of revert data.
fn revert(mut ctx: FunctionEnvMut<'_, HostEnv>, pointer: u32, len: u32) -> Result<(), RuntimeError> {
    charge(&mut ctx, gas::CONTEXT)?;
    let data = read_guest_bytes(&ctx, "revert", "revert data", pointer, len, MAX_OUTPUT_BYTES)?;
    charge(&mut ctx, gas::per_byte(len, gas::PER_BYTE_READ))?;
    Err(fail(HostError::Revert(data)))
}

/// `caller(out_ptr)`: writes the 20-byte identity of the caller.
fn caller(mut ctx: FunctionEnvMut<'_, HostEnv>, out_pointer: u32) -> Result<(), RuntimeError> {
    charge(&mut ctx, gas::CONTEXT)?;
    let caller = ctx.data().caller;
    write_guest(&ctx, "caller", "output buffer", out_pointer, caller.as_bytes())
}

/// `self_identity(out_ptr)`: writes the 20-byte identity of the module being called.
fn self_identity(mut ctx: FunctionEnvMut<'_, HostEnv>, out_pointer: u32) -> Result<(), RuntimeError> {
    charge(&mut ctx, gas::CONTEXT)?;
    let identity = ctx.data().namespace.identity();
    write_guest(&ctx, "self_identity", "output buffer", out_pointer, identity.as_bytes())
}

/// Reads a fixed-size array from guest memory, bounds-checked.
pub fn read_guest_array<const N: usize>(
    ctx: &FunctionEnvMut<'_, HostEnv>,
    function: &str,
    what: &str,
    pointer: u32,
) -> Result<[u8; N], RuntimeError> {
    let mut array = [0u8; N];
    read_guest(ctx, function, what, pointer, &mut array)?;
    Ok(array)
}
