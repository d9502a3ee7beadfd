//! The binding's own rules: how committed state lands in the store (zero words are deletions,
//! destroyed accounts vanish, touched empty accounts are deleted), the session's caches following
//! every change across transactions, a transaction applied all or nothing, bad input and damaged
//! records surfacing as typed errors that leave the state untouched, and the read-only view.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ALICE, BOB, CHAIN_ID, Chain, DEPLOYER};
use evm_binding::abi::{artifact, calldata, mapping_slot, output_word};
use evm_binding::database::{account, block_hash, storage_word};
use evm_binding::revm::context::result::{ExecutionResult, InvalidTransaction};
use evm_binding::revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use evm_binding::revm::database::WrapDatabaseRef;
use evm_binding::revm::handler::EthPrecompiles;
use evm_binding::revm::primitives::hardfork::SpecId;
use evm_binding::revm::primitives::{Address, Bytes, TxKind, U256};
use evm_binding::revm::{DatabaseRef, ExecuteEvm, MainBuilder, MainContext};
use evm_binding::{
    EvmDbError, EvmError, EvmExecutor, EvmSession, EvmView, GenesisAccount, ethereum_accounts, ethereum_state_root,
    insert_account,
};
use kv_core::backend::ScanVisitor;
use kv_core::{
    Backend, BackendError, KeyError, MemoryBackend, Namespace, Refusal, StateError, StateFailure, StateKey, Store,
    StoreConfig, Table, WriteBatch,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The slot of key `key` of `Storage.values`, the mapping in slot 0.
fn values_slot(key: u64) -> U256 {
    mapping_slot(U256::from(key), U256::ZERO)
}

#[test]
fn zero_words_are_deleted_from_the_store() {
    let mut chain = Chain::new();
    let storage = chain.deploy("Storage", &[]);
    assert!(chain.call(ALICE, storage, calldata("set(uint256,uint256)", &[U256::from(7), U256::from(5)])).is_success());
    let key = Namespace::evm(storage).word_key(&values_slot(7).to_be_bytes::<32>());
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

/// Runtime code that CREATE2s its calldata as initcode with salt 0 and returns the new address:
/// the same initcode always lands on the same address.
const CREATE2_FACTORY: &[u8] = &[
    0x36, 0x60, 0x00, 0x60, 0x00, 0x37, // CALLDATACOPY(0, 0, CALLDATASIZE)
    0x60, 0x00, 0x36, 0x60, 0x00, 0x60, 0x00, 0xf5, // CREATE2(value 0, offset 0, CALLDATASIZE, salt 0)
    0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3, // MSTORE(0, address), RETURN(0, 32)
];

/// Sends ALICE's next transaction through `session` and expects it to succeed.
fn send(session: &mut EvmSession<'_, EthPrecompiles>, to: Address, data: Bytes) -> ExecutionResult {
    let nonce = account(session.state(), ALICE).unwrap().map_or(0, |record| record.nonce);
    let tx = TxEnv {
        caller: ALICE,
        kind: TxKind::Call(to),
        data,
        gas_limit: 5_000_000,
        nonce,
        chain_id: Some(CHAIN_ID),
        ..Default::default()
    };
    let result = session.transact(tx).unwrap();
    assert!(result.is_success(), "{result:?}");
    result
}

/// One session keeps decoded accounts and words across its transactions; a self-destruct must
/// drop them, or a later transaction would run the destroyed code or read its old storage. Before
/// Cancun, SELFDESTRUCT deletes an account whatever transaction created it.
#[test]
fn session_caches_follow_a_self_destruct_and_a_recreation() {
    let mut chain = Chain::new();
    let factory = Address::repeat_byte(0xfa);
    insert_account(
        &mut chain.overlay,
        factory,
        &GenesisAccount { code: CREATE2_FACTORY.to_vec(), ..Default::default() },
    )
    .unwrap();
    let initcode = artifact("Storage").unwrap();
    let executor = EvmExecutor::new(CHAIN_ID, SpecId::SHANGHAI);
    let block = chain.block.clone();
    let mut session = executor.session(&mut chain.overlay, &block, EthPrecompiles::new(SpecId::SHANGHAI));

    let created = send(&mut session, factory, initcode.clone());
    let storage = Address::from_word(output_word(&created, 0).unwrap().into());
    send(&mut session, storage, calldata("set(uint256,uint256)", &[U256::from(7), U256::from(5)]));
    assert_eq!(storage_word(session.state(), storage, values_slot(7)).unwrap(), U256::from(5));

    send(&mut session, storage, calldata("destroy()", &[]));
    assert!(account(session.state(), storage).unwrap().is_none());
    assert!(session.state().scan_prefix(Namespace::evm(storage).prefix()).unwrap().is_empty());
    // The account is gone for the session too: calling it runs no code and returns nothing.
    let gone = send(&mut session, storage, calldata("values(uint256)", &[U256::from(7)]));
    assert_eq!(gone.output().map(|output| output.len()), Some(0), "the destroyed code ran: {gone:?}");

    // Recreated at the same address, the contract starts from empty storage.
    let again = send(&mut session, factory, initcode);
    assert_eq!(Address::from_word(output_word(&again, 0).unwrap().into()), storage);
    let read = send(&mut session, storage, calldata("values(uint256)", &[U256::from(7)]));
    assert_eq!(output_word(&read, 0), Some(U256::ZERO), "a word of the destroyed incarnation was read");
}

/// A memory backend that counts reads of the keys under `watched`, and fails them while
/// `failing` is set, as a failing disk would.
struct Watched {
    inner: MemoryBackend,
    watched: Vec<u8>,
    reads: AtomicUsize,
    failing: AtomicBool,
}

impl Watched {
    fn new(watched: &[u8]) -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryBackend::new(),
            watched: watched.to_vec(),
            reads: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
        })
    }
}

impl Backend for Watched {
    fn read(&self, table: Table, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool, BackendError> {
        if table == Table::State && key.starts_with(&self.watched) {
            self.reads.fetch_add(1, Ordering::Relaxed);
            if self.failing.load(Ordering::Relaxed) {
                return Err(BackendError::Storage("injected read failure".into()));
            }
        }
        self.inner.read(table, key, visit)
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<(), BackendError> {
        self.inner.scan(table, start, end, visit)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), BackendError> {
        self.inner.write(batch)
    }
}

/// revm hands every loaded contract's code back with the transaction's changes; applying them
/// must not look each blob up again when the account kept its code.
#[test]
fn calls_to_an_existing_contract_do_not_read_its_code_blob_again() {
    let backend = Watched::new(Namespace::runtime().prefix());
    let mut chain = Chain::on(Store::open(backend.clone(), StoreConfig::default()).unwrap());
    let storage = chain.deploy("Storage", &[]);
    chain.commit();
    backend.reads.store(0, Ordering::Relaxed);
    for value in 1..=3u64 {
        let set = calldata("set(uint256,uint256)", &[U256::from(7), U256::from(value)]);
        assert!(chain.call(ALICE, storage, set).is_success());
    }
    // One read fills the executor's analysed-code cache; applying the three calls reads nothing.
    assert_eq!(backend.reads.load(Ordering::Relaxed), 1);
}

/// A store failure while a transaction executes (here: its contract's code cannot be read)
/// changes nothing, and the same transaction (same nonce) goes through once the store recovers.
/// Applying a transaction's changes reads nothing from the store (code blobs are written without
/// a lookup), so a failure can only come before anything is applied.
#[test]
fn a_store_failure_while_executing_changes_nothing() {
    let backend = Watched::new(Namespace::runtime().prefix());
    let mut chain = Chain::on(Store::open(backend.clone(), StoreConfig::default()).unwrap());
    let storage = chain.deploy("Storage", &[]);
    chain.commit();
    let before = chain.overlay.scan_prefix(&[]).unwrap();
    let tx = chain.tx(ALICE, TxKind::Call(storage), calldata("set(uint256,uint256)", &[U256::from(7), U256::from(1)]));
    let nonce = tx.nonce;

    // A fresh executor has no analysed code cached, so the call must read the code blob.
    let executor = EvmExecutor::new(CHAIN_ID, SpecId::PRAGUE);
    let block = chain.block.clone();
    let mut session = executor.session(&mut chain.overlay, &block, EthPrecompiles::new(SpecId::PRAGUE));
    backend.failing.store(true, Ordering::Relaxed);
    let error = session.transact(tx.clone()).unwrap_err();
    assert!(
        matches!(error, EvmError::Database(EvmDbError::State(StateError::Failed(StateFailure::Backend(_))))),
        "{error:?}"
    );
    assert_eq!(session.state().scan_prefix(&[]).unwrap(), before, "part of the transaction stayed");

    backend.failing.store(false, Ordering::Relaxed);
    assert!(session.transact(tx).unwrap().is_success());
    assert_ne!(session.state().scan_prefix(&[]).unwrap(), before);
    assert_eq!(account(session.state(), ALICE).unwrap().unwrap().nonce, nonce + 1);
}

/// A key of the EVM namespace with none of the spec's layouts (kv-core refuses them on write) is a
/// typed error of the Ethereum view, never a panic or a silently skipped entry.
#[test]
fn the_ethereum_view_refuses_keys_of_no_layout() {
    let record = Namespace::evm(ALICE).record_key();
    let mut unknown_tag = record.to_vec();
    unknown_tag[record.len() - 1] = 0x07;
    let mut long_record = record.to_vec();
    long_record.push(0);
    let cases: Vec<(&str, Vec<u8>, fn(&KeyError) -> bool)> = vec![
        ("short", vec![0x02, 0xa1, 0xa1], |e| matches!(e, KeyError::Truncated { .. })),
        ("prefix only", record[..record.len() - 1].to_vec(), |e| matches!(e, KeyError::Truncated { .. })),
        ("unknown layout tag", unknown_tag, |e| matches!(e, KeyError::UnknownLayout { tag: 0x07, .. })),
        ("record with a trailing byte", long_record, |e| matches!(e, KeyError::Oversized { .. })),
    ];
    for (what, key, expected) in cases {
        let store = Store::in_memory();
        let mut overlay = store.begin();
        insert_account(&mut overlay, ALICE, &GenesisAccount { balance: U256::ONE, ..Default::default() }).unwrap();
        store.commit(&overlay).unwrap();
        let mut batch = WriteBatch::new();
        batch.put(Table::State, key.clone(), vec![1; 32]);
        store.backend().write(batch).unwrap();
        let error = ethereum_accounts(&store.begin()).unwrap_err();
        assert!(
            matches!(&error, EvmDbError::CorruptKey { key: found, error } if *found == key && expected(error)),
            "{what}: {error:?}"
        );
        assert!(error.to_string().contains(&evm_binding::revm::primitives::hex::encode(&key)), "{what}: {error}");
    }
}

/// The read-only view runs calls through revm's `DatabaseRef` without touching the store.
#[test]
fn the_read_only_view_serves_calls_and_changes_nothing() {
    let mut chain = Chain::new();
    let storage = chain.deploy("Storage", &[]);
    assert!(chain.call(ALICE, storage, calldata("set(uint256,uint256)", &[U256::from(7), U256::from(5)])).is_success());
    let before = chain.overlay.scan_prefix(&[]).unwrap();

    let view = EvmView::new(&chain.overlay);
    let mut cfg = CfgEnv::new_with_spec(SpecId::PRAGUE);
    cfg.set_spec_and_mainnet_gas_params(SpecId::PRAGUE);
    cfg.chain_id = CHAIN_ID;
    let mut evm =
        Context::mainnet().with_cfg(cfg).with_block(chain.block.clone()).with_db(WrapDatabaseRef(view)).build_mainnet();
    let outcome =
        evm.transact(chain.tx(BOB, TxKind::Call(storage), calldata("values(uint256)", &[U256::from(7)]))).unwrap();
    assert_eq!(output_word(&outcome.result, 0), Some(U256::from(5)));
    assert!(!outcome.state.is_empty(), "revm reports the changes it would make");
    assert_eq!(chain.overlay.scan_prefix(&[]).unwrap(), before);

    assert_eq!(view.basic_ref(BOB).unwrap().unwrap().balance, U256::from(10u128.pow(21)));
    assert_eq!(view.storage_ref(storage, values_slot(7)).unwrap(), U256::from(5));
    assert_eq!(view.block_hash_ref(7).unwrap(), block_hash(7));
}

/// `EvmDatabase::apply` is all or nothing, with the order fixed: an account whose change is
/// applied (and cached) first, then a created contract whose code the overlay refuses (its blob
/// does not hash to the code hash revm would never hand over, but a buggy caller could). The
/// failed apply must leave neither the overlay nor the decoded cache with the first change.
#[test]
fn a_failed_apply_drops_what_the_cache_learned_from_it() {
    use evm_binding::revm::primitives::keccak256;
    use evm_binding::revm::primitives::map::AddressMap;
    use evm_binding::revm::state::{Account, AccountInfo, Bytecode};
    use evm_binding::revm::{Database, DatabaseCommit};
    use evm_binding::{CodeCache, EvmDatabase};

    let store = Store::in_memory();
    let mut overlay = store.begin();
    let funded = GenesisAccount { balance: U256::from(100), ..Default::default() };
    insert_account(&mut overlay, ALICE, &funded).unwrap();
    let mut database = EvmDatabase::with_code_cache(&mut overlay, CodeCache::default());
    assert_eq!(database.basic(ALICE).unwrap().unwrap().balance, U256::from(100));

    let mut paid = Account::from(AccountInfo { balance: U256::from(60), ..Default::default() });
    paid.mark_touch();
    let code = Bytes::from_static(&[0x60, 0x00, 0x60, 0x00, 0xf3]);
    let mut created = Account::from(AccountInfo {
        code_hash: keccak256(b"some other code"),
        code: Some(Bytecode::new_raw(code)),
        ..Default::default()
    });
    created.mark_touch();
    created.mark_created();
    // The map's hasher is fixed, so its order is too: pick a contract address that comes after
    // Alice, so Alice's change is applied and cached before the failure.
    let changes = (1..=u8::MAX)
        .map(|byte| {
            let mut changes = AddressMap::default();
            changes.insert(ALICE, paid.clone());
            changes.insert(Address::repeat_byte(byte), created.clone());
            changes
        })
        .find(|changes| changes.keys().next() == Some(&ALICE))
        .unwrap();

    let error = database.apply(changes.clone()).unwrap_err();
    assert!(matches!(error, EvmDbError::State(StateError::Refused(Refusal::Value(_)))), "{error:?}");
    assert_eq!(database.basic(ALICE).unwrap().unwrap().balance, U256::from(100), "the cache kept an undone change");
    assert_eq!(account(database.overlay(), ALICE).unwrap().unwrap().balance, U256::from(100));

    // Through `DatabaseCommit`, which cannot return the error, it is kept for `take_failure`.
    database.commit(changes);
    assert!(database.take_failure().is_some());
    assert_eq!(database.basic(ALICE).unwrap().unwrap().balance, U256::from(100));
}

/// Between transactions the other engine works on the block overlay through
/// `EvmSession::with_overlay`. Should anything there change an EVM account, the session's decoded
/// caches are dropped, so the next transaction sees the account as the overlay holds it.
#[test]
fn the_session_sees_evm_changes_made_between_transactions() {
    use evm_binding::revm::context::result::InvalidTransaction;
    let mut chain = Chain::new();
    let block = chain.block.clone();
    let mut session = chain.executor.session(&mut chain.overlay, &block, EthPrecompiles::new(SpecId::PRAGUE));
    // Alice pays one wei to Bob: her account is now cached, with its balance.
    let transfer = |session: &EvmSession<'_, EthPrecompiles>| TxEnv {
        caller: ALICE,
        kind: TxKind::Call(BOB),
        value: U256::ONE,
        gas_limit: 21_000,
        nonce: account(session.state(), ALICE).unwrap().unwrap().nonce,
        chain_id: Some(CHAIN_ID),
        ..Default::default()
    };
    let tx = transfer(&session);
    assert!(session.transact(tx).unwrap().is_success());

    // A WASM slot written in between changes nothing of the EVM's view.
    session
        .with_overlay(|overlay| overlay.set_u64(&Namespace::wasm(kv_core::Identity([3; 20])).slot_key(0), 1))
        .unwrap();
    let tx = transfer(&session);
    assert!(session.transact(tx).unwrap().is_success());

    // Alice's balance emptied in between: her next payment must fail for lack of funds.
    let nonce = account(session.state(), ALICE).unwrap().unwrap().nonce;
    session
        .with_overlay(|overlay| insert_account(overlay, ALICE, &GenesisAccount { nonce, ..Default::default() }))
        .unwrap();
    let tx = transfer(&session);
    let error = session.transact(tx).unwrap_err();
    assert!(
        matches!(error, EvmError::Transaction(InvalidTransaction::LackOfFundForMaxFee { .. })),
        "a stale cached balance paid: {error:?}"
    );
}
