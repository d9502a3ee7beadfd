//! Real programs in one block on one redb-backed store: a Solidity contract reads a WASM token
//! balance through the precompile, a Rust WASM module reads an ERC-20 balance through
//! `evm_storage_read`; both results are right, and inclusion proofs of every entry either side
//! read or wrote verify against the block's root, before and after reopening the store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ALICE, BOB, DEPLOYER, World, guest, token_input};
use evm_binding::abi::{calldata, mapping_slot, output_word, word};
use evm_binding::revm::primitives::{Address, B256, U256, keccak256};
use kv_core::{Namespace, Store, StoreConfig, verify};

/// OpenZeppelin's ERC-20 keeps `_balances` in slot 0.
fn erc20_balance_key(token: Address, holder: Address) -> Vec<u8> {
    Namespace::evm(token).word_key(&mapping_slot(word(holder), U256::ZERO).to_be_bytes::<32>()).to_vec()
}

fn wasm_balance_slot(holder: Address) -> u64 {
    u64::from_be_bytes(keccak256(holder.as_slice())[..8].try_into().unwrap())
}

fn check_proof(store: &Store, root: B256, key: &[u8], value: &[u8]) {
    let proof = store.prove(key, None).unwrap();
    verify(root, key, Some(value), &proof).unwrap();
    let mut wrong = value.to_vec();
    *wrong.last_mut().unwrap() ^= 1;
    assert!(verify(root, key, Some(&wrong), &proof).is_err());
}

#[test]
fn both_directions_in_one_block_with_verified_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.redb");
    let mut world = World::on(Store::open_redb(&path, StoreConfig::default()).unwrap());

    // The EVM side: an OpenZeppelin ERC-20, minted and transferred.
    let erc20 = world.deploy_contract("XToken", &[word(DEPLOYER)]);
    assert!(
        world
            .evm_call(DEPLOYER, erc20, calldata("mint(address,uint256)", &[word(ALICE), U256::from(5_000)]))
            .is_success()
    );
    assert!(
        world
            .evm_call(ALICE, erc20, calldata("transfer(address,uint256)", &[word(BOB), U256::from(1_200)]))
            .is_success()
    );

    // The WASM side: the example token, initialised, minted and transferred.
    let token = world.deploy_module("token", &guest("token"));
    assert!(world.wasm_call(ALICE, token, &[0x00]).is_success());
    assert!(world.wasm_call(ALICE, token, &token_input(0x01, ALICE, Some(1_000))).is_success());
    assert!(world.wasm_call(ALICE, token, &token_input(0x02, BOB, Some(640))).is_success());

    // EVM reads WASM: a Solidity contract reads BOB's WASM token balance and records it.
    let reader = world.deploy_contract("WasmReader", &[]);
    let read = world.evm_call(
        ALICE,
        reader,
        calldata("readTokenBalance(address,address)", &[word(token.to_address()), word(BOB)]),
    );
    assert!(read.is_success(), "{read:?}");
    assert_eq!(output_word(&read, 0), Some(U256::from(640)));

    // WASM reads EVM: a Rust module reads BOB's ERC-20 balance and records it.
    let erc20_reader = world.deploy_module("erc20-reader", &guest("erc20-reader"));
    let mut input = erc20.to_vec();
    input.extend_from_slice(BOB.as_slice());
    let receipt = world.wasm_call(ALICE, erc20_reader, &input);
    assert!(receipt.is_success(), "{receipt:?}");
    assert_eq!(U256::from_be_slice(&receipt.output), U256::from(1_200));

    let root = world.store.commit(&world.overlay).unwrap().root;

    // What each side read, and what each side recorded, is proven against the block's root.
    let entries: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (Namespace::wasm(token).slot_key(wasm_balance_slot(BOB)).to_vec(), 640u64.to_be_bytes().to_vec()),
        (erc20_balance_key(erc20, BOB), U256::from(1_200).to_be_bytes::<32>().to_vec()),
        // WasmReader.lastBalance is storage slot 0 of the contract.
        (Namespace::evm(reader).word_key(&[0; 32]).to_vec(), U256::from(640).to_be_bytes::<32>().to_vec()),
        // The erc20-reader module records the low 64 bits in its slot 1.
        (Namespace::wasm(erc20_reader).slot_key(1).to_vec(), 1_200u64.to_be_bytes().to_vec()),
    ];
    for (key, value) in &entries {
        check_proof(&world.store, root, key, value);
    }
    drop(world);

    let reopened = Store::open_redb(&path, StoreConfig::default()).unwrap();
    assert_eq!(reopened.root(), root);
    for (key, value) in &entries {
        assert_eq!(reopened.get(key).unwrap().as_deref(), Some(value.as_slice()));
        check_proof(&reopened, root, key, value);
    }
}
