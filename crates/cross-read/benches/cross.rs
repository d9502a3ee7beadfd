//! Cross-engine reads against each engine's own read.
//!
//! WASM: a guest loop of `evm_storage_read` over an EVM contract's populated storage
//! (`cross/wasm_evm_storage_read`) against the same loop of `state_get` over the module's own
//! slots (`cross/wasm_state_get`). EVM: `CrossBench.readLoop`, which calls the precompile's
//! `readU64` in a loop (`cross/evm_precompile_read`), against `CrossBench.sloadLoop`, a loop of
//! warm `SLOAD`s of the same contract (`cross/evm_warm_sload`), and against the same loop of
//! calls to the identity precompile (`cross/evm_identity_call`), the cost of any precompile call. Each figure is per read, loop
//! overhead included; `cargo xtask bench` reports the two ratios.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Benchmark code: a failed unwrap is a failed run.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use cross_read::XStatePrecompiles;
use evm_binding::abi::{artifact, calldata, output_word};
use evm_binding::revm::context::{BlockEnv, TxEnv};
use evm_binding::revm::primitives::hardfork::SpecId;
use evm_binding::revm::primitives::{Address, Bytes, TxKind, U256};
use evm_binding::{EvmExecutor, GenesisAccount, insert_account};
use kv_core::{Identity, ModuleName, Namespace, Store};
use wasm_binding::CallRequest;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const READS: u64 = 1_000;
const CONTRACT: Address = Address::repeat_byte(0xcc);
const CALLER: Address = Address::repeat_byte(0xa1);

/// A guest loop of `READS` reads: `evm_storage_read` of key `i % 256` of `CONTRACT`, or
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
                    (br_if $again (i32.lt_u (local.get $i) (i32.const {READS}))))))"#
    ))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let store = Store::in_memory();
    let engine = cross_read::wasm_engine(1);
    let mut overlay = store.begin();
    let storage: Vec<(U256, U256)> = (0..256u64).map(|key| (U256::from(key), U256::from(key + 1))).collect();
    insert_account(&mut overlay, CONTRACT, &GenesisAccount { storage, ..Default::default() }).unwrap();
    insert_account(&mut overlay, CALLER, &GenesisAccount { balance: U256::from(10u128.pow(24)), ..Default::default() })
        .unwrap();
    let cross = engine.deploy(&mut overlay, &ModuleName::new("cross").unwrap(), 1, &loop_module(true)).unwrap();
    let native = engine.deploy(&mut overlay, &ModuleName::new("native").unwrap(), 1, &loop_module(false)).unwrap();
    for slot in 0..256u64 {
        overlay.set_u64(&Namespace::wasm(native).slot_key(slot), slot + 1).unwrap();
    }
    let executor = EvmExecutor::new(1, SpecId::PRAGUE);
    let block = BlockEnv { gas_limit: 1_000_000_000, ..Default::default() };
    let tx = |kind, data: Bytes, nonce| TxEnv {
        caller: CALLER,
        kind,
        data,
        nonce,
        gas_limit: 100_000_000,
        chain_id: Some(1),
        ..Default::default()
    };
    let result =
        executor.transact(&mut overlay, &block, tx(TxKind::Create, artifact("CrossBench").unwrap(), 0)).unwrap();
    let bench_contract = result.created_address().unwrap();
    store.commit(&overlay).unwrap();
    let mut overlay = store.begin();

    let mut group = c.benchmark_group("cross");
    group.throughput(Throughput::Elements(READS));
    let call =
        |module: Identity| CallRequest { module, caller: Identity([0xa1; 20]), input: b"", gas_limit: u64::MAX / 2 };
    group.bench_function("wasm_evm_storage_read", |b| {
        b.iter(|| assert!(engine.call(&mut overlay, &call(cross)).unwrap().is_success()));
    });
    group.bench_function("wasm_state_get", |b| {
        b.iter(|| assert!(engine.call(&mut overlay, &call(native)).unwrap().is_success()));
    });

    let mut session = executor.session(&mut overlay, &block, XStatePrecompiles::new(SpecId::PRAGUE));
    let mut nonce = 1;
    let read_loop = calldata(
        "readLoop(address,uint64,uint256)",
        &[U256::from_be_slice(native.as_bytes()), U256::from(3), U256::from(READS)],
    );
    group.bench_function("evm_precompile_read", |b| {
        b.iter(|| {
            let result = session.transact(tx(TxKind::Call(bench_contract), read_loop.clone(), nonce)).unwrap();
            assert_eq!(output_word(&result, 0), Some(U256::from(4 * READS)));
            nonce += 1;
        });
    });
    let identity_loop = calldata(
        "identityLoop(address,uint64,uint256)",
        &[U256::from_be_slice(native.as_bytes()), U256::from(3), U256::from(READS)],
    );
    group.bench_function("evm_identity_call", |b| {
        b.iter(|| {
            let result = session.transact(tx(TxKind::Call(bench_contract), identity_loop.clone(), nonce)).unwrap();
            assert_eq!(output_word(&result, 0), Some(U256::from(68 * READS)));
            nonce += 1;
        });
    });
    let sload_loop = calldata("sloadLoop(uint256)", &[U256::from(READS)]);
    group.bench_function("evm_warm_sload", |b| {
        b.iter(|| {
            let result = session.transact(tx(TxKind::Call(bench_contract), sload_loop.clone(), nonce)).unwrap();
            assert_eq!(output_word(&result, 0), Some(U256::from(READS)));
            nonce += 1;
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
