//! EVM contracts read WASM slots through the precompile: results, gas, STATICCALL, documented
//! reverts that never abort the transaction, and no way to change WASM state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ALICE, BOB, World, calldata, guest, output_word, token_input, word};
use cross_read::abi::{self, CallError};
use cross_read::{BASE_GAS, XSTATE_PRECOMPILE};
use evm_binding::revm::context::TxEnv;
use evm_binding::revm::context::result::ExecutionResult;
use evm_binding::revm::primitives::{Address, TxKind, U256};
use kv_core::{Engine, Namespace};

fn direct(world: &mut World, input: Vec<u8>, value: U256) -> ExecutionResult {
    let tx = TxEnv { value, ..world.tx(ALICE, TxKind::Call(XSTATE_PRECOMPILE), input) };
    world.send(tx)
}

fn wasm_state(world: &World) -> Vec<(Vec<u8>, Vec<u8>)> {
    world.overlay.scan_prefix(&[Engine::Wasm.tag()]).unwrap()
}

#[test]
fn read_u64_returns_the_slot_and_zero_for_unknown_modules() {
    let mut world = World::new();
    let counter = world.deploy_module("counter", &guest("counter"));
    for _ in 0..3 {
        assert!(world.wasm_call(ALICE, counter, b"").is_success());
    }
    let result = direct(&mut world, abi::encode_read_u64(counter.to_address(), 0), U256::ZERO);
    assert!(result.is_success(), "{result:?}");
    assert_eq!(output_word(&result), U256::from(3));
    // Gas: the intrinsic 21,000 plus calldata, plus at least a cold SLOAD.
    assert!(result.tx_gas_used() >= 21_000 + BASE_GAS, "{}", result.tx_gas_used());

    // An unknown module reads 0, like an absent slot of a known one.
    let unknown = direct(&mut world, abi::encode_read_u64(Address::repeat_byte(0x77), 0), U256::ZERO);
    assert_eq!(output_word(&unknown), U256::ZERO);
    let absent_slot = direct(&mut world, abi::encode_read_u64(counter.to_address(), 99), U256::ZERO);
    assert_eq!(output_word(&absent_slot), U256::ZERO);

    // moduleAddress derives identities with the runtime's chain id.
    let derived = direct(&mut world, abi::encode_module_address("counter", 1), U256::ZERO);
    assert_eq!(derived.output().unwrap()[12..32], *counter.as_bytes());
}

#[test]
fn bad_calls_revert_with_documented_errors_and_move_nothing() {
    let mut world = World::new();
    let counter = world.deploy_module("counter", &guest("counter"));
    assert!(world.wasm_call(ALICE, counter, b"").is_success());
    // A slot written through the byte-key interface with a non-u64 value.
    let key = Namespace::wasm(counter).slot_key(5);
    world.overlay.set(&key, &[1, 2, 3]).unwrap();

    let cases: Vec<(&str, Vec<u8>, U256, CallError)> = vec![
        (
            "unknown selector",
            vec![0xde, 0xad, 0xbe, 0xef],
            U256::ZERO,
            CallError::UnknownSelector([0xde, 0xad, 0xbe, 0xef]),
        ),
        (
            "short calldata",
            abi::encode_read_u64(counter.to_address(), 0)[..40].to_vec(),
            U256::ZERO,
            CallError::MalformedCalldata,
        ),
        ("attached value", abi::encode_read_u64(counter.to_address(), 0), U256::from(5), CallError::ValueNotAccepted),
        ("invalid name", abi::encode_module_address("No Such", 1), U256::ZERO, CallError::InvalidModuleName),
        (
            "slot that is not a u64",
            abi::encode_read_u64(counter.to_address(), 5),
            U256::ZERO,
            CallError::SlotNotU64 { module: counter.to_address(), slot: 5 },
        ),
    ];
    let wasm_before = wasm_state(&world);
    for (what, input, value, expected) in cases {
        let balance_before = evm_binding::database::account(&world.overlay, ALICE).unwrap().unwrap().balance;
        let result = direct(&mut world, input, value);
        let ExecutionResult::Revert { output, .. } = &result else {
            panic!("{what}: expected a revert, got {result:?}")
        };
        assert_eq!(output, &expected.encode(), "{what}");
        let balance_after = evm_binding::database::account(&world.overlay, ALICE).unwrap().unwrap().balance;
        assert_eq!(balance_before, balance_after, "{what}: value or gas was charged (gas price is 0)");
    }
    assert_eq!(wasm_state(&world), wasm_before, "a precompile call changed WASM state");
}

#[test]
fn too_little_gas_fails_the_inner_call_not_the_transaction() {
    let mut world = World::new();
    let counter = world.deploy_module("counter", &guest("counter"));
    assert!(world.wasm_call(ALICE, counter, b"").is_success());
    let bench = world.deploy_contract("CrossBench", &[]);
    let read = |world: &mut World, gas: u64| {
        let data =
            calldata("readWithGas(address,uint64,uint256)", &[word(counter.to_address()), U256::ZERO, U256::from(gas)]);
        let result = world.evm_call(ALICE, bench, data);
        assert!(result.is_success(), "the outer call goes on: {result:?}");
        let output = result.output().unwrap();
        (U256::from_be_slice(&output[..32]), U256::from_be_slice(&output[32..64]))
    };
    // Below the precompile's price the STATICCALL returns false; with enough it reads slot 0.
    assert_eq!(read(&mut world, BASE_GAS - 1), (U256::ZERO, U256::ZERO));
    assert_eq!(read(&mut world, BASE_GAS + 100), (U256::from(1), U256::from(1)));
}

#[test]
fn solidity_reads_through_staticcall_and_sees_earlier_writes_of_the_block() {
    let mut world = World::new();
    let token = world.deploy_module("token", &guest("token"));
    assert!(world.wasm_call(ALICE, token, &[0x00]).is_success());
    assert!(world.wasm_call(ALICE, token, &token_input(0x01, BOB, Some(640))).is_success());
    let reader = world.deploy_contract("WasmReader", &[]);

    // balanceByName is a view: Solidity reaches the precompile with STATICCALL.
    let mut by_name = calldata("balanceByName(string,uint32,address)", &[U256::from(0x60), U256::from(1), word(BOB)]);
    by_name.extend_from_slice(&U256::from(5).to_be_bytes::<32>());
    let mut name = b"token".to_vec();
    name.resize(32, 0);
    by_name.extend_from_slice(&name);
    let result = world.evm_call(ALICE, reader, by_name.clone());
    assert!(result.is_success(), "{result:?}");
    assert_eq!(output_word(&result), U256::from(640));

    // A WASM transfer later in the same block is visible to the next EVM read.
    assert!(world.wasm_call(BOB, token, &token_input(0x02, ALICE, Some(40))).is_success());
    let result = world.evm_call(
        ALICE,
        reader,
        calldata("readTokenBalance(address,address)", &[word(token.to_address()), word(BOB)]),
    );
    assert!(result.is_success(), "{result:?}");
    assert_eq!(output_word(&result), U256::from(600));
    assert_eq!(result.logs().len(), 1, "BalanceRead event");
}
