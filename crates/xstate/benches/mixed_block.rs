//! A block of 1,000 mixed transactions executed and committed on redb: half ERC-20 transfers,
//! half WASM token transfers, with cross reads in both directions every tenth transaction.
//! `cargo xtask bench` reports transactions per second and the share of the time spent in the
//! commit (values, trie, durable write).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Benchmark code: a failed unwrap is a failed run.

use alloy_primitives::{Address, U256};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kv_core::ModuleName;
use std::time::Duration;
use xstate::demo::{ALICE, BOB, DEPLOYER, ERC20_READER_WASM, TOKEN_WASM, calldata, token_input, word};
use xstate::{ModuleRef, Runtime, Transaction};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TRANSACTIONS: usize = 1_000;

fn record_fact(name: &str, value: f64) {
    if let Some(dir) = std::env::var_os("XTASK_BENCH_FACTS") {
        let path = std::path::Path::new(&dir).join(format!("{}.json", name.replace('/', "__")));
        std::fs::write(path, format!("{{\"name\": \"{name}\", \"value\": {value}, \"unit\": \"ratio\"}}\n")).unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::open(&dir.path().join("state.redb"), xstate::DEFAULT_CHAIN_ID).unwrap();
    let name = |text: &str| ModuleName::new(text).unwrap();
    let erc20 = DEPLOYER.create(0);
    let reader = DEPLOYER.create(2);
    let token = runtime.module_identity(&name("token"), 1);
    let mut xtoken = xstate::demo::xtoken_bytecode().to_vec();
    xtoken.extend_from_slice(&word(DEPLOYER).to_be_bytes::<32>());
    let evm = |from, to, data| Transaction::EvmCall { from, to, data, value: U256::ZERO, gas: 1_000_000 };
    let wasm = |from, module, input| Transaction::WasmCall {
        from,
        module: ModuleRef::Named(name(module), 1),
        input,
        gas: 10_000_000,
    };
    let setup = vec![
        Transaction::EvmCreate { from: DEPLOYER, code: xtoken.into(), value: U256::ZERO, gas: 3_000_000 },
        evm(DEPLOYER, erc20, calldata("mint(address,uint256)", &[word(ALICE), U256::from(u64::MAX)])),
        Transaction::EvmCreate {
            from: DEPLOYER,
            code: xstate::demo::wasm_reader_bytecode(),
            value: U256::ZERO,
            gas: 3_000_000,
        },
        Transaction::WasmDeploy { name: name("token"), version: 1, code: TOKEN_WASM.into() },
        Transaction::WasmDeploy { name: name("erc20-reader"), version: 1, code: ERC20_READER_WASM.into() },
        wasm(ALICE, "token", token_input(0x00, ALICE, None).slice(..1)),
        wasm(ALICE, "token", token_input(0x01, ALICE, Some(u64::MAX / 2))),
    ];
    let outcome = runtime.execute_block(Some(&xstate::demo::genesis()), &setup, |_| {}).unwrap();
    assert!(outcome.receipts.iter().all(|receipt| receipt.status.is_success()), "{:?}", outcome.receipts);

    let mut reader_input = erc20.to_vec();
    reader_input.extend_from_slice(BOB.as_slice());
    let block: Vec<Transaction> = (0..TRANSACTIONS)
        .map(|index| {
            let recipient = Address::with_last_byte(u8::try_from(index % 200).unwrap() + 1);
            match (index % 10, index % 2) {
                (0, _) => evm(
                    ALICE,
                    reader,
                    calldata("readTokenBalance(address,address)", &[word(token.to_address()), word(ALICE)]),
                ),
                (1, _) => wasm(ALICE, "erc20-reader", reader_input.clone().into()),
                (_, 0) => evm(ALICE, erc20, calldata("transfer(address,uint256)", &[word(recipient), U256::from(1)])),
                _ => wasm(ALICE, "token", token_input(0x02, recipient, Some(1))),
            }
        })
        .collect();

    let mut group = c.benchmark_group("xstate");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TRANSACTIONS as u64));
    let mut execution = Duration::ZERO;
    let mut commit = Duration::ZERO;
    group.bench_function("mixed_block_1000", |b| {
        b.iter(|| {
            let outcome = runtime.execute_block(None, &block, |_| {}).unwrap();
            assert!(outcome.receipts.iter().all(|receipt| receipt.status.is_success()));
            execution += outcome.execution_time;
            commit += outcome.commit_time;
        });
    });
    group.finish();
    record_fact("xstate/commit_share", commit.as_secs_f64() / (execution + commit).as_secs_f64());
}

criterion_group!(benches, bench);
criterion_main!(benches);
