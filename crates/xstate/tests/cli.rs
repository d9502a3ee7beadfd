//! The `xstate` binary, driven as a user would: the commands, every kind of bad input (each a
//! clear message and a non-zero exit, never a panic or a half-written store), every rejection of
//! a signed transaction worded as geth words it, blocks and receipts read back, and durability
//! across processes, including processes killed in the middle of a block.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Dev account 1 of the test mnemonic.
const ALICE: &str = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";

fn xstate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xstate")).args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs and expects success, returning stdout.
fn ok(args: &[&str]) -> String {
    let output = xstate(args);
    assert!(output.status.success(), "xstate {args:?} failed: {}", stderr(&output));
    stdout(&output)
}

/// Runs and expects a clean failure mentioning `needle`.
fn fails(args: &[&str], needle: &str) {
    let output = xstate(args);
    assert!(!output.status.success(), "xstate {args:?} should fail");
    let message = stderr(&output);
    assert!(message.contains(needle), "xstate {args:?}: `{message}` should mention `{needle}`");
    assert!(!message.contains("panicked"), "xstate {args:?} panicked: {message}");
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/block.json")
}

fn write_block(dir: &Path, name: &str, block: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(block).unwrap()).unwrap();
    path
}

fn root_of(db: &Path) -> String {
    let output: Value = serde_json::from_str(&ok(&["--json", "root", "--db", db.to_str().unwrap()])).unwrap();
    output["root"].as_str().unwrap().to_owned()
}

fn counter_call(from: &str) -> Value {
    json!({"from": from, "module": {"name": "counter", "version": 1}, "gas": 1_000_000})
}

#[test]
fn identity_prints_the_golden_address() {
    assert_eq!(
        ok(&["identity", "counter", "1", "--chain-id", "1"]).trim(),
        "0xb09f253a7a9210ffa2d029c1b5fe676420f1072a"
    );
    let json: Value = serde_json::from_str(&ok(&["--json", "identity", "token", "2", "--chain-id", "31337"])).unwrap();
    assert_eq!(json["identity"], "0xeb2b3baa27ae51635d6b82b2a25445fbfe880caa");
    fails(&["identity", "Bad Name", "1"], "module name");
}

#[test]
fn demo_runs_and_verifies_its_proofs() {
    let output = ok(&["demo"]);
    assert!(output.contains("EVM read WASM:  WasmReader.readTokenBalance(token, bob) = 400"), "{output}");
    assert!(output.contains("WASM read EVM:  erc20-reader(erc20, bob)               = 250"), "{output}");
    assert_eq!(output.matches("verified").count(), 2, "{output}");
    // The demo shows who signed each transaction, with which nonce, and what it paid.
    assert!(output.contains("from 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 nonce 4"), "{output}");
    assert!(output.contains("from 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 nonce 0"), "{output}");
    assert!(output.matches(" wei").count() >= 11, "{output}");
    let dir = tempfile::tempdir().unwrap();
    let json: Value = serde_json::from_str(&ok(&["--json", "demo", "--db", dir.path().to_str().unwrap()])).unwrap();
    assert_eq!(json["proofs"].as_array().unwrap().len(), 2);
    let receipts = json["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 11);
    for receipt in receipts {
        let fee = alloy_primitives::U256::from_str_radix(receipt["fee"].as_str().unwrap(), 10).unwrap();
        let price = alloy_primitives::U256::from_str_radix(receipt["effectiveGasPrice"].as_str().unwrap(), 10).unwrap();
        assert_eq!(fee, price * alloy_primitives::U256::from(receipt["gasUsed"].as_u64().unwrap()));
        assert!(!fee.is_zero());
    }
    assert!(json["proofs"].as_array().unwrap().iter().all(|proof| proof["verified"] == true));
    // The kept store is a normal store.
    assert_eq!(root_of(dir.path()), json["root"].as_str().unwrap());
    fails(&["demo", "--db", dir.path().to_str().unwrap()], "needs an empty store");
}

#[test]
fn run_get_prove_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let output: Value = serde_json::from_str(&ok(&["--json", "run", example().to_str().unwrap(), "--db", db])).unwrap();
    let receipts = output["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 8);
    assert_eq!(receipts[6]["status"], "revert");
    assert_eq!(receipts[6]["reason"], "\"insufficient balance\"");
    assert_eq!(receipts[6]["from"], "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
    assert_eq!(receipts[3]["kind"], "wasm_deploy");
    assert_eq!(receipts[3]["moduleIdentity"], ok(&["identity", "token", "1"]).trim());
    assert_eq!(output["number"], 1);
    let counter = ok(&["identity", "counter", "1"]);
    let slot = format!("wasm-slot:{}:0", counter.trim());
    assert!(ok(&["get", "--db", db, &slot]).contains("u64 42"));
    assert_eq!(ok(&["get", "--db", db, &format!("wasm-slot:{}:9", counter.trim())]).trim(), "absent");

    let proof = dir.path().join("proof.json");
    let proof = proof.to_str().unwrap();
    ok(&["prove", "--db", db, &slot, "--out", proof]);
    // Without a trusted root, the output says plainly that only the file's consistency was checked.
    let alone = ok(&["verify", proof]);
    assert!(alone.starts_with("verified") && alone.contains("NOT checked: where the root comes from"), "{alone}");
    let report: Value = serde_json::from_str(&ok(&["--json", "verify", proof])).unwrap();
    assert_eq!((report["verified"].as_bool(), report["root_authenticated"].as_bool()), (Some(true), Some(false)));
    // Against the store the user trusts, or a root they give, the root is authenticated.
    let trusted = ok(&["verify", proof, "--db", db]);
    assert!(trusted.contains("the root is block 1's state root in") && !trusted.contains("NOT checked"), "{trusted}");
    let given: Value =
        serde_json::from_str(&ok(&["--json", "verify", proof, "--root", &root_of(Path::new(db))])).unwrap();
    assert_eq!(given["root_authenticated"].as_bool(), Some(true));
    // Exclusion proofs verify too.
    let absent = dir.path().join("absent.json");
    ok(&["prove", "--db", db, &format!("wasm-slot:{}:9", counter.trim()), "--out", absent.to_str().unwrap()]);
    assert!(ok(&["verify", absent.to_str().unwrap()]).contains("is absent"));
    // Against another root, the same proof fails.
    fails(&["verify", proof, "--root", &format!("0x{}", "11".repeat(32))], "does NOT verify");

    // After another block, the old block is proven with the value it had then: the trie's
    // leaves hold the values themselves.
    let next = write_block(dir.path(), "next.json", &json!({"transactions": [counter_call("dev:1")]}));
    ok(&["run", next.to_str().unwrap(), "--db", db]);
    let old = dir.path().join("old.json");
    ok(&["prove", "--db", db, &slot, "--out", old.to_str().unwrap(), "--block", "1"]);
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&old).unwrap()).unwrap();
    assert_eq!(file["value"], format!("0x{:016x}", 42));
    assert!(ok(&["verify", old.to_str().unwrap()]).contains(&format!("= 0x{:016x} under root", 42)));
    assert!(ok(&["verify", old.to_str().unwrap(), "--db", db, "--block", "1"]).contains("block 1's state root"));
    // The old value does not verify against the trusted latest block: it changed since.
    fails(&["verify", old.to_str().unwrap(), "--db", db], "does NOT verify");
    assert!(ok(&["get", "--db", db, &slot]).contains("u64 43"));
    // Roots of retained blocks stay readable, match the proof written for block 1 and the state
    // root in block 1's header; a block after the latest is refused.
    let root_one: Value = serde_json::from_str(&ok(&["--json", "root", "--db", db, "--block", "1"])).unwrap();
    assert_eq!(root_one["root"], file["root"]);
    let header: Value = serde_json::from_str(&ok(&["--json", "block", "1", "--db", db])).unwrap();
    assert_eq!(header["stateRoot"], root_one["root"], "{header}");
    fails(&["root", "--db", db, "--block", "9"], "block 9 does not exist yet (the latest is 2)");
    assert_ne!(root_one["root"].as_str().unwrap(), root_of(Path::new(db)));
}

#[test]
fn get_reads_every_key_form() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    ok(&["run", example().to_str().unwrap(), "--db", db]);
    let storage = "0x5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
    // Genesis storage, and the word the block's first transaction wrote: `set(1, 0x63)` stores in
    // the contract's first mapping, at keccak256(key || 0).
    assert!(ok(&["get", "--db", db, &format!("evm-slot:{storage}:7")]).contains("word 42"));
    let mut preimage = [0u8; 64];
    preimage[31] = 1;
    let slot = alloy_primitives::keccak256(preimage);
    assert!(ok(&["get", "--db", db, &format!("evm-slot:{storage}:{slot}")]).contains("word 99"));
    assert!(ok(&["get", "--db", db, &format!("evm-account:{ALICE}")]).contains("nonce 4"));
    let counter = ok(&["identity", "counter", "1"]).trim().to_owned();
    assert!(ok(&["get", "--db", db, &format!("module:{counter}")]).contains("counter v1"));
    let json: Value =
        serde_json::from_str(&ok(&["--json", "get", "--db", db, &format!("wasm-key:{counter}:0x0102")])).unwrap();
    assert_eq!(json["value"], Value::Null);
    fails(&["get", "--db", db, &format!("evm-slot:{storage}")], "cannot read key");
}

#[test]
fn malformed_and_schema_invalid_block_files_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{ \"transactions\": [ ").unwrap();
    fails(&["run", broken.to_str().unwrap(), "--db", db], "not valid JSON");

    let cases = [
        (
            json!({"transactions": [counter_call("dev:1"), counter_call("dev:1"), {"from": "dev:1", "to": "0x1234"}]}),
            "transaction 2, field `to`: expected 20 bytes, found 2",
        ),
        (json!({"transactions": [{"from": ALICE}]}), "transaction 0, field `from`: expected dev:0 to dev:9"),
        (json!({"transactions": [{"from": "dev:10"}]}), "transaction 0, field `from`: expected dev:0 to dev:9"),
        (json!({"transactions": [{"from": "dev:1", "to": ALICE, "gas": -5}]}), "transaction 0, field `gas`"),
        (
            json!({"transactions": [{"from": "dev:1", "module": {"name": "Counter", "version": 1}}]}),
            "transaction 0, field `module.name`",
        ),
        (
            json!({"transactions": [{"from": "dev:0", "deploy": {"name": "x", "version": 1}}]}),
            "transaction 0, field `deploy.code`: missing",
        ),
        (
            json!({"transactions": [{"from": "dev:1", "to": ALICE, "colour": "red"}]}),
            "transaction 0, field `colour`: unknown field",
        ),
        (
            json!({"transactions": [{"raw": "0x02", "from": "dev:1"}]}),
            "transaction 0, field `from`: a raw transaction is signed already",
        ),
        (json!({"transactions": [{"raw": "0xzz"}]}), "transaction 0, field `raw`: invalid hex"),
        (
            json!({"transactions": [{"from": "dev:1", "to": ALICE, "gas_price": 1, "max_fee_per_gas": 2}]}),
            "transaction 0, field `gas_price`",
        ),
        (
            json!({"block": {"extra_data": format!("0x{}", "00".repeat(33))}, "transactions": []}),
            "field `block.extra_data`",
        ),
        (json!({"transactions": {}}), "field `transactions`: expected an array"),
        (
            json!({"genesis": {"accounts": [{"address": "0x12"}]}, "transactions": []}),
            "genesis account 0, field `address`",
        ),
    ];
    for (block, needle) in cases {
        let path = write_block(dir.path(), "invalid.json", &block);
        fails(&["run", path.to_str().unwrap(), "--db", db], needle);
    }
    // Nothing ran: the file is checked before the store is even created.
    fails(&["root", "--db", db], "no store at");
}

#[test]
fn failed_transactions_are_receipts_that_pay_and_leave_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    ok(&["run", example().to_str().unwrap(), "--db", db]);
    let counter = ok(&["identity", "counter", "1"]).trim().to_owned();
    let block = json!({"transactions": [
        {"from": "dev:0", "deploy": {"name": "garbage", "version": 1, "code": "0x00112233"}},
        {"from": "dev:1", "module": {"name": "counter", "version": 1}, "data": "0x02ffffffffffffffff"},
        counter_call("dev:1"),
    ]});
    let path = write_block(dir.path(), "failing.json", &block);
    let output: Value = serde_json::from_str(&ok(&["--json", "run", path.to_str().unwrap(), "--db", db])).unwrap();
    let receipts = output["receipts"].as_array().unwrap();
    let statuses: Vec<&str> = receipts.iter().map(|receipt| receipt["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed", "revert", "success"]);
    assert!(receipts.iter().all(|receipt| receipt["fee"].as_str().unwrap() != "0"), "every included transaction pays");
    // Only the last call counted: 42 + 1.
    assert!(ok(&["get", "--db", db, &format!("wasm-slot:{counter}:0")]).contains("u64 43"));
    assert!(
        ok(&["get", "--db", db, &format!("module:{}", ok(&["identity", "garbage", "1"]).trim())]).contains("absent")
    );
}

/// Signs `transaction` with dev key `key` and returns its raw hex.
fn raw_hex<T>(key: u32, transaction: T) -> String
where
    T: alloy_consensus::SignableTransaction<alloy_primitives::Signature>,
    alloy_consensus::TxEnvelope: From<alloy_consensus::Signed<T>>,
{
    alloy_primitives::hex::encode_prefixed(alloy_eips::eip2718::Encodable2718::encoded_2718(&xstate_chain::dev::sign(
        key,
        transaction,
    )))
}

/// Encodes `transaction` with `signature`, which need not recover.
fn with_signature<T>(transaction: T, signature: alloy_primitives::Signature) -> String
where
    T: alloy_consensus::SignableTransaction<alloy_primitives::Signature>,
    alloy_consensus::TxEnvelope: From<alloy_consensus::Signed<T>>,
{
    let envelope = alloy_consensus::TxEnvelope::from(transaction.into_signed(signature));
    alloy_primitives::hex::encode_prefixed(alloy_eips::eip2718::Encodable2718::encoded_2718(&envelope))
}

/// Every rejection reason of `docs/block-format.md`, through the binary: the message on stderr
/// and in the JSON report, no receipt, and the state root unchanged.
#[test]
fn each_rejection_is_reported_by_the_binary_in_gethss_words() {
    use alloy_consensus::{TxEip1559, TxEip4844, TxEip7702, TxLegacy};
    use alloy_primitives::{Address, B256, Signature, TxKind, U256};
    const GWEI: u128 = 1_000_000_000;
    let transfer = |chain_id: u64| TxEip1559 {
        chain_id,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: TxKind::Call(Address::repeat_byte(0x77)),
        value: U256::from(1),
        access_list: Default::default(),
        input: Default::default(),
    };
    let unprotected = TxLegacy {
        chain_id: None,
        nonce: 0,
        gas_price: 10 * GWEI,
        gas_limit: 21_000,
        to: TxKind::Call(Address::repeat_byte(0x77)),
        value: U256::from(1),
        input: Default::default(),
    };
    let blob = TxEip4844 {
        chain_id: 31337,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: Address::repeat_byte(0x77),
        value: U256::ZERO,
        access_list: Default::default(),
        blob_versioned_hashes: vec![B256::repeat_byte(0x01)],
        max_fee_per_blob_gas: GWEI,
        input: Default::default(),
    };
    let seven_702 = TxEip7702 {
        chain_id: 31337,
        nonce: 0,
        gas_limit: 100_000,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: Address::repeat_byte(0x77),
        value: U256::ZERO,
        access_list: Default::default(),
        authorization_list: Vec::new(),
        input: Default::default(),
    };
    // An s above half the curve order: the signature does not recover (EIP-2).
    let high_s = U256::from_be_bytes(
        alloy_primitives::b256!("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140").0,
    );
    let to = "0x7777777777777777777777777777777777777777";
    let cases = [
        (json!({"raw": "0x02ff00"}), "failed to decode signed transaction"),
        (json!({"raw": "0x7fc0"}), "failed to decode signed transaction"),
        (json!({"raw": raw_hex(1, blob)}), "transaction type not supported: type 3"),
        (
            json!({"raw": with_signature(transfer(31337), Signature::new(U256::from(1), high_s, false))}),
            "invalid transaction v, r, s values",
        ),
        (json!({"raw": raw_hex(1, unprotected)}), "only replay-protected (EIP-155) transactions allowed"),
        (json!({"raw": raw_hex(1, transfer(1))}), "invalid chain id for signer: have 1 want 31337"),
        (json!({"from": "dev:1", "to": to, "nonce": 7}), "nonce too high"),
        (
            json!({"from": "dev:1", "to": to, "value": "20000000000000000000000", "gas": 21000}),
            "insufficient funds for gas * price + value",
        ),
        (json!({"from": "dev:1", "to": to, "gas": 20000}), "intrinsic gas too low"),
        (
            json!({"from": "dev:1", "to": to, "gas": 50000, "data": format!("0x{}", "ff".repeat(1_000))}),
            "insufficient gas for floor data gas cost",
        ),
        (
            json!({"from": "dev:1", "to": to, "gas": 21000, "max_fee_per_gas": 1, "max_priority_fee_per_gas": 1}),
            "max fee per gas less than block base fee",
        ),
        (
            json!({"raw": raw_hex(1, TxEip1559 { nonce: 4, max_priority_fee_per_gas: 11 * GWEI, ..transfer(31337) })}),
            "max priority fee per gas higher than max fee per gas",
        ),
        (json!({"from": "dev:1", "to": to, "gas": 30_000_001}), "exceeds block gas limit"),
        (
            json!({"from": "dev:1", "gas": 1_000_000, "data": format!("0x{}", "00".repeat(49_153))}),
            "max initcode size exceeded",
        ),
        (json!({"raw": raw_hex(1, TxEip7702 { nonce: 4, ..seven_702 })}), "EIP-7702 transaction with empty auth list"),
        (
            json!({"from": "dev:1", "module": {"name": "counter", "version": 1}, "value": 1}),
            "value transfer to a WASM module is not supported",
        ),
        (
            json!({"from": "dev:1", "to": "0x0000000000000000000000000000000000000a01", "value": 1}),
            "value transfer to a WASM module is not supported",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    ok(&["run", example().to_str().unwrap(), "--db", db.to_str().unwrap()]);
    let refused = |name: &str, db: &Path, transactions: Value, position: usize, message: &str| {
        let root = root_of(db);
        let path = write_block(dir.path(), &format!("{name}.json"), &json!({ "transactions": transactions }));
        let output = xstate(&["--json", "run", path.to_str().unwrap(), "--db", db.to_str().unwrap()]);
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!("transaction {position} rejected: {message}")),
            "{message}: {}",
            stderr(&output)
        );
        let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert_eq!(report["receipts"].as_array().unwrap().len(), position, "{message}");
        let reason = report["rejected"][0]["reason"].as_str().unwrap();
        assert!(reason.starts_with(message), "{reason}");
        if position == 0 {
            // The block still came (its system call records the parent hash) but without the
            // transaction: its state changed only through the history contract, which this
            // genesis lacks, so the root is the parent's.
            assert_eq!(root_of(db), root, "{message}: the refused transaction changed the state");
        }
    };
    for (index, (transaction, message)) in cases.iter().enumerate() {
        refused(&format!("case{index}"), &db, json!([transaction]), 0, message);
    }
    // A nonce already used, by its raw bytes sent twice.
    let again = raw_hex(1, TxEip1559 { nonce: 4, ..transfer(31337) });
    refused("again", &db, json!([{"raw": again}, {"raw": again}]), 1, "nonce too low");
    // A creation that halts on INVALID uses its whole gas limit, leaving less than a transfer
    // needs in the block.
    let fill = json!({"from": "dev:2", "gas": 29_990_000, "data": "0xfe"});
    refused("full", &db, json!([fill, {"from": "dev:3", "to": to}]), 1, "gas limit reached");
    // A sender with code (EIP-3607), in a chain whose genesis gives dev:1 code.
    let coded = dir.path().join("coded");
    let genesis = json!({"genesis": {"accounts": [{
        "address": ALICE,
        "balance": "1000000000000000000",
        "code": "0x00",
    }]}, "transactions": []});
    let path = write_block(dir.path(), "coded-genesis.json", &genesis);
    ok(&["run", path.to_str().unwrap(), "--db", coded.to_str().unwrap()]);
    refused("coded", &coded, json!([{"from": "dev:1", "to": to}]), 0, "sender not an eoa");
}

#[test]
fn blocks_and_receipts_are_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let run: Value = serde_json::from_str(&ok(&["--json", "run", example().to_str().unwrap(), "--db", db])).unwrap();
    let latest: Value = serde_json::from_str(&ok(&["--json", "block", "latest", "--db", db])).unwrap();
    assert_eq!(latest, serde_json::from_str::<Value>(&ok(&["--json", "block", "1", "--db", db])).unwrap());
    assert_eq!(latest["hash"], run["hash"]);
    assert_eq!(latest["stateRoot"], run["root"]);
    assert_eq!(latest["number"], "0x1");
    assert_eq!(latest["timestamp"], format!("{:#x}", 1_700_000_012));
    assert_eq!(latest["miner"], "0x00000000000000000000000000000000000000be");
    assert!(latest["baseFeePerGas"].is_string());
    let genesis: Value = serde_json::from_str(&ok(&["--json", "block", "0", "--db", db])).unwrap();
    assert_eq!(latest["parentHash"], genesis["hash"]);
    assert_eq!(genesis["baseFeePerGas"], "0x3b9aca00", "1 gwei");

    let hash = run["receipts"][3]["transactionHash"].as_str().unwrap();
    let receipt: Value = serde_json::from_str(&ok(&["--json", "receipt", hash, "--db", db])).unwrap();
    assert_eq!(receipt, run["receipts"][3]);
    assert_eq!(receipt["blockHash"], run["hash"]);
    assert!(ok(&["receipt", hash, "--db", db]).contains("wasm_deploy"));
    assert!(ok(&["block", "latest", "--db", db]).contains("base fee"));
    fails(&["block", "9", "--db", db], "no block 9 (the latest is 1)");
    fails(&["block", "soon", "--db", db], "not a block number");
    fails(&["receipt", &format!("0x{}", "ab".repeat(32)), "--db", db], "no transaction");
    fails(&["receipt", "0x12", "--db", db], "not a 32-byte transaction hash");
}

#[test]
fn store_problems_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    fails(&["root", "--db", missing.to_str().unwrap()], "no store at");
    fails(
        &["get", "--db", missing.to_str().unwrap(), "evm-account:0x0000000000000000000000000000000000000001"],
        "no store at",
    );
    assert!(!missing.exists(), "reading must not create a store");

    let db = dir.path().join("db");
    ok(&["run", example().to_str().unwrap(), "--db", db.to_str().unwrap()]);
    {
        // Another process (this one) holds the store.
        let _held = kv_core::RedbBackend::open(db.join("state.redb")).unwrap();
        fails(&["root", "--db", db.to_str().unwrap()], "in use by another process");
        fails(&["run", example().to_str().unwrap(), "--db", db.to_str().unwrap()], "in use by another process");
    }
    let no_chain = write_block(dir.path(), "no-chain.json", &json!({"transactions": []}));
    fails(
        &["run", no_chain.to_str().unwrap(), "--db", db.to_str().unwrap(), "--chain-id", "5"],
        "belongs to chain 31337, not chain 5",
    );
    // A flag and a block file that disagree are refused before the store is touched.
    fails(
        &["run", example().to_str().unwrap(), "--db", missing.to_str().unwrap(), "--chain-id", "5"],
        "--chain-id 5 contradicts the block file's chain_id 31337",
    );
    assert!(!missing.exists());
    // The example carries a genesis, which only an empty store accepts; the store is unchanged.
    let root = root_of(&db);
    fails(
        &["run", example().to_str().unwrap(), "--db", db.to_str().unwrap()],
        "genesis can only be imported into an empty store",
    );
    assert_eq!(root_of(&db), root);

    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    std::fs::write(corrupt.join("state.redb"), vec![0x42; 64 * 1024]).unwrap();
    fails(&["root", "--db", corrupt.to_str().unwrap()], "corrupt");
    fails(&["run", example().to_str().unwrap(), "--db", corrupt.to_str().unwrap()], "corrupt");
    assert_eq!(
        std::fs::read(corrupt.join("state.redb")).unwrap(),
        vec![0x42; 64 * 1024],
        "a corrupt store is left as it was"
    );

    fails(&["get", "--db", db.to_str().unwrap(), "nonsense"], "cannot read key");
    fails(&["get", "--db", db.to_str().unwrap(), "0x0702"], "invalid key");
}

#[test]
fn invalid_proof_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    ok(&["run", example().to_str().unwrap(), "--db", db]);
    let good = dir.path().join("good.json");
    let counter = ok(&["identity", "counter", "1"]).trim().to_owned();
    ok(&["prove", "--db", db, &format!("wasm-slot:{counter}:0"), "--out", good.to_str().unwrap()]);
    let proof: Value = serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();

    let mut tampered_value = proof.clone();
    tampered_value["value"] = json!("0x000000000000002b");
    let mut truncated = proof.clone();
    let hex = proof["proof"].as_str().unwrap();
    truncated["proof"] = json!(&hex[..hex.len() - 10]);
    let mut wrong_format = proof.clone();
    wrong_format["format"] = json!("something-else");
    let mut bad_hex = proof.clone();
    bad_hex["key"] = json!("0xzz");
    let cases = [
        (None, "garbage", "is not a proof file"),
        (Some(tampered_value), "", "does NOT verify"),
        (Some(truncated), "", "field `proof`"),
        (Some(wrong_format), "", "expected format"),
        (Some(bad_hex), "", "field `key`"),
    ];
    for (content, raw, needle) in cases {
        let path = dir.path().join("case.json");
        match content {
            Some(value) => std::fs::write(&path, value.to_string()).unwrap(),
            None => std::fs::write(&path, raw).unwrap(),
        }
        fails(&["verify", path.to_str().unwrap()], needle);
    }
    fails(&["verify", dir.path().join("nope.json").to_str().unwrap()], "cannot read");
}

/// A block with many transactions of both kinds, from dev accounts 1 and 2 (nonces after the
/// example's block), at a fixed timestamp.
fn big_block(count: usize) -> Value {
    let transactions: Vec<Value> = (0..count)
        .map(|index| match index % 3 {
            0 => counter_call("dev:1"),
            1 => {
                json!({"from": "dev:1", "to": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "value": "1", "gas": 21000})
            }
            _ => json!({"from": "dev:2", "to": "0x5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e",
                        "data": format!("0x1ab06ee5{:064x}{:064x}", index, index + 1), "gas": 100000}),
        })
        .collect();
    json!({ "block": {"timestamp": 1_700_000_024}, "transactions": transactions })
}

#[test]
fn two_blocks_in_two_processes_equal_both_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let second = write_block(dir.path(), "second.json", &big_block(30));
    let two = dir.path().join("two");
    ok(&["run", example().to_str().unwrap(), "--db", two.to_str().unwrap()]);
    ok(&["run", second.to_str().unwrap(), "--db", two.to_str().unwrap()]);

    // Both blocks in this one process, through the library.
    let runtime = xstate_chain::Runtime::in_memory(xstate_chain::ChainConfig::default());
    let run = |file: &xstate_chain::BlockFile| {
        let raws = xstate_chain::dev::raw_transactions(&runtime, &file.transactions).unwrap();
        let input = xstate_chain::BlockInput {
            timestamp: file.block.timestamp.unwrap(),
            beneficiary: file.block.beneficiary.unwrap_or_default(),
            ..Default::default()
        };
        runtime.execute_block(&input, &raws, |_| {}).unwrap()
    };
    let first = xstate_chain::BlockFile::parse(&std::fs::read_to_string(example()).unwrap()).unwrap();
    runtime.init_genesis(first.genesis.as_ref().unwrap()).unwrap();
    run(&first);
    let next = xstate_chain::BlockFile::parse(&std::fs::read_to_string(&second).unwrap()).unwrap();
    let outcome = run(&next);
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    assert_eq!(root_of(&two), outcome.commit.root.to_string());
    for number in 0..=2u64 {
        let header: Value =
            serde_json::from_str(&ok(&["--json", "block", &number.to_string(), "--db", two.to_str().unwrap()]))
                .unwrap();
        let block = runtime.block(number).unwrap().unwrap();
        assert_eq!(header["hash"], block.hash.to_string(), "block {number}");
        let mut expected = serde_json::to_value(&block.header).unwrap();
        expected["hash"] = json!(block.hash.to_string());
        for field in
            ["parentHash", "stateRoot", "transactionsRoot", "receiptsRoot", "logsBloom", "gasUsed", "baseFeePerGas"]
        {
            assert_eq!(header[field], expected[field], "block {number}: {field}");
        }
    }
}

#[test]
fn a_process_killed_during_run_leaves_the_previous_or_the_new_root() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    ok(&["run", example().to_str().unwrap(), "--db", base.to_str().unwrap()]);
    let previous = root_of(&base);
    let block = write_block(dir.path(), "big.json", &big_block(600));

    let copy = |name: &str| {
        let target = dir.path().join(name);
        std::fs::create_dir(&target).unwrap();
        std::fs::copy(base.join("state.redb"), target.join("state.redb")).unwrap();
        target
    };
    let reference = copy("reference");
    let started = Instant::now();
    ok(&["run", block.to_str().unwrap(), "--db", reference.to_str().unwrap()]);
    let duration = started.elapsed();
    let new = root_of(&reference);
    assert_ne!(previous, new);

    let mut outcomes = (0, 0);
    for step in 0..16u32 {
        let target = copy(&format!("killed{step}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_xstate"))
            .args(["run", block.to_str().unwrap(), "--db", target.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(duration.mul_f64(f64::from(step) / 14.0) + Duration::from_millis(u64::from(step)));
        let _ = child.kill();
        let _ = child.wait();
        let root = root_of(&target);
        assert!(root == previous || root == new, "step {step}: reopened at {root}, neither {previous} nor {new}");
        if root == previous { outcomes.0 += 1 } else { outcomes.1 += 1 }
    }
    assert!(outcomes.0 > 0, "no kill landed before the commit: {outcomes:?}");
}
