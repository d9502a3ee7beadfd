//! Phase D, cross-read: each cross-engine read against the reading engine's own read.
//!
//! WASM: a guest loop of `evm_storage_read` over an EVM contract's populated storage against the
//! same loop of `state_get` over the module's own slots. EVM: `CrossBench.readLoop`, which calls
//! the precompile's `readU64` in a loop, against `CrossBench.sloadLoop`, a loop of warm `SLOAD`s,
//! and against `CrossBench.identityLoop`, the same loop calling the identity precompile (the cost
//! of any precompile call). Every loop makes 1,000 reads; all run in one EVM session on one block
//! overlay, the WASM calls through the session's own access to it. [`state_bytes_per_block`]
//! counts the state each engine's cheapest growth adds in one block of the same gas.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Benchmark code: a failed unwrap is a failed run.

use cross_read::XStatePrecompiles;
use evm_binding::abi::{artifact, calldata, output_word};
use evm_binding::revm::context::{BlockEnv, TxEnv};
use evm_binding::revm::primitives::hardfork::SpecId;
use evm_binding::revm::primitives::{Address, Bytes, TxKind, U256};
use evm_binding::{EvmExecutor, EvmSession, GenesisAccount, insert_account};
use kv_core::{Identity, ModuleName, Namespace, Overlay, Store};
use wasm_binding::{CallRequest, WasmEngine};

/// Reads per loop.
pub const CROSS_READS: u64 = 1_000;
const CONTRACT: Address = Address::repeat_byte(0xcc);
const CALLER: Address = Address::repeat_byte(0xa1);

/// A guest loop of `CROSS_READS` reads: `evm_storage_read` of key `i % 256` of `CONTRACT`, or
/// `state_get` of slot `i % 256`.
fn loop_module(cross: bool) -> Vec<u8> {
    let address: String = CONTRACT.iter().map(|byte| format!("\\{byte:02x}")).collect();
    let read = if cross {
        "(i32.store8 (i32.const 63) (local.get $i)) (call $evm (i32.const 0) (i32.const 32) (i32.const 64))"
    } else {
        "(drop (call $get (i64.extend_i32_u (i32.and (local.get $i) (i32.const 255)))))"
    };
    wat::parse_str(format!(
        r#"(module
            (import "xstate" "evm_storage_read" (func $evm (param i32 i32 i32)))
            (import "xstate" "state_get" (func $get (param i64) (result i64)))
            (memory (export "memory") 1 1)
            (data (i32.const 0) "{address}")
            (func (export "call") (local $i i32)
                (loop $again
                    {read}
                    (local.set $i (i32.add (local.get $i) (i32.const 1)))
                    (br_if $again (i32.lt_u (local.get $i) (i32.const {CROSS_READS}))))))"#
    ))
    .unwrap()
}

fn tx(kind: TxKind, data: Bytes, nonce: u64) -> TxEnv {
    TxEnv { caller: CALLER, kind, data, nonce, gas_limit: 100_000_000, chain_id: Some(1), ..Default::default() }
}

fn block() -> BlockEnv {
    BlockEnv { gas_limit: 1_000_000_000, ..Default::default() }
}

/// Both engines over one block overlay, with the loop modules and `CrossBench` deployed.
pub struct CrossReads {
    engine: WasmEngine,
    session: EvmSession<'static, XStatePrecompiles>,
    cross: Identity,
    native: Identity,
    bench_contract: Address,
    read_loop: Bytes,
    identity_loop: Bytes,
    sload_loop: Bytes,
    nonce: u64,
}

impl Default for CrossReads {
    fn default() -> Self {
        Self::new()
    }
}

impl CrossReads {
    /// Deploys the modules and the contract, fills both engines' state and commits it.
    pub fn new() -> Self {
        let store = Store::in_memory();
        let engine = cross_read::wasm_engine(1);
        let mut overlay = store.begin();
        let storage: Vec<(U256, U256)> = (0..256u64).map(|key| (U256::from(key), U256::from(key + 1))).collect();
        insert_account(&mut overlay, CONTRACT, &GenesisAccount { storage, ..Default::default() }).unwrap();
        insert_account(
            &mut overlay,
            CALLER,
            &GenesisAccount { balance: U256::from(10u128.pow(24)), ..Default::default() },
        )
        .unwrap();
        let cross = engine.deploy(&mut overlay, &ModuleName::new("cross").unwrap(), 1, &loop_module(true)).unwrap();
        let native = engine.deploy(&mut overlay, &ModuleName::new("native").unwrap(), 1, &loop_module(false)).unwrap();
        for slot in 0..256u64 {
            overlay.set_u64(&Namespace::wasm(native).slot_key(slot), slot + 1).unwrap();
        }
        let executor = EvmExecutor::new(1, SpecId::PRAGUE);
        let result =
            executor.transact(&mut overlay, &block(), tx(TxKind::Create, artifact("CrossBench").unwrap(), 0)).unwrap();
        let bench_contract = result.created_address().unwrap();
        store.commit(&overlay).unwrap();
        // A session borrows its overlay for the block; a benchmark fixture lives as long as its
        // process, so the store and overlay are leaked to give the session that lifetime.
        let store: &'static Store = Box::leak(Box::new(store));
        let overlay: &'static mut Overlay = Box::leak(Box::new(store.begin()));
        let session = executor.session(overlay, &block(), XStatePrecompiles::new(SpecId::PRAGUE));
        let module = U256::from_be_slice(native.as_bytes());
        let mut fixture = Self {
            engine,
            session,
            cross,
            native,
            bench_contract,
            read_loop: calldata("readLoop(address,uint64,uint256)", &[module, U256::from(3), U256::from(CROSS_READS)]),
            identity_loop: calldata(
                "identityLoop(address,uint64,uint256)",
                &[module, U256::from(3), U256::from(CROSS_READS)],
            ),
            sload_loop: calldata("sloadLoop(uint256)", &[U256::from(CROSS_READS)]),
            nonce: 1,
        };
        // One of each first, so module instances, code and accounts are as warm as in a block.
        fixture.wasm_evm_storage_read();
        fixture.wasm_state_get();
        fixture.evm_precompile_read();
        fixture.evm_warm_sload();
        fixture.evm_identity_call();
        fixture
    }

    fn wasm_call(&mut self, module: Identity) {
        let request = CallRequest { module, caller: Identity([0xa1; 20]), input: b"", gas_limit: u64::MAX / 2 };
        let engine = &self.engine;
        let receipt = self.session.with_overlay(|overlay| engine.call(overlay, &request)).unwrap();
        assert!(receipt.is_success(), "{receipt:?}");
    }

    fn evm_call(&mut self, data: Bytes, expected: u64) {
        let result = self.session.transact(tx(TxKind::Call(self.bench_contract), data, self.nonce)).unwrap();
        assert_eq!(output_word(&result, 0), Some(U256::from(expected)), "{result:?}");
        self.nonce += 1;
    }

    /// 1,000 `evm_storage_read`s from a WASM guest.
    pub fn wasm_evm_storage_read(&mut self) {
        self.wasm_call(self.cross);
    }

    /// 1,000 `state_get`s of the guest's own slots.
    pub fn wasm_state_get(&mut self) {
        self.wasm_call(self.native);
    }

    /// 1,000 calls of the `readU64` precompile from a contract.
    pub fn evm_precompile_read(&mut self) {
        self.evm_call(self.read_loop.clone(), 4 * CROSS_READS);
    }

    /// 1,000 calls of the identity precompile from the same loop.
    pub fn evm_identity_call(&mut self) {
        self.evm_call(self.identity_loop.clone(), 68 * CROSS_READS);
    }

    /// 1,000 warm SLOADs of the contract's own slot.
    pub fn evm_warm_sload(&mut self) {
        self.evm_call(self.sload_loop.clone(), CROSS_READS);
    }
}

/// Runs phase D's wall-clock figures into `samples`.
pub fn wall(quick: bool, samples: &mut crate::harness::Samples) {
    use crate::harness::{Budget, pairs, timed};
    use std::cell::RefCell;
    let budget = Budget::new(quick);
    let fixture = RefCell::new(CrossReads::new());
    let per_read = |ns: f64| ns / CROSS_READS as f64;
    let mut wasm_cross = || timed(|| fixture.borrow_mut().wasm_evm_storage_read());
    let mut wasm_native = || timed(|| fixture.borrow_mut().wasm_state_get());
    let measured = pairs(budget, &mut wasm_cross, &mut wasm_native);
    samples.pair_ratios("cross/wasm_reads_evm_vs_native", &measured, |a, b| a / b);
    samples.repeated("cross/wasm_reads_evm_ns", measured.iter().map(|&(a, _)| per_read(a)));
    samples.repeated("cross/wasm_native_floor_ns", measured.iter().map(|&(_, b)| per_read(b)));
    let mut evm_cross = || timed(|| fixture.borrow_mut().evm_precompile_read());
    let mut evm_sload = || timed(|| fixture.borrow_mut().evm_warm_sload());
    let measured = pairs(budget, &mut evm_cross, &mut evm_sload);
    samples.pair_ratios("cross/evm_reads_wasm_vs_sload", &measured, |a, b| a / b);
    samples.repeated("cross/evm_reads_wasm_ns", measured.iter().map(|&(a, _)| per_read(a)));
    samples.repeated("cross/evm_sload_floor_ns", measured.iter().map(|&(_, b)| per_read(b)));
    let mut evm_identity = || timed(|| fixture.borrow_mut().evm_identity_call());
    let measured = pairs(budget, &mut evm_cross, &mut evm_identity);
    samples.pair_ratios("cross/evm_reads_wasm_vs_precompile_call", &measured, |a, b| a / b);
    samples.repeated("cross/evm_precompile_call_floor_ns", measured.iter().map(|&(_, b)| per_read(b)));
    // Counted, not timed: one fill of each engine gives the exact figure.
    let (wasm, evm) = state_bytes_per_block();
    samples.repeated("gas/state_bytes_per_block_wasm", [wasm as f64]);
    samples.repeated("gas/state_bytes_per_block_evm", [evm as f64]);
    samples.repeated("gas/state_bytes_per_block_wasm_vs_evm", [wasm as f64 / evm as f64]);
}

/// The gas of a block the state-growth figure fills: 30 million EVM gas.
const GROWTH_BLOCK_GAS: u64 = 30_000_000;

/// The bytes of state (keys and values) under `prefix`.
fn state_bytes(overlay: &Overlay, prefix: &[u8]) -> usize {
    overlay.scan_prefix(prefix).unwrap().iter().map(|(key, value)| key.len() + value.len()).sum()
}

/// Bytes of state added by one block filled with the cheapest growth each engine allows:
/// `(wasm, evm)`.
///
/// EVM: transactions calling contracts of unrolled `SSTORE`s of 1 into fresh slots, each as large
/// as what is left of the block allows. WASM: calls of a module that `storage_write`s fresh
/// 32-byte keys with 32-byte values (the cheapest shape per byte; cross-read's pricing test
/// checks every other shape against the EVM), each writing as many entries as what is left
/// allows. The bytes are counted, so the figure is exact.
pub fn state_bytes_per_block() -> (usize, usize) {
    let store = Store::in_memory();
    let mut overlay = store.begin();
    let executor = EvmExecutor::new(1, SpecId::PRAGUE);
    let engine = WasmEngine::new(1);

    let per_store = 22_100 + 6;
    let mut gas = wasm_binding::gas::BlockGas::new(GROWTH_BLOCK_GAS);
    let (mut evm, mut nonce) = (0, 0u64);
    while gas.remaining() > 21_000 + per_store {
        let stores = u16::try_from(((gas.remaining() - 21_000) / per_store).min(4_000)).unwrap();
        let code: Vec<u8> = (0..stores)
            .flat_map(|slot| {
                let [high, low] = slot.to_be_bytes();
                [0x60, 0x01, 0x61, high, low, 0x55]
            })
            .collect();
        let mut address = [0xe0; 20];
        address[12..].copy_from_slice(&nonce.to_be_bytes());
        let address = Address::from(address);
        insert_account(&mut overlay, address, &GenesisAccount { code, ..Default::default() }).unwrap();
        let before = state_bytes(&overlay, Namespace::evm(address).prefix());
        let call = TxEnv { gas_limit: gas.remaining(), ..tx(TxKind::Call(address), Bytes::new(), nonce) };
        let result = executor.transact(&mut overlay, &block(), call).unwrap();
        assert!(result.is_success(), "{result:?}");
        gas.spend_evm(result.tx_gas_used());
        evm += state_bytes(&overlay, Namespace::evm(address).prefix()) - before;
        nonce += 1;
    }

    let module = engine.deploy(&mut overlay, &ModuleName::new("growth").unwrap(), 1, &growth_module()).unwrap();
    let prefix = Namespace::wasm(module).prefix().to_vec();
    let before = state_bytes(&overlay, &prefix);
    let mut gas = wasm_binding::gas::BlockGas::new(GROWTH_BLOCK_GAS);
    let caller = Identity::from(CALLER);
    let input = |start: u32, count: u32| [start.to_le_bytes(), count.to_le_bytes()].concat();
    // What a call of `count` entries costs, measured on a checkpoint that is reverted (gas is
    // deterministic); the largest count that fits what is left is found by bisection.
    let cost = |overlay: &mut Overlay, start: u32, count: u32| {
        let checkpoint = overlay.checkpoint();
        let input = input(start, count);
        let request = CallRequest { module, caller, input: &input, gas_limit: u64::MAX / 4 };
        let receipt = engine.call(overlay, &request).unwrap();
        overlay.revert(checkpoint).unwrap();
        assert!(receipt.is_success(), "{receipt:?}");
        receipt.gas_used
    };
    let mut start = 0u32;
    while cost(&mut overlay, start, 1) <= gas.remaining_wasm() {
        let left = gas.remaining_wasm();
        let (mut fits, mut too_many) = (1u32, 2u32);
        while cost(&mut overlay, start, too_many) <= left {
            (fits, too_many) = (too_many, too_many * 2);
        }
        while too_many - fits > 1 {
            let middle = fits + (too_many - fits) / 2;
            if cost(&mut overlay, start, middle) <= left { fits = middle } else { too_many = middle }
        }
        let input = input(start, fits);
        let receipt =
            engine.call(&mut overlay, &CallRequest { module, caller, input: &input, gas_limit: left }).unwrap();
        assert!(receipt.is_success(), "{receipt:?}");
        gas.spend_wasm(receipt.gas_used);
        start += fits;
    }
    (state_bytes(&overlay, &prefix) - before, evm)
}

/// A module that writes `count` fresh entries of a 32-byte key (the little-endian counter in its
/// first four bytes) and a 32-byte value, from the input's `start`.
fn growth_module() -> Vec<u8> {
    wat::parse_str(
        r#"(module
            (import "xstate" "storage_write" (func $write (param i32 i32 i32 i32)))
            (import "xstate" "input_read" (func $input_read (param i32)))
            (memory (export "memory") 1 1)
            (data (i32.const 256) "\01")
            (func (export "call") (local $k i32) (local $end i32)
                (call $input_read (i32.const 128))
                (local.set $k (i32.load (i32.const 128)))
                (local.set $end (i32.add (local.get $k) (i32.load (i32.const 132))))
                (block $done (loop $next
                    (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
                    (i32.store (i32.const 0) (local.get $k))
                    (call $write (i32.const 0) (i32.const 32) (i32.const 256) (i32.const 32))
                    (local.set $k (i32.add (local.get $k) (i32.const 1)))
                    (br $next)))))"#,
    )
    .unwrap()
}
