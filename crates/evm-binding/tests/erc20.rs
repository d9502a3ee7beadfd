//! An OpenZeppelin ERC-20 compiled with the pinned solc: deploy, mint, transfer, events, a revert
//! on insufficient balance, and a redb-backed store that is reopened between blocks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ALICE, BOB, Chain, DEPLOYER};
use evm_binding::abi::{calldata, mapping_slot, output_word, word};
use evm_binding::revm::context::result::ExecutionResult;
use evm_binding::revm::primitives::{U256, keccak256};
use kv_core::{Store, StoreConfig};

fn balance_of(
    chain: &mut Chain,
    token: evm_binding::revm::primitives::Address,
    holder: evm_binding::revm::primitives::Address,
) -> U256 {
    let result = chain.call(DEPLOYER, token, calldata("balanceOf(address)", &[word(holder)]));
    output_word(&result, 0).unwrap()
}

#[test]
fn deploy_mint_transfer_events_and_revert_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evm.redb");
    let token = {
        let mut chain = Chain::on(Store::open_redb(&path, StoreConfig::default()).unwrap());
        let token = chain.deploy("XToken", &[word(DEPLOYER)]);
        let minted = chain.call(DEPLOYER, token, calldata("mint(address,uint256)", &[word(ALICE), U256::from(1_000)]));
        assert!(minted.is_success(), "{minted:?}");

        let sent = chain.call(ALICE, token, calldata("transfer(address,uint256)", &[word(BOB), U256::from(250)]));
        assert!(sent.is_success(), "{sent:?}");
        let logs = sent.logs();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].address, token);
        assert_eq!(logs[0].topics()[0], keccak256("Transfer(address,address,uint256)"));
        assert_eq!(U256::from_be_bytes(logs[0].topics()[1].0), word(ALICE));
        assert_eq!(U256::from_be_bytes(logs[0].topics()[2].0), word(BOB));
        assert_eq!(U256::from_be_slice(&logs[0].data.data), U256::from(250));

        // OpenZeppelin keeps `_balances` in slot 0: the words are where Solidity puts them.
        assert_eq!(chain.storage(token, mapping_slot(word(ALICE), U256::ZERO)), U256::from(750));
        assert_eq!(chain.storage(token, mapping_slot(word(BOB), U256::ZERO)), U256::from(250));
        chain.commit();
        token
    };

    let mut chain = Chain::on(Store::open_redb(&path, StoreConfig::default()).unwrap());
    assert_eq!(chain.store.height(), 1);
    assert_eq!(balance_of(&mut chain, token, ALICE), U256::from(750));
    assert_eq!(balance_of(&mut chain, token, BOB), U256::from(250));
    assert_eq!(output_word(&chain.call(BOB, token, calldata("totalSupply()", &[])), 0), Some(U256::from(1_000)));

    let refused = chain.call(BOB, token, calldata("transfer(address,uint256)", &[word(ALICE), U256::from(251)]));
    let ExecutionResult::Revert { output, .. } = &refused else { panic!("expected a revert, got {refused:?}") };
    // ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed)
    assert_eq!(output[..4], keccak256("ERC20InsufficientBalance(address,uint256,uint256)")[..4]);
    assert_eq!(U256::from_be_slice(&output[36..68]), U256::from(250));
    assert_eq!(balance_of(&mut chain, token, BOB), U256::from(250), "a reverted transfer moves nothing");

    // Only the owner may mint.
    let denied = chain.call(ALICE, token, calldata("mint(address,uint256)", &[word(ALICE), U256::from(5)]));
    assert!(matches!(denied, ExecutionResult::Revert { .. }), "{denied:?}");
    chain.commit();
    assert_eq!(chain.store.height(), 2);
}
