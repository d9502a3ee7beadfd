//! `xstate node` against anvil, differentially: both start from their default genesis at the
//! same timestamp, receive the same signed transactions with the same block timestamps (ERC-20
//! deploy, mint, transfers with logs, a revert, a contract that self-destructs in its constructor,
//! one that self-destructs later, plain and legacy transfers), and must give the same receipts
//! (status, gas used, cumulative gas, logs, created address), the same block fields that follow
//! from execution, and the same state root, block after block.
//!
//! The roots are compared the one way anvil allows. From Prague, EIP-2935's history contract
//! stores each block's parent hash in the state, and anvil's block hashes cannot be ours: its
//! genesis header reports the empty trie's root as its stateRoot (it never computes one for
//! block 0), and it draws a random mixHash for every later block, so no node can reproduce its
//! hashes. So the test recomputes anvil's own stateRoot from the account leaves anvil reports
//! (`eth_getProof`: nonce, balance, code hash, storage root), which proves the account set whole
//! and the leaves what anvil commits to; checks that each chain's history contract holds exactly
//! that chain's own block hashes; and asserts that anvil's state with the history contract
//! holding our chain's block hashes has exactly our stateRoot. The genesis state needs no such
//! substitution: its root, computed from anvil's leaves, is our genesis header's stateRoot. One
//! more difference is anvil's own: it keeps an empty leaf for the contract created and
//! self-destructed in one transaction, which Ethereum deletes (EIP-6780, EIP-161); anvil's root is
//! recomputed with that leaf, Ethereum's (ours) without it.
//!
//! anvil comes from `@foundry-rs/anvil` in the committed clients lockfile (`cargo xtask clients`,
//! which `cargo xtask ci` runs, or `XSTATE_CLIENTS`); without it this test fails, never skips.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod support;

use alloy_consensus::{TxEip1559, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_eips::eip2935::HISTORY_STORAGE_ADDRESS;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use alloy_trie::{EMPTY_ROOT_HASH, KECCAK_EMPTY, TrieAccount};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{CHAIN_ID, GENESIS_TIME, Node};
use xstate_chain::demo::{calldata, erc20_balance_slot, word, xtoken_bytecode};
use xstate_chain::dev::{dev_address, sign};

fn anvil() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let clients = match std::env::var_os("XSTATE_CLIENTS") {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace.join("target"), PathBuf::from)
            .join("xtask/clients"),
    };
    // The binary of this platform's package, run directly: the `.bin/anvil` wrapper is a Node.js
    // script whose child would outlive a killed wrapper.
    let packages = clients.join("node_modules/@foundry-rs");
    let anvil = std::fs::read_dir(&packages).ok().and_then(|entries| {
        entries
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().starts_with("anvil-"))
            .map(|entry| entry.path().join("bin/anvil"))
            .find(|binary| binary.exists())
    });
    anvil.unwrap_or_else(|| {
        panic!(
            "no anvil binary under {}: run `cargo xtask clients` (cargo xtask ci does) or set XSTATE_CLIENTS",
            packages.display()
        )
    })
}

fn eip1559(key: u32, nonce: u64, to: TxKind, input: Bytes, value: U256, gas_limit: u64) -> Bytes {
    let transaction = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1_500_000_000,
        to,
        value,
        access_list: Default::default(),
        input,
    };
    sign(key, transaction).encoded_2718().into()
}

/// Init code that returns `runtime` as the contract's code.
fn returning(runtime: &[u8]) -> Bytes {
    let length = u8::try_from(runtime.len()).unwrap();
    let mut code = vec![0x60, length, 0x80, 0x60, 0x0b, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3];
    code.extend_from_slice(runtime);
    code.into()
}

/// Code that self-destructs to `heir`: `PUSH20 heir SELFDESTRUCT`.
fn self_destruct(heir: Address) -> Vec<u8> {
    let mut code = vec![0x73];
    code.extend_from_slice(heir.as_slice());
    code.push(0xff);
    code
}

/// The workload: raw transactions, one block each.
fn workload() -> Vec<Bytes> {
    let (deployer, alice, bob) = (dev_address(0), dev_address(1), dev_address(2));
    let token = deployer.create(0);
    let mut xtoken = xtoken_bytecode().to_vec();
    xtoken.extend_from_slice(&word(deployer).to_be_bytes::<32>());
    let heir = Address::repeat_byte(0x4e);
    let ether = U256::from(10).pow(U256::from(18));
    let legacy = TxLegacy {
        chain_id: Some(CHAIN_ID),
        nonce: 0,
        gas_price: 3_000_000_000,
        gas_limit: 21_000,
        to: TxKind::Call(bob),
        value: ether,
        input: Bytes::new(),
    };
    vec![
        eip1559(0, 0, TxKind::Create, xtoken.into(), U256::ZERO, 3_000_000),
        eip1559(
            0,
            1,
            TxKind::Call(token),
            calldata("mint(address,uint256)", &[word(alice), U256::from(1_000)]),
            U256::ZERO,
            200_000,
        ),
        eip1559(
            1,
            0,
            TxKind::Call(token),
            calldata("transfer(address,uint256)", &[word(bob), U256::from(250)]),
            U256::ZERO,
            200_000,
        ),
        // A revert: more than bob holds. It is included, pays and changes nothing else.
        eip1559(
            2,
            0,
            TxKind::Call(token),
            calldata("transfer(address,uint256)", &[word(alice), U256::from(1_000_000)]),
            U256::ZERO,
            200_000,
        ),
        eip1559(
            2,
            1,
            TxKind::Call(token),
            calldata("transfer(address,uint256)", &[word(alice), U256::from(50)]),
            U256::ZERO,
            200_000,
        ),
        // Created and destroyed in one transaction (EIP-6780): nothing of it remains, its value goes to the heir.
        eip1559(3, 0, TxKind::Create, self_destruct(heir).into(), ether, 100_000),
        // Deployed, then self-destructed later: only its balance moves.
        eip1559(3, 1, TxKind::Create, returning(&self_destruct(heir)), U256::ZERO, 100_000),
        eip1559(3, 2, TxKind::Call(dev_address(3).create(1)), Bytes::new(), ether, 100_000),
        sign(4, legacy).encoded_2718().into(),
        eip1559(5, 0, TxKind::Call(alice), Bytes::new(), U256::from(12_345), 21_000),
    ]
}

/// Every account the workload touches, and the system contracts.
fn touched() -> Vec<Address> {
    let mut accounts: Vec<Address> = (0..6).map(dev_address).collect();
    accounts.extend([
        dev_address(0).create(0),
        dev_address(3).create(0),
        dev_address(3).create(1),
        Address::repeat_byte(0x4e),
        Address::ZERO,
        alloy_eips::eip4788::BEACON_ROOTS_ADDRESS,
        xstate_chain::dev::CREATE2_DEPLOYER,
    ]);
    accounts
}

/// An account as `eth_getProof` reports it, with the ERC-20's balance slots: what its leaf in
/// the state trie commits to.
fn account_facts(node: &Node, account: Address) -> Value {
    let slots: Vec<String> =
        (0..3).map(|key| alloy_primitives::B256::from(erc20_balance_slot(dev_address(key))).to_string()).collect();
    let proof = node.call("eth_getProof", json!([account, slots, "latest"]));
    json!([
        proof["balance"],
        proof["nonce"],
        proof["codeHash"],
        proof["storageHash"],
        proof["storageProof"].as_array().unwrap().iter().map(|slot| slot["value"].clone()).collect::<Vec<_>>()
    ])
}

/// The block of the workload's contract that self-destructs in its constructor (its sixth
/// transaction).
const DESTROYED_AT_CREATION_BLOCK: u64 = 6;

/// Every account either node may hold: the default genesis's, and the workload's.
fn accounts() -> Vec<Address> {
    let mut accounts: Vec<Address> =
        xstate_chain::dev::anvil_genesis(0).accounts.into_iter().map(|(address, _)| address).collect();
    accounts.extend(touched());
    accounts.sort();
    accounts.dedup();
    accounts
}

/// `account`'s leaf in the state trie as `node` reports it through `eth_getProof` at the latest
/// block; `None` for an account the trie does not hold (an empty one).
fn leaf(node: &Node, account: Address) -> Option<TrieAccount> {
    let proof = node.call("eth_getProof", json!([account, [], "latest"]));
    let leaf = TrieAccount {
        nonce: u256(&proof["nonce"]).to(),
        balance: u256(&proof["balance"]),
        storage_root: proof["storageHash"].as_str().unwrap().parse().unwrap(),
        code_hash: proof["codeHash"].as_str().unwrap().parse().unwrap(),
    };
    let empty = leaf.nonce == 0
        && leaf.balance.is_zero()
        && leaf.code_hash == KECCAK_EMPTY
        && leaf.storage_root == EMPTY_ROOT_HASH;
    (!empty).then_some(leaf)
}

fn u256(value: &Value) -> U256 {
    value.as_str().unwrap().parse().unwrap()
}

fn state_root(node: &Node, block: &str) -> B256 {
    node.call("eth_getBlockByNumber", json!([block, false]))["stateRoot"].as_str().unwrap().parse().unwrap()
}

/// The storage root EIP-2935's contract has after block `latest` of `node`'s chain: slot
/// `n % 8191` holds the hash of block `n`, for each parent `0..latest`.
fn history_root(node: &Node, latest: u64) -> B256 {
    let slots = (0..latest).map(|number| {
        let hash: B256 = node.call("eth_getBlockByNumber", json!([format!("{number:#x}"), false]))["hash"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        (B256::from(U256::from(number % 8191)), U256::from_be_bytes(hash.0))
    });
    alloy_trie::root::storage_root_unhashed(slots)
}

/// The state roots of both nodes at their latest block `number`, compared as the module's
/// documentation says: anvil's root recomputed from its leaves, each history contract holding
/// its chain's hashes, and anvil's state with our hashes giving our root.
fn assert_equal_roots(ours: &Node, anvil: &Node, number: u64) {
    let tag = format!("{number:#x}");
    let anvil_leaves: Vec<(Address, TrieAccount)> =
        accounts().into_iter().filter_map(|account| leaf(anvil, account).map(|leaf| (account, leaf))).collect();
    if number > 0 {
        // anvil keeps an empty leaf for the contract created and self-destructed in one
        // transaction (block 6 on), which Ethereum deletes (EIP-6780 keeps the old deletion
        // for that case, and EIP-161 leaves no empty account): its trie holds that leaf, so
        // its root is recomputed with it, and Ethereum's (ours) without it.
        let mut anvil_trie = anvil_leaves.clone();
        if number >= DESTROYED_AT_CREATION_BLOCK {
            let empty =
                TrieAccount { nonce: 0, balance: U256::ZERO, storage_root: EMPTY_ROOT_HASH, code_hash: KECCAK_EMPTY };
            anvil_trie.push((dev_address(3).create(0), empty));
        }
        assert_eq!(
            alloy_trie::root::state_root_unhashed(anvil_trie),
            state_root(anvil, &tag),
            "anvil's root from its own leaves at block {number}: an account is missing from the set"
        );
    }
    let our_history = leaf(ours, HISTORY_STORAGE_ADDRESS);
    for (node, history) in [(ours, &our_history), (anvil, &leaf(anvil, HISTORY_STORAGE_ADDRESS))] {
        assert_eq!(
            history.unwrap().storage_root,
            history_root(node, number),
            "the history contract of {} holds its own block hashes at block {number}",
            node.url()
        );
    }
    let with_our_hashes: Vec<(Address, TrieAccount)> = anvil_leaves
        .into_iter()
        .map(|(account, leaf)| match account {
            HISTORY_STORAGE_ADDRESS => (account, our_history.unwrap()),
            _ => (account, leaf),
        })
        .collect();
    assert_eq!(
        alloy_trie::root::state_root_unhashed(with_our_hashes),
        state_root(ours, &tag),
        "anvil's state with our block hashes has our root at block {number}"
    );
}

/// What execution decides in a receipt.
fn receipt_facts(receipt: &Value) -> Value {
    let logs: Vec<Value> = receipt["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|log| {
            json!([log["address"].as_str().unwrap().to_lowercase(), log["topics"], log["data"], log["logIndex"]])
        })
        .collect();
    json!({
        "status": receipt["status"],
        "gasUsed": receipt["gasUsed"],
        "cumulativeGasUsed": receipt["cumulativeGasUsed"],
        "effectiveGasPrice": receipt["effectiveGasPrice"],
        "contractAddress": receipt["contractAddress"].as_str().map(str::to_lowercase),
        "logsBloom": receipt["logsBloom"],
        "logs": logs,
        "type": receipt["type"],
    })
}

/// What execution decides in a block header.
fn block_facts(block: &Value) -> Value {
    json!({
        "number": block["number"],
        "receiptsRoot": block["receiptsRoot"],
        "transactionsRoot": block["transactionsRoot"],
        "logsBloom": block["logsBloom"],
        "gasUsed": block["gasUsed"],
        "gasLimit": block["gasLimit"],
        "baseFeePerGas": block["baseFeePerGas"],
        "timestamp": block["timestamp"],
        "miner": block["miner"],
    })
}

#[test]
fn the_same_signed_transactions_give_anvils_receipts_and_state_roots() {
    let mut command = Command::new(anvil());
    command.args(["--port", "0", "--timestamp", GENESIS_TIME, "--chain-id", &CHAIN_ID.to_string()]);
    let anvil = Node::spawn(command);
    let dir = tempfile::tempdir().unwrap();
    let ours = Node::start(dir.path(), &[]);

    // anvil reports the empty trie's root as its genesis block's stateRoot (it never computes
    // one for block 0), so the genesis state is compared through block 1's root, which covers it.
    let genesis = |node: &Node| {
        let mut facts = block_facts(&node.call("eth_getBlockByNumber", json!(["0x0", false])));
        facts["stateRoot"] = Value::Null;
        facts
    };
    assert_eq!(genesis(&ours), genesis(&anvil), "the default genesis header differs from anvil's");
    assert_eq!(state_root(&anvil, "0x0"), EMPTY_ROOT_HASH, "anvil's genesis header reports the empty trie's root");
    assert_equal_roots(&ours, &anvil, 0);

    let start: u64 = GENESIS_TIME.parse().unwrap();
    for (index, raw) in workload().iter().enumerate() {
        let timestamp = start + 12 * (index as u64 + 1);
        let mut receipts = Vec::new();
        for node in [&ours, &anvil] {
            node.call("evm_setNextBlockTimestamp", json!([timestamp]));
            let hash = node.send(raw);
            // anvil mines a moment after it answers the send; ours before.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            let receipt = loop {
                let receipt = node.call("eth_getTransactionReceipt", json!([hash]));
                if !receipt.is_null() {
                    break receipt;
                }
                assert!(std::time::Instant::now() < deadline, "transaction {index} was not mined by {}", node.url());
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            receipts.push(receipt);
        }
        assert_eq!(receipt_facts(&receipts[0]), receipt_facts(&receipts[1]), "receipt of transaction {index}");
        let latest = |node: &Node| block_facts(&node.call("eth_getBlockByNumber", json!(["latest", false])));
        assert_eq!(latest(&ours), latest(&anvil), "block of transaction {index}");
        for account in touched() {
            assert_eq!(
                account_facts(&ours, account),
                account_facts(&anvil, account),
                "{account} after transaction {index}"
            );
        }
        assert_equal_roots(&ours, &anvil, index as u64 + 1);
    }
    let statuses: Vec<Value> = (1..=workload().len())
        .map(|number| {
            let block = ours.call("eth_getBlockByNumber", json!([format!("{number:#x}"), false]));
            ours.call("eth_getTransactionReceipt", json!([block["transactions"][0]]))["status"].clone()
        })
        .collect();
    assert_eq!(statuses[3], json!("0x0"), "the workload holds a revert");
    assert_eq!(statuses.iter().filter(|status| **status == json!("0x1")).count(), workload().len() - 1);
    // The contract created and destroyed at once left nothing; the later one kept its code.
    let heir = Address::repeat_byte(0x4e);
    for node in [&ours, &anvil] {
        assert_eq!(node.call("eth_getCode", json!([dev_address(3).create(0), "latest"])), json!("0x"));
        assert_eq!(
            node.quantity("eth_getBalance", json!([heir, "latest"])),
            U256::from(2) * U256::from(10).pow(U256::from(18))
        );
    }
}
