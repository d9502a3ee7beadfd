//! The example modules written in Rust against the guest SDK, on a redb-backed store that is
//! closed and reopened between blocks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ALICE, BOB, GAS, Harness, guest};
use kv_core::{Identity, Store, StoreConfig};
use wasm_binding::{CallStatus, Receipt};

fn u64_output(receipt: &Receipt) -> u64 {
    assert_eq!(receipt.status, CallStatus::Success, "{receipt:?}");
    u64::from_be_bytes(receipt.output.as_slice().try_into().expect("8-byte output"))
}

fn transfer(to: Identity, amount: u64) -> Vec<u8> {
    let mut input = vec![0x02];
    input.extend_from_slice(to.as_bytes());
    input.extend_from_slice(&amount.to_be_bytes());
    input
}

fn mint(to: Identity, amount: u64) -> Vec<u8> {
    let mut input = transfer(to, amount);
    input[0] = 0x01;
    input
}

fn balance(holder: Identity) -> Vec<u8> {
    let mut input = vec![0x03];
    input.extend_from_slice(holder.as_bytes());
    input
}

fn open(dir: &tempfile::TempDir) -> Harness {
    Harness::on(Store::open_redb(dir.path().join("state.redb"), StoreConfig::default()).unwrap())
}

#[test]
fn counter_counts_across_blocks_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let counter = {
        let mut harness = open(&dir);
        let counter = harness.deploy_bytes("counter", &guest("counter")).unwrap();
        assert_eq!(u64_output(&harness.call(counter, b"")), 1);
        assert_eq!(u64_output(&harness.call(counter, &[0])), 2);
        harness.commit();
        let mut add = vec![2];
        add.extend_from_slice(&40u64.to_be_bytes());
        assert_eq!(u64_output(&harness.call(counter, &add)), 42);
        harness.commit();
        counter
    };
    let mut harness = open(&dir);
    assert_eq!(harness.store.height(), 2);
    assert_eq!(u64_output(&harness.call(counter, &[1])), 42, "state survives reopening");
    let mut overflow = vec![2];
    overflow.extend_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(harness.call(counter, &overflow).status, CallStatus::Revert(b"overflow".to_vec()));
    assert_eq!(harness.call(counter, &[9]).status, CallStatus::Revert(b"unknown operation".to_vec()));
    assert_eq!(u64_output(&harness.call(counter, &[1])), 42);
}

#[test]
fn token_mints_transfers_and_reverts_on_insufficient_balance() {
    let dir = tempfile::tempdir().unwrap();
    let token = {
        let mut harness = open(&dir);
        let token = harness.deploy_bytes("token", &guest("token")).unwrap();
        assert!(harness.call_as(ALICE, token, &[0x00], GAS).is_success());
        assert_eq!(
            harness.call_as(BOB, token, &[0x00], GAS).status,
            CallStatus::Revert(b"already initialized".to_vec())
        );
        assert_eq!(u64_output(&harness.call_as(ALICE, token, &mint(ALICE, 1_000), GAS)), 1_000);
        assert_eq!(
            harness.call_as(BOB, token, &mint(BOB, 5), GAS).status,
            CallStatus::Revert(b"only the owner can mint".to_vec())
        );
        assert_eq!(u64_output(&harness.call_as(ALICE, token, &transfer(BOB, 250), GAS)), 750);
        harness.commit();
        token
    };
    let mut harness = open(&dir);
    assert_eq!(u64_output(&harness.call(token, &balance(ALICE))), 750);
    assert_eq!(u64_output(&harness.call(token, &balance(BOB))), 250);
    let refused = harness.call_as(BOB, token, &transfer(ALICE, 251), GAS);
    assert_eq!(refused.status, CallStatus::Revert(b"insufficient balance".to_vec()));
    assert_eq!(u64_output(&harness.call(token, &balance(BOB))), 250, "a reverted transfer moves nothing");
    assert_eq!(u64_output(&harness.call(token, &[0x04])), 1_000);
    assert_eq!(harness.call(token, &[0x02, 1, 2]).status, CallStatus::Revert(b"transfer: expected recipient".to_vec()));
    // The balance is in the u64 slot the module documents, where EVM contracts can read it.
    let hash = alloy_primitives::keccak256(BOB.as_bytes());
    let slot = u64::from_be_bytes(hash[..8].try_into().unwrap());
    assert_eq!(harness.overlay.get_u64(&kv_core::Namespace::wasm(token).slot_key(slot)).unwrap(), 250);
}

#[test]
fn compiled_modules_are_cached_and_reloaded_from_state() {
    let store = Store::in_memory();
    let mut harness = Harness::on(store);
    let counter = harness.deploy_bytes("counter", &guest("counter")).unwrap();
    for _ in 0..5 {
        harness.call(counter, b"");
    }
    assert_eq!(harness.engine.compilations(), 1, "compiled at deploy, never again");
    assert_eq!(harness.engine.cached_modules(), 1);
    harness.commit();
    // A fresh engine (a restarted node) compiles the module from the code blob in the state, once.
    harness.engine = wasm_binding::WasmEngine::new(common::CHAIN_ID);
    assert_eq!(u64_output(&harness.call(counter, &[1])), 5);
    assert_eq!(u64_output(&harness.call(counter, &[1])), 5);
    assert_eq!(harness.engine.compilations(), 1);
    assert_eq!(harness.engine.cached_modules(), 1);
}
