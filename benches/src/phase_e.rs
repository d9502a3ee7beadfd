//! Phase E, xstate: a block of 1,000 mixed transactions executed and committed on redb: half
//! ERC-20 transfers, half WASM token transfers, with cross reads in both directions every tenth
//! transaction. Reported as transactions per second and the share of the time spent in the
//! commit (values, trie, durable write), each over repetitions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Benchmark code: a failed unwrap is a failed run.

use alloy_primitives::{Address, U256};
use kv_core::ModuleName;
use xstate::demo::{ALICE, BOB, DEPLOYER, ERC20_READER_WASM, TOKEN_WASM, calldata, token_input, word};
use xstate::{ModuleRef, Runtime, Transaction};

/// Transactions per block.
pub const TRANSACTIONS: usize = 1_000;

/// A runtime on redb with both tokens deployed and funded, and the block to execute.
pub struct MixedBlock {
    runtime: Runtime,
    block: Vec<Transaction>,
    _dir: tempfile::TempDir,
}

impl Default for MixedBlock {
    fn default() -> Self {
        Self::new()
    }
}

impl MixedBlock {
    /// Opens the runtime in a temporary directory and executes the setup block.
    pub fn new() -> Self {
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
        let block = (0..TRANSACTIONS)
            .map(|index| {
                let recipient = Address::with_last_byte(u8::try_from(index % 200).unwrap() + 1);
                match (index % 10, index % 2) {
                    (0, _) => evm(
                        ALICE,
                        reader,
                        calldata("readTokenBalance(address,address)", &[word(token.to_address()), word(ALICE)]),
                    ),
                    (1, _) => wasm(ALICE, "erc20-reader", reader_input.clone().into()),
                    (_, 0) => {
                        evm(ALICE, erc20, calldata("transfer(address,uint256)", &[word(recipient), U256::from(1)]))
                    }
                    _ => wasm(ALICE, "token", token_input(0x02, recipient, Some(1))),
                }
            })
            .collect();
        Self { runtime, block, _dir: dir }
    }

    /// Executes and commits the block; returns (execution, commit) times as the runtime measured
    /// them.
    pub fn execute(&self) -> (std::time::Duration, std::time::Duration) {
        let outcome = self.runtime.execute_block(None, &self.block, |_| {}).unwrap();
        assert!(outcome.receipts.iter().all(|receipt| receipt.status.is_success()));
        (outcome.execution_time, outcome.commit_time)
    }
}

/// Runs phase E's wall-clock figures into `samples`.
pub fn wall(quick: bool, samples: &mut crate::harness::Samples) {
    use crate::harness::{Budget, repeats};
    let fixture = MixedBlock::new();
    let mut shares = Vec::new();
    let mut block = || {
        let (execution, commit) = fixture.execute();
        shares.push(commit.as_secs_f64() / (execution + commit).as_secs_f64());
        execution + commit
    };
    let budget = Budget::new(quick);
    let times = repeats(budget, &mut block);
    // The warm-up runs pushed shares too; keep the recorded rounds only.
    let recorded = shares.split_off(shares.len() - times.len());
    samples.repeated("xstate/mixed_block_tx_per_s", times.iter().map(|ns| TRANSACTIONS as f64 * 1e9 / ns));
    samples.repeated("xstate/commit_share", recorded);
}
