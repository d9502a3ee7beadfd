//! `xstate prove --eip1186` prints what `eth_getProof` returns, and an independent verifier
//! (py-trie's `HexaryTrie.get_from_proof`, `xtask/verifiers/eip1186_verify.py`) accepts it against
//! the store's root: present and absent accounts, present and absent slots, and slots whose leaves
//! are short enough to be embedded in their branch.
//!
//! The verifier runs in the Python environment `cargo xtask ci` prepares
//! (`target/xtask/pyenv`, from `xtask/verifiers/requirements.txt`), or the interpreter named by
//! `XSTATE_PYTHON`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use alloy_primitives::{B256, keccak256};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const HOLDER: &str = "0x5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
const ABSENT: &str = "0x0000000000000000000000000000000000c0ffee";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python interpreter with the independent verifiers installed.
fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("XSTATE_PYTHON") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from);
    let path = target.join("xtask/pyenv/bin/python");
    assert!(
        path.exists(),
        "no Python environment with the independent verifiers at {}: run `cargo xtask ci` (or `cargo xtask \
         verifiers`) once, or set XSTATE_PYTHON",
        path.display()
    );
    path
}

fn xstate(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_xstate")).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "xstate {args:?} failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// Two slots whose hashed keys share their first 8 nibbles, found by a birthday search.
fn colliding_slots() -> (u64, u64) {
    let mut seen = HashMap::new();
    for slot in 0u64.. {
        let hash = keccak256(B256::left_padding_from(&slot.to_be_bytes()));
        let prefix: [u8; 4] = hash[..4].try_into().unwrap();
        if let Some(other) = seen.insert(prefix, slot) {
            return (other, slot);
        }
    }
    unreachable!("the search ends")
}

fn verify_independently(root: &str, response: &str) -> String {
    let script = workspace().join("xtask/verifiers/eip1186_verify.py");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(response.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "py-trie rejects the proof: {}{stdout}", String::from_utf8_lossy(&output.stderr));
    stdout
}

#[test]
fn eip1186_proofs_verify_with_py_trie() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = colliding_slots();
    let slot = |number: u64| format!("{:#x}", number);
    let block = json!({
        "chain_id": 31337,
        "genesis": { "accounts": [
            { "address": HOLDER, "balance": "0x1234", "nonce": 3, "code": "0x6000",
              "storage": { "0x07": "0x2a", slot(first): "0x01", slot(second): "0x02", "0x01": "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff" } },
            { "address": "0xb0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0", "balance": "0x3635c9adc5dea00000" },
        ]},
        "transactions": [],
    });
    let path = dir.path().join("block.json");
    std::fs::write(&path, serde_json::to_string(&block).unwrap()).unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    xstate(&["run", path.to_str().unwrap(), "--db", db]);
    let root: Value = serde_json::from_str(&xstate(&["--json", "root", "--db", db])).unwrap();
    let root = root["root"].as_str().unwrap().to_owned();

    let absent_slot = "0x99";
    let response =
        xstate(&["prove", "--eip1186", HOLDER, "0x07", &slot(first), &slot(second), "0x1", absent_slot, "--db", db]);
    let parsed: Value = serde_json::from_str(&response).unwrap();
    // The field names and encodings of `eth_getProof`.
    assert_eq!(parsed["address"].as_str().unwrap().to_lowercase(), HOLDER);
    assert_eq!(parsed["nonce"], "0x3");
    assert_eq!(parsed["balance"], "0x1234");
    assert_eq!(parsed["codeHash"], keccak256([0x60, 0x00]).to_string());
    assert_eq!(parsed["storageProof"].as_array().unwrap().len(), 5);
    assert_eq!(parsed["storageProof"][0]["value"], "0x2a");
    assert_eq!(parsed["storageProof"][4]["value"], "0x0");
    let checked = verify_independently(&root, &response);
    assert_eq!(checked.matches("verified").count(), 6, "{checked}");

    // An account that does not exist, with a slot.
    let response = xstate(&["prove", "--eip1186", ABSENT, "0x0", "--db", db]);
    let parsed: Value = serde_json::from_str(&response).unwrap();
    assert_eq!(parsed["balance"], "0x0");
    assert_eq!(parsed["storageHash"], alloy_trie::EMPTY_ROOT_HASH.to_string());
    assert_eq!(parsed["codeHash"], alloy_trie::KECCAK_EMPTY.to_string());
    assert!(verify_independently(&root, &response).contains("absent, verified"));

    // The verifier is not a rubber stamp: a changed value fails.
    let mut tampered: Value =
        serde_json::from_str(&xstate(&["prove", "--eip1186", HOLDER, "0x07", "--db", db])).unwrap();
    tampered["storageProof"][0]["value"] = json!("0x2b");
    let script = workspace().join("xtask/verifiers/eip1186_verify.py");
    let mut child = Command::new(python())
        .arg(&script)
        .arg(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(tampered.to_string().as_bytes()).unwrap();
    assert!(!child.wait().unwrap().success(), "py-trie accepted a tampered value");
}

#[test]
fn eip1186_bad_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    std::fs::create_dir_all(&db).unwrap();
    for (args, needle) in [
        (vec!["prove", "--eip1186", "0x12", "--db"], "not a 20-byte hex address"),
        (vec!["prove", "--eip1186", HOLDER, "0xzz", "--db"], "is not a storage slot"),
        (vec!["prove", "--eip1186", HOLDER, &format!("0x{}", "11".repeat(33)), "--db"], "is not a storage slot"),
        (vec!["prove", HOLDER, "0x01", "--out", "proof.json", "--db"], "several arguments need --eip1186"),
    ] {
        let mut args = args;
        args.push(db.to_str().unwrap());
        let output = Command::new(env!("CARGO_BIN_EXE_xstate")).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
