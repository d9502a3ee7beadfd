//! `xstate witness` and `xstate verify-block` driven as a user would: the demo block's witness
//! is written from its store and verifies with no store, reproducing the root the store holds;
//! a tampered witness, a foreign block, garbage files and impossible block numbers each fail with
//! a clear message and a non-zero exit, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use serde_json::Value;
use std::process::{Command, Output};

fn xstate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xstate")).args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let output = xstate(args);
    assert!(output.status.success(), "xstate {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn fails(args: &[&str], needle: &str) {
    let output = xstate(args);
    assert!(!output.status.success(), "xstate {args:?} should fail");
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains(needle), "xstate {args:?}: `{message}` should mention `{needle}`");
    assert!(!message.contains("panicked"), "xstate {args:?} panicked: {message}");
}

#[test]
fn the_demo_block_verifies_from_its_witness_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    ok(&["demo", "--db", db]);
    let out = dir.path().join("demo.witness.json");
    let out = out.to_str().unwrap();
    let report: Value = serde_json::from_str(&ok(&["--json", "witness", "1", "--db", db, "--out", out])).unwrap();
    assert!(report["nodes"].as_u64().unwrap() > 0 && report["bytes"].as_u64().unwrap() > 0, "{report}");
    let block = format!("{out}.block.json");
    assert_eq!(report["blockFile"], block.as_str());

    let verified: Value = serde_json::from_str(&ok(&["--json", "verify-block", &block, out])).unwrap();
    let root: Value = serde_json::from_str(&ok(&["--json", "root", "--db", db, "--block", "1"])).unwrap();
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["stateRoot"], root["root"]);
    assert_eq!(verified["transactions"], 11);
    // The readable report says the same.
    assert!(ok(&["verify-block", &block, out]).contains("verified from its witness"));

    // The store is not needed: the two files verify after it is gone.
    std::fs::remove_dir_all(db).unwrap();
    ok(&["verify-block", &block, out]);

    // A witness node changed on disk.
    let mut witness: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    let node = witness["state"][0].as_str().unwrap().to_owned();
    let flipped = format!("{}{}", &node[..node.len() - 1], if node.ends_with('0') { '1' } else { '0' });
    witness["state"][0] = Value::String(flipped);
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, witness.to_string()).unwrap();
    fails(&["verify-block", &block, tampered.to_str().unwrap()], "does not verify");

    // A header field of the block changed.
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(&block).unwrap()).unwrap();
    file["transactions"].as_array_mut().unwrap().pop();
    let short = dir.path().join("short.block.json");
    std::fs::write(&short, file.to_string()).unwrap();
    fails(&["verify-block", short.to_str().unwrap(), out], "does not verify");

    // Garbage files.
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "not json").unwrap();
    fails(&["verify-block", &block, garbage.to_str().unwrap()], "not JSON");
    fails(&["verify-block", garbage.to_str().unwrap(), out], "not JSON");
    std::fs::write(&garbage, r#"{"state": ["zz"]}"#).unwrap();
    fails(&["verify-block", &block, garbage.to_str().unwrap()], "field `state`");
    fails(&["verify-block", &block, dir.path().join("missing.json").to_str().unwrap()], "cannot read");
}

#[test]
fn impossible_blocks_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    ok(&["demo", "--db", db]);
    let out = dir.path().join("w.json");
    let out = out.to_str().unwrap();
    fails(&["witness", "0", "--db", db, "--out", out], "genesis block has no parent");
    fails(&["witness", "9", "--db", db, "--out", out], "does not exist");
    fails(&["witness", "1", "--db", dir.path().join("none").to_str().unwrap(), "--out", out], "no store");
}

/// The Python interpreter with py-trie installed (`cargo xtask verifiers`), as the EIP-1186 test
/// finds it.
fn python() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("XSTATE_PYTHON") {
        return path.into();
    }
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace.join("target"), Into::into);
    let path = target.join("xtask/pyenv/bin/python");
    assert!(path.exists(), "no py-trie environment at {}: run `cargo xtask verifiers`", path.display());
    path
}

/// Runs the independent witness checker (`xtask/verifiers/witness_verify.py`, on py-trie).
fn py_trie_check(witness: &str, block: &str) -> Result<Value, String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xtask/verifiers/witness_verify.py");
    let output = Command::new(python()).arg(script).args([witness, block]).output().unwrap();
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// A witness checked by an implementation no one here wrote: py-trie walks every node from the
/// parent's state root (none added or foreign), finds the account path of every key and the
/// storage path of every key whose storage trie the block read, and every code blob is named by
/// an account leaf. The block after the demo's reads and rewrites storage both engines left (an
/// ERC-20 transfer, WASM token transfers, one that empties a balance and so deletes its slot).
/// A node from another state, added to the witness, is found by py-trie and by verify-block.
#[test]
fn witnesses_check_with_py_trie() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    ok(&["demo", "--db", db]);
    let alice = "70997970c51812dc3a010c7d01b50e0d17dc79c8";
    let bob = "3c44cdddb6a900fa2b585dd299e03d12fa4293bc";
    // transfer(bob, 1) on the demo's ERC-20; the WASM token's transfer (0x02 | to | amount).
    let erc20 = format!("0xa9059cbb000000000000000000000000{bob}{:064x}", 1);
    let to_bob = format!("0x02{bob}{:016x}", 100);
    let back_to_alice = format!("0x02{alice}{:016x}", 500);
    let block = serde_json::json!({
        "transactions": [
            {"from": "dev:1", "to": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "data": erc20},
            {"from": "dev:1", "module": {"name": "token", "version": 1}, "data": to_bob, "gas": 1_000_000},
            {"from": "dev:2", "module": {"name": "token", "version": 1}, "data": back_to_alice, "gas": 1_000_000},
        ]
    });
    let file = dir.path().join("block2.json");
    std::fs::write(&file, block.to_string()).unwrap();
    let ran: Value = serde_json::from_str(&ok(&["--json", "run", file.to_str().unwrap(), "--db", db])).unwrap();
    let statuses: Vec<&Value> = ran["receipts"].as_array().unwrap().iter().map(|receipt| &receipt["status"]).collect();
    assert_eq!(statuses.len(), 3, "{ran}");
    assert!(statuses.iter().all(|status| *status == "success"), "{ran}");

    for number in ["1", "2"] {
        let out = dir.path().join(format!("w{number}.json"));
        let out = out.to_str().unwrap();
        ok(&["--json", "witness", number, "--db", db, "--out", out]);
        let block = format!("{out}.block.json");
        let checked = py_trie_check(out, &block).unwrap();
        let witness: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
        assert_eq!(checked["nodes"], witness["state"].as_array().unwrap().len());
        assert_eq!(checked["keys"], witness["keys"].as_array().unwrap().len());
        if number == "2" {
            // Block 2 reads storage of both engines that block 1 wrote.
            assert!(checked["storageLookups"].as_u64().unwrap() >= 4, "{checked}");
            assert!(checked["storageLeaves"].as_u64().unwrap() >= 4, "{checked}");
            ok(&["verify-block", &block, out]);

            // A node of another state (block 1's witness) added to block 2's.
            let other: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.path().join("w1.json")).unwrap()).unwrap();
            let mut tampered = witness.clone();
            let ours = tampered["state"].as_array().unwrap().clone();
            let foreign = other["state"].as_array().unwrap().iter().find(|node| !ours.contains(node)).unwrap().clone();
            tampered["state"].as_array_mut().unwrap().push(foreign);
            let path = dir.path().join("tampered.json");
            std::fs::write(&path, tampered.to_string()).unwrap();
            let path = path.to_str().unwrap();
            let rejected = py_trie_check(path, &block).unwrap_err();
            assert!(rejected.contains("not reached from the parent root"), "{rejected}");
            fails(&["verify-block", &block, path], "does not verify");
        }
    }
}
