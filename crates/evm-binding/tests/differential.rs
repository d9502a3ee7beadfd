//! The binding against revm's own `State` database, on random multi-block sessions that no one
//! wrote by hand: transfers, creations whose init code may self-destruct, calls with value,
//! storage and transient storage, logs, warm and cold account access across transactions, out of
//! gas and reverts. Both sides see the same transactions; every result (status, gas, output,
//! logs, or the same refusal) and the post state of every account (nonce, balance, code hash,
//! storage) must be identical. The binding commits its overlay to the store between blocks, so
//! later blocks read committed state through the trie, while revm's `State` keeps everything in
//! its cache.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use evm_binding::ethereum::{EthAccount, ethereum_accounts};
use evm_binding::revm::bytecode::opcode as op;
use evm_binding::revm::context::result::EVMError;
use evm_binding::revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use evm_binding::revm::database::{EmptyDB, State};
use evm_binding::revm::handler::EthPrecompiles;
use evm_binding::revm::primitives::hardfork::SpecId;
use evm_binding::revm::primitives::{Address, Bytes, KECCAK_EMPTY, TxKind, U256};
use evm_binding::revm::state::AccountInfo;
use evm_binding::revm::{ExecuteCommitEvm, MainBuilder, MainContext};
use evm_binding::{EvmError, EvmExecutor, GenesisAccount, insert_account};
use kv_core::Store;
use proptest::prelude::*;
use std::collections::BTreeMap;

const CHAIN_ID: u64 = 31337;
const SPEC: SpecId = SpecId::PRAGUE;
const SENDERS: usize = 3;
const FUNDS: u128 = 10u128.pow(21);
const GAS_PRICE: u128 = 1_000_000_000;
const BENEFICIARY: Address = Address::repeat_byte(0xbe);

fn sender(index: usize) -> Address {
    Address::with_last_byte(0x10 + u8::try_from(index).unwrap())
}

/// The addresses programs and transactions aim at: the senders, the contracts their first
/// creations get, two precompiles, the beneficiary and an address nothing else touches.
fn targets() -> Vec<Address> {
    let mut targets: Vec<Address> = (0..SENDERS).map(sender).collect();
    for index in 0..SENDERS {
        for nonce in 0..3 {
            targets.push(sender(index).create(nonce));
        }
    }
    targets.extend([Address::with_last_byte(1), Address::with_last_byte(4), BENEFICIARY, Address::repeat_byte(0x5a)]);
    targets
}

/// One stack-balanced piece of a program.
#[derive(Clone, Debug)]
enum Snippet {
    Store {
        slot: u8,
        value: u8,
    },
    Load {
        slot: u8,
    },
    TransientStore {
        slot: u8,
        value: u8,
    },
    /// Copies a transient slot into storage: what a transaction saw of transient storage becomes
    /// part of the post state (it must be empty again in the next transaction).
    TransientToStorage {
        slot: u8,
        into: u8,
    },
    Balance {
        target: usize,
    },
    CodeHashToStorage {
        target: usize,
        into: u8,
    },
    Log {
        slot: u8,
    },
    Call {
        target: usize,
        value: u8,
        gas: u16,
    },
}

/// How a program ends.
#[derive(Clone, Debug)]
enum End {
    Stop,
    Revert,
    Invalid,
    SelfDestruct { target: usize },
}

#[derive(Clone, Debug)]
struct Program {
    body: Vec<Snippet>,
    end: End,
}

fn push_address(code: &mut Vec<u8>, address: Address) {
    code.push(op::PUSH20);
    code.extend_from_slice(address.as_slice());
}

impl Program {
    fn assemble(&self, targets: &[Address]) -> Vec<u8> {
        let target = |index: usize| targets[index % targets.len()];
        let mut code = Vec::new();
        for snippet in &self.body {
            match *snippet {
                Snippet::Store { slot, value } => code.extend([op::PUSH1, value, op::PUSH1, slot, op::SSTORE]),
                Snippet::Load { slot } => code.extend([op::PUSH1, slot, op::SLOAD, op::POP]),
                Snippet::TransientStore { slot, value } => code.extend([op::PUSH1, value, op::PUSH1, slot, op::TSTORE]),
                Snippet::TransientToStorage { slot, into } => {
                    code.extend([op::PUSH1, slot, op::TLOAD, op::PUSH1, into, op::SSTORE]);
                }
                Snippet::Balance { target: index } => {
                    push_address(&mut code, target(index));
                    code.extend([op::BALANCE, op::POP]);
                }
                Snippet::CodeHashToStorage { target: index, into } => {
                    push_address(&mut code, target(index));
                    code.extend([op::EXTCODEHASH, op::PUSH1, into, op::SSTORE]);
                }
                Snippet::Log { slot } => {
                    code.extend([op::PUSH1, slot, op::SLOAD, op::PUSH1, 0, op::MSTORE]);
                    code.extend([op::PUSH1, slot, op::PUSH1, 32, op::PUSH1, 0, op::LOG1]);
                }
                Snippet::Call { target: index, value, gas } => {
                    // CALL(gas, to, value, in_offset, in_len, out_offset, out_len); the success
                    // flag is dropped.
                    code.extend([op::PUSH1, 0, op::PUSH1, 0, op::PUSH1, 0, op::PUSH1, 0, op::PUSH1, value]);
                    push_address(&mut code, target(index));
                    let gas = gas.to_be_bytes();
                    code.extend([op::PUSH2, gas[0], gas[1], op::CALL, op::POP]);
                }
            }
        }
        match self.end {
            End::Stop => code.push(op::STOP),
            End::Revert => code.extend([op::PUSH1, 0, op::PUSH1, 0, op::REVERT]),
            End::Invalid => code.push(op::INVALID),
            End::SelfDestruct { target: index } => {
                push_address(&mut code, target(index));
                code.push(op::SELFDESTRUCT);
            }
        }
        code
    }

    /// Init code that runs this program's body, then returns `runtime` as the contract's code
    /// (or ends as this program's end says, when that is not `Stop`).
    fn init_code(&self, runtime: &[u8], targets: &[Address]) -> Vec<u8> {
        let mut code = Program { body: self.body.clone(), end: End::Stop }.assemble(targets);
        code.pop();
        let mut tail = match self.end {
            End::Stop => Vec::new(),
            _ => Program { body: Vec::new(), end: self.end.clone() }.assemble(targets),
        };
        if tail.is_empty() {
            // CODECOPY(0, offset, len); RETURN(0, len), with the runtime code right after: 15
            // bytes of tail.
            let len = u16::try_from(runtime.len()).unwrap().to_be_bytes();
            let offset = u16::try_from(code.len() + 15).unwrap().to_be_bytes();
            tail.extend([op::PUSH2, len[0], len[1], op::PUSH2, offset[0], offset[1], op::PUSH1, 0, op::CODECOPY]);
            tail.extend([op::PUSH2, len[0], len[1], op::PUSH1, 0, op::RETURN]);
            code.extend(tail);
            code.extend_from_slice(runtime);
        } else {
            code.extend(tail);
        }
        code
    }
}

#[derive(Clone, Debug)]
enum Transaction {
    Transfer { from: usize, to: usize, value: u64 },
    Create { from: usize, init: Program, runtime: Program, value: u64, gas: u64 },
    Call { from: usize, to: usize, value: u64, gas: u64 },
}

fn snippet() -> impl Strategy<Value = Snippet> {
    let slot = 0u8..4;
    prop_oneof![
        (slot.clone(), 0u8..3).prop_map(|(slot, value)| Snippet::Store { slot, value }),
        slot.clone().prop_map(|slot| Snippet::Load { slot }),
        (slot.clone(), 1u8..3).prop_map(|(slot, value)| Snippet::TransientStore { slot, value }),
        (slot.clone(), slot.clone()).prop_map(|(slot, into)| Snippet::TransientToStorage { slot, into }),
        any::<usize>().prop_map(|target| Snippet::Balance { target }),
        (any::<usize>(), slot.clone()).prop_map(|(target, into)| Snippet::CodeHashToStorage { target, into }),
        slot.prop_map(|slot| Snippet::Log { slot }),
        (any::<usize>(), 0u8..3, prop_oneof![Just(0u16), Just(3_000u16), Just(60_000u16)])
            .prop_map(|(target, value, gas)| Snippet::Call { target, value, gas }),
    ]
}

fn program() -> impl Strategy<Value = Program> {
    let end = prop_oneof![
        4 => Just(End::Stop),
        1 => Just(End::Revert),
        1 => Just(End::Invalid),
        2 => any::<usize>().prop_map(|target| End::SelfDestruct { target }),
    ];
    (prop::collection::vec(snippet(), 0..6), end).prop_map(|(body, end)| Program { body, end })
}

/// Gas limits that cover refusal (below the intrinsic cost), running out partway and enough.
fn gas() -> impl Strategy<Value = u64> {
    prop_oneof![Just(21_000u64), Just(60_000), Just(120_000), Just(1_000_000)]
}

fn transaction() -> impl Strategy<Value = Transaction> {
    let from = 0..SENDERS;
    prop_oneof![
        (from.clone(), any::<usize>(), 0u64..3).prop_map(|(from, to, value)| Transaction::Transfer { from, to, value }),
        (from.clone(), program(), program(), 0u64..3, gas())
            .prop_map(|(from, init, runtime, value, gas)| Transaction::Create { from, init, runtime, value, gas }),
        (from, any::<usize>(), 0u64..3, gas()).prop_map(|(from, to, value, gas)| Transaction::Call {
            from,
            to,
            value,
            gas
        }),
    ]
}

/// The transaction environment both sides execute; the nonce is the sender's current one.
fn tx_env(transaction: &Transaction, nonce: u64, targets: &[Address]) -> TxEnv {
    let target = |index: usize| targets[index % targets.len()];
    let (from, kind, value, data, gas_limit) = match transaction {
        Transaction::Transfer { from, to, value } => (*from, TxKind::Call(target(*to)), *value, Bytes::new(), 21_000),
        Transaction::Create { from, init, runtime, value, gas } => {
            let runtime = runtime.assemble(targets);
            (*from, TxKind::Create, *value, Bytes::from(init.init_code(&runtime, targets)), *gas)
        }
        Transaction::Call { from, to, value, gas } => (*from, TxKind::Call(target(*to)), *value, Bytes::new(), *gas),
    };
    TxEnv {
        caller: sender(from),
        kind,
        value: U256::from(value),
        data,
        gas_limit,
        gas_price: GAS_PRICE,
        nonce,
        chain_id: Some(CHAIN_ID),
        ..Default::default()
    }
}

fn block(number: u64) -> BlockEnv {
    BlockEnv {
        number: U256::from(number),
        beneficiary: BENEFICIARY,
        timestamp: U256::from(1_000 + 12 * number),
        gas_limit: 30_000_000,
        basefee: 0,
        ..Default::default()
    }
}

/// The accounts revm's `State` holds after the session, as Ethereum sees them.
fn reference_accounts(state: &State<EmptyDB>) -> BTreeMap<Address, EthAccount> {
    let mut accounts = BTreeMap::new();
    for (address, cached) in &state.cache.accounts {
        let Some(account) = &cached.account else { continue };
        let storage: BTreeMap<U256, U256> =
            account.storage.iter().filter(|(_, value)| !value.is_zero()).map(|(slot, value)| (*slot, *value)).collect();
        let info = &account.info;
        if info.nonce == 0 && info.balance.is_zero() && info.code_hash == KECCAK_EMPTY && storage.is_empty() {
            continue;
        }
        accounts.insert(
            *address,
            EthAccount { nonce: info.nonce, balance: info.balance, code_hash: info.code_hash, storage },
        );
    }
    accounts
}

/// How the transactions of a session ended (the same on both sides).
#[derive(Debug, Default)]
struct Tally {
    succeeded: usize,
    failed: usize,
    refused: usize,
}

/// Runs `blocks` on both sides and compares every result and the post state.
fn run_session(blocks: &[Vec<Transaction>]) -> Result<Tally, TestCaseError> {
    let mut tally = Tally::default();
    let targets = targets();
    let store = Store::in_memory();
    let mut overlay = store.begin();
    let mut state = State::builder().with_database(EmptyDB::default()).build();
    for index in 0..SENDERS {
        insert_account(
            &mut overlay,
            sender(index),
            &GenesisAccount { balance: U256::from(FUNDS), ..Default::default() },
        )
        .unwrap();
        state.insert_account(sender(index), AccountInfo { balance: U256::from(FUNDS), ..Default::default() });
    }
    store.commit(&overlay).unwrap();
    let executor = EvmExecutor::new(CHAIN_ID, SPEC);
    let mut cfg = CfgEnv::new_with_spec(SPEC);
    cfg.chain_id = CHAIN_ID;

    for (number, transactions) in blocks.iter().enumerate() {
        let number = number as u64 + 1;
        let block = block(number);
        let mut overlay = store.begin();
        {
            let mut session = executor.session(&mut overlay, &block, EthPrecompiles::new(SPEC));
            let mut reference =
                Context::mainnet().with_cfg(cfg.clone()).with_block(block.clone()).with_db(&mut state).build_mainnet();
            for (position, transaction) in transactions.iter().enumerate() {
                let caller = match transaction {
                    Transaction::Transfer { from, .. }
                    | Transaction::Create { from, .. }
                    | Transaction::Call { from, .. } => sender(*from),
                };
                let nonce =
                    evm_binding::database::account(session.state(), caller).unwrap().map_or(0, |record| record.nonce);
                let env = tx_env(transaction, nonce, &targets);
                let ours = session.transact(env.clone());
                let theirs = reference.transact_commit(env);
                let context = format!("block {number}, transaction {position}: {transaction:?}");
                match (ours, theirs) {
                    (Ok(ours), Ok(theirs)) => {
                        if ours.is_success() {
                            tally.succeeded += 1;
                        } else {
                            tally.failed += 1;
                        }
                        prop_assert_eq!(ours, theirs, "{}", context);
                    }
                    (Err(EvmError::Transaction(ours)), Err(EVMError::Transaction(theirs))) => {
                        tally.refused += 1;
                        prop_assert_eq!(ours, theirs, "{}", context);
                    }
                    (ours, theirs) => {
                        prop_assert!(false, "{context}: binding gave {ours:?}, revm's State gave {theirs:?}");
                    }
                }
            }
        }
        store.commit(&overlay).unwrap();
        let ours = ethereum_accounts(&store.begin()).unwrap();
        prop_assert_eq!(ours, reference_accounts(&state), "post state after block {}", number);
    }
    Ok(tally)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_binding_matches_revms_own_state_database(blocks in prop::collection::vec(prop::collection::vec(transaction(), 1..7), 1..4)) {
        run_session(&blocks)?;
    }
}

/// The generator reaches what the comparison is for: over a fixed sample, creations that
/// self-destruct in their own transaction, contracts that stay, transient storage copied into
/// storage, and calls into created contracts all occur.
#[test]
fn the_generator_reaches_the_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut destructs, mut creates, mut transient, mut calls) = (0, 0, 0, 0);
    for _ in 0..200 {
        match transaction().new_tree(&mut runner).unwrap().current() {
            Transaction::Create { init, .. } => {
                creates += 1;
                destructs += usize::from(matches!(init.end, End::SelfDestruct { .. }));
                transient +=
                    usize::from(init.body.iter().any(|snippet| matches!(snippet, Snippet::TransientToStorage { .. })));
            }
            Transaction::Call { .. } => calls += 1,
            Transaction::Transfer { .. } => {}
        }
    }
    assert!(creates > 30 && destructs > 5 && transient > 3 && calls > 30, "{creates} {destructs} {transient} {calls}");
    // And a known session with a self-destructing creation and a call into a created contract
    // agrees on both sides.
    let runtime =
        Program { body: vec![Snippet::Store { slot: 1, value: 2 }, Snippet::Log { slot: 1 }], end: End::Stop };
    let init = Program {
        body: vec![Snippet::TransientStore { slot: 0, value: 1 }, Snippet::TransientToStorage { slot: 0, into: 0 }],
        end: End::Stop,
    };
    let destruct = Program { body: vec![Snippet::Store { slot: 0, value: 1 }], end: End::SelfDestruct { target: 1 } };
    let blocks = vec![
        vec![
            Transaction::Create { from: 0, init, runtime: runtime.clone(), value: 1, gas: 1_000_000 },
            Transaction::Create { from: 1, init: destruct, runtime, value: 2, gas: 1_000_000 },
        ],
        // targets()[3] is sender 0's first contract.
        vec![Transaction::Call { from: 2, to: 3, value: 1, gas: 120_000 }],
    ];
    let tally = run_session(&blocks).unwrap();
    assert_eq!((tally.succeeded, tally.failed, tally.refused), (3, 0, 0), "{tally:?}");

    // Over random sessions, all three endings occur.
    let mut total = Tally::default();
    let sessions = prop::collection::vec(prop::collection::vec(transaction(), 1..7), 1..4);
    for _ in 0..64 {
        let tally = run_session(&sessions.new_tree(&mut runner).unwrap().current()).unwrap();
        total.succeeded += tally.succeeded;
        total.failed += tally.failed;
        total.refused += tally.refused;
    }
    assert!(total.succeeded > 50 && total.failed > 20 && total.refused > 10, "{total:?}");
}
