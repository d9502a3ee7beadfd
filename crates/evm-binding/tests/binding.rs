//! The binding's own rules: how committed state lands in the store (zero words are deletions,
//! destroyed accounts vanish, touched empty accounts are deleted), and bad input surfacing as
//! typed errors that leave the state untouched.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ALICE, BOB, CHAIN_ID, Chain, DEPLOYER, calldata};
use evm_binding::revm::context::result::InvalidTransaction;
use evm_binding::revm::context::{BlockEnv, TxEnv};
use evm_binding::revm::primitives::hardfork::SpecId;
use evm_binding::revm::primitives::{Address, TxKind, U256};
use evm_binding::{EvmDbError, EvmError, EvmExecutor, GenesisAccount, ethereum_state_root, insert_account};
use kv_core::{Namespace, StateKey};

#[test]
fn zero_words_are_deleted_from_the_store() {
    let mut chain = Chain::new();
    let storage = chain.deploy("Storage", &[]);
    assert!(chain.call(ALICE, storage, calldata("set(uint256,uint256)", &[U256::from(7), U256::from(5)])).is_success());
    // `values` is the mapping in slot 0, so key 7 lives at keccak256(pad32(7) || pad32(0)).
    let slot = evm_binding::revm::primitives::keccak256([U256::from(7).to_be_bytes::<32>(), [0u8; 32]].concat());
    let key = Namespace::evm(storage).word_key(&slot.0);
    assert!(chain.overlay.get(&key).unwrap().is_some());
    assert!(chain.call(ALICE, storage, calldata("set(uint256,uint256)", &[U256::from(7), U256::ZERO])).is_success());
    assert_eq!(chain.overlay.get(&key).unwrap(), None, "a zero word is absence, not a stored zero");
}

#[test]
fn an_account_destroyed_in_its_creating_transaction_leaves_nothing() {
    let mut chain = Chain::new();
    // Initcode: SELFDESTRUCT to the caller (CALLER, SELFDESTRUCT), created and destroyed at once.
    let tx = TxEnv { value: U256::from(5), ..chain.tx(DEPLOYER, TxKind::Create, vec![0x33, 0xff]) };
    let result = chain.send(tx).unwrap();
    assert!(result.is_success(), "{result:?}");
    let created = DEPLOYER.create(0);
    assert!(evm_binding::database::account(&chain.overlay, created).unwrap().is_none());
    assert!(chain.overlay.scan_prefix(Namespace::evm(created).prefix()).unwrap().is_empty());
}

#[test]
fn touched_empty_accounts_are_deleted_after_spurious_dragon() {
    let mut chain = Chain::new();
    let empty = Address::repeat_byte(0xee);
    insert_account(&mut chain.overlay, empty, &GenesisAccount::default()).unwrap();
    // A zero-value call touches the empty account (EIP-161 deletes it).
    let result = chain.send(chain.tx(ALICE, TxKind::Call(empty), Vec::new())).unwrap();
    assert!(result.is_success());
    assert!(evm_binding::database::account(&chain.overlay, empty).unwrap().is_none());
}

/// Each malformed transaction is a typed error and changes nothing, not even the sender's nonce.
#[test]
fn invalid_transactions_are_typed_errors_and_change_nothing() {
    let mut chain = Chain::new();
    let stranger = Address::repeat_byte(0x5e);
    let base = chain.tx(ALICE, TxKind::Call(BOB), Vec::new());
    let cases: Vec<(&str, TxEnv, fn(&EvmError) -> bool)> = vec![
        ("nonce too high", TxEnv { nonce: 9, ..base.clone() }, |e| {
            matches!(e, EvmError::Transaction(InvalidTransaction::NonceTooHigh { .. }))
        }),
        ("unknown sender paying gas", TxEnv { caller: stranger, nonce: 0, gas_price: 1, ..base.clone() }, |e| {
            matches!(e, EvmError::Transaction(InvalidTransaction::LackOfFundForMaxFee { .. }))
        }),
        ("value beyond balance", TxEnv { value: U256::MAX, ..base.clone() }, |e| matches!(e, EvmError::Transaction(_))),
        ("gas limit above the block's", TxEnv { gas_limit: 40_000_000, ..base.clone() }, |e| {
            matches!(e, EvmError::Transaction(_))
        }),
        ("intrinsic gas not covered", TxEnv { gas_limit: 1_000, ..base.clone() }, |e| {
            matches!(e, EvmError::Transaction(InvalidTransaction::CallGasCostMoreThanGasLimit { .. }))
        }),
        ("wrong chain id", TxEnv { chain_id: Some(CHAIN_ID + 1), ..base.clone() }, |e| {
            matches!(e, EvmError::Transaction(InvalidTransaction::InvalidChainId))
        }),
    ];
    let before = chain.overlay.scan_prefix(&[]).unwrap();
    for (what, tx, expected) in cases {
        let error = chain.send(tx).expect_err(what);
        assert!(expected(&error), "{what}: {error:?}");
        assert!(!error.to_string().is_empty());
        assert_eq!(chain.overlay.scan_prefix(&[]).unwrap(), before, "{what} changed the state");
    }
}

/// A damaged account record is a typed database error, never a silently zeroed account.
#[test]
fn corrupt_records_are_typed_errors() {
    let store = kv_core::Store::in_memory();
    // Write bytes kv-core would refuse, straight into the backend, as disk corruption would.
    let mut batch = kv_core::WriteBatch::new();
    batch.put(kv_core::Table::State, Namespace::evm(ALICE).record_key(), vec![1, 2, 3]);
    let ghost_code = StateKey::EvmAccount(BOB).encode().unwrap();
    let record = kv_core::AccountRecord { nonce: 0, balance: U256::from(1), code_hash: [7u8; 32].into() };
    batch.put(kv_core::Table::State, ghost_code, record.encode().to_vec());
    kv_core::Backend::write(store.backend().as_ref(), batch).unwrap();

    let mut overlay = store.begin();
    let executor = EvmExecutor::new(CHAIN_ID, SpecId::PRAGUE);
    let block = BlockEnv { gas_limit: 30_000_000, ..Default::default() };
    let tx = TxEnv {
        caller: ALICE,
        kind: TxKind::Call(BOB),
        gas_limit: 100_000,
        chain_id: Some(CHAIN_ID),
        ..Default::default()
    };
    let error = executor.transact(&mut overlay, &block, tx).unwrap_err();
    assert!(
        matches!(error, EvmError::Database(EvmDbError::CorruptAccount { address, .. }) if address == ALICE),
        "{error:?}"
    );

    let tx = TxEnv {
        caller: DEPLOYER,
        kind: TxKind::Call(BOB),
        gas_limit: 100_000,
        chain_id: Some(CHAIN_ID),
        ..Default::default()
    };
    let error = executor.transact(&mut overlay, &block, tx).unwrap_err();
    assert!(matches!(error, EvmError::Database(EvmDbError::MissingCode(_))), "{error:?}");
    assert!(ethereum_state_root(&overlay).is_err(), "the Ethereum view refuses the corrupt record too");
}
