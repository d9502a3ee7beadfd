//! Phase D, cross-read: each cross-engine read against the reading engine's own read.
//!
//! WASM: a guest loop of `evm_storage_read` over an EVM contract's populated storage against the
//! same loop of `state_get` over the module's own slots. EVM: `CrossBench.readLoop`, which calls
//! the precompile's `readU64` in a loop, against `CrossBench.sloadLoop`, a loop of warm `SLOAD`s,
//! and against `CrossBench.identityLoop`, the same loop calling the identity precompile (the cost
//! of any precompile call). Every loop makes 1,000 reads; all run in one EVM session on one block
//! overlay, the WASM calls through the session's own access to it.

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
}
