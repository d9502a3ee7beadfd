//! `xstate node` over loopback, driven as a client drives it: plain HTTP requests carrying
//! JSON-RPC (single calls and batches) to the running binary on a port the system chose. The
//! core methods answer in Ethereum's shapes, each transaction is mined at once, bad input of
//! every kind is an error response after which the node keeps serving, SIGTERM and SIGINT close
//! the store cleanly, and a restart finds everything again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use alloy_consensus::{TxEip1559, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};
use xstate_chain::demo::{TOKEN_WASM, calldata, erc20_balance_slot, token_input, word, xtoken_bytecode};
use xstate_chain::dev::{dev_address, sign};
use xstate_chain::{WASM_DEPLOY_ADDRESS, deployCall};

mod support;

use support::{CHAIN_ID, Node};

fn eip1559(key: u32, nonce: u64, to: TxKind, input: Bytes, gas_limit: u64) -> Bytes {
    let transaction = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to,
        value: U256::ZERO,
        access_list: Default::default(),
        input,
    };
    sign(key, transaction).encoded_2718().into()
}

fn transfer_eth(key: u32, nonce: u64, to: Address, value: U256) -> Bytes {
    let transaction = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value,
        access_list: Default::default(),
        input: Bytes::new(),
    };
    sign(key, transaction).encoded_2718().into()
}

fn xtoken_deploy(key: u32, nonce: u64) -> Bytes {
    let mut code = xtoken_bytecode().to_vec();
    code.extend_from_slice(&word(dev_address(key)).to_be_bytes::<32>());
    eip1559(key, nonce, TxKind::Create, code.into(), 3_000_000)
}

fn u256(value: &Value) -> U256 {
    value.as_str().unwrap().parse().unwrap()
}

fn address(value: &Value) -> Address {
    value.as_str().unwrap().parse().unwrap()
}

fn topic(address: Address) -> String {
    B256::left_padding_from(address.as_slice()).to_string()
}

#[test]
fn the_core_methods_answer_in_ethereums_shapes_and_each_transaction_is_mined_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let banner = node.banner();
    assert!(banner.contains(&dev_address(0).to_string()), "{banner}");
    assert!(banner.contains("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"), "{banner}");
    assert!(banner.contains("test test test test test test test test test test test junk"));

    assert_eq!(node.call("eth_chainId", json!([])), json!("0x7a69"));
    assert_eq!(node.call("net_version", json!([])), json!("31337"));
    assert!(node.call("web3_clientVersion", json!([])).as_str().unwrap().starts_with("xstate/v"));
    let accounts = node.call("eth_accounts", json!([]));
    assert_eq!(accounts.as_array().unwrap().len(), 10);
    assert_eq!(address(&accounts[0]), dev_address(0));
    assert_eq!(node.block_number(), 0);
    let genesis = node.call("eth_getBlockByNumber", json!(["0x0", false]));
    assert_eq!(genesis["timestamp"], json!("0x6553f100"));
    assert_eq!(genesis["baseFeePerGas"], json!("0x3b9aca00"));
    assert_eq!(genesis["gasLimit"], json!("0x1c9c380"));
    assert_eq!(genesis["miner"], json!(Address::ZERO.to_string()));
    for field in [
        "hash",
        "parentHash",
        "sha3Uncles",
        "stateRoot",
        "transactionsRoot",
        "receiptsRoot",
        "logsBloom",
        "difficulty",
        "number",
        "gasUsed",
        "extraData",
        "mixHash",
        "nonce",
        "withdrawalsRoot",
        "blobGasUsed",
        "excessBlobGas",
        "parentBeaconBlockRoot",
        "requestsHash",
        "size",
    ] {
        assert!(genesis.get(field).is_some(), "the genesis block has no {field}: {genesis}");
    }
    assert_eq!(node.quantity("eth_getBalance", json!([dev_address(1), "latest"])), xstate_chain::dev::DEV_BALANCE);
    assert!(node.call("eth_getBlockByNumber", json!(["0x5", false])).is_null());

    // The ERC-20: deployed, minted, transferred, each in a block of its own.
    let deployer = dev_address(0);
    let before = node.quantity("eth_getBalance", json!([deployer, "latest"]));
    let receipt = node.send_and_receipt(&xtoken_deploy(0, 0));
    assert_eq!(receipt["status"], json!("0x1"));
    assert_eq!(receipt["blockNumber"], json!("0x1"));
    let token = address(&receipt["contractAddress"]);
    assert_eq!(token, deployer.create(0));
    let fee = u256(&receipt["gasUsed"]) * u256(&receipt["effectiveGasPrice"]);
    assert_eq!(node.quantity("eth_getBalance", json!([deployer, "latest"])), before - fee);
    assert_eq!(node.quantity("eth_getBalance", json!([deployer, "0x0"])), before);
    assert_eq!(node.block_number(), 1);
    assert!(!node.call("eth_getCode", json!([token, "latest"])).as_str().unwrap().trim_start_matches("0x").is_empty());
    assert_eq!(node.call("eth_getCode", json!([token, "0x0"])), json!("0x"));

    let (alice, bob) = (dev_address(1), dev_address(2));
    let mint = calldata("mint(address,uint256)", &[word(alice), U256::from(1_000)]);
    assert_eq!(node.send_and_receipt(&eip1559(0, 1, TxKind::Call(token), mint, 200_000))["status"], json!("0x1"));
    let transfer = calldata("transfer(address,uint256)", &[word(bob), U256::from(250)]);
    let estimate = node.quantity("eth_estimateGas", json!([{ "from": alice, "to": token, "data": transfer.clone() }]));
    let raw = eip1559(1, 0, TxKind::Call(token), transfer.clone(), 200_000);
    let hash = node.send(&raw);
    let receipt = node.call("eth_getTransactionReceipt", json!([hash]));
    assert_eq!(receipt["status"], json!("0x1"));
    let gas_used = u256(&receipt["gasUsed"]);
    assert!(estimate >= gas_used && estimate < gas_used + U256::from(5_000), "estimate {estimate}, used {gas_used}");
    let logs = receipt["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1);
    let transfer_topic = keccak256("Transfer(address,address,uint256)").to_string();
    assert_eq!(logs[0]["topics"][0], json!(transfer_topic));

    let transaction = node.call("eth_getTransactionByHash", json!([hash]));
    assert_eq!(address(&transaction["from"]), alice);
    assert_eq!(transaction["nonce"], json!("0x0"));
    assert_eq!(transaction["blockNumber"], json!("0x3"));
    assert_eq!(transaction["input"], json!(transfer.to_string()));
    let block = node.call("eth_getBlockByNumber", json!(["latest", true]));
    assert_eq!(block["transactions"][0]["hash"], json!(hash.to_string()));
    let by_hash = node.call("eth_getBlockByHash", json!([block["hash"], false]));
    assert_eq!(by_hash["transactions"], json!([hash.to_string()]));
    assert_eq!(by_hash["stateRoot"], block["stateRoot"]);
    assert!(node.call("eth_getTransactionReceipt", json!([B256::repeat_byte(7)])).is_null());

    // The Transfer event, by address and topics, by range and by block hash.
    let filter = json!({ "fromBlock": "0x0", "toBlock": "latest", "address": token,
        "topics": [transfer_topic, topic(alice), topic(bob)] });
    let found = node.call("eth_getLogs", json!([filter]));
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["transactionHash"], json!(hash.to_string()));
    assert_eq!(u256(&found[0]["data"]), U256::from(250));
    let at_hash = node.call("eth_getLogs", json!([{ "blockHash": block["hash"], "address": token }]));
    assert_eq!(at_hash, found);
    let none = node.call("eth_getLogs", json!([{ "fromBlock": "0x0", "toBlock": "latest", "topics": [[topic(bob)]] }]));
    assert_eq!(none, json!([]));

    // Views, storage and nonces.
    let balance_of = |holder: Address| {
        let data = calldata("balanceOf(address)", &[word(holder)]);
        u256(&node.call("eth_call", json!([{ "to": token, "data": data }, "latest"])))
    };
    assert_eq!(balance_of(alice), U256::from(750));
    assert_eq!(balance_of(bob), U256::from(250));
    let slot = erc20_balance_slot(bob);
    assert_eq!(u256(&node.call("eth_getStorageAt", json!([token, slot, "latest"]))), U256::from(250));
    assert_eq!(u256(&node.call("eth_getStorageAt", json!([token, slot, "0x2"]))), U256::ZERO);
    assert_eq!(node.quantity("eth_getTransactionCount", json!([deployer, "pending"])), U256::from(2));
    assert_eq!(node.quantity("eth_getTransactionCount", json!([alice, "latest"])), U256::from(1));
    assert_eq!(node.quantity("eth_getTransactionCount", json!([alice, "0x2"])), U256::ZERO);

    // A revert: code 3 with the revert data (OpenZeppelin's ERC20InsufficientBalance error).
    let too_much = calldata("transfer(address,uint256)", &[word(alice), U256::from(1_000_000)]);
    let (code, message, data) = node.error("eth_call", json!([{ "from": bob, "to": token, "data": too_much }]));
    assert_eq!(code, 3);
    assert!(message.starts_with("execution reverted"), "{message}");
    let selector = &keccak256("ERC20InsufficientBalance(address,uint256,uint256)")[..4];
    assert!(data.as_str().unwrap().starts_with(&format!("0x{}", alloy_primitives::hex::encode(selector))), "{data}");
    let (code, ..) = node.error("eth_estimateGas", json!([{ "from": bob, "to": token, "data": too_much }]));
    assert_eq!(code, 3);

    // Fees.
    let base_fee = u256(&block["baseFeePerGas"]);
    let gas_price = node.quantity("eth_gasPrice", json!([]));
    assert!(gas_price > base_fee / U256::from(2), "{gas_price} against base fee {base_fee}");
    assert_eq!(node.quantity("eth_maxPriorityFeePerGas", json!([])), U256::from(1_000_000_000u64));
    let history = node.call("eth_feeHistory", json!(["0x4", "latest", [25.0, 75.0]]));
    assert_eq!(history["oldestBlock"], json!("0x0"));
    assert_eq!(history["baseFeePerGas"].as_array().unwrap().len(), 5);
    assert_eq!(history["gasUsedRatio"].as_array().unwrap().len(), 4);
    assert_eq!(history["reward"][3], json!(["0x3b9aca00", "0x3b9aca00"]));

    // eth_getProof of the balance slot: the account proof against the header's stateRoot.
    let proof = node.call("eth_getProof", json!([token, [slot], "latest"]));
    let state_root: B256 = block["stateRoot"].as_str().unwrap().parse().unwrap();
    verify_account_proof(&proof, token, state_root);
    assert_eq!(u256(&proof["storageProof"][0]["value"]), U256::from(250));
    let old_proof = node.call("eth_getProof", json!([token, [slot], "0x1"]));
    let old_root: B256 =
        node.call("eth_getBlockByNumber", json!(["0x1", false]))["stateRoot"].as_str().unwrap().parse().unwrap();
    verify_account_proof(&old_proof, token, old_root);
    assert_eq!(u256(&old_proof["storageProof"][0]["value"]), U256::ZERO);
}

/// Checks an `eth_getProof` answer's account proof against `root` with alloy-trie's verifier,
/// and its storage proofs against the account's storage hash.
fn verify_account_proof(proof: &Value, account: Address, root: B256) {
    use alloy_trie::{Nibbles, TrieAccount, proof::verify_proof};
    let nodes = |list: &Value| -> Vec<Bytes> {
        list.as_array().unwrap().iter().map(|node| node.as_str().unwrap().parse().unwrap()).collect()
    };
    let storage_root: B256 = proof["storageHash"].as_str().unwrap().parse().unwrap();
    let leaf = TrieAccount {
        nonce: u256(&proof["nonce"]).to(),
        balance: u256(&proof["balance"]),
        storage_root,
        code_hash: proof["codeHash"].as_str().unwrap().parse().unwrap(),
    };
    let value = alloy_rlp::encode(leaf);
    verify_proof(root, Nibbles::unpack(keccak256(account)), Some(value), &nodes(&proof["accountProof"])).unwrap();
    for slot in proof["storageProof"].as_array().unwrap() {
        let key: B256 = slot["key"].as_str().unwrap().parse().unwrap();
        let value = u256(&slot["value"]);
        let expected = (!value.is_zero()).then(|| alloy_rlp::encode(value));
        verify_proof(storage_root, Nibbles::unpack(keccak256(key)), expected, &nodes(&slot["proof"])).unwrap();
    }
}

#[test]
fn a_wasm_module_is_deployed_and_called_through_the_same_wallet() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let deploy = deployCall { name: "token".into(), version: 1, code: Bytes::from_static(TOKEN_WASM) };
    let data: Bytes = alloy_sol_types::SolCall::abi_encode(&deploy).into();
    let estimate = node.quantity(
        "eth_estimateGas",
        json!([{ "from": dev_address(0), "to": WASM_DEPLOY_ADDRESS, "data": data.clone() }]),
    );
    let receipt = node.send_and_receipt(&eip1559(0, 0, TxKind::Call(WASM_DEPLOY_ADDRESS), data, 3_000_000));
    assert_eq!(receipt["status"], json!("0x1"), "{receipt}");
    assert_eq!(u256(&receipt["gasUsed"]), estimate);
    let module = address(&receipt["contractAddress"]);
    assert_eq!(node.call("eth_getCode", json!([module, "latest"])), json!("0xfe"));

    let alice = dev_address(1);
    let init = token_input(0x00, alice, None).slice(..1);
    assert_eq!(node.send_and_receipt(&eip1559(1, 0, TxKind::Call(module), init, 1_000_000))["status"], json!("0x1"));
    let mint = token_input(0x01, alice, Some(900));
    assert_eq!(node.send_and_receipt(&eip1559(1, 1, TxKind::Call(module), mint, 1_000_000))["status"], json!("0x1"));
    let balance =
        node.call("eth_call", json!([{ "from": alice, "to": module, "data": token_input(0x03, alice, None) }]));
    assert_eq!(balance, json!("0x0000000000000384"), "a u64, big-endian");
    let estimate = node.quantity(
        "eth_estimateGas",
        json!([{ "from": alice, "to": module, "data": token_input(0x02, dev_address(2), Some(10)) }]),
    );
    let receipt = node.send_and_receipt(&eip1559(
        1,
        2,
        TxKind::Call(module),
        token_input(0x02, dev_address(2), Some(10)),
        1_000_000,
    ));
    assert_eq!(receipt["status"], json!("0x1"));
    assert!(estimate >= u256(&receipt["gasUsed"]));
    // The xstate_ namespace: the identity by name, the slot, its proof (checked by `xstate
    // verify` against the root the block header carries) and the module's namespace proof.
    assert_eq!(address(&node.call("xstate_moduleIdentity", json!(["token", 1]))), module);
    assert_eq!(node.error("xstate_moduleIdentity", json!(["Not A Name", 1])).0, -32602);
    let slot = format!("{:#x}", xstate_chain::demo::token_balance_slot(alice));
    assert_eq!(node.quantity("xstate_getWasmSlot", json!([module, slot, "latest"])), U256::from(890));
    assert_eq!(node.quantity("xstate_getWasmSlot", json!([module, slot, "0x2"])), U256::ZERO);
    let proof = node.call("xstate_getWasmProof", json!([module, slot, "latest"]));
    let header = node.call("eth_getBlockByNumber", json!(["latest", false]));
    assert_eq!(proof["root"], header["stateRoot"]);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), proof.to_string()).unwrap();
    let verified = Command::new(env!("CARGO_BIN_EXE_xstate")).arg("verify").arg(file.path()).output().unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    let namespace = node.call("xstate_getNamespaceProof", json!([module]));
    assert_eq!(namespace["root"], header["stateRoot"]);
    assert!(namespace["storageHash"].is_string() && !namespace["accountProof"].as_array().unwrap().is_empty());

    // A module's revert is code 3 with its data, as an EVM contract's.
    let (code, _, data) = node.error(
        "eth_call",
        json!([{ "from": dev_address(3), "to": module, "data": token_input(0x02, alice, Some(1)) }]),
    );
    assert_eq!(code, 3);
    assert_eq!(data, json!(Bytes::from_static(b"insufficient balance").to_string()));
}

#[test]
fn bad_input_gets_an_error_response_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let still_serving = |node: &Node| assert_eq!(node.call("eth_chainId", json!([])), json!("0x7a69"));

    let parse_error = |body: &[u8]| {
        let (_, text) = node.post(body);
        let response: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(response["error"]["code"], json!(-32700), "{text}");
    };
    parse_error(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method");
    parse_error(b"\xff\xfe not utf-8");
    still_serving(&node);

    assert_eq!(node.error("eth_noSuchMethod", json!([])).0, -32601);
    assert_eq!(node.error("eth_getBalance", json!([12, "latest"])).0, -32602);
    assert_eq!(node.error("eth_getBalance", json!(["0x1234", "latest"])).0, -32602);
    assert_eq!(node.error("eth_getBlockByNumber", json!(["soon", false])).0, -32602);
    assert_eq!(node.error("eth_getBlockByNumber", json!([])).0, -32602);
    assert_eq!(node.error("eth_call", json!(["not an object"])).0, -32602);
    assert_eq!(node.error("eth_getProof", json!([dev_address(0), "0x00", "latest"])).0, -32602);
    assert_eq!(node.error("eth_getProof", json!([dev_address(0), ["0xzz"], "latest"])).0, -32602);
    assert_eq!(node.error("eth_getBalance", json!([dev_address(0), "0x99"])).1, "header not found");
    still_serving(&node);

    // Oversized bodies and batches.
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_call\",\"params\":[{{\"data\":\"0x{}\"}}]}}",
        "00".repeat(6 * 1024 * 1024)
    );
    let (status, text) = node.post(huge.as_bytes());
    assert_eq!(status, 413, "{text}");
    let batch: Vec<Value> =
        (0..1001).map(|id| json!({ "jsonrpc": "2.0", "id": id, "method": "eth_blockNumber" })).collect();
    let (_, text) = node.post(serde_json::to_string(&batch).unwrap().as_bytes());
    let response: Value = serde_json::from_str(&text).unwrap();
    assert!(response["error"]["code"].as_i64().is_some(), "a batch over the limit is one error: {text}");
    let batch: Vec<Value> = (0..3)
        .map(|id| json!({ "jsonrpc": "2.0", "id": id, "method": if id == 1 { "nope" } else { "eth_blockNumber" } }))
        .collect();
    let (_, text) = node.post(serde_json::to_string(&batch).unwrap().as_bytes());
    let response: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(response.as_array().unwrap().len(), 3, "{text}");
    still_serving(&node);

    // Huge log ranges.
    let (code, message, _) = node.error("eth_getLogs", json!([{ "fromBlock": "0x0", "toBlock": "0x989680" }]));
    assert_eq!(code, -32602);
    assert!(message.contains("block range"), "{message}");
    assert_eq!(node.error("eth_getLogs", json!([{ "fromBlock": "0x5", "toBlock": "0x1" }])).0, -32602);

    // Invalid raw transactions, each refused with geth's words, none making a block.
    let reject = |raw: Bytes, words: &str| {
        let (code, message, _) = node.error("eth_sendRawTransaction", json!([raw]));
        assert_eq!(code, -32000);
        assert!(message.starts_with(words), "expected `{words}`, got `{message}`");
    };
    reject(Bytes::from_static(b"\x02garbage"), "failed to decode signed transaction");
    reject(Bytes::new(), "failed to decode signed transaction");
    let other_chain = TxLegacy {
        chain_id: Some(1),
        nonce: 0,
        gas_price: 10_000_000_000,
        gas_limit: 21_000,
        to: TxKind::Call(dev_address(5)),
        value: U256::from(1),
        input: Bytes::new(),
    };
    reject(sign(0, other_chain).encoded_2718().into(), "invalid chain id for signer");
    reject(transfer_eth(0, 0, dev_address(5), U256::MAX >> 1), "insufficient funds for gas * price + value");
    let low_gas = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: 0,
        gas_limit: 20_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(dev_address(5)),
        value: U256::ZERO,
        access_list: Default::default(),
        input: Bytes::new(),
    };
    reject(sign(0, low_gas.clone()).encoded_2718().into(), "intrinsic gas too low");
    let cheap = TxEip1559 { max_fee_per_gas: 1, max_priority_fee_per_gas: 1, gas_limit: 21_000, ..low_gas };
    reject(sign(0, cheap.clone()).encoded_2718().into(), "max fee per gas less than block base fee");
    let mut tampered = sign(0, cheap).encoded_2718();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    let (code, _, _) = node.error("eth_sendRawTransaction", json!([Bytes::from(tampered)]));
    assert_eq!(code, -32000);
    assert_eq!(node.block_number(), 0, "a refused transaction makes no block");
    let (code, message, _) =
        node.error("eth_sendRawTransaction", json!([transfer_eth(0, 0, dev_address(5), U256::from(1)).slice(..40)]));
    assert_eq!(code, -32000);
    assert!(message.starts_with("failed to decode signed transaction"), "{message}");

    // A flood from one sender: the first of each nonce is mined, the copies refused.
    let mut mined = 0;
    for round in 0..40u64 {
        let raw = transfer_eth(3, round / 2, dev_address(4), U256::from(1));
        let response = node.request("eth_sendRawTransaction", json!([raw]));
        match response.get("error") {
            None => mined += 1,
            Some(error) => assert_eq!(error["code"], json!(-32000), "{response}"),
        }
    }
    assert_eq!(mined, 20);
    assert_eq!(node.block_number(), 20);
    assert_eq!(node.quantity("eth_getTransactionCount", json!([dev_address(3), "pending"])), U256::from(20));
    still_serving(&node);
}

#[test]
fn sigterm_and_sigint_close_the_store_and_a_restart_finds_everything() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let receipt = node.send_and_receipt(&xtoken_deploy(0, 0));
    let token = address(&receipt["contractAddress"]);
    let hash = receipt["transactionHash"].clone();
    let block = node.call("eth_getBlockByNumber", json!(["latest", false]));
    let output = node.stop_with("-TERM");
    assert!(output.contains("SIGTERM"), "{output}");
    assert!(output.contains("Stopped at block 1; the store is closed"), "{output}");

    let node = Node::start(dir.path(), &[]);
    assert!(node.banner().contains("reopened at block 1"), "{}", node.banner());
    assert_eq!(node.block_number(), 1);
    assert_eq!(node.call("eth_getBlockByNumber", json!(["latest", false])), block);
    assert_eq!(address(&node.call("eth_getTransactionReceipt", json!([hash]))["contractAddress"]), token);
    let mint = calldata("mint(address,uint256)", &[word(dev_address(1)), U256::from(7)]);
    assert_eq!(node.send_and_receipt(&eip1559(0, 1, TxKind::Call(token), mint, 200_000))["blockNumber"], json!("0x2"));
    let output = node.stop_with("-INT");
    assert!(output.contains("SIGINT"), "{output}");
    assert!(output.contains("Stopped at block 2"), "{output}");

    let node = Node::start(dir.path(), &[]);
    let data = calldata("balanceOf(address)", &[word(dev_address(1))]);
    assert_eq!(u256(&node.call("eth_call", json!([{ "to": token, "data": data }]))), U256::from(7));
    // A store of one chain refuses another chain id.
    drop(node);
    let refused = Command::new(env!("CARGO_BIN_EXE_xstate"))
        .args(["node", "--db"])
        .arg(dir.path())
        .args(["--http", "127.0.0.1:0", "--chain-id", "5"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("belongs to chain 31337, not chain 5"));
}

#[test]
fn interval_mining_holds_transactions_for_the_next_block() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--block-time", "1"]);
    let sender = dev_address(6);
    let first = node.send(&transfer_eth(6, 0, dev_address(7), U256::from(1)));
    let second = node.send(&transfer_eth(6, 1, dev_address(7), U256::from(2)));
    let (_, message, _) =
        node.error("eth_sendRawTransaction", json!([transfer_eth(6, 1, dev_address(7), U256::from(2))]));
    assert_eq!(message, "already known");
    let pending = node.quantity("eth_getTransactionCount", json!([sender, "pending"]));
    let queued = node.call("eth_getTransactionByHash", json!([second]));
    let deadline = Instant::now() + Duration::from_secs(30);
    let receipt = loop {
        let receipt = node.call("eth_getTransactionReceipt", json!([second]));
        if !receipt.is_null() {
            break receipt;
        }
        assert!(Instant::now() < deadline, "the second transaction was never mined");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Both were sent before either was mined (or both in one block): the queue held them in order.
    if queued["blockNumber"].is_null() {
        assert_eq!(pending, U256::from(2));
    }
    let first = node.call("eth_getTransactionReceipt", json!([first]));
    assert_eq!(first["status"], json!("0x1"));
    assert_eq!(receipt["status"], json!("0x1"));
    assert!(u256(&first["blockNumber"]) <= u256(&receipt["blockNumber"]));
    assert_eq!(node.quantity("eth_getTransactionCount", json!([sender, "latest"])), U256::from(2));
}

#[test]
fn a_transaction_with_a_future_nonce_waits_for_the_gap_to_fill() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let sender = dev_address(7);
    let later = node.send(&transfer_eth(7, 1, dev_address(8), U256::from(2)));
    assert_eq!(node.block_number(), 0, "nothing can run yet");
    assert!(node.call("eth_getTransactionReceipt", json!([later])).is_null());
    let waiting = node.call("eth_getTransactionByHash", json!([later]));
    assert!(waiting["blockNumber"].is_null(), "{waiting}");
    assert_eq!(node.quantity("eth_getTransactionCount", json!([sender, "pending"])), U256::ZERO);
    let first = node.send(&transfer_eth(7, 0, dev_address(8), U256::from(1)));
    let first = node.call("eth_getTransactionReceipt", json!([first]));
    let later = node.call("eth_getTransactionReceipt", json!([later]));
    assert_eq!((first["status"].clone(), later["status"].clone()), (json!("0x1"), json!("0x1")));
    assert_eq!(first["blockNumber"], later["blockNumber"], "the filled gap is mined at once");
    assert_eq!(node.quantity("eth_getTransactionCount", json!([sender, "latest"])), U256::from(2));
    assert_eq!(
        node.error("eth_sendRawTransaction", json!([transfer_eth(7, 0, dev_address(8), U256::from(1))])).1,
        "already known"
    );
}

#[test]
fn a_waiting_transaction_is_replaced_only_for_a_tenth_more_in_both_fees() {
    let dir = tempfile::tempdir().unwrap();
    // A long block time: the transactions wait in the pool while the test replaces them; the
    // block is then mined with evm_mine.
    let node = Node::start(dir.path(), &["--block-time", "3600"]);
    let with_fees = |value: u64, max_fee: u128, tip: u128| -> Bytes {
        let transaction = TxEip1559 {
            chain_id: CHAIN_ID,
            nonce: 0,
            gas_limit: 21_000,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(dev_address(8)),
            value: U256::from(value),
            access_list: Default::default(),
            input: Bytes::new(),
        };
        sign(9, transaction).encoded_2718().into()
    };
    let first = node.send(&with_fees(1, 10_000_000_000, 1_000_000_000));
    for (max_fee, tip) in
        [(10_000_000_000, 1_000_000_000), (10_900_000_000, 2_000_000_000), (20_000_000_000, 1_000_000_000)]
    {
        let (code, message, _) = node.error("eth_sendRawTransaction", json!([with_fees(2, max_fee, tip)]));
        assert_eq!((code, message.as_str()), (-32000, "replacement transaction underpriced"));
    }
    let replacement = node.send(&with_fees(3, 11_000_000_000, 1_100_000_000));
    assert_eq!(node.call("evm_mine", json!([])), json!("0x0"));
    assert_eq!(node.call("eth_getTransactionReceipt", json!([replacement]))["status"], json!("0x1"));
    assert!(node.call("eth_getTransactionReceipt", json!([first])).is_null(), "the replaced transaction is gone");
    assert!(node.call("eth_getTransactionByHash", json!([first])).is_null());
}

#[test]
fn the_dev_methods_move_the_clock_and_mine() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let genesis: u64 = support::GENESIS_TIME.parse().unwrap();
    let timestamp =
        |node: &Node| -> u64 { u256(&node.call("eth_getBlockByNumber", json!(["latest", false]))["timestamp"]).to() };
    node.call("evm_setNextBlockTimestamp", json!([genesis + 100]));
    node.call("evm_mine", json!([]));
    assert_eq!((node.block_number(), timestamp(&node)), (1, genesis + 100));
    node.call("evm_mine", json!([genesis + 200]));
    assert_eq!((node.block_number(), timestamp(&node)), (2, genesis + 200));
    let (_, message, _) = node.error("evm_setNextBlockTimestamp", json!([genesis + 150]));
    assert!(message.contains("lower than or equal to previous block's timestamp"), "{message}");
    assert_eq!(node.error("evm_increaseTime", json!(["soon"])).0, -32602);
    // The wall clock is past the genesis time; a day more puts the next block a day ahead of now.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(node.quantity("evm_increaseTime", json!([86_400])), U256::from(86_400));
    node.send(&transfer_eth(1, 0, dev_address(2), U256::from(1)));
    assert!(timestamp(&node) >= now + 86_400, "the clock moved a day");
}

/// `debug_executionWitness` answers exactly what `xstate witness` writes for the same block, and
/// `xstate verify-block` checks the block against it with no store.
#[test]
fn the_execution_witness_is_the_one_the_store_free_verifier_checks() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    node.send_and_receipt(&xtoken_deploy(0, 0));
    let witness = node.call("debug_executionWitness", json!(["latest"]));
    for field in ["state", "codes", "keys", "headers"] {
        assert!(witness[field].is_array(), "{field}: {witness}");
    }
    assert!(!witness["state"].as_array().unwrap().is_empty(), "{witness}");
    assert_eq!(node.call("debug_executionWitness", json!(["0x1"])), witness);
    assert!(node.error("debug_executionWitness", json!(["0x9"])).1.contains("header not found"));
    assert_eq!(node.error("debug_executionWitness", json!([])).0, -32602);
    node.stop_with("-TERM");

    let file = dir.path().join("witness.json");
    let xstate = |args: &[&std::ffi::OsStr]| Command::new(env!("CARGO_BIN_EXE_xstate")).args(args).output().unwrap();
    let written = xstate(&[
        "witness".as_ref(),
        "1".as_ref(),
        "--db".as_ref(),
        dir.path().as_os_str(),
        "--out".as_ref(),
        file.as_os_str(),
    ]);
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let from_file: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(from_file, witness, "the node and the command witness the same block alike");
    let block = dir.path().join("witness.json.block.json");
    let verified = xstate(&["verify-block".as_ref(), block.as_os_str(), file.as_os_str()]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
}

#[test]
fn a_sigkill_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &[]);
    let receipt = node.send_and_receipt(&transfer_eth(1, 0, dev_address(2), U256::from(5)));
    let block = node.call("eth_getBlockByNumber", json!(["latest", false]));
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    drop(node);
    let node = Node::start(dir.path(), &[]);
    assert_eq!(node.call("eth_getBlockByNumber", json!(["latest", false])), block);
    assert_eq!(node.call("eth_getTransactionReceipt", json!([receipt["transactionHash"]])), receipt);
    assert_eq!(node.send_and_receipt(&transfer_eth(1, 1, dev_address(2), U256::from(5)))["status"], json!("0x1"));
}

/// `evm_snapshot` answers ids counting up from 0; `evm_revert` goes back to a snapshot's block
/// (state, blocks, receipts and the clock), consumes it and every later one (`false` after), and
/// the chain goes on from there; the reverted chain is what a restarted node finds.
#[test]
fn snapshots_revert_the_chain_and_are_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let receiver = Address::repeat_byte(0x42);
    let balance = |node: &Node| node.quantity("eth_getBalance", json!([receiver, "latest"]));
    node.send_and_receipt(&transfer_eth(1, 0, receiver, U256::from(5)));
    let block_one = node.call("eth_getBlockByNumber", json!(["latest", false]));
    let offset = node.quantity("evm_increaseTime", json!([0]));
    assert_eq!(node.call("evm_snapshot", json!([])), json!("0x0"));

    let deploy = node.send_and_receipt(&xtoken_deploy(0, 0));
    let later = node.send_and_receipt(&transfer_eth(1, 1, receiver, U256::from(7)));
    assert_eq!(node.call("evm_snapshot", json!([])), json!("0x1"));
    node.call("evm_increaseTime", json!([3600]));
    node.send_and_receipt(&transfer_eth(1, 2, receiver, U256::from(9)));
    assert_eq!((node.block_number(), balance(&node)), (4, U256::from(21)));

    assert_eq!(node.call("evm_revert", json!(["0x0"])), json!(true));
    assert_eq!(node.block_number(), 1);
    assert_eq!(node.call("eth_getBlockByNumber", json!(["latest", false])), block_one);
    assert_eq!(balance(&node), U256::from(5));
    assert_eq!(node.quantity("eth_getTransactionCount", json!([dev_address(1), "latest"])), U256::from(1));
    assert!(node.call("eth_getBlockByNumber", json!(["0x2", false])).is_null());
    assert!(node.call("eth_getTransactionReceipt", json!([later["transactionHash"]])).is_null());
    assert!(node.call("eth_getTransactionByHash", json!([deploy["transactionHash"]])).is_null());
    assert_eq!(node.call("eth_getCode", json!([deploy["contractAddress"], "latest"])), json!("0x"));
    assert_eq!(node.quantity("evm_increaseTime", json!([0])), offset, "the clock went back too");
    // Both snapshots are consumed; an id never taken is `false` as well.
    assert_eq!(node.call("evm_revert", json!(["0x1"])), json!(false));
    assert_eq!(node.call("evm_revert", json!(["0x0"])), json!(false));
    assert_eq!(node.call("evm_revert", json!([77])), json!(false));
    assert_eq!(node.error("evm_revert", json!(["soon"])).0, -32602);
    assert_eq!(node.call("evm_snapshot", json!([])), json!("0x2"), "ids are never reused");

    // The chain goes on from block 1: the same deployment lands at the same address in block 2.
    let again = node.send_and_receipt(&xtoken_deploy(0, 0));
    assert_eq!(again["blockNumber"], json!("0x2"));
    assert_eq!(again["contractAddress"], deploy["contractAddress"]);
    let head = node.call("eth_getBlockByNumber", json!(["latest", false]));
    drop(node);

    let node = Node::start(dir.path(), &[]);
    assert_eq!(node.call("eth_getBlockByNumber", json!(["latest", false])), head);
    assert_eq!(balance(&node), U256::from(5));
    assert!(node.call("eth_getTransactionReceipt", json!([later["transactionHash"]])).is_null());
}

/// `eth_call` and `eth_estimateGas` at an older block run on that block's state: a `balanceOf`
/// at block n answers block n's balance after later blocks changed it.
#[test]
fn calls_at_an_older_block_see_that_blocks_state() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let token = address(&node.send_and_receipt(&xtoken_deploy(0, 0))["contractAddress"]);
    let mint = |nonce: u64, amount: u64| {
        let data = calldata("mint(address,uint256)", &[word(dev_address(1)), U256::from(amount)]);
        node.send_and_receipt(&eip1559(0, nonce, TxKind::Call(token), data, 200_000));
    };
    mint(1, 10); // block 2
    mint(2, 32); // block 3
    let data = calldata("balanceOf(address)", &[word(dev_address(1))]);
    let balance_at = |block: Value| u256(&node.call("eth_call", json!([{ "to": token, "data": data }, block])));
    assert_eq!(balance_at(json!("latest")), U256::from(42));
    assert_eq!(balance_at(json!("0x3")), U256::from(42));
    assert_eq!(balance_at(json!("0x2")), U256::from(10));
    assert_eq!(balance_at(json!("0x1")), U256::ZERO);
    let block_two = node.call("eth_getBlockByNumber", json!(["0x2", false]))["hash"].clone();
    assert_eq!(balance_at(json!({ "blockHash": block_two })), U256::from(10));
    // Before its deployment the token has no code: the call runs nothing and answers nothing.
    assert_eq!(node.call("eth_call", json!([{ "to": token, "data": data }, "0x0"])), json!("0x"));
    // A transfer of 20 reverts at block 2 (balance 10) and fits at block 3 (balance 42).
    let transfer = calldata("transfer(address,uint256)", &[word(dev_address(2)), U256::from(20)]);
    let request = json!({ "from": dev_address(1), "to": token, "data": transfer });
    assert_eq!(node.error("eth_estimateGas", json!([request, "0x2"])).0, 3);
    assert!(node.quantity("eth_estimateGas", json!([request, "0x3"])) > U256::from(21_000));
    assert_eq!(node.error("eth_call", json!([request, "0x9"])).1, "header not found");
}

/// A request whose `id` jsonrpsee cannot represent (beyond u64, negative, fractional, an object,
/// or given twice) would otherwise be taken for a notification: run, and never answered. It is
/// answered with -32600 and an id of null, and nothing of it runs: the transaction it carries is
/// not mined. A batch holding one such entry is refused as a whole. Ids the node represents
/// (strings, integers within u64, null) are answered as before; a true notification (no id) is
/// not answered and, as jsonrpsee handles notifications, not run either.
#[test]
fn requests_with_unrepresentable_ids_are_refused_and_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let raw = transfer_eth(1, 0, dev_address(2), U256::from(1));
    let send =
        |id: &str| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_sendRawTransaction","params":["{raw}"]}}"#);
    for id in ["18446744073709551616", "-1", "1.5", "2e999", r#"{"a":1}"#, "[1]", "true", r#"1,"id":2"#] {
        let (status, text) = node.post(send(id).as_bytes());
        let response: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("id {id}: no JSON answer: {text}"));
        assert_eq!(
            (status, &response["error"]["code"], &response["id"]),
            (200, &json!(-32600), &Value::Null),
            "id {id}: {text}"
        );
        assert!(response["error"]["message"].as_str().unwrap().contains("`id` must be"), "{text}");
    }
    let batch = format!("[{},{}]", r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#, send("-7"));
    let (_, text) = node.post(batch.as_bytes());
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error"]["code"], json!(-32600), "{text}");
    assert_eq!(node.block_number(), 0, "a refused request ran");

    for id in [r#""tx-1""#, "18446744073709551615", "null"] {
        let (_, text) = node.post(format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_chainId"}}"#).as_bytes());
        let response: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(response["result"], json!("0x7a69"), "id {id}: {text}");
        assert_eq!(response["id"], serde_json::from_str::<Value>(id).unwrap(), "{text}");
    }
    let notification = format!(r#"{{"jsonrpc":"2.0","method":"eth_sendRawTransaction","params":["{raw}"]}}"#);
    let (status, text) = node.post(notification.as_bytes());
    assert!(
        status == 200 && (text.trim().is_empty() || text.trim() == "null"),
        "a notification is not answered: {text}"
    );
    assert_eq!(node.block_number(), 0, "jsonrpsee runs no notification");
}
