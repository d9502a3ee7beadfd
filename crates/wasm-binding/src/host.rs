//! The host side of the ABI: the per-call environment, the helpers every host function uses
//! (gas, bounds-checked guest memory access), and the core host functions.
//!
//! Every pointer and length a guest passes is checked against the guest's memory before use; a
//! violation is a trap whose message names the function, the pointer, the length and the memory
//! size. Every host function checks the lengths it was given against its limits, then charges its
//! gas (base and per-byte parts together), and only then reads or copies anything; `storage_read`
//! charges for the bytes it copies out once it knows how many there are, before copying them.
//! State writes go through the instance's own cached namespace prefix, so no host function can
//! write another module's, or another engine's, state.

use crate::gas::{self, storage};
use alloy_primitives::map::{HashMap, HashSet};
use alloy_primitives::{B256, keccak256};
use kv_core::key::{MAX_KEY_LEN, MAX_USER_KEY_LEN, MAX_USER_VALUE_LEN, PREFIX_LEN, SLOT_KEY_LEN, STORAGE_TAG};
use kv_core::{Identity, Namespace, Overlay, Refusal, StateError, StateFailure};
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
    /// The state failed underneath (a backend error, a corrupt record): the whole call fails, not
    /// just the guest. Only a failure can be here: a refused request is the guest's fault and a
    /// trap (see [`state_failure`]).
    #[error("state failure: {0}")]
    State(#[from] StateFailure),
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

/// A value as a write's price depends on it: its length (0 when absent) and, for an original
/// value, its hash, so that a later write can tell whether it restores it without the call
/// keeping a copy of every value it changed.
#[derive(Clone, Copy, Debug)]
struct Snapshot {
    len: u64,
    hash: B256,
}

impl Snapshot {
    const ABSENT: Self = Self { len: 0, hash: B256::ZERO };

    fn of(value: &[u8]) -> Self {
        Self { len: value.len() as u64, hash: keccak256(value) }
    }

    fn is_present(&self) -> bool {
        self.len > 0
    }

    /// Whether `value` (`None` when absent) is this value; hashes only when the lengths match.
    fn is(&self, value: Option<&[u8]>) -> bool {
        match value {
            None => !self.is_present(),
            Some(value) => value.len() as u64 == self.len && keccak256(value) == self.hash,
        }
    }
}

/// What a call knows about a key it has written: what EIP-2200 needs to price later writes.
#[derive(Clone, Copy, Debug, Default)]
struct Accessed {
    /// The entry's value when the call started, captured just before the call first changes it
    /// (nothing in the call can have changed it before).
    original: Option<Snapshot>,
    /// How many bytes beyond an EVM slot's shape the entry has been paid for in this call: its
    /// size when the call started, or the largest a write of this call has made it since.
    paid_bytes: u64,
    /// Whether the entry's value differs from the original (EIP-2200's "dirty").
    dirty: bool,
}

/// A full state key held inline, so recording an access allocates nothing. It is hashed and
/// compared by its bytes alone, not by the unused rest of the buffer: a slot key is 29 of 86.
#[derive(Clone, Copy, Debug)]
struct AccessKey {
    len: u8,
    bytes: [u8; MAX_KEY_LEN],
}

impl AccessKey {
    /// The key `key`; every full state key fits (they are at most `MAX_KEY_LEN` bytes, which is
    /// below 256).
    fn new(key: &[u8]) -> Self {
        let mut bytes = [0u8; MAX_KEY_LEN];
        let len = key.len().min(MAX_KEY_LEN);
        bytes[..len].copy_from_slice(&key[..len]);
        Self { len: u8::try_from(len).unwrap_or(u8::MAX), bytes }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl PartialEq for AccessKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for AccessKey {}

impl std::hash::Hash for AccessKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(self.as_slice());
    }
}

/// Keys a call's access set holds before it first grows: growing allocates, and 64 cold accesses
/// (1.3 million gas) pay for it many times over.
const ACCESS_SET_CAPACITY: usize = 64;

/// The environment of one call: the block state (moved in for the duration of the call), the
/// called module's cached namespace prefix, the call's context, its access set and refund
/// counter, and the instance's memory and gas meter.
pub struct HostEnv {
    state: Overlay,
    namespace: Namespace,
    caller: Identity,
    input: Vec<u8>,
    /// The access set of EIP-2929, in two parts: the module's own u64 slots (its own keys with
    /// an 8-byte user key, however they were reached), by number, so the hot path's lookup is
    /// of 8 bytes; and every other key the call has accessed, its own and other engines'
    /// (through cross reads). Reads only need membership, so neither holds anything else.
    warm_slots: HashSet<u64>,
    warm_keys: HashSet<AccessKey>,
    /// What the call knows of each key it has written (EIP-2200's original value and dirtiness).
    written: HashMap<AccessKey, Accessed>,
    /// EIP-3529's refund counter; applied, capped, when the call succeeds.
    refund: i64,
    pub(crate) output: Vec<u8>,
    pub(crate) memory: Option<Memory>,
    pub(crate) meter: Option<GasMeter>,
}

impl HostEnv {
    pub(crate) fn new(state: Overlay, namespace: Namespace, caller: Identity, input: Vec<u8>) -> Self {
        Self {
            state,
            namespace,
            caller,
            input,
            warm_slots: HashSet::with_capacity_and_hasher(ACCESS_SET_CAPACITY, Default::default()),
            warm_keys: HashSet::default(),
            written: HashMap::default(),
            refund: 0,
            output: Vec::new(),
            memory: None,
            meter: None,
        }
    }

    /// The call's refund counter.
    pub(crate) fn refund_counter(&self) -> i64 {
        self.refund
    }

    /// The slot number of `key` when it is one of the module's own u64 slots.
    fn own_slot(&self, key: &[u8]) -> Option<u64> {
        let (head, slot) = key.split_at_checked(PREFIX_LEN + 1)?;
        let own = key.len() == SLOT_KEY_LEN
            && head[PREFIX_LEN] == STORAGE_TAG
            && head[..PREFIX_LEN] == self.namespace.prefix()[..];
        own.then(|| slot.try_into().map(u64::from_be_bytes).ok()).flatten()
    }

    /// Whether the call has accessed `key` (a full state key) before: a warm access.
    pub fn is_warm(&self, key: &[u8]) -> bool {
        match self.own_slot(key) {
            Some(slot) => self.warm_slots.contains(&slot),
            None => self.warm_keys.contains(&AccessKey::new(key)),
        }
    }

    /// Adds `key` to the call's access set; whether this is the call's first access to it (a
    /// cold one). One lookup does both.
    fn first_access(&mut self, key: &[u8]) -> bool {
        match self.own_slot(key) {
            Some(slot) => self.warm_slots.insert(slot),
            None => self.warm_keys.insert(AccessKey::new(key)),
        }
    }

    /// Hands the block state back after the call, leaving an empty overlay behind.
    pub(crate) fn take_state(&mut self) -> Overlay {
        self.state.take()
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

/// Charges `surcharge` when the call has not accessed `key` (a full state key) yet, and adds it
/// to the call's access set. Host functions that read pay [`gas::WARM_ACCESS`] with their other
/// up-front costs and then this with `COLD_ACCESS - WARM_ACCESS` once they know the key, so any
/// first access costs [`gas::COLD_ACCESS`]; `cross-read` prices `evm_storage_read` this way, which
/// puts cross reads in the same access set as the module's own keys. The key joins the set before
/// the charge: a charge that fails ends the call, and its access set with it.
pub fn charge_cold_surcharge(
    ctx: &mut FunctionEnvMut<'_, HostEnv>,
    key: &[u8],
    surcharge: u64,
) -> Result<(), RuntimeError> {
    if ctx.data_mut().first_access(key) { charge(ctx, surcharge) } else { Ok(()) }
}

/// What a read pays once it knows its key: the cold surcharge on a first access.
const READ_COLD_SURCHARGE: u64 = gas::COLD_ACCESS - gas::WARM_ACCESS;

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
    /// Runs `access` on the guest's memory view; the view refuses a range that does not lie
    /// inside the memory, which becomes a trap naming the range.
    fn access(
        &self,
        ctx: &FunctionEnvMut<'_, HostEnv>,
        access: impl FnOnce(&wasmer::MemoryView<'_>, u64) -> Result<(), wasmer::MemoryAccessError>,
    ) -> Result<(), RuntimeError> {
        let memory = memory(ctx)?;
        let view = memory.view(ctx);
        access(&view, u64::from(self.pointer))
            .map_err(|_| out_of_bounds(self.function, self.what, self.pointer, self.len as u64, view.data_size()))
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

/// Refuses a length the guest chose above `limit`, before any gas is charged or memory touched:
/// an absurd length is a clear trap and can never cause a huge allocation.
fn check_len(function: &str, what: &str, len: u32, limit: usize) -> Result<usize, RuntimeError> {
    match usize::try_from(len) {
        Ok(len) if len <= limit => Ok(len),
        _ => Err(HostError::trap(format!("{function}: {what} of {len} bytes exceeds the limit of {limit} bytes"))),
    }
}

/// Copies `len` guest bytes (already checked against their limit and paid for) into a new vector.
fn read_guest_vec(
    ctx: &FunctionEnvMut<'_, HostEnv>,
    function: &str,
    what: &str,
    pointer: u32,
    len: usize,
) -> Result<Vec<u8>, RuntimeError> {
    let mut buffer = vec![0u8; len];
    read_guest(ctx, function, what, pointer, &mut buffer)?;
    Ok(buffer)
}

/// Converts a state error met by host function `function` into the error that ends the call: a
/// refused request (a key or value that breaks the spec's layout, a slot that holds no u64) is the
/// guest's doing and traps it, so the block goes on; a failure of the store underneath aborts the
/// call as a whole, and the runtime abandons the block.
pub fn state_failure(function: &str, error: StateError) -> RuntimeError {
    match error {
        StateError::Refused(refusal) => HostError::trap(format!("{function}: {refusal}")),
        StateError::Failed(failure) => fail(HostError::State(failure)),
    }
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

/// The price of reading a key, paid before the lookup: [`gas::WARM_ACCESS`] up front, and
/// [`READ_COLD_SURCHARGE`] more on the call's first access to it.
fn charge_read(ctx: &mut FunctionEnvMut<'_, HostEnv>, key: &[u8], up_front: u64) -> Result<(), RuntimeError> {
    // One charge for the warm price and, on a first access, the cold surcharge: running out of
    // gas for either ends the call the same way.
    let surcharge = if ctx.data_mut().first_access(key) { READ_COLD_SURCHARGE } else { 0 };
    charge(ctx, up_front.saturating_add(gas::WARM_ACCESS).saturating_add(surcharge))
}

/// `state_get(slot: i64) -> i64`: the u64 slot's value, 0 when absent.
fn state_get(mut ctx: FunctionEnvMut<'_, HostEnv>, slot: u64) -> Result<u64, RuntimeError> {
    let key = ctx.data().namespace.slot_key(slot);
    charge_read(&mut ctx, &key, 0)?;
    ctx.data().state().get_u64(&key).map_err(|error| match error {
        StateError::Refused(Refusal::SlotValueLength(len)) => {
            HostError::trap(format!("state_get: slot {slot} holds a {len}-byte value, not a u64"))
        }
        other => state_failure("state_get", other),
    })
}

/// `state_set(slot: i64, value: i64)`: writes the u64 slot; 0 removes it.
fn state_set(mut ctx: FunctionEnvMut<'_, HostEnv>, slot: u64, value: u64) -> Result<(), RuntimeError> {
    let key = ctx.data().namespace.slot_key(slot);
    let bytes = value.to_be_bytes();
    let new = if value == 0 { None } else { Some(&bytes[..]) };
    write_entry(&mut ctx, "state_set", &key, SLOT_USER_KEY_BYTES, new)
}

/// The user key of a u64 slot is the slot's 8 bytes.
const SLOT_USER_KEY_BYTES: u64 = 8;

/// Prices and performs a write of `new` (`None` removes the entry) to the full state `key`, whose
/// user key is `user_key_len` bytes long, once the bytes copied from the guest have been paid:
/// the cold surcharge on the call's first access to the key, then, once the current value is
/// known, the write's EIP-2200 price and its growth beyond an EVM slot's shape (see
/// [`gas::storage`]), all before anything is written. The refund counter follows the write.
fn write_entry(
    ctx: &mut FunctionEnvMut<'_, HostEnv>,
    function: &str,
    key: &[u8],
    user_key_len: u64,
    new: Option<&[u8]>,
) -> Result<(), RuntimeError> {
    charge_cold_surcharge(ctx, key, gas::COLD_ACCESS)?;
    let env = ctx.data();
    let accessed = env.written.get(&AccessKey::new(key)).copied().unwrap_or_default();
    let first_change = accessed.original.is_none();
    // One pass over the current value, in place: its length, whether the write changes it and,
    // before the call's first change, its snapshot as the original.
    let (mut current_present, mut current_is_new, mut captured) = (false, new.is_none(), Snapshot::ABSENT);
    env.state()
        .read(key, &mut |current| {
            current_present = true;
            current_is_new = new == Some(current);
            if first_change && !current_is_new {
                captured = Snapshot::of(current);
            }
        })
        .map_err(|error| state_failure(function, error))?;
    if current_is_new {
        return charge(ctx, gas::WARM_ACCESS);
    }
    let original = accessed.original.unwrap_or(captured);
    let paid = if first_change { storage::bytes_beyond_slot(user_key_len, original.len) } else { accessed.paid_bytes };
    let original_is_new = !first_change && original.is(new);
    let write = storage::Write {
        original_present: original.is_present(),
        current_present,
        new_present: new.is_some(),
        current_is_new: false,
        original_is_current: first_change || !accessed.dirty,
        original_is_new,
    };
    let (price, refund) = storage::write(write);
    let new_len = new.map_or(0, <[u8]>::len) as u64;
    let (growth, paid) = storage::growth(storage::bytes_beyond_slot(user_key_len, new_len), paid);
    charge(ctx, price.saturating_add(growth))?;
    let env = ctx.data_mut();
    env.refund = env.refund.saturating_add(refund);
    env.written
        .insert(AccessKey::new(key), Accessed { original: Some(original), paid_bytes: paid, dirty: !original_is_new });
    match new {
        Some(value) => env.state_mut().set(key, value),
        None => env.state_mut().remove(key),
    }
    .map_err(|error| state_failure(function, error))
}

/// Stack space for one user key: the guest's bytes, and the full state key built from them.
struct KeyBuffers {
    user: [u8; MAX_USER_KEY_LEN],
    full: [u8; MAX_KEY_LEN],
}

impl KeyBuffers {
    fn new() -> Self {
        Self { user: [0; MAX_USER_KEY_LEN], full: [0; MAX_KEY_LEN] }
    }

    /// Reads the user key of `len` bytes (at most `MAX_USER_KEY_LEN`, checked and paid for by the
    /// caller) from guest memory and returns the full key in the module's namespace.
    fn read(
        &mut self,
        ctx: &FunctionEnvMut<'_, HostEnv>,
        function: &str,
        pointer: u32,
        len: usize,
    ) -> Result<&[u8], RuntimeError> {
        let user = self.user.get_mut(..len).ok_or_else(|| HostError::trap(format!("{function}: key too long")))?;
        read_guest(ctx, function, "key", pointer, user)?;
        ctx.data()
            .namespace
            .user_key(user, &mut self.full)
            .map_err(|error| HostError::trap(format!("{function}: {error}")))
    }
}

/// `storage_read(key_ptr, key_len, out_ptr, out_cap) -> i32`: the value's length, or -1 when
/// absent; copies `min(length, out_cap)` bytes to `out_ptr`. The access and the key bytes are paid
/// before the lookup (the cold surcharge once the key is known), the copied bytes once their
/// number is known and before they are copied.
fn storage_read(
    mut ctx: FunctionEnvMut<'_, HostEnv>,
    key_pointer: u32,
    key_len: u32,
    out_pointer: u32,
    out_capacity: u32,
) -> Result<i32, RuntimeError> {
    let key_bytes = check_len("storage_read", "key", key_len, MAX_USER_KEY_LEN)?;
    charge(&mut ctx, gas::WARM_ACCESS + gas::per_byte(key_len, gas::PER_BYTE_READ))?;
    let mut buffers = KeyBuffers::new();
    let key = buffers.read(&ctx, "storage_read", key_pointer, key_bytes)?;
    charge_cold_surcharge(&mut ctx, key, READ_COLD_SURCHARGE)?;
    let value = ctx.data().state().get(key).map_err(|error| state_failure("storage_read", error))?;
    let Some(value) = value else { return Ok(-1) };
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    let copied = len.min(out_capacity);
    charge(&mut ctx, gas::per_byte(copied, gas::PER_BYTE_READ))?;
    write_guest(&ctx, "storage_read", "output buffer", out_pointer, value.get(..copied as usize).unwrap_or(&value))?;
    Ok(i32::try_from(len).unwrap_or(i32::MAX))
}

/// `storage_write(key_ptr, key_len, value_ptr, value_len)`: stores a non-empty value. The key and
/// value bytes are paid before they are copied from the guest, the write itself as
/// [`write_entry`] prices it.
fn storage_write(
    mut ctx: FunctionEnvMut<'_, HostEnv>,
    key_pointer: u32,
    key_len: u32,
    value_pointer: u32,
    value_len: u32,
) -> Result<(), RuntimeError> {
    if value_len == 0 {
        return Err(HostError::trap("storage_write: empty value; use storage_remove to delete a key"));
    }
    let key_bytes = check_len("storage_write", "key", key_len, MAX_USER_KEY_LEN)?;
    let value_bytes = check_len("storage_write", "value", value_len, MAX_USER_VALUE_LEN)?;
    charge(&mut ctx, gas::per_byte(key_len.saturating_add(value_len), gas::PER_BYTE_WRITTEN))?;
    let mut buffers = KeyBuffers::new();
    let key = buffers.read(&ctx, "storage_write", key_pointer, key_bytes)?;
    let value = read_guest_vec(&ctx, "storage_write", "value", value_pointer, value_bytes)?;
    write_entry(&mut ctx, "storage_write", key, u64::from(key_len), Some(&value))
}

/// `storage_remove(key_ptr, key_len)`: deletes a key (absent keys are fine). The key bytes are
/// paid before they are copied from the guest, the removal as [`write_entry`] prices it.
fn storage_remove(mut ctx: FunctionEnvMut<'_, HostEnv>, key_pointer: u32, key_len: u32) -> Result<(), RuntimeError> {
    let key_bytes = check_len("storage_remove", "key", key_len, MAX_USER_KEY_LEN)?;
    charge(&mut ctx, gas::per_byte(key_len, gas::PER_BYTE_READ))?;
    let mut buffers = KeyBuffers::new();
    let key = buffers.read(&ctx, "storage_remove", key_pointer, key_bytes)?;
    write_entry(&mut ctx, "storage_remove", key, u64::from(key_len), None)
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
    let bytes = check_len("output_write", "output", len, MAX_OUTPUT_BYTES)?;
    charge(&mut ctx, gas::CONTEXT + gas::per_byte(len, gas::PER_BYTE_READ))?;
    let output = read_guest_vec(&ctx, "output_write", "output", pointer, bytes)?;
    ctx.data_mut().output = output;
    Ok(())
}

/// The largest output or revert data a call may return.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// `revert(ptr, len)`: ends the call, discarding its writes, with `len` bytes of revert data.
fn revert(mut ctx: FunctionEnvMut<'_, HostEnv>, pointer: u32, len: u32) -> Result<(), RuntimeError> {
    let bytes = check_len("revert", "revert data", len, MAX_OUTPUT_BYTES)?;
    charge(&mut ctx, gas::CONTEXT + gas::per_byte(len, gas::PER_BYTE_READ))?;
    let data = read_guest_vec(&ctx, "revert", "revert data", pointer, bytes)?;
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
