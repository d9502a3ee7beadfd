//! Phase E, xstate: a block of 1,000 mixed signed transactions executed and committed on redb:
//! half ERC-20 transfers, half WASM token transfers, with cross reads in both directions every
//! tenth transaction, from eight dev accounts. Decoding the envelopes and recovering their
//! senders (spread over the cores) is part of the timed block. Reported as transactions per
//! second and the shares of the block time spent in recovery and in the commit (values, trie,
//! durable write, chain records), each over repetitions.
//!
//! Stateless blocks (issue 15) on the same block: `witness/bytes_per_tx` (the witness's bytes
//! over its transactions), `witness/verify_vs_execute` (the time `verify_block` takes to
//! re-execute the block from its witness alone, recovery and root included, over the time the
//! stateful block took: recovery, execution and commit) and `witness/production_share` (what
//! recording the witness while the block runs adds to the stateful block: two runtimes on the
//! same chain, one recording and one not, execute the same blocks side by side, A B A B, and
//! each pair gives `recording / plain - 1`).
//!
//! The node's figures, against anvil, are in `node_load`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Benchmark code: a failed unwrap is a failed run.

use alloy_consensus::TxEip1559;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_sol_types::SolCall;
use std::cell::RefCell;
use std::time::Duration;
use xstate_chain::demo::{ERC20_READER_WASM, TOKEN_WASM, alice, calldata, deployer, token_input, word};
use xstate_chain::dev::{anvil_genesis, sign};
use xstate_chain::{BlockInput, ChainConfig, Runtime, WASM_DEPLOY_ADDRESS, deployCall, verify_block};

/// Transactions per block.
pub const TRANSACTIONS: usize = 1_000;
/// The block's senders: dev accounts 1-8, so that one sender's nonces do not serialise the
/// block's recovery (they do not matter to execution).
const SENDERS: u32 = 8;

/// An EIP-1559 transaction of dev key `key`, signed and encoded as `eth_sendRawTransaction` takes
/// it: the shape of every transaction the phase e benchmarks send (the node's load included).
pub(crate) fn signed(key: u32, nonce: u64, to: TxKind, input: Bytes, gas_limit: u64) -> Bytes {
    let transaction = TxEip1559 {
        chain_id: xstate_chain::DEFAULT_CHAIN_ID,
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

/// The times one block took, as the runtime measured them.
pub struct BlockTimes {
    /// Envelope decoding and sender recovery.
    pub recovery: Duration,
    /// Execution of both engines.
    pub execution: Duration,
    /// The commit: values, trie, chain records, durable write.
    pub commit: Duration,
}

/// A runtime on redb with both tokens deployed and funded among eight senders.
pub struct MixedBlock {
    runtime: Runtime,
    nonces: RefCell<Vec<u64>>,
    erc20: Address,
    reader: Address,
    token: Address,
    erc20_reader: Address,
    _dir: tempfile::TempDir,
}

impl Default for MixedBlock {
    fn default() -> Self {
        Self::new(true)
    }
}

impl MixedBlock {
    /// Opens the runtime in a temporary directory and executes the setup block; the runtime
    /// records its blocks' witnesses when `record_witnesses` (the default of a chain).
    pub fn new(record_witnesses: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // A block of 1,000 transactions needs more than anvil's 30 million gas.
        let config = ChainConfig { block_gas_limit: 1_000_000_000, record_witnesses, ..ChainConfig::default() };
        let runtime = Runtime::open(&dir.path().join("state.redb"), config).unwrap();
        runtime.init_genesis(&anvil_genesis(0)).unwrap();
        let name = |text: &str| kv_core::ModuleName::new(text).unwrap();
        let deployer_address = deployer();
        let erc20 = deployer_address.create(0);
        let reader = deployer_address.create(2);
        let token = runtime.module_identity(&name("token"), 1).to_address();
        let erc20_reader = runtime.module_identity(&name("erc20-reader"), 1).to_address();
        let mut xtoken = xstate_chain::demo::xtoken_bytecode().to_vec();
        xtoken.extend_from_slice(&word(deployer_address).to_be_bytes::<32>());
        let token_to = TxKind::Call(token);
        let mut setup = vec![
            signed(0, 0, TxKind::Create, xtoken.into(), 3_000_000),
            signed(
                0,
                1,
                TxKind::Call(erc20),
                calldata("mint(address,uint256)", &[word(alice()), U256::from(u64::MAX)]),
                200_000,
            ),
            signed(0, 2, TxKind::Create, xstate_chain::demo::wasm_reader_bytecode(), 3_000_000),
            deploy(0, 3, "token", TOKEN_WASM),
            deploy(0, 4, "erc20-reader", ERC20_READER_WASM),
            signed(1, 0, token_to, token_input(0x00, alice(), None).slice(..1), 1_000_000),
            signed(1, 1, token_to, token_input(0x01, alice(), Some(u64::MAX / 2)), 1_000_000),
        ];
        // Alice hands ERC-20 and WASM tokens to the other senders.
        for key in 2..=SENDERS {
            let holder = xstate_chain::dev::dev_address(key);
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
        let outcome =
            runtime.execute_block(&BlockInput { timestamp: 1, ..Default::default() }, &setup, |_| {}).unwrap();
        assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
        assert!(outcome.receipts.iter().all(|receipt| receipt.status.is_success()), "{:?}", outcome.receipts);
        let nonces = (0..=SENDERS)
            .map(|key| runtime.account(xstate_chain::dev::dev_address(key)).unwrap().map_or(0, |record| record.nonce))
            .collect();
        Self { runtime, nonces: RefCell::new(nonces), erc20, reader, token, erc20_reader, _dir: dir }
    }

    /// The next block's 1,000 signed transactions.
    pub fn next_block(&self) -> Vec<Bytes> {
        let mut nonces = self.nonces.borrow_mut();
        let mut reader_input = self.erc20.to_vec();
        reader_input.extend_from_slice(alice().as_slice());
        (0..TRANSACTIONS)
            .map(|index| {
                let key = 1 + u32::try_from(index).unwrap() % SENDERS;
                let nonce = nonces[key as usize];
                nonces[key as usize] += 1;
                let recipient = Address::with_last_byte(u8::try_from(index % 200).unwrap() + 1);
                let (to, input, gas) = match (index % 10, index % 2) {
                    (0, _) => (
                        TxKind::Call(self.reader),
                        calldata("readTokenBalance(address,address)", &[word(self.token), word(alice())]),
                        200_000,
                    ),
                    (1, _) => (TxKind::Call(self.erc20_reader), reader_input.clone().into(), 1_000_000),
                    (_, 0) => (
                        TxKind::Call(self.erc20),
                        calldata("transfer(address,uint256)", &[word(recipient), U256::from(1)]),
                        200_000,
                    ),
                    _ => (TxKind::Call(self.token), token_input(0x02, recipient, Some(1)), 1_000_000),
                };
                signed(key, nonce, to, input, gas)
            })
            .collect()
    }

    /// Executes and commits `raws` as the next block.
    pub fn execute(&self, raws: &[Bytes]) -> BlockTimes {
        let input = BlockInput { timestamp: self.runtime.latest_timestamp() + 1, ..Default::default() };
        let outcome = self.runtime.execute_block(&input, raws, |_| {}).unwrap();
        assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected.first());
        assert!(outcome.receipts.iter().all(|receipt| receipt.status.is_success()));
        BlockTimes { recovery: outcome.recovery_time, execution: outcome.execution_time, commit: outcome.commit_time }
    }
}

impl BlockTimes {
    /// The whole stateful block: recovery, execution and commit.
    pub fn total(&self) -> Duration {
        self.recovery + self.execution + self.commit
    }
}

/// One round of the stateless figures: the witness's size and the time to verify it.
pub struct StatelessTimes {
    /// The stateful block: recovery, execution and commit, its witness recorded.
    pub stateful: Duration,
    /// `verify_block` from the witness alone.
    pub verify: Duration,
    /// The witness's bytes.
    pub bytes: usize,
}

impl MixedBlock {
    /// Executes the next block, then reads back the witness it recorded and verifies the block
    /// from it, checking that verification reproduces the committed root.
    pub fn stateless_round(&self) -> StatelessTimes {
        let raws = self.next_block();
        let stateful = self.execute(&raws).total();
        let (header, _) = self.runtime.latest().unwrap();
        let (block, witness) = self.runtime.witness(header.number).unwrap();
        let mut verified = None;
        let verify = crate::harness::timed(|| verified = Some(verify_block(&block, &witness).unwrap()));
        assert_eq!(verified.unwrap().state_root, header.state_root);
        StatelessTimes { stateful, verify, bytes: witness.byte_len() }
    }
}

/// Runs phase E's wall-clock figures into `samples`.
pub fn wall(quick: bool, samples: &mut crate::harness::Samples) {
    use crate::harness::{Budget, pairs, repeats};
    let fixture = MixedBlock::new(true);
    let mut shares = Vec::new();
    let mut block = || {
        let raws = fixture.next_block();
        let times = fixture.execute(&raws);
        let total = times.total();
        shares.push((
            times.recovery.as_secs_f64() / total.as_secs_f64(),
            times.commit.as_secs_f64() / total.as_secs_f64(),
        ));
        total
    };
    let budget = Budget::new(quick);
    let times = repeats(budget, &mut block);
    // The warm-up runs pushed shares too; keep the recorded rounds only.
    let recorded = shares.split_off(shares.len() - times.len());
    samples.repeated("xstate/mixed_block_tx_per_s", times.iter().map(|ns| TRANSACTIONS as f64 * 1e9 / ns));
    samples.repeated("xstate/recovery_share", recorded.iter().map(|(recovery, _)| *recovery));
    samples.repeated("xstate/commit_share", recorded.iter().map(|(_, commit)| *commit));

    // Stateless blocks: fresh blocks on the same chain, each verified from the witness it recorded.
    let mut rounds = Vec::new();
    let mut round = || {
        let times = fixture.stateless_round();
        let stateful = times.stateful;
        rounds.push(times);
        stateful
    };
    let runs = repeats(Budget::new(quick), &mut round);
    let recorded = rounds.split_off(rounds.len() - runs.len());
    let ratio = |top: Duration, bottom: Duration| top.as_secs_f64() / bottom.as_secs_f64();
    samples.repeated("witness/bytes_per_tx", recorded.iter().map(|times| times.bytes as f64 / TRANSACTIONS as f64));
    samples.repeated("witness/verify_vs_execute", recorded.iter().map(|times| ratio(times.verify, times.stateful)));
    drop(fixture);

    // What recording costs: the same blocks on a chain that records and on one that does not.
    let (recording, plain) = (MixedBlock::new(true), MixedBlock::new(false));
    let mut with = || recording.execute(&recording.next_block()).total();
    let mut without = || plain.execute(&plain.next_block()).total();
    let measured = pairs(Budget::new(quick), &mut with, &mut without);
    samples.pair_ratios("witness/production_share", &measured, |a, b| a / b - 1.0);
    drop((recording, plain));
    crate::node_load::wall(quick, samples);
}
