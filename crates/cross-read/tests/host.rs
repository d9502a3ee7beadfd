//! WASM modules read EVM storage through `evm_storage_read`: the word, zero when absent, the
//! documented gas, bounds-checked pointers, and no way to change EVM state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ALICE, World};
use cross_read::EVM_STORAGE_READ_GAS;
use evm_binding::revm::primitives::{Address, U256};
use evm_binding::{GenesisAccount, insert_account};
use kv_core::Engine;
use wasm_binding::CallStatus;

const CONTRACT: Address = Address::repeat_byte(0xcc);

/// A module that reads (address at 0, key at 32) into 64 and outputs it, with the given body
/// before the output.
fn reader_module(body: &str) -> String {
    let address: String = CONTRACT.iter().map(|byte| format!("\\{byte:02x}")).collect();
    format!(
        r#"(module
            (import "xstate" "evm_storage_read" (func $read (param i32 i32 i32)))
            (import "xstate" "output_write" (func $output (param i32 i32)))
            (memory (export "memory") 1 1)
            (data (i32.const 0) "{address}")
            (data (i32.const 63) "\07")
            (func (export "call") {body} (call $output (i32.const 64) (i32.const 32))))"#
    )
}

fn world_with_contract() -> World {
    let mut world = World::new();
    let account = GenesisAccount { storage: vec![(U256::from(7), U256::from(0xbeef))], ..Default::default() };
    insert_account(&mut world.overlay, CONTRACT, &account).unwrap();
    world
}

#[test]
fn reads_words_and_zero_for_absent_ones_at_the_documented_price() {
    let mut world = world_with_contract();
    let wat = reader_module("(call $read (i32.const 0) (i32.const 32) (i32.const 64))");
    let module = world
        .wasm
        .deploy(&mut world.overlay, &kv_core::ModuleName::new("reader").unwrap(), 1, &wat::parse_str(&wat).unwrap())
        .unwrap();
    let receipt = world.wasm_call(ALICE, module, b"");
    assert_eq!(receipt.status, CallStatus::Success);
    assert_eq!(U256::from_be_slice(&receipt.output), U256::from(0xbeef));
    // The price of the read is what the call costs beyond the same module without it (which
    // pays the engine's per-call base and the output like this one).
    let wat = reader_module("");
    let without = world
        .wasm
        .deploy(&mut world.overlay, &kv_core::ModuleName::new("no-read").unwrap(), 1, &wat::parse_str(&wat).unwrap())
        .unwrap();
    let base = world.wasm_call(ALICE, without, b"");
    assert_eq!(base.status, CallStatus::Success);
    // The two modules differ in size, and so in their base cost, which is not the read's.
    let base_of =
        |wat: &str| wasm_binding::gas::call_base(wasm_binding::validate::artifact_bound(&wat::parse_str(wat).unwrap()));
    let with_read = reader_module("(call $read (i32.const 0) (i32.const 32) (i32.const 64))");
    let read_gas = (receipt.gas_used - base_of(&with_read)) - (base.gas_used - base_of(&wat));
    assert!((EVM_STORAGE_READ_GAS..EVM_STORAGE_READ_GAS + 200).contains(&read_gas), "{read_gas}");

    // Key 8 is absent: the word is zero.
    let wat = reader_module(
        "(i32.store8 (i32.const 63) (i32.const 8)) (call $read (i32.const 0) (i32.const 32) (i32.const 64))",
    );
    let module = world
        .wasm
        .deploy(&mut world.overlay, &kv_core::ModuleName::new("absent").unwrap(), 1, &wat::parse_str(&wat).unwrap())
        .unwrap();
    assert_eq!(world.wasm_call(ALICE, module, b"").output, vec![0u8; 32]);
}

#[test]
fn bad_pointers_trap_and_no_call_changes_evm_state() {
    let mut world = world_with_contract();
    let evm_before = world.overlay.scan_prefix(&[Engine::Evm.tag()]).unwrap();
    let cases = [
        ("(call $read (i32.const 65530) (i32.const 32) (i32.const 64))", "evm_storage_read: address at 0x0000fffa"),
        ("(call $read (i32.const 0) (i32.const 65520) (i32.const 64))", "evm_storage_read: key at 0x0000fff0"),
        ("(call $read (i32.const 0) (i32.const 32) (i32.const -1))", "evm_storage_read: output buffer at 0xffffffff"),
    ];
    for (index, (body, needle)) in cases.iter().enumerate() {
        let wat = reader_module(body);
        let name = kv_core::ModuleName::new(&format!("bad{index}")).unwrap();
        let module = world.wasm.deploy(&mut world.overlay, &name, 1, &wat::parse_str(&wat).unwrap()).unwrap();
        let receipt = world.wasm_call(ALICE, module, b"");
        assert!(
            matches!(&receipt.status, CallStatus::Trap(reason) if reason.contains(needle)),
            "{body}: {:?}",
            receipt.status
        );
    }
    // Every host function the module may import, driven with EVM-shaped keys, leaves EVM state
    // as it was: storage functions only address the module's own namespace.
    let module = world.deploy_module("writer", &wat::parse_str(WRITER).unwrap());
    assert!(world.wasm_call(ALICE, module, b"").is_success());
    assert_eq!(world.overlay.scan_prefix(&[Engine::Evm.tag()]).unwrap(), evm_before);
}

/// A module calling every state-changing host function with keys that spell EVM keys.
const WRITER: &str = r#"(module
    (import "xstate" "state_set" (func $set (param i64 i64)))
    (import "xstate" "storage_write" (func $write (param i32 i32 i32 i32)))
    (import "xstate" "storage_remove" (func $remove (param i32 i32)))
    (import "xstate" "evm_storage_read" (func $read (param i32 i32 i32)))
    (memory (export "memory") 1 1)
    (data (i32.const 0) "\02\cc\cc\cc\cc\cc\cc\cc\cc\cc\cc\cc\cc\cc\cc\cc\cc\cc\cc\cc\cc\01")
    (func (export "call")
        (call $set (i64.const 7) (i64.const 1))
        (call $write (i32.const 0) (i32.const 54) (i32.const 0) (i32.const 32))
        (call $remove (i32.const 0) (i32.const 54))
        (call $write (i32.const 1) (i32.const 53) (i32.const 0) (i32.const 32))
        (call $read (i32.const 1) (i32.const 22) (i32.const 100))))"#;
