//! revm over the shared substrate against revm's own in-memory `CacheDB`, and SLOAD costs on a
//! populated store.
//!
//! `evm/erc20_transfer_shared` and `evm/erc20_transfer_cachedb` run the same ERC-20 transfer
//! transaction (the OpenZeppelin token compiled with the pinned solc) through this binding and
//! through `CacheDB`; `cargo xtask bench` reports their ratio as `evm/erc20_transfer_vs_cachedb`.
//! `evm/sload_cold` is one call summing 1,000 distinct slots of a contract with 10,000 populated
//! slots (each SLOAD cold in the transaction and read from the store); `evm/sload_warm` sums one
//! slot 1,000 times. Both report per SLOAD, loop overhead included.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use evm_binding::abi::{artifact, calldata, mapping_slot, output_word, word};
use evm_binding::revm::context::result::ExecutionResult;
use evm_binding::revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use evm_binding::revm::database::{CacheDB, EmptyDB};
use evm_binding::revm::handler::EthPrecompiles;
use evm_binding::revm::primitives::hardfork::SpecId;
use evm_binding::revm::primitives::{Address, Bytes, TxKind, U256};
use evm_binding::revm::state::AccountInfo;
use evm_binding::revm::{ExecuteCommitEvm, MainBuilder, MainContext};
use evm_binding::{EvmExecutor, GenesisAccount, insert_account};
use kv_core::Store;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHAIN_ID: u64 = 1;
const OWNER: Address = Address::repeat_byte(0xd0);
const BOB: Address = Address::repeat_byte(0xb0);
const SLOADS: u64 = 1_000;

fn tx(kind: TxKind, data: Bytes, nonce: u64) -> TxEnv {
    TxEnv { caller: OWNER, kind, data, nonce, gas_limit: 30_000_000, chain_id: Some(CHAIN_ID), ..Default::default() }
}

fn block() -> BlockEnv {
    BlockEnv { gas_limit: 1_000_000_000, ..Default::default() }
}

fn created(result: ExecutionResult) -> Address {
    assert!(result.is_success(), "{result:?}");
    result.created_address().unwrap()
}

fn bench(c: &mut Criterion) {
    let spec = SpecId::PRAGUE;
    let mut group = c.benchmark_group("evm");

    // The binding: token deployed and minted, then one transfer per iteration.
    let store = Store::in_memory();
    let executor = EvmExecutor::new(CHAIN_ID, spec);
    let mut overlay = store.begin();
    insert_account(&mut overlay, OWNER, &GenesisAccount { balance: U256::from(10u128.pow(24)), ..Default::default() })
        .unwrap();
    let mut code = artifact("XToken").unwrap().to_vec();
    code.extend_from_slice(&word(OWNER).to_be_bytes::<32>());
    let token = created(executor.transact(&mut overlay, &block(), tx(TxKind::Create, code.clone().into(), 0)).unwrap());
    let mint = calldata("mint(address,uint256)", &[word(OWNER), U256::MAX >> 1]);
    assert!(executor.transact(&mut overlay, &block(), tx(TxKind::Call(token), mint.clone(), 1)).unwrap().is_success());
    let storage = created(
        executor.transact(&mut overlay, &block(), tx(TxKind::Create, artifact("Storage").unwrap(), 2)).unwrap(),
    );
    let bench_code = created(
        executor.transact(&mut overlay, &block(), tx(TxKind::Create, artifact("CrossBench").unwrap(), 3)).unwrap(),
    );
    for key in 0..10_000u64 {
        let slot = mapping_slot(U256::from(key), U256::ZERO);
        let key = kv_core::Namespace::evm(storage).word_key(&slot.to_be_bytes::<32>());
        overlay.set(&key, &U256::from(3).to_be_bytes::<32>()).unwrap();
    }
    store.commit(&overlay).unwrap();
    let mut overlay = store.begin();
    let transfer = calldata("transfer(address,uint256)", &[word(BOB), U256::from(1)]);
    let mut nonce = 4;
    group.throughput(Throughput::Elements(1));
    {
        // One EVM for the block, as the CacheDB run below keeps one EVM.
        let mut session = executor.session(&mut overlay, &block(), EthPrecompiles::new(spec));
        group.bench_function("erc20_transfer_shared", |b| {
            b.iter(|| {
                let result = session.transact(tx(TxKind::Call(token), transfer.clone(), nonce)).unwrap();
                assert!(result.is_success());
                nonce += 1;
            });
        });
    }

    // revm's own CacheDB, same transactions.
    let mut cfg = CfgEnv::new_with_spec(spec);
    cfg.set_spec_and_mainnet_gas_params(spec);
    cfg.chain_id = CHAIN_ID;
    let mut cache = CacheDB::new(EmptyDB::default());
    cache.insert_account_info(OWNER, AccountInfo { balance: U256::from(10u128.pow(24)), ..Default::default() });
    let mut evm = Context::mainnet().with_cfg(cfg).with_block(block()).with_db(cache).build_mainnet();
    let cache_token = created(evm.transact_commit(tx(TxKind::Create, code.into(), 0)).unwrap());
    assert_eq!(cache_token, token);
    assert!(evm.transact_commit(tx(TxKind::Call(cache_token), mint, 1)).unwrap().is_success());
    let mut nonce = 2;
    group.bench_function("erc20_transfer_cachedb", |b| {
        b.iter(|| {
            assert!(evm.transact_commit(tx(TxKind::Call(cache_token), transfer.clone(), nonce)).unwrap().is_success());
            nonce += 1;
        });
    });

    // SLOADs through the binding on a populated store.
    let mut reader = store.begin();
    let mut read_nonce = evm_binding::database::account(&reader, OWNER).unwrap().unwrap().nonce;
    group.throughput(Throughput::Elements(SLOADS));
    let sum = calldata("sum(uint256,uint256)", &[U256::ZERO, U256::from(SLOADS)]);
    group.bench_function("sload_cold", |b| {
        b.iter(|| {
            let result =
                executor.transact(&mut reader, &block(), tx(TxKind::Call(storage), sum.clone(), read_nonce)).unwrap();
            assert_eq!(output_word(&result, 0), Some(U256::from(3 * SLOADS)));
            read_nonce += 1;
        });
    });
    let warm = calldata("sloadLoop(uint256)", &[U256::from(SLOADS)]);
    group.bench_function("sload_warm", |b| {
        b.iter(|| {
            let result = executor
                .transact(&mut reader, &block(), tx(TxKind::Call(bench_code), warm.clone(), read_nonce))
                .unwrap();
            assert_eq!(output_word(&result, 0), Some(U256::from(SLOADS)));
            read_nonce += 1;
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
