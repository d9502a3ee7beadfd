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
