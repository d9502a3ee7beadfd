//! EVM contracts read WASM slots through the precompile: results, exact gas, cold and warm slot
//! reads in the transaction's access set, a warm address,
//! STATICCALL and DELEGATECALL, documented reverts that never abort the transaction, and no way to
//! change WASM state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ALICE, BOB, World, guest, token_input};
use cross_read::abi::{self, CallError};
use cross_read::{
    BASE_GAS, GAS_PER_WORD, MODULE_ADDRESS_GAS, WARM_READ_GAS, XSTATE_PRECOMPILE, XStatePrecompiles, gas_cost,
};
use evm_binding::EvmContext;
use evm_binding::abi::{calldata, output_word, word};
use evm_binding::revm::context::TxEnv;
use evm_binding::revm::context::result::ExecutionResult;
use evm_binding::revm::handler::PrecompileProvider;
use evm_binding::revm::primitives::hardfork::SpecId;
use evm_binding::revm::primitives::{Address, TxKind, U256, address, keccak256};
use evm_binding::{GenesisAccount, insert_account};
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
    let wasm_before = wasm_state(&world);
    let result = direct(&mut world, abi::encode_read_u64(counter.to_address(), 0), U256::ZERO);
    assert!(result.is_success(), "{result:?}");
    assert_eq!(output_word(&result, 0), Some(U256::from(3)));
    // Gas: the intrinsic 21,000 plus calldata, plus at least a cold SLOAD.
    assert!(result.tx_gas_used() >= 21_000 + BASE_GAS, "{}", result.tx_gas_used());

    // An unknown module reads 0, like an absent slot of a known one.
    let unknown = direct(&mut world, abi::encode_read_u64(Address::repeat_byte(0x77), 0), U256::ZERO);
    assert_eq!(output_word(&unknown, 0), Some(U256::ZERO));
    let absent_slot = direct(&mut world, abi::encode_read_u64(counter.to_address(), 99), U256::ZERO);
    assert_eq!(output_word(&absent_slot, 0), Some(U256::ZERO));

    // moduleAddress derives identities with the runtime's chain id.
    let derived = direct(&mut world, abi::encode_module_address("counter", 1), U256::ZERO);
    assert_eq!(output_word(&derived, 0), Some(word(counter.to_address())));
    assert_eq!(wasm_state(&world), wasm_before, "a successful precompile call changed WASM state");
}

/// The documented prices, to the gas: 2,100 + 3 per calldata word, plus 36 for `moduleAddress`.
#[test]
fn gas_is_the_documented_price() {
    // readU64: 4 + 64 bytes, 3 words.
    let read = abi::encode_read_u64(Address::repeat_byte(0x11), 7);
    assert_eq!(gas_cost(&read), 2_109);
    assert_eq!(gas_cost(&read), BASE_GAS + 3 * GAS_PER_WORD);
    // moduleAddress("token", 1): 4 + 128 bytes, 5 words.
    let derive = abi::encode_module_address("token", 1);
    assert_eq!(gas_cost(&derive), 2_151);
    assert_eq!(gas_cost(&derive), BASE_GAS + 5 * GAS_PER_WORD + MODULE_ADDRESS_GAS);
    // Refused calls pay the same: empty calldata is the base price.
    assert_eq!(gas_cost(&[]), BASE_GAS);
}

/// Runtime code that STATICCALLs the precompile once per input (each input 68 bytes, written
/// to the same memory so only the first call expands it) and stops; it ends with `tail`.
fn reader(inputs: &[Vec<u8>], tail: &[u8]) -> Vec<u8> {
    let mut code = Vec::new();
    for input in inputs {
        assert_eq!(input.len(), 68);
        let mut padded = input.clone();
        padded.resize(96, 0);
        for (index, chunk) in padded.chunks(32).enumerate() {
            // PUSH32 chunk, PUSH1 offset, MSTORE.
            code.push(0x7f);
            code.extend_from_slice(chunk);
            code.extend_from_slice(&[0x60, u8::try_from(index * 32).unwrap(), 0x52]);
        }
        // STATICCALL(GAS, 0x0a00, 0, 68, 0x80, 32), then POP its success flag.
        code.extend_from_slice(&[0x60, 0x20, 0x60, 0x80, 0x60, 0x44, 0x60, 0x00, 0x61, 0x0a, 0x00, 0x5a, 0xfa, 0x50]);
    }
    code.extend_from_slice(tail);
    code
}

/// `readU64` is cold on the transaction's first read of a slot (2,100) and warm after (100), in
/// revm's own access journal: a new transaction starts cold, and a reverted frame's reads leave
/// no mark.
#[test]
fn read_u64_is_cold_then_warm_in_the_transactions_access_set() {
    let mut world = World::new();
    let counter = world.deploy_module("counter", &guest("counter"));
    assert!(world.wasm_call(ALICE, counter, b"").is_success());
    let slot = |slot| abi::encode_read_u64(counter.to_address(), slot);
    // Each contract lives at an address derived from its code.
    let install = |world: &mut World, code: Vec<u8>| {
        let address = Address::from_slice(&keccak256(&code)[12..]);
        insert_account(&mut world.overlay, address, &GenesisAccount { code, ..Default::default() }).unwrap();
        address
    };
    let run = |world: &mut World, address: Address| {
        let result = world.evm_call(ALICE, address, Vec::new());
        assert!(result.is_success(), "{result:?}");
        result.tx_gas_used()
    };
    let gas_of = |world: &mut World, code: Vec<u8>| {
        let address = install(world, code);
        (address, run(world, address))
    };
    let (_, one) = gas_of(&mut world, reader(&[slot(0)], &[0x00]));
    let (_, same_twice) = gas_of(&mut world, reader(&[slot(0), slot(0)], &[0x00]));
    let (_, two_slots) = gas_of(&mut world, reader(&[slot(0), slot(1)], &[0x00]));
    let (_, other_module) =
        gas_of(&mut world, reader(&[slot(0), abi::encode_read_u64(Address::repeat_byte(0x77), 0)], &[0x00]));
    assert_eq!(two_slots - same_twice, BASE_GAS - WARM_READ_GAS, "the second read of slot 0 is warm");
    assert_eq!(other_module, two_slots, "a slot of another module is another key");
    // Every transaction starts cold: the same contract, sent again, pays the same.
    let (again, first) = gas_of(&mut world, reader(&[slot(0), slot(0)], &[0x00]));
    assert_eq!(first, same_twice);
    assert_eq!(run(&mut world, again), same_twice);
    assert!(one < same_twice);

    // A frame that reads slot 0 and reverts leaves it cold; one that returns leaves it warm.
    // Outer: CALL(GAS, inner, 0, 0, 0, 0, 0), POP, then read slot 0.
    let outer = |inner: Address| {
        let mut code = vec![0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x60, 0x00, 0x73];
        code.extend_from_slice(inner.as_slice());
        code.extend_from_slice(&[0x5a, 0xf1, 0x50]);
        code.extend(reader(&[slot(0)], &[0x00]));
        code
    };
    let reverting = install(&mut world, reader(&[slot(0)], &[0x60, 0x00, 0x60, 0x00, 0xfd]));
    let returning = install(&mut world, reader(&[slot(0)], &[0x00]));
    let (_, after_revert) = gas_of(&mut world, outer(reverting));
    let (_, after_return) = gas_of(&mut world, outer(returning));
    // The reverting inner frame also pays its two PUSH1s (6 gas) before REVERT.
    assert_eq!(after_revert - after_return, BASE_GAS - WARM_READ_GAS + 6);
    // The marks are only read: the precompile's account has no record and no storage.
    let precompile = Namespace::evm(XSTATE_PRECOMPILE);
    assert!(world.overlay.scan_prefix(precompile.prefix()).unwrap().is_empty());
}

/// Like every precompile, the address is warm from the start of a transaction, under every spec
/// the provider is switched to.
#[test]
fn the_precompile_address_is_warm_under_every_spec() {
    let mut precompiles = XStatePrecompiles::new(SpecId::SHANGHAI);
    let warm = |precompiles: &XStatePrecompiles| {
        <XStatePrecompiles as PrecompileProvider<EvmContext<'_>>>::warm_addresses(precompiles).clone()
    };
    let bls = address!("0x000000000000000000000000000000000000000b");
    assert!(warm(&precompiles).contains(&XSTATE_PRECOMPILE));
    assert!(!warm(&precompiles).contains(&bls), "BLS arrived with Prague");
    assert!(<XStatePrecompiles as PrecompileProvider<EvmContext<'_>>>::set_spec(&mut precompiles, SpecId::PRAGUE));
    assert!(warm(&precompiles).contains(&XSTATE_PRECOMPILE));
    assert!(warm(&precompiles).contains(&bls));
    assert!(<XStatePrecompiles as PrecompileProvider<EvmContext<'_>>>::contains(&precompiles, &XSTATE_PRECOMPILE));
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
        (output_word(&result, 0).unwrap(), output_word(&result, 1).unwrap())
    };
    // One gas short of the price the STATICCALL returns false; with exactly the price it reads
    // slot 0.
    let cost = gas_cost(&abi::encode_read_u64(counter.to_address(), 0));
    assert_eq!(read(&mut world, cost - 1), (U256::ZERO, U256::ZERO));
    assert_eq!(read(&mut world, cost), (U256::from(1), U256::from(1)));
}

/// Runtime code that forwards its calldata to the precompile with `call` and returns (or reverts
/// with) what the precompile returned.
fn forwarder(call: &[u8]) -> Vec<u8> {
    // CALLDATACOPY(0, 0, CALLDATASIZE); then the call's return area (0, 0) and its input
    // (0, CALLDATASIZE), innermost last.
    let mut code = vec![0x36, 0x60, 0x00, 0x60, 0x00, 0x37, 0x60, 0x00, 0x60, 0x00, 0x36, 0x60, 0x00];
    code.extend_from_slice(call);
    // RETURNDATACOPY(0, 0, RETURNDATASIZE); JUMPI to the RETURN on success, else REVERT.
    code.extend_from_slice(&[0x3d, 0x60, 0x00, 0x60, 0x00, 0x3e]);
    let success = u8::try_from(code.len() + 7).unwrap();
    code.extend_from_slice(&[0x60, success, 0x57, 0x3d, 0x60, 0x00, 0xfd, 0x5b, 0x3d, 0x60, 0x00, 0xf3]);
    code
}

/// Only ether that moves is refused: a DELEGATECALL from a call that carries value passes that
/// value along as `msg.value` but transfers nothing, so it is served; a CALLCODE with value
/// transfers it and is refused.
#[test]
fn value_is_refused_only_when_it_would_move() {
    let mut world = World::new();
    let counter = world.deploy_module("counter", &guest("counter"));
    assert!(world.wasm_call(ALICE, counter, b"").is_success());
    // PUSH2 0x0a00, GAS, DELEGATECALL.
    let delegating = Address::repeat_byte(0xde);
    let code = forwarder(&[0x61, 0x0a, 0x00, 0x5a, 0xf4]);
    insert_account(&mut world.overlay, delegating, &GenesisAccount { code, ..Default::default() }).unwrap();
    // CALLVALUE, PUSH2 0x0a00, GAS, CALLCODE.
    let callcode = Address::repeat_byte(0xcc);
    let code = forwarder(&[0x34, 0x61, 0x0a, 0x00, 0x5a, 0xf2]);
    insert_account(&mut world.overlay, callcode, &GenesisAccount { code, ..Default::default() }).unwrap();

    let read = abi::encode_read_u64(counter.to_address(), 0);
    let wasm_before = wasm_state(&world);
    let tx = TxEnv { value: U256::from(5), ..world.tx(ALICE, TxKind::Call(delegating), read.clone()) };
    let served = world.send(tx);
    assert!(served.is_success(), "{served:?}");
    assert_eq!(output_word(&served, 0), Some(U256::ONE));

    let tx = TxEnv { value: U256::from(5), ..world.tx(ALICE, TxKind::Call(callcode), read) };
    let refused = world.send(tx);
    let ExecutionResult::Revert { output, .. } = &refused else { panic!("expected a revert, got {refused:?}") };
    assert_eq!(output, &CallError::ValueNotAccepted.encode());
    assert_eq!(wasm_state(&world), wasm_before);
}

#[test]
fn solidity_reads_through_staticcall_and_sees_earlier_writes_of_the_block() {
    let mut world = World::new();
    let token = world.deploy_module("token", &guest("token"));
    assert!(world.wasm_call(ALICE, token, &[0x00]).is_success());
    assert!(world.wasm_call(ALICE, token, &token_input(0x01, BOB, Some(640))).is_success());
    let reader = world.deploy_contract("WasmReader", &[]);

    // balanceByName is a view: Solidity reaches the precompile with STATICCALL.
    let mut by_name =
        calldata("balanceByName(string,uint32,address)", &[U256::from(0x60), U256::from(1), word(BOB)]).to_vec();
    by_name.extend_from_slice(&U256::from(5).to_be_bytes::<32>());
    let mut name = b"token".to_vec();
    name.resize(32, 0);
    by_name.extend_from_slice(&name);
    let result = world.evm_call(ALICE, reader, by_name.clone());
    assert!(result.is_success(), "{result:?}");
    assert_eq!(output_word(&result, 0), Some(U256::from(640)));

    // A WASM transfer later in the same block is visible to the next EVM read.
    assert!(world.wasm_call(BOB, token, &token_input(0x02, ALICE, Some(40))).is_success());
    let result = world.evm_call(
        ALICE,
        reader,
        calldata("readTokenBalance(address,address)", &[word(token.to_address()), word(BOB)]),
    );
    assert!(result.is_success(), "{result:?}");
    assert_eq!(output_word(&result, 0), Some(U256::from(600)));
    assert_eq!(result.logs().len(), 1, "BalanceRead event");
}
