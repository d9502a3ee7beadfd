//! The runtime library: a store failure under a transaction abandons the whole block (genesis
//! included), failures are receipts, and the block gas budgets reject what no longer fits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use alloy_primitives::Address;
use kv_core::{Identity, ModuleRecord, Namespace, Store, Table, WriteBatch};
use xstate::{ModuleRef, Runtime, RuntimeError, Status, Transaction};

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
    let error = runtime.execute_block(Some(&xstate::demo::genesis()), &transactions, |_| {}).unwrap_err();
    assert!(matches!(&error, RuntimeError::Execution { index: 1, .. }), "{error}");
    assert_eq!(
        (runtime.height(), runtime.root()),
        (height, root),
        "nothing of the block, genesis included, was committed"
    );
}

#[test]
fn a_genesis_is_refused_on_a_store_that_has_blocks() {
    let runtime = Runtime::in_memory(xstate::DEFAULT_CHAIN_ID);
    let genesis = xstate::demo::genesis();
    let first = runtime.execute_block(Some(&genesis), &[], |_| {}).unwrap();
    assert_eq!(first.commit.height, 1);
    let error = runtime.execute_block(Some(&genesis), &[], |_| {}).unwrap_err();
    assert!(matches!(error, RuntimeError::GenesisNotEmpty(1)), "{error}");
    assert_eq!(runtime.height(), 1);
}

#[test]
fn failed_transactions_are_receipts_that_keep_nothing() {
    let runtime = Runtime::in_memory(xstate::DEFAULT_CHAIN_ID);
    let name = kv_core::ModuleName::new("token").unwrap();
    let token = runtime.module_identity(&name, 1);
    let mut mint = vec![0x01];
    mint.extend_from_slice(xstate::demo::ALICE.as_slice());
    mint.extend_from_slice(&900u64.to_be_bytes());
    let mint = |gas| Transaction::WasmCall {
        from: xstate::demo::ALICE,
        module: ModuleRef::Named(name.clone(), 1),
        input: mint.clone().into(),
        gas,
    };
    let deploy_and_initialise = [
        Transaction::WasmDeploy { name: name.clone(), version: 1, code: xstate::demo::TOKEN_WASM.into() },
        // Initialisation makes Alice the owner.
        Transaction::WasmCall {
            from: xstate::demo::ALICE,
            module: ModuleRef::Named(name.clone(), 1),
            input: vec![0x00].into(),
            gas: 1_000_000,
        },
    ];
    // A probe block on another runtime learns what the whole mint uses (gas is deterministic).
    let probe = [deploy_and_initialise.to_vec(), vec![mint(1_000_000)]].concat();
    let probe = Runtime::in_memory(xstate::DEFAULT_CHAIN_ID).execute_block(None, &probe, |_| {}).unwrap();
    assert!(probe.receipts[2].status.is_success(), "{:?}", probe.receipts[2].status);
    let mint_gas = probe.receipts[2].gas_used;
    let transactions = [
        deploy_and_initialise[0].clone(),
        deploy_and_initialise[1].clone(),
        // One unit short: the mint runs out of gas writing its output, after both its state_set
        // calls (total supply, then balance) ran, and both writes are discarded.
        mint(mint_gas - 1),
        // Init code that is just INVALID (0xfe): the EVM halts.
        Transaction::EvmCreate {
            from: xstate::demo::ALICE,
            code: vec![0xfe].into(),
            value: Default::default(),
            gas: 100_000,
        },
    ];
    let outcome = runtime.execute_block(Some(&xstate::demo::genesis()), &transactions, |_| {}).unwrap();
    assert!(outcome.receipts[0].status.is_success() && outcome.receipts[1].status.is_success());
    assert_eq!(outcome.receipts[2].status, Status::Failed("out of gas".into()));
    assert_eq!(outcome.receipts[2].gas_used, mint_gas - 1);
    let halted = &outcome.receipts[3];
    assert!(matches!(&halted.status, Status::Failed(reason) if reason.contains("InvalidFEOpcode")), "{halted:?}");
    assert_eq!(halted.gas_used, 100_000, "a halt consumes the whole gas limit");
    assert_eq!(halted.created, None);
    let balance = Namespace::wasm(token).slot_key(xstate::demo::token_balance_slot(xstate::demo::ALICE));
    assert_eq!(runtime.get(&balance).unwrap(), None, "the failed mint left no balance");
    let supply = Namespace::wasm(token).slot_key(0);
    assert_eq!(runtime.get(&supply).unwrap(), None, "the failed mint left no total supply");
}

#[test]
fn transactions_beyond_the_block_gas_budget_are_rejected() {
    let runtime = Runtime::in_memory(xstate::DEFAULT_CHAIN_ID);
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
    let deploy_cost = wasm_binding::gas::deploy_cost(xstate::demo::TOKEN_WASM.len());
    // A probe block on another runtime learns what the calls use (gas is deterministic).
    let probe = Runtime::in_memory(xstate::DEFAULT_CHAIN_ID)
        .execute_block(
            Some(&xstate::demo::genesis()),
            &[deploy.clone(), call(xstate::BLOCK_WASM_GAS_LIMIT - deploy_cost), evm(xstate::BLOCK_GAS_LIMIT)],
            |_| {},
        )
        .unwrap();
    assert!(probe.receipts.iter().all(|receipt| receipt.status.is_success()));
    let (wasm_used, evm_used) = (probe.receipts[1].gas_used, probe.receipts[2].gas_used);
    assert!(wasm_used > 0 && evm_used == 21_000);
    // The deploy spends its documented cost from the WASM budget, so a call asking for the whole
    // budget after it no longer fits, while one asking for what is left runs. After that call, one
    // unit more than what is left is rejected and exactly what is left still runs. The first EVM
    // transaction may ask for the whole EVM budget.
    assert_eq!(probe.receipts[0].gas_used, deploy_cost);
    let after_deploy = xstate::BLOCK_WASM_GAS_LIMIT - deploy_cost;
    let (wasm_left, evm_left) = (after_deploy - wasm_used, xstate::BLOCK_GAS_LIMIT - evm_used);
    let outcome = runtime
        .execute_block(
            Some(&xstate::demo::genesis()),
            &[
                deploy,
                call(xstate::BLOCK_WASM_GAS_LIMIT),
                call(after_deploy),
                call(wasm_left + 1),
                call(wasm_left),
                evm(xstate::BLOCK_GAS_LIMIT),
                evm(evm_left + 1),
                evm(evm_left),
            ],
            |_| {},
        )
        .unwrap();
    let rejected = |index: usize, engine: &str| matches!(&outcome.receipts[index].status, Status::Rejected(reason) if reason.contains(&format!("{engine} gas left")));
    let statuses: Vec<bool> = outcome.receipts.iter().map(|receipt| receipt.status.is_success()).collect();
    assert_eq!(statuses, [true, false, true, false, true, true, false, true]);
    assert!(rejected(1, "WASM"), "{:?}", outcome.receipts[1].status);
    assert!(rejected(3, "WASM"), "{:?}", outcome.receipts[3].status);
    assert!(rejected(6, "EVM"), "{:?}", outcome.receipts[6].status);
    let used: Vec<u64> = outcome.receipts.iter().map(|receipt| receipt.gas_used).collect();
    assert_eq!(used, [deploy_cost, 0, wasm_used, 0, wasm_used, evm_used, 0, evm_used]);
}

/// A deploy whose module is refused still spends its cost (the validation was done), and a
/// second deploy of the same (name, version) too; neither leaves anything in the state.
#[test]
fn refused_deploys_spend_their_cost_and_keep_nothing() {
    let runtime = Runtime::in_memory(xstate::DEFAULT_CHAIN_ID);
    let name = kv_core::ModuleName::new("token").unwrap();
    let garbage = vec![0x00, 0x61, 0x73, 0x6d, 0xff];
    let transactions = [
        Transaction::WasmDeploy { name: name.clone(), version: 1, code: xstate::demo::TOKEN_WASM.into() },
        Transaction::WasmDeploy { name: name.clone(), version: 1, code: xstate::demo::TOKEN_WASM.into() },
        Transaction::WasmDeploy {
            name: kv_core::ModuleName::new("bad").unwrap(),
            version: 1,
            code: garbage.clone().into(),
        },
    ];
    let outcome = runtime.execute_block(None, &transactions, |_| {}).unwrap();
    assert!(outcome.receipts[0].status.is_success());
    assert!(
        matches!(&outcome.receipts[1].status, Status::Rejected(reason) if reason.contains("already")),
        "{:?}",
        outcome.receipts[1].status
    );
    assert!(matches!(outcome.receipts[2].status, Status::Rejected(_)), "{:?}", outcome.receipts[2].status);
    let cost = wasm_binding::gas::deploy_cost(xstate::demo::TOKEN_WASM.len());
    let used: Vec<u64> = outcome.receipts.iter().map(|receipt| receipt.gas_used).collect();
    assert_eq!(used, [cost, cost, wasm_binding::gas::deploy_cost(garbage.len())]);
    let bad = kv_core::module_identity(xstate::DEFAULT_CHAIN_ID, &kv_core::ModuleName::new("bad").unwrap(), 1);
    assert_eq!(runtime.get(&Namespace::wasm(bad).record_key()).unwrap(), None);
}
