//! A block of 1,000 mixed signed transactions executed and committed on redb: half ERC-20
//! transfers, half WASM token transfers, with cross reads in both directions every tenth
//! transaction. Decoding the envelopes and recovering their senders (spread over the cores) is
//! part of the timed block. `cargo xtask bench` reports transactions per second, the share of the
//! time spent in recovery and the share spent in the commit (values, trie, durable write, chain
//! records).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Benchmark code: a failed unwrap is a failed run.

use alloy_consensus::TxEip1559;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_sol_types::SolCall;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::time::Duration;
use xstate::demo::{ERC20_READER_WASM, TOKEN_WASM, alice, calldata, deployer, token_input, word};
use xstate::dev::{anvil_genesis, sign};
use xstate::{BlockInput, ChainConfig, Runtime, WASM_DEPLOY_ADDRESS, deployCall};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TRANSACTIONS: usize = 1_000;
/// The block's senders: dev accounts 1-8, so that one sender's nonces do not serialise the
/// block's recovery (they do not matter to execution).
const SENDERS: u32 = 8;

fn record_fact(name: &str, value: f64) {
    if let Some(dir) = std::env::var_os("XTASK_BENCH_FACTS") {
        let path = std::path::Path::new(&dir).join(format!("{}.json", name.replace('/', "__")));
        std::fs::write(path, format!("{{\"name\": \"{name}\", \"value\": {value}, \"unit\": \"ratio\"}}\n")).unwrap();
    }
}

fn signed(key: u32, nonce: u64, to: TxKind, input: Bytes, gas_limit: u64) -> Bytes {
    let transaction = TxEip1559 {
        chain_id: xstate::DEFAULT_CHAIN_ID,
        nonce,
        gas_limit,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to,
        value: U256::ZERO,
        access_list: Default::default(),
        input,
    };
    sign(key, transaction).encoded_2718().into()
}

fn deploy(key: u32, nonce: u64, name: &str, code: &[u8]) -> Bytes {
    let call = deployCall { name: name.to_owned(), version: 1, code: Bytes::copy_from_slice(code) };
    signed(key, nonce, TxKind::Call(WASM_DEPLOY_ADDRESS), call.abi_encode().into(), 3_000_000)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    // A block of 1,000 transactions needs more than anvil's 30 million gas.
    let config = ChainConfig { block_gas_limit: 1_000_000_000, ..ChainConfig::default() };
    let runtime = Runtime::open(&dir.path().join("state.redb"), config).unwrap();
    runtime.init_genesis(&anvil_genesis(0)).unwrap();
    let name = |text: &str| kv_core::ModuleName::new(text).unwrap();
    let deployer_address = deployer();
    let erc20 = deployer_address.create(0);
    let reader = deployer_address.create(2);
    let token = runtime.module_identity(&name("token"), 1);
    let erc20_reader = runtime.module_identity(&name("erc20-reader"), 1);
    let mut xtoken = xstate::demo::xtoken_bytecode().to_vec();
    xtoken.extend_from_slice(&word(deployer_address).to_be_bytes::<32>());
    let token_to = TxKind::Call(token.to_address());
    let mut setup = vec![
        signed(0, 0, TxKind::Create, xtoken.into(), 3_000_000),
        signed(
            0,
            1,
            TxKind::Call(erc20),
            calldata("mint(address,uint256)", &[word(alice()), U256::from(u64::MAX)]),
            200_000,
        ),
        signed(0, 2, TxKind::Create, xstate::demo::wasm_reader_bytecode(), 3_000_000),
        deploy(0, 3, "token", TOKEN_WASM),
        deploy(0, 4, "erc20-reader", ERC20_READER_WASM),
        signed(1, 0, token_to, token_input(0x00, alice(), None).slice(..1), 1_000_000),
        signed(1, 1, token_to, token_input(0x01, alice(), Some(u64::MAX / 2)), 1_000_000),
    ];
    // Alice hands ERC-20 and WASM tokens to the other senders.
    for key in 2..=SENDERS {
        let holder = xstate::dev::dev_address(key);
        let nonce = 2 + u64::from(key - 2) * 2;
        setup.push(signed(
            1,
            nonce,
            TxKind::Call(erc20),
            calldata("transfer(address,uint256)", &[word(holder), U256::from(u64::MAX / 16)]),
            200_000,
        ));
        setup.push(signed(1, nonce + 1, token_to, token_input(0x02, holder, Some(u64::MAX / 16)), 1_000_000));
    }
    let outcome = runtime.execute_block(&BlockInput { timestamp: 1, ..Default::default() }, &setup, |_| {}).unwrap();
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    assert!(outcome.receipts.iter().all(|receipt| receipt.status.is_success()), "{:?}", outcome.receipts);

    let mut reader_input = erc20.to_vec();
    reader_input.extend_from_slice(alice().as_slice());
    let mut nonces: Vec<u64> = (0..=SENDERS)
        .map(|key| runtime.account(xstate::dev::dev_address(key)).unwrap().map_or(0, |r| r.nonce))
        .collect();
    let block = |nonces: &mut Vec<u64>| -> Vec<Bytes> {
        (0..TRANSACTIONS)
            .map(|index| {
                let key = 1 + u32::try_from(index).unwrap() % SENDERS;
                let nonce = nonces[key as usize];
                nonces[key as usize] += 1;
                let recipient = Address::with_last_byte(u8::try_from(index % 200).unwrap() + 1);
                let (to, input, gas) = match (index % 10, index % 2) {
                    (0, _) => (
                        TxKind::Call(reader),
                        calldata("readTokenBalance(address,address)", &[word(token.to_address()), word(alice())]),
                        200_000,
                    ),
                    (1, _) => (TxKind::Call(erc20_reader.to_address()), reader_input.clone().into(), 1_000_000),
                    (_, 0) => (
                        TxKind::Call(erc20),
                        calldata("transfer(address,uint256)", &[word(recipient), U256::from(1)]),
                        200_000,
                    ),
                    _ => (token_to, token_input(0x02, recipient, Some(1)), 1_000_000),
                };
                signed(key, nonce, to, input, gas)
            })
            .collect()
    };

    let mut group = c.benchmark_group("xstate");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TRANSACTIONS as u64));
    let (mut recovery, mut execution, mut commit) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    group.bench_function("mixed_block_1000", |b| {
        b.iter_batched(
            || block(&mut nonces),
            |raws| {
                let input = BlockInput { timestamp: runtime.latest_timestamp() + 1, ..Default::default() };
                let outcome = runtime.execute_block(&input, &raws, |_| {}).unwrap();
                assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected.first());
                assert!(outcome.receipts.iter().all(|receipt| receipt.status.is_success()));
                recovery += outcome.recovery_time;
                execution += outcome.execution_time;
                commit += outcome.commit_time;
            },
            criterion::BatchSize::PerIteration,
        );
    });
    group.finish();
    let total = (recovery + execution + commit).as_secs_f64();
    record_fact("xstate/recovery_share", recovery.as_secs_f64() / total);
    record_fact("xstate/commit_share", commit.as_secs_f64() / total);
    println!(
        "xstate/mixed_block_tx_per_s: recovery {:.1}% (over {} cores), execution {:.1}%, commit {:.1}% of the block time",
        100.0 * recovery.as_secs_f64() / total,
        std::thread::available_parallelism().map_or(1, |count| count.get()),
        100.0 * execution.as_secs_f64() / total,
        100.0 * commit.as_secs_f64() / total
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
