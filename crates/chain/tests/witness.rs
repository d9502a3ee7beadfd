//! Stateless blocks through the library: the witness of the demo block and of random blocks of
//! both engines (token and ERC-20 transfers that empty balances and delete slots, new accounts
//! beside updated ones, cross reads both ways, a contract that self-destructs in its creation,
//! `BLOCKHASH`) verifies with no store and reproduces the header's state root, receipts root and
//! gas; a tampered witness or block fails with an error that names what was wrong.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use alloy_consensus::TxEip1559;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use proptest::prelude::*;
use xstate_chain::demo::{self, ALICE_KEY, BOB_KEY, DEPLOYER_KEY, DemoRun, calldata, token_input};
use xstate_chain::dev::{anvil_genesis, dev_address, sign};
use xstate_chain::{BlockInput, BlockWitness, ChainConfig, Runtime, StatelessBlock, VerifyError, verify_block};

const BLOCKHASH_READER: Address = Address::repeat_byte(0xb1);

/// A runtime with anvil's genesis plus a contract that stores `BLOCKHASH(NUMBER - 1)` and
/// `BLOCKHASH(NUMBER - 2)`, with the demo block as block 1.
fn demo_chain() -> (Runtime, DemoRun) {
    let runtime = Runtime::in_memory(ChainConfig::default());
    let mut genesis = anvil_genesis(1_000);
    // NUMBER 1 SWAP1 SUB BLOCKHASH PUSH0 SSTORE; NUMBER 2 SWAP1 SUB BLOCKHASH 1 SSTORE; STOP
    let code = vec![
        0x43, 0x60, 0x01, 0x90, 0x03, 0x40, 0x5f, 0x55, 0x43, 0x60, 0x02, 0x90, 0x03, 0x40, 0x60, 0x01, 0x55, 0x00,
    ];
    genesis.accounts.push((BLOCKHASH_READER, evm_binding::GenesisAccount { code, ..Default::default() }));
    runtime.init_genesis(&genesis).unwrap();
    let block = demo::block(&runtime);
    let run = block.run(&runtime, &BlockInput { timestamp: 1_001, ..Default::default() }, |_| {}).unwrap();
    (runtime, run)
}

/// One transaction of a random block.
#[derive(Clone, Debug)]
enum Step {
    /// An ERC-20 transfer of `percent` of the sender's balance (100: the slot is deleted).
    Erc20 { from: u32, to: u32, percent: u8 },
    /// A WASM token transfer of `percent` of the sender's balance.
    Token { from: u32, to: u32, percent: u8 },
    /// A WASM token mint to a fresh holder.
    Mint { to: u8, amount: u64 },
    /// Ether to a fresh or existing address.
    Pay { from: u32, to: u8, amount: u64 },
    /// The EVM reads a WASM balance through the precompile.
    ReadWasm { holder: u32 },
    /// WASM reads an ERC-20 balance through `evm_storage_read`.
    ReadEvm { holder: u32 },
    /// A contract whose init code self-destructs, sending its value to a fresh address.
    SelfDestruct { to: u8 },
    /// The `BLOCKHASH` reader.
    BlockHash,
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let key = 1u32..4;
    prop_oneof![
        3 => (key.clone(), key.clone(), prop::sample::select(vec![10u8, 50, 100])).prop_map(|(from, to, percent)| Step::Erc20 { from, to, percent }),
        3 => (key.clone(), key.clone(), prop::sample::select(vec![10u8, 50, 100])).prop_map(|(from, to, percent)| Step::Token { from, to, percent }),
        2 => (any::<u8>(), 1u64..1000).prop_map(|(to, amount)| Step::Mint { to, amount }),
        2 => (key.clone(), any::<u8>(), 1u64..1_000_000).prop_map(|(from, to, amount)| Step::Pay { from, to, amount }),
        1 => key.clone().prop_map(|holder| Step::ReadWasm { holder }),
        1 => key.clone().prop_map(|holder| Step::ReadEvm { holder }),
        1 => any::<u8>().prop_map(|to| Step::SelfDestruct { to }),
        1 => Just(Step::BlockHash),
    ]
}

fn fresh(byte: u8) -> Address {
    Address::from_word(keccak256([byte, 0x77]))
}

/// Signs the steps as the next block of `runtime` and executes it.
fn run_steps(runtime: &Runtime, run: &DemoRun, steps: &[Step], timestamp: u64) {
    let mut nonces = std::collections::HashMap::new();
    let mut raws = Vec::new();
    let base_fee = u128::from(runtime.next_base_fee());
    let erc20_balance = |holder: Address| {
        let key = kv_core::Namespace::evm(run.erc20).word_key(&demo::erc20_balance_slot(holder).to_be_bytes::<32>());
        runtime.get(&key).unwrap().map_or(U256::ZERO, |value| U256::from_be_slice(&value))
    };
    let token_balance = |holder: Address| {
        let key = kv_core::Namespace::wasm(run.token).slot_key(demo::token_balance_slot(holder));
        runtime.get(&key).unwrap().map_or(0u64, |value| u64::from_be_bytes(value.try_into().unwrap()))
    };
    for step in steps {
        let (key, to, value, input): (u32, TxKind, U256, Bytes) = match *step {
            Step::Erc20 { from, to, percent } => {
                let amount = erc20_balance(dev_address(from)) * U256::from(percent) / U256::from(100);
                let data = calldata("transfer(address,uint256)", &[demo::word(dev_address(to)), amount]);
                (from, TxKind::Call(run.erc20), U256::ZERO, data)
            }
            Step::Token { from, to, percent } => {
                let amount = token_balance(dev_address(from)) * u64::from(percent) / 100;
                (
                    from,
                    TxKind::Call(run.token.to_address()),
                    U256::ZERO,
                    token_input(0x02, dev_address(to), Some(amount)),
                )
            }
            Step::Mint { to, amount } => (
                ALICE_KEY,
                TxKind::Call(run.token.to_address()),
                U256::ZERO,
                token_input(0x01, fresh(to), Some(amount)),
            ),
            Step::Pay { from, to, amount } => (from, TxKind::Call(fresh(to)), U256::from(amount), Bytes::new()),
            Step::ReadWasm { holder } => (
                BOB_KEY,
                TxKind::Call(run.reader),
                U256::ZERO,
                calldata(
                    "readTokenBalance(address,address)",
                    &[demo::word(run.token.to_address()), demo::word(dev_address(holder))],
                ),
            ),
            Step::ReadEvm { holder } => {
                let mut input = run.erc20.to_vec();
                input.extend_from_slice(dev_address(holder).as_slice());
                (BOB_KEY, TxKind::Call(run.erc20_reader.to_address()), U256::ZERO, input.into())
            }
            Step::SelfDestruct { to } => {
                let mut init = vec![0x73];
                init.extend_from_slice(fresh(to).as_slice());
                init.push(0xff);
                (DEPLOYER_KEY, TxKind::Create, U256::from(7), init.into())
            }
            Step::BlockHash => (BOB_KEY, TxKind::Call(BLOCKHASH_READER), U256::ZERO, Bytes::new()),
        };
        let nonce = *nonces
            .entry(key)
            .or_insert_with(|| runtime.account(dev_address(key)).unwrap().map_or(0, |record| record.nonce));
        nonces.insert(key, nonce + 1);
        let transaction = TxEip1559 {
            chain_id: runtime.chain_id(),
            nonce,
            gas_limit: 1_000_000,
            max_fee_per_gas: 2 * base_fee + 1,
            max_priority_fee_per_gas: 1,
            to,
            value,
            access_list: Default::default(),
            input,
        };
        raws.push(Bytes::from(sign(key, transaction).encoded_2718()));
    }
    let outcome = runtime.execute_block(&BlockInput { timestamp, ..Default::default() }, &raws, |_| {}).unwrap();
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
}

/// The witness of `number`, recorded while the block ran, is the one re-executing the block
/// gives, and verifies, reproducing the committed header; returns it.
fn verified(runtime: &Runtime, number: u64) -> (StatelessBlock, BlockWitness) {
    assert!(runtime.chain().witness(number).unwrap().is_some(), "block {number} recorded its witness");
    let (block, witness) = runtime.witness(number).unwrap();
    let (reexecuted_block, reexecuted) = runtime.reexecuted_witness(number).unwrap();
    assert_eq!(reexecuted_block, block);
    assert_eq!(witness, reexecuted, "the witness recorded while block {number} ran is the one re-execution gives");
    let verified = verify_block(&block, &witness).unwrap();
    let header = &runtime.block(number).unwrap().unwrap().header;
    assert_eq!(verified.state_root, header.state_root);
    assert_eq!(verified.state_root, runtime.root_at(Some(number)).unwrap());
    assert_eq!(verified.receipts_root, header.receipts_root);
    assert_eq!(verified.gas_used, header.gas_used);
    assert_eq!(verified.hash, header.hash_slow());
    (block, witness)
}

#[test]
fn the_demo_block_verifies_from_its_witness_and_round_trips_as_json() {
    let (runtime, _) = demo_chain();
    let (block, witness) = verified(&runtime, 1);
    // The demo deploys both modules and two contracts: their code is written, not read, so the
    // witness carries only the genesis code the block runs (the system contracts it calls).
    assert!(!witness.state.is_empty() && !witness.keys.is_empty());
    assert_eq!(witness.headers.len(), 1, "only the parent: the demo reads no BLOCKHASH");
    let text = serde_json::to_string(&witness.to_json()).unwrap();
    assert_eq!(BlockWitness::from_json(&text).unwrap(), witness);
    let text = serde_json::to_string(&block.to_json()).unwrap();
    assert_eq!(StatelessBlock::from_json(&text).unwrap(), block);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Random blocks of both engines over the demo's state, two in a row so the second runs over
    /// state the first changed: every witness verifies and reproduces the store's root.
    #[test]
    fn random_blocks_verify_from_their_witnesses(
        first in prop::collection::vec(step_strategy(), 1..14),
        second in prop::collection::vec(step_strategy(), 1..14),
    ) {
        let (runtime, run) = demo_chain();
        run_steps(&runtime, &run, &first, 1_002);
        run_steps(&runtime, &run, &second, 1_003);
        verified(&runtime, 2);
        let (_, witness) = verified(&runtime, 3);
        if second.iter().any(|step| matches!(step, Step::BlockHash)) {
            prop_assert_eq!(witness.headers.len(), 2, "BLOCKHASH(n - 2) reaches the grandparent");
        }
    }
}

/// A chain with three blocks whose last runs code of every kind: the tamper cases' subject.
fn tamper_subject() -> (StatelessBlock, BlockWitness, Runtime) {
    let (runtime, run) = demo_chain();
    let steps = [
        Step::Erc20 { from: 2, to: 3, percent: 100 },
        Step::Token { from: 1, to: 3, percent: 50 },
        Step::ReadEvm { holder: 3 },
        Step::ReadWasm { holder: 3 },
    ];
    run_steps(&runtime, &run, &steps, 1_002);
    run_steps(
        &runtime,
        &run,
        &[Step::BlockHash, Step::Token { from: 3, to: 1, percent: 100 }, Step::ReadWasm { holder: 1 }],
        1_003,
    );
    let (block, witness) = verified(&runtime, 3);
    (block, witness, runtime)
}

fn error_of(block: &StatelessBlock, witness: &BlockWitness) -> String {
    verify_block(block, witness).unwrap_err().to_string()
}

#[test]
fn tampered_witnesses_fail_naming_the_fault() {
    let (block, witness, runtime) = tamper_subject();

    // A node changed: the changed node is reachable from no reference.
    let mut changed = witness.clone();
    let index = changed.state.iter().position(|node| node.len() > 40).unwrap();
    let mut node = changed.state[index].to_vec();
    let last = node.len() - 2;
    node[last] ^= 0x01;
    changed.state[index] = node.clone().into();
    let error = error_of(&block, &changed);
    assert!(error.contains("not reachable") && error.contains(&keccak256(&node).to_string()), "{error}");

    // A node removed: named by hash when the block needs it (or its orphaned child is named).
    let mut removed = witness.clone();
    let gone = removed.state.remove(removed.state.len() / 2);
    let error = error_of(&block, &removed);
    assert!(error.contains(&keccak256(&gone).to_string()) || error.contains("not reachable"), "{error}");

    // A node added.
    let mut added = witness.clone();
    let stranger: Bytes = alloy_rlp::encode(vec![Bytes::from(vec![0x20, 9]), Bytes::from(vec![5; 40])]).into();
    added.state.push(stranger.clone());
    let error = error_of(&block, &added);
    assert!(error.contains(&keccak256(&stranger).to_string()) && error.contains("not reachable"), "{error}");

    // A code blob swapped for another: the one the account names is missing, by hash.
    let mut swapped = witness.clone();
    let original = keccak256(&swapped.codes[0]);
    let mut code = swapped.codes[0].to_vec();
    code.push(0x00);
    swapped.codes[0] = code.into();
    let error = error_of(&block, &swapped);
    assert!(error.contains(&format!("the code blob {original}")), "{error}");

    // A value flipped in a leaf (an account's balance or a storage word): that leaf no longer
    // hashes to the reference its parent holds.
    let mut flipped = witness.clone();
    let index = flipped
        .state
        .iter()
        .position(|node| {
            matches!(
                alloy_rlp::decode_exact::<alloy_trie::nodes::TrieNode>(node.as_ref()),
                Ok(alloy_trie::nodes::TrieNode::Leaf(_))
            )
        })
        .unwrap();
    let mut node = flipped.state[index].to_vec();
    let last = node.len() - 1;
    node[last] ^= 0x01;
    flipped.state[index] = node.clone().into();
    let error = error_of(&block, &flipped);
    assert!(error.contains(&keccak256(&node).to_string()), "{error}");

    // A witness of another block: its parent header is not this block's parent.
    let (_, other) = runtime.witness(2).unwrap();
    let error = error_of(&block, &other);
    assert!(error.contains("holds no header of the block's parent"), "{error}");
    let mut foreign = other.clone();
    foreign.headers = witness.headers.clone();
    let error = error_of(&block, &foreign);
    assert!(error.contains("parent state root node") || error.contains("does not prove"), "{error}");

    // A header the block's BLOCKHASH reached, missing.
    let mut short = witness.clone();
    short.headers.remove(0);
    let error = verify_block(&block, &short).unwrap_err();
    assert!(matches!(error, VerifyError::MissingBlockHash(1)), "{error}");

    // A header that is not an ancestor.
    let mut stray = witness.clone();
    let block_one = runtime.block(1).unwrap().unwrap().header;
    let mut not_ancestor = block_one.clone();
    not_ancestor.timestamp += 1;
    stray.headers.insert(0, alloy_rlp::encode(&not_ancestor).into());
    let error = error_of(&block, &stray);
    assert!(error.contains("is not an ancestor"), "{error}");
}

#[test]
fn a_tampered_block_fails_naming_the_field() {
    let (block, witness, _) = tamper_subject();
    let mut wrong_root = block.clone();
    wrong_root.header.state_root = B256::repeat_byte(1);
    assert!(error_of(&wrong_root, &witness).contains("state root"));
    let mut wrong_gas = block.clone();
    wrong_gas.header.gas_used += 1;
    assert!(error_of(&wrong_gas, &witness).contains("gas used"));
    let mut wrong_receipts = block.clone();
    wrong_receipts.header.receipts_root = B256::repeat_byte(2);
    assert!(error_of(&wrong_receipts, &witness).contains("receipts root"));
    let mut dropped = block.clone();
    dropped.transactions.pop();
    let error = error_of(&dropped, &witness);
    assert!(error.contains("gas used") || error.contains("root") || error.contains("does not prove"), "{error}");
}

/// A runtime on an in-memory store that keeps only the latest `retained` states.
fn chain_retaining(retained: u64, record_witnesses: bool) -> (Runtime, DemoRun) {
    let store = kv_core::Store::in_memory_with(kv_core::StoreConfig { retained_roots: retained, rewindable: true });
    let runtime = Runtime::new(store, ChainConfig { record_witnesses, ..ChainConfig::default() }).unwrap();
    runtime.init_genesis(&anvil_genesis(1_000)).unwrap();
    let run =
        demo::block(&runtime).run(&runtime, &BlockInput { timestamp: 1_001, ..Default::default() }, |_| {}).unwrap();
    (runtime, run)
}

/// A recorded witness is kept with its block, so it is served, and verifies, after the store has
/// pruned the parent state that re-execution would need.
#[test]
fn a_recorded_witness_outlives_its_parent_state() {
    let (runtime, run) = chain_retaining(2, true);
    let steps = [Step::Token { from: 1, to: 2, percent: 50 }, Step::ReadEvm { holder: 1 }];
    for timestamp in 1_002..1_006 {
        run_steps(&runtime, &run, &steps, timestamp);
    }
    let error = runtime.reexecuted_witness(2).unwrap_err().to_string();
    assert!(error.contains("retained") || error.contains("pruned"), "{error}");
    let (block, witness) = runtime.witness(2).unwrap();
    let verified = verify_block(&block, &witness).unwrap();
    assert_eq!(verified.state_root, runtime.block(2).unwrap().unwrap().header.state_root);
}

/// A runtime that does not record witnesses keeps none, and still witnesses a block whose parent
/// state it retains, by re-executing it; the two runtimes' witnesses of the same block agree.
#[test]
fn without_recording_a_block_is_witnessed_by_reexecution() {
    let (plain, plain_run) = chain_retaining(128, false);
    let (recording, recording_run) = chain_retaining(128, true);
    let steps =
        [Step::Erc20 { from: 1, to: 2, percent: 100 }, Step::ReadWasm { holder: 1 }, Step::Mint { to: 9, amount: 5 }];
    run_steps(&plain, &plain_run, &steps, 1_002);
    run_steps(&recording, &recording_run, &steps, 1_002);
    assert!(plain.chain().witness(2).unwrap().is_none(), "nothing recorded");
    let (block, witness) = plain.witness(2).unwrap();
    verify_block(&block, &witness).unwrap();
    assert_eq!(recording.witness(2).unwrap(), (block, witness));
}

/// A rewind drops the witnesses of the blocks it drops with them; the block mined in their place
/// records its own.
#[test]
fn a_rewind_drops_the_witnesses_of_the_dropped_blocks() {
    let (runtime, run) = demo_chain();
    run_steps(&runtime, &run, &[Step::Token { from: 1, to: 2, percent: 10 }], 1_002);
    let (_, dropped) = runtime.witness(2).unwrap();
    runtime.rewind_to(1).unwrap();
    assert!(runtime.chain().witness(2).unwrap().is_none(), "the dropped block's witness is gone");
    run_steps(&runtime, &run, &[Step::Erc20 { from: 2, to: 3, percent: 50 }], 1_002);
    let (_, witness) = verified(&runtime, 2);
    assert_ne!(witness, dropped);
}

/// A stored witness record that does not decode is reported as a corrupt record, not served.
#[test]
fn a_corrupt_witness_record_is_an_error() {
    let (runtime, run) = demo_chain();
    run_steps(&runtime, &run, &[Step::Pay { from: 1, to: 3, amount: 9 }], 1_002);
    runtime.store().set_label("chain/witness/0000000000000002", b"\xc3junk").unwrap();
    let error = runtime.witness(2).unwrap_err().to_string();
    assert!(error.contains("witness"), "{error}");
}
