//! The WASM gas schedule: what an instruction and each host call cost.
//!
//! WASM gas is counted by wasmer's metering middleware (one point per instruction unless listed
//! below) and charged by each host function before it does any work, from the same counter. Every
//! call first pays [`call_base`] for starting at all, before the module is compiled or instantiated.
//! One EVM gas unit is worth [`WASM_GAS_PER_EVM_GAS`] WASM gas: a WASM instruction compiled by
//! singlepass runs in about a nanosecond, while one EVM gas of interpreted work costs roughly ten.
//! The table is normative; `docs/spec/abi/wasm-host.md` prints it.

use wasmer::wasmparser::Operator;

/// WASM gas per EVM gas unit, for costs defined in EVM terms.
pub const WASM_GAS_PER_EVM_GAS: u64 = 10;

/// The part of every call's base cost that does not depend on the module: 1,000 EVM gas. It pays
/// for what a call does before the guest's first instruction (a fresh store, the host functions,
/// the memory and table), so a call with a limit of 0 cannot make the host do that work for free.
pub const CALL_BASE: u64 = 10_000;
/// Every call also pays one unit per this many bytes of the module's code (rounded up): an upper
/// bound on what instantiation copies, since data segments are part of the code.
pub const CODE_BYTES_PER_GAS: u64 = 16;

/// The base cost of a deploy: 320,000, the 32,000 EVM gas of a `CREATE`. It pays for parsing,
/// validating and compiling a module, which the engine does before storing it.
pub const DEPLOY_BASE: u64 = 320_000;
/// Every deploy also pays this per byte of code: 2,000, the 200 EVM gas per byte Ethereum charges
/// for storing contract code, so a maximal module costs what the same bytes of EVM code would.
pub const DEPLOY_PER_CODE_BYTE: u64 = 2_000;

/// Most instructions.
pub const INSTRUCTION: u64 = 1;
/// `call` and `call_indirect`: calls also consume native stack, so recursion is priced.
pub const CALL: u64 = 10;
/// `memory.grow`, on top of the page limit.
pub const MEMORY_GROW: u64 = 10_000;

/// `memory.fill` and `memory.copy` also cost one gas per 2^`BULK_BYTES_SHIFT` (16) bytes.
pub const BULK_BYTES_SHIFT: i64 = 4;

/// `state_get`.
pub const STATE_GET: u64 = 1_000;
/// `state_set`.
pub const STATE_SET: u64 = 5_000;
/// `storage_read`, plus [`PER_BYTE_READ`] per key and value byte.
pub const STORAGE_READ: u64 = 1_000;
/// `storage_write`, plus [`PER_BYTE_WRITTEN`] per key and value byte.
pub const STORAGE_WRITE: u64 = 5_000;
/// `storage_remove`, plus [`PER_BYTE_READ`] per key byte.
pub const STORAGE_REMOVE: u64 = 5_000;
/// Per byte a host call reads from or copies into guest memory.
pub const PER_BYTE_READ: u64 = 1;
/// Per byte written to the state.
pub const PER_BYTE_WRITTEN: u64 = 10;
/// `input_len`, `caller`, `self_identity`, and the base of `input_read`, `output_write`, `revert`.
pub const CONTEXT: u64 = 10;

/// The cost of one operator, as the metering middleware charges it.
pub fn operator_cost(operator: &Operator<'_>) -> u64 {
    match operator {
        Operator::Call { .. } | Operator::CallIndirect { .. } => CALL,
        Operator::MemoryGrow { .. } => MEMORY_GROW,
        _ => INSTRUCTION,
    }
}

/// The cost of copying `bytes` bytes between guest memory and the host.
pub fn per_byte(bytes: u32, rate: u64) -> u64 {
    u64::from(bytes).saturating_mul(rate)
}

/// The base cost of a call to a module of `code_len` bytes, charged before anything else: a call
/// whose limit is below it ends out of gas without the module being compiled or instantiated.
pub fn call_base(code_len: usize) -> u64 {
    let code_len = u64::try_from(code_len).unwrap_or(u64::MAX);
    CALL_BASE.saturating_add(code_len.div_ceil(CODE_BYTES_PER_GAS))
}

/// What deploying a module of `code_len` bytes costs: [`DEPLOY_BASE`] plus
/// [`DEPLOY_PER_CODE_BYTE`] per byte. The engine's `deploy` does not count gas itself (a deploy has
/// no gas limit and no payer in this runtime); a block spends this from its WASM budget.
pub fn deploy_cost(code_len: usize) -> u64 {
    let code_len = u64::try_from(code_len).unwrap_or(u64::MAX);
    DEPLOY_BASE.saturating_add(code_len.saturating_mul(DEPLOY_PER_CODE_BYTE))
}
