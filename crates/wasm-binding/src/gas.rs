//! The WASM gas schedule: what an instruction, each host call and the state cost.
//!
//! WASM gas is counted by wasmer's metering middleware (one point per instruction unless listed
//! below) and charged by each host function before it does any work, from the same counter. Every
//! call first pays [`call_base`] for starting at all, before the module is loaded or instantiated.
//! One EVM gas unit is worth [`WASM_GAS_PER_EVM_GAS`] WASM gas: a WASM instruction compiled by
//! singlepass runs in about a nanosecond, while one EVM gas of interpreted work costs roughly ten.
//!
//! The state is priced at parity with the EVM, in EVM gas converted at that rate, because both
//! engines write one state under one root and a byte of it must cost the same whichever engine
//! writes it: access is warm or cold per call as in EIP-2929, writes cost what an `SSTORE` costs
//! under EIP-2200 with EIP-3529's refunds, and an entry larger than an EVM slot pays for every
//! byte beyond the slot's shape at a new slot's price per byte ([`storage`]). The table is
//! normative; `docs/spec/abi/wasm-host.md` prints it and `docs/adr/0009-state-and-compilation-pricing.md`
//! says why.

use wasmer::wasmparser::Operator;

/// WASM gas per EVM gas unit, for costs defined in EVM terms.
pub const WASM_GAS_PER_EVM_GAS: u64 = 10;

/// `evm_gas` EVM gas in WASM gas (saturating).
pub const fn wasm_gas_from_evm(evm_gas: u64) -> u64 {
    evm_gas.saturating_mul(WASM_GAS_PER_EVM_GAS)
}

/// `wasm_gas` WASM gas in EVM gas, rounded up, so that no WASM work is ever free in EVM terms:
/// what a block's one gas limit (in EVM gas) is charged for a WASM call.
pub const fn evm_gas_from_wasm(wasm_gas: u64) -> u64 {
    wasm_gas.div_ceil(WASM_GAS_PER_EVM_GAS)
}

/// The one gas budget of a block, in EVM gas, that both engines spend from: an EVM transaction
/// spends its gas, a WASM call or deploy its WASM gas converted by [`evm_gas_from_wasm`]. Neither
/// engine has a budget of its own that the other cannot see, so a block can never hold more work
/// than its gas limit says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockGas {
    limit: u64,
    used: u64,
}

impl BlockGas {
    /// A block with a gas limit of `limit` EVM gas, none of it used.
    pub const fn new(limit: u64) -> Self {
        Self { limit, used: 0 }
    }

    /// The block's gas limit, in EVM gas.
    pub const fn limit(&self) -> u64 {
        self.limit
    }

    /// The EVM gas used so far, by both engines.
    pub const fn used(&self) -> u64 {
        self.used
    }

    /// The EVM gas left.
    pub const fn remaining(&self) -> u64 {
        self.limit - self.used
    }

    /// The WASM gas left: the most a WASM call may still ask for.
    pub const fn remaining_wasm(&self) -> u64 {
        wasm_gas_from_evm(self.remaining())
    }

    /// Whether an EVM transaction with gas limit `gas` fits in what is left.
    pub const fn fits_evm(&self, gas: u64) -> bool {
        gas <= self.remaining()
    }

    /// Whether a WASM call with a limit of `wasm_gas` fits in what is left.
    pub const fn fits_wasm(&self, wasm_gas: u64) -> bool {
        evm_gas_from_wasm(wasm_gas) <= self.remaining()
    }

    /// Spends `gas` EVM gas (at most what is left).
    pub fn spend_evm(&mut self, gas: u64) {
        self.used = self.used.saturating_add(gas).min(self.limit);
    }

    /// Spends `wasm_gas` WASM gas, converted to EVM gas rounded up (at most what is left).
    pub fn spend_wasm(&mut self, wasm_gas: u64) {
        self.spend_evm(evm_gas_from_wasm(wasm_gas));
    }
}

/// The part of every call's base cost that does not depend on the module: 1,000 EVM gas. It pays
/// for what a call does before the guest's first instruction (a fresh store, the host functions,
/// the memory and table), so a call with a limit of 0 cannot make the host do that work for free.
pub const CALL_BASE: u64 = 10_000;
/// Every call also pays this per byte of its module's artifact bound
/// (`validate::artifact_bound`, at least the code's length): loading the sealed artifact of a
/// module that is not in memory (reading it, checking its keyed hash, deserializing it) took about
/// 1.3 ns per artifact byte in test builds on a loaded machine, and the bound is at least 1.8 times
/// the artifact of every shape measured, so one gas per bound byte covers the load
/// (`wasm/call_cold_large_module`), and the copy of the data segments at instantiation with it.
pub const CALL_GAS_PER_ARTIFACT_BYTE: u64 = 1;

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

/// The first access to a key in a call (EIP-2929's `COLD_SLOAD_COST`, 2,100 EVM gas): a read, or
/// the surcharge on a write, of a key this call has not touched yet. Cross reads of EVM storage
/// count in the same access set.
pub const COLD_ACCESS: u64 = wasm_gas_from_evm(2_100);
/// Every later access to the same key in the call (EIP-2929's `WARM_STORAGE_READ_COST`, 100 EVM
/// gas). A read pays this whether warm or cold; a cold one pays [`COLD_ACCESS`] instead.
pub const WARM_ACCESS: u64 = wasm_gas_from_evm(100);
/// A write that creates an entry absent when the call started (EIP-2200's `SSTORE_SET_GAS`,
/// 20,000 EVM gas), for an entry no larger than an EVM slot (see [`SLOT_KEY_BYTES`]).
pub const STORE_SET: u64 = wasm_gas_from_evm(20_000);
/// A write that changes an entry present when the call started, the first time in the call
/// (EIP-2929's `SSTORE_RESET_GAS` minus `COLD_SLOAD_COST`: 2,900 EVM gas).
pub const STORE_RESET: u64 = wasm_gas_from_evm(2_900);
/// The refund for removing an entry present when the call started (EIP-3529's
/// `SSTORE_CLEARS_SCHEDULE`, 4,800 EVM gas).
pub const CLEAR_REFUND: u64 = wasm_gas_from_evm(4_800);
/// Refunds are capped at the gas used divided by this (EIP-3529's `MAX_REFUND_QUOTIENT`).
pub const MAX_REFUND_QUOTIENT: u64 = 5;
/// The user-key bytes an entry may have at the price of an EVM slot, whose key is 32 bytes.
pub const SLOT_KEY_BYTES: u64 = 32;
/// The value bytes an entry may have at the price of an EVM slot, whose value is 32 bytes.
pub const SLOT_VALUE_BYTES: u64 = 32;
/// Every key or value byte beyond an EVM slot's shape that an entry holds beyond what the call
/// has already paid for: what a fresh EVM slot costs a contract (a cold access and a set, 22,100
/// EVM gas) per byte of its 32-byte value, 690.625 EVM gas, rounded up to whole WASM gas. So an
/// entry of `32 × n` bytes beyond the slot's shape costs at least what `n` more fresh slots would.
pub const GROWTH_PER_BYTE: u64 = (COLD_ACCESS + STORE_SET).div_ceil(SLOT_VALUE_BYTES);

/// Per byte a host call reads from or copies into guest memory.
pub const PER_BYTE_READ: u64 = 1;
/// Per key and value byte a host call copies out of the guest to write to the state: it pays for
/// the copy and for hashing the bytes into the root at commit, work an EVM `SSTORE` of its fixed
/// 32-byte word has built into its price.
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

/// The base cost of a call to a module whose artifact bound is `artifact_bound`
/// (`validate::artifact_bound` of its code), charged before anything else: a call whose limit is
/// below it ends out of gas without the module being loaded or instantiated. It is the same
/// whether the module's compiled artifact is in memory or has to be loaded from the node's
/// artifact store, so gas never depends on what a node has cached, and it covers the load.
pub const fn call_base(artifact_bound: u64) -> u64 {
    CALL_BASE.saturating_add(artifact_bound.saturating_mul(CALL_GAS_PER_ARTIFACT_BYTE))
}

/// What deploying a module of `code_len` bytes costs: [`DEPLOY_BASE`] plus
/// [`DEPLOY_PER_CODE_BYTE`] per byte. The engine's `deploy` does not count gas itself (a deploy has
/// no gas limit and no payer in this runtime); a block spends this from its gas budget.
pub fn deploy_cost(code_len: usize) -> u64 {
    let code_len = u64::try_from(code_len).unwrap_or(u64::MAX);
    DEPLOY_BASE.saturating_add(code_len.saturating_mul(DEPLOY_PER_CODE_BYTE))
}

/// The storage pricing rules as pure functions of an entry's history in one call, so every price
/// can be checked (and printed) without running a module.
pub mod storage {
    use super::{
        CLEAR_REFUND, COLD_ACCESS, GROWTH_PER_BYTE, SLOT_KEY_BYTES, SLOT_VALUE_BYTES, STORE_RESET, STORE_SET,
        WARM_ACCESS,
    };

    /// The price of one access: cold the first time a call touches a key, warm after.
    pub const fn access(cold: bool) -> u64 {
        if cold { COLD_ACCESS } else { WARM_ACCESS }
    }

    /// The bytes an entry with a user key of `key_len` bytes and a value of `value_len` bytes
    /// holds beyond an EVM slot's shape (a 32-byte key and a 32-byte value). An absent entry
    /// (`value_len` 0) holds none.
    pub const fn bytes_beyond_slot(key_len: u64, value_len: u64) -> u64 {
        if value_len == 0 {
            return 0;
        }
        key_len.saturating_sub(SLOT_KEY_BYTES) + value_len.saturating_sub(SLOT_VALUE_BYTES)
    }

    /// What a write changes, in EIP-2200's terms: an entry's value when the call started
    /// (`original`), now (`current`) and after the write (`new`). Only whether each is absent and
    /// which of them are equal matters.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Write {
        /// Whether the entry existed when the call started.
        pub original_present: bool,
        /// Whether it exists before this write.
        pub current_present: bool,
        /// Whether it exists after this write.
        pub new_present: bool,
        /// Whether the write leaves the value as it is.
        pub current_is_new: bool,
        /// Whether the value before this write is the call's original one.
        pub original_is_current: bool,
        /// Whether the write restores the call's original value.
        pub original_is_new: bool,
    }

    /// The price of a write and its change to the call's refund counter, as an EVM `SSTORE` of
    /// a warm slot costs under EIP-2200 with EIP-2929's and EIP-3529's constants (the cold
    /// surcharge, [`COLD_ACCESS`], and growth beyond the slot's shape come on top):
    ///
    /// * unchanged: [`WARM_ACCESS`];
    /// * the first change in the call: [`STORE_SET`] when the entry was absent, [`STORE_RESET`]
    ///   when present, with a [`CLEAR_REFUND`] when that change removes it;
    /// * any later change: [`WARM_ACCESS`], with the refund counter following what the entry
    ///   became (a removal refunded, a re-creation taking the refund back, a restored original
    ///   refunding what its first change cost beyond a warm access).
    pub const fn write(write: Write) -> (u64, i64) {
        let Write {
            original_present,
            current_present,
            new_present,
            current_is_new,
            original_is_current,
            original_is_new,
        } = write;
        let clear = CLEAR_REFUND.cast_signed();
        if current_is_new {
            return (WARM_ACCESS, 0);
        }
        if original_is_current {
            if !original_present {
                return (STORE_SET, 0);
            }
            return (STORE_RESET, if new_present { 0 } else { clear });
        }
        let mut refund = 0;
        if original_present {
            if !current_present {
                refund -= clear;
            } else if !new_present {
                refund += clear;
            }
        }
        if original_is_new {
            refund += if original_present { STORE_RESET - WARM_ACCESS } else { STORE_SET - WARM_ACCESS }.cast_signed();
        }
        (WARM_ACCESS, refund)
    }

    /// The growth charge of a write that leaves the entry `bytes_beyond_slot` bytes beyond the
    /// slot's shape when the call has already paid for `paid` of them (the entry's size when the
    /// call started, or the largest it has been made since): [`GROWTH_PER_BYTE`] per byte beyond
    /// both. Returns the charge and the new number of bytes paid for. Growth is never refunded:
    /// shrinking an entry or removing it frees no bytes the call paid for.
    pub const fn growth(bytes_beyond_slot: u64, paid: u64) -> (u64, u64) {
        if bytes_beyond_slot <= paid {
            return (0, paid);
        }
        ((bytes_beyond_slot - paid).saturating_mul(GROWTH_PER_BYTE), bytes_beyond_slot)
    }

    /// The refund a successful call gets back for a refund counter of `counter` after using
    /// `gas_used` (its base included): the counter, at most `gas_used / MAX_REFUND_QUOTIENT`
    /// (EIP-3529), and nothing for a counter that ended below zero.
    pub const fn capped_refund(counter: i64, gas_used: u64) -> u64 {
        if counter <= 0 {
            return 0;
        }
        let cap = gas_used / super::MAX_REFUND_QUOTIENT;
        let counter = counter.cast_unsigned();
        if counter < cap { counter } else { cap }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

    use super::storage::{Write, bytes_beyond_slot, capped_refund, growth, write};
    use super::*;

    /// A plain model of one entry over one call: the call's original value, then writes, each
    /// priced by [`write`] (warm, as in EIP-3529's table: the cold surcharge is separate).
    /// Returns the storage gas (in EVM gas) and the refund counter.
    fn run_writes(original: u64, writes: &[u64]) -> (u64, i64) {
        let (mut current, mut gas_used, mut refund) = (original, 0, 0);
        for &new in writes {
            let (price, delta) = write(Write {
                original_present: original != 0,
                current_present: current != 0,
                new_present: new != 0,
                current_is_new: current == new,
                original_is_current: original == current,
                original_is_new: original == new,
            });
            gas_used += price;
            refund += delta;
            current = new;
        }
        (gas_used / WASM_GAS_PER_EVM_GAS, refund / WASM_GAS_PER_EVM_GAS.cast_signed())
    }

    include!("../tests/data/eip_3529.rs");

    #[test]
    fn writes_follow_eip_3529s_test_cases() {
        for &(code, used, refund, original) in EIP_3529_CASES {
            let writes = eip_3529_stored_values(code);
            let pushes = 3 * 2 * writes.len() as u64;
            assert_eq!(run_writes(original, &writes), (used - pushes, refund), "{code} on original {original}");
        }
    }

    #[test]
    fn the_constants_are_ethereums_in_wasm_gas() {
        let evm = |gas: u64| gas * WASM_GAS_PER_EVM_GAS;
        assert_eq!(
            [COLD_ACCESS, WARM_ACCESS, STORE_SET, STORE_RESET, CLEAR_REFUND],
            [evm(2_100), evm(100), evm(20_000), evm(2_900), evm(4_800)]
        );
        assert_eq!((MAX_REFUND_QUOTIENT, SLOT_KEY_BYTES, SLOT_VALUE_BYTES), (5, 32, 32));
        // A fresh EVM slot costs a contract a cold access and a set: 22,100 gas for 32 bytes.
        // Every byte beyond an EVM slot's shape costs that per byte, rounded up to whole WASM gas.
        assert_eq!(GROWTH_PER_BYTE, 6_907);
        let fresh_slot = COLD_ACCESS + STORE_SET;
        assert_eq!((GROWTH_PER_BYTE * 32 - fresh_slot, fresh_slot - (GROWTH_PER_BYTE - 1) * 32), (24, 8));
    }

    #[test]
    fn growth_is_charged_per_byte_beyond_the_slot_shape_and_what_was_paid() {
        let cases: &[((u64, u64), u64)] = &[
            ((8, 8), 0),
            ((32, 32), 0),
            ((1, 1), 0),
            ((33, 32), 1),
            ((32, 33), 1),
            ((128, 16_384), 96 + 16_352),
            ((20, 0), 0),
            ((128, 0), 0),
        ];
        for &((key, value), beyond) in cases {
            assert_eq!(bytes_beyond_slot(key, value), beyond, "key {key}, value {value}");
        }
        assert_eq!(growth(0, 0), (0, 0));
        assert_eq!(growth(100, 0), (100 * GROWTH_PER_BYTE, 100));
        assert_eq!(growth(100, 40), (60 * GROWTH_PER_BYTE, 100));
        assert_eq!(growth(40, 100), (0, 100), "shrinking is free and keeps what was paid");
        // A new 16 KiB value costs at least what its 512 words cost as fresh EVM slots.
        let new_16_kib = COLD_ACCESS + STORE_SET + growth(bytes_beyond_slot(32, 16_384), 0).0;
        assert!(new_16_kib >= 512 * (COLD_ACCESS + STORE_SET), "{new_16_kib}");
    }

    #[test]
    fn refunds_are_capped_at_a_fifth_of_the_gas_used() {
        let cases: &[((i64, u64), u64)] = &[
            ((0, 1_000), 0),
            ((-5, 1_000), 0),
            ((100, 1_000), 100),
            ((200, 1_000), 200),
            ((201, 1_000), 200),
            ((i64::MAX, 999), 199),
        ];
        for &((counter, used), refund) in cases {
            assert_eq!(capped_refund(counter, used), refund, "counter {counter}, used {used}");
        }
    }

    #[test]
    fn conversions_round_wasm_gas_up() {
        assert_eq!(
            (evm_gas_from_wasm(0), evm_gas_from_wasm(1), evm_gas_from_wasm(10), evm_gas_from_wasm(11)),
            (0, 1, 1, 2)
        );
        assert_eq!(wasm_gas_from_evm(21_000), 210_000);
        assert_eq!(wasm_gas_from_evm(u64::MAX), u64::MAX);
    }

    /// One budget for both engines: whatever mix spends it, a transaction that does not fit what
    /// is left is refused, and WASM gas is charged rounded up to whole EVM gas.
    #[test]
    fn a_block_budget_is_shared_by_both_engines() {
        let mut block = BlockGas::new(100_000);
        assert!(block.fits_evm(100_000) && !block.fits_evm(100_001));
        assert_eq!(block.remaining_wasm(), 1_000_000);
        assert!(block.fits_wasm(1_000_000) && !block.fits_wasm(1_000_001));
        block.spend_wasm(1);
        assert_eq!((block.used(), block.remaining()), (1, 99_999));
        block.spend_evm(21_000);
        assert_eq!(block.remaining_wasm(), 789_990);
        assert!(!block.fits_wasm(789_991));
        block.spend_wasm(u64::MAX);
        assert_eq!((block.used(), block.remaining(), block.limit()), (100_000, 0, 100_000));
    }
}
