//! The runtime library: a store failure under a transaction abandons the whole block, and the
//! block gas budgets reject what no longer fits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use alloy_primitives::Address;
use kv_core::{Identity, ModuleRecord, Namespace, Store, Table, WriteBatch};
use xstate::{ModuleRef, Runtime, RuntimeError, Transaction};

#[test]
fn a_corrupt_module_abandons_the_block() {
    let store = Store::in_memory();
    let module = Identity([0x42; 20]);
    // A module record whose code blob is missing: the store is damaged.
    let record =
        ModuleRecord { code_hash: [9; 32].into(), name: kv_core::ModuleName::new("ghost").unwrap(), version: 1 };
    let mut batch = WriteBatch::new();
    batch.put(Table::State, Namespace::wasm(module).record_key(), record.encode());
    store.backend().write(batch).unwrap();
    let runtime = Runtime::new(store, xstate::DEFAULT_CHAIN_ID).unwrap();
    runtime.import_genesis(&xstate::demo::genesis()).unwrap();
    let (height, root) = (runtime.height(), runtime.root());
    let transactions = vec![
        Transaction::EvmCall {
            from: xstate::demo::ALICE,
            to: Address::repeat_byte(3),
            data: Default::default(),
            value: alloy_primitives::U256::from(1),
            gas: 21_000,
        },
        Transaction::WasmCall {
            from: xstate::demo::ALICE,
            module: ModuleRef::Identity(module),
            input: Default::default(),
            gas: 1_000_000,
        },
    ];
    let error = runtime.execute_block(&transactions, |_| {}).unwrap_err();
    assert!(matches!(&error, RuntimeError::Execution { index: 1, .. }), "{error}");
    assert_eq!((runtime.height(), runtime.root()), (height, root), "nothing of the block was committed");
}

#[test]
fn transactions_beyond_the_block_gas_budget_are_rejected() {
    let runtime = Runtime::in_memory(xstate::DEFAULT_CHAIN_ID);
    runtime.import_genesis(&xstate::demo::genesis()).unwrap();
    let name = kv_core::ModuleName::new("token").unwrap();
    let deploy = Transaction::WasmDeploy { name: name.clone(), version: 1, code: xstate::demo::TOKEN_WASM.into() };
    let call = |gas| Transaction::WasmCall {
        from: xstate::demo::ALICE,
        module: ModuleRef::Named(name.clone(), 1),
        input: vec![0x04].into(),
        gas,
    };
    let evm = |gas| Transaction::EvmCall {
        from: xstate::demo::ALICE,
        to: Address::repeat_byte(3),
        data: Default::default(),
        value: Default::default(),
        gas,
    };
    let outcome = runtime
        .execute_block(
            &[deploy, call(u64::MAX), call(1_000_000), evm(xstate::BLOCK_GAS_LIMIT + 1), evm(21_000)],
            |_| {},
        )
        .unwrap();
    let statuses: Vec<bool> = outcome.receipts.iter().map(|receipt| receipt.status.is_success()).collect();
    assert_eq!(statuses, [true, false, true, false, true]);
    assert!(
        matches!(&outcome.receipts[1].status, xstate::Status::Rejected(reason) if reason.contains("WASM gas left"))
    );
}
