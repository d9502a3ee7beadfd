//! Rewinding the store to an earlier retained height: after commits `j+1..=k` and a rewind to `j`,
//! the values, root, root history, proofs and (while nothing was pruned) every stored table equal
//! what the store held right after commit `j`; a reopened store agrees; the same blocks committed
//! again give the same roots; and a rewind that cannot be made is a typed error that changes
//! nothing, also when the write fails inside its transaction.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{code_entry_strategy, entry_strategy, memory_store};
use kv_core::backend::FaultPlan;
use kv_core::{Backend, Namespace, RedbBackend, Store, StoreConfig, StoreError, Table, verify};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

#[derive(Clone, Debug)]
enum Op {
    Set(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Wipe(Namespace),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => entry_strategy().prop_map(|(key, value)| Op::Set(key, value)),
        1 => code_entry_strategy().prop_map(|(key, value)| Op::Set(key, value)),
        3 => entry_strategy().prop_map(|(key, _)| Op::Remove(key)),
        1 => common::namespace_strategy().prop_map(Op::Wipe),
    ]
}

type Block = Vec<Op>;
type Tables = BTreeMap<(u8, Vec<u8>), Vec<u8>>;

fn commit(store: &Store, block: &Block) -> kv_core::CommitInfo {
    let mut overlay = store.begin();
    for op in block {
        match op {
            Op::Set(key, value) => overlay.set(key, value).unwrap(),
            Op::Remove(key) => overlay.remove(key).unwrap(),
            Op::Wipe(namespace) => overlay.wipe(namespace).unwrap(),
        }
    }
    store.commit(&overlay).unwrap()
}

/// Every entry of the given tables, tagged by table.
fn tables(backend: &dyn Backend, which: &[Table]) -> Tables {
    let mut out = BTreeMap::new();
    for (tag, table) in which.iter().enumerate() {
        backend
            .scan(*table, &[], None, &mut |key, value| {
                out.insert((u8::try_from(tag).unwrap(), key.to_vec()), value.to_vec());
                ControlFlow::Continue(())
            })
            .unwrap();
    }
    out
}

/// Every key the blocks touch, to probe proofs with.
fn probes(blocks: &[Block]) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = blocks
        .iter()
        .flatten()
        .filter_map(|op| match op {
            Op::Set(key, _) | Op::Remove(key) => Some(key.clone()),
            Op::Wipe(_) => None,
        })
        .filter(|key| key[0] != kv_core::Engine::Runtime.tag())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// What a store answers at its head: the root, the value and a verified proof of every probe.
fn answers(store: &Store, probes: &[Vec<u8>]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let root = store.root();
    probes
        .iter()
        .map(|key| {
            let value = store.get(key).unwrap();
            let proof = store.prove(key, None).unwrap();
            verify(root, key, value.as_deref(), &proof).unwrap();
            (key.clone(), value)
        })
        .collect()
}

fn run(blocks: &[Block], target: usize, retained: u64) -> Result<(), TestCaseError> {
    let store = memory_store(retained);
    let backend = Arc::clone(store.backend());
    let probes = probes(blocks);
    let mut roots = vec![store.root()];
    let mut before = None;
    for (index, block) in blocks.iter().enumerate() {
        if index == target {
            before = Some((tables(backend.as_ref(), &Table::ALL), answers(&store, &probes)));
        }
        roots.push(commit(&store, block).root);
    }
    let latest = blocks.len() as u64;
    let (target_index, target) = (target, target as u64);
    let (tables_before, answers_before) =
        before.unwrap_or_else(|| (tables(backend.as_ref(), &Table::ALL), answers(&store, &probes)));
    let oldest = store.oldest_provable();
    if target < oldest {
        let refused = store.rewind_with_labels(latest, target, &[]);
        prop_assert!(matches!(refused, Err(StoreError::CannotRewind { .. })), "{refused:?}");
        prop_assert_eq!(store.height(), latest);
        return Ok(());
    }
    let info = store.rewind_with_labels(latest, target, &[]).unwrap();
    prop_assert_eq!(info.height, target);
    prop_assert_eq!(info.root, roots[target_index]);
    prop_assert_eq!(store.height(), target);
    prop_assert_eq!(store.root(), roots[target_index]);
    for (height, root) in roots.iter().enumerate().take(target_index + 1).skip(usize::try_from(oldest).unwrap()) {
        prop_assert_eq!(store.root_at(height as u64).unwrap(), *root);
    }
    prop_assert!(store.root_at(target + 1).is_err());
    prop_assert_eq!(&answers(&store, &probes), &answers_before);
    if oldest == 0 {
        // Nothing was pruned, so the rewind leaves exactly the stored bytes of height `target`.
        prop_assert_eq!(&tables(backend.as_ref(), &Table::ALL), &tables_before);
    } else {
        prop_assert_eq!(
            &tables(backend.as_ref(), &[Table::State]),
            &tables(&tables_backend(&tables_before), &[Table::State])
        );
    }

    // A reopened store is at `target` too.
    let reopened =
        Store::open(Arc::clone(&backend), StoreConfig { retained_roots: retained, rewindable: true }).unwrap();
    prop_assert_eq!(reopened.height(), target);
    prop_assert_eq!(reopened.root(), roots[target_index]);
    prop_assert_eq!(&answers(&reopened, &probes), &answers_before);
    drop(reopened);

    // The chain goes on from `target`: the same blocks give the same roots.
    for (index, block) in blocks.iter().enumerate().skip(target_index) {
        prop_assert_eq!(commit(&store, block).root, roots[index + 1]);
    }
    Ok(())
}

/// The state table of a snapshot taken with every table, as a backend to scan.
fn tables_backend(snapshot: &Tables) -> kv_core::MemoryBackend {
    let backend = kv_core::MemoryBackend::new();
    let mut batch = kv_core::WriteBatch::new();
    for ((tag, key), value) in snapshot {
        if *tag == 0 {
            batch.put(Table::State, key.clone(), value.clone());
        }
    }
    backend.write(batch).unwrap();
    backend
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn rewinding_restores_the_earlier_height(
        blocks in prop::collection::vec(prop::collection::vec(op_strategy(), 0..12), 1..8),
        pick in any::<prop::sample::Index>(),
    ) {
        let target = pick.index(blocks.len() + 1);
        run(&blocks, target, 128)?;
    }

    #[test]
    fn rewinding_within_a_short_window_restores_the_earlier_height(
        blocks in prop::collection::vec(prop::collection::vec(op_strategy(), 0..12), 1..8),
        pick in any::<prop::sample::Index>(),
    ) {
        let target = pick.index(blocks.len() + 1);
        run(&blocks, target, 3)?;
    }
}

fn sample_blocks() -> Vec<Block> {
    let ns = Namespace::evm(alloy_primitives::Address::repeat_byte(7));
    (0u8..4)
        .map(|round| {
            vec![
                Op::Set(
                    ns.word_key(&alloy_primitives::B256::with_last_byte(round).0).to_vec(),
                    [round + 1; 32].to_vec(),
                ),
                Op::Set(
                    ns.record_key().to_vec(),
                    kv_core::AccountRecord {
                        nonce: u64::from(round) + 1,
                        balance: alloy_primitives::U256::from(round),
                        code_hash: alloy_trie::KECCAK_EMPTY,
                    }
                    .encode()
                    .to_vec(),
                ),
            ]
        })
        .collect()
}

/// Rewinds past the retained window, above the head, or prepared for another head are refused
/// and change nothing; with one retained root nothing can be rewound at all.
#[test]
fn impossible_rewinds_are_typed_errors() {
    let store = memory_store(2);
    for block in sample_blocks() {
        commit(&store, &block);
    }
    let (height, root) = (store.height(), store.root());
    assert_eq!(store.oldest_provable(), 3);
    let below = store.rewind_with_labels(4, 2, &[]).unwrap_err();
    assert!(matches!(below, StoreError::CannotRewind { target: 2, oldest: 3, latest: 4 }), "{below:?}");
    assert_eq!(below.to_string(), "cannot rewind to height 2: the store can go back to heights 3..=4");
    assert!(matches!(store.rewind_with_labels(4, 5, &[]), Err(StoreError::CannotRewind { .. })));
    assert!(matches!(store.rewind_with_labels(3, 3, &[]), Err(StoreError::StaleRewind { expected: 3, store: 4 })));
    assert_eq!((store.height(), store.root()), (height, root));
    // Rewinding to the head itself changes only the labels.
    store.rewind_with_labels(4, 4, &[("mark".to_owned(), Some(b"x".to_vec()))]).unwrap();
    assert_eq!((store.height(), store.root(), store.label("mark").unwrap()), (height, root, Some(b"x".to_vec())));

    let single = memory_store(1);
    for block in sample_blocks() {
        commit(&single, &block);
    }
    assert!(matches!(single.rewind_with_labels(4, 3, &[]), Err(StoreError::CannotRewind { .. })));
}

/// A rewind and its labels are one batch: a write that fails inside its transaction leaves the
/// redb store, reopened, at the later height with its labels; one that succeeds leaves it at the
/// earlier height with the new labels.
#[test]
fn a_failed_rewind_changes_nothing_and_a_done_one_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let roots: Vec<_> = {
        let store = Store::open_redb(&path, rewindable()).unwrap();
        sample_blocks().iter().map(|block| commit(&store, block).root).collect()
    };
    let labels = [("chain/head".to_owned(), Some(1u64.to_be_bytes().to_vec()))];
    {
        let backend = Arc::new(RedbBackend::open(&path).unwrap());
        let store = Store::open(backend.clone(), rewindable()).unwrap();
        let before = tables(backend.as_ref(), &Table::ALL);
        for plan in [FaultPlan::FailAfterOps(3), FaultPlan::FailBeforeCommit] {
            backend.set_fault_plan(plan);
            assert!(matches!(store.rewind_with_labels(4, 2, &labels), Err(StoreError::Backend(_))));
            assert_eq!(store.height(), 4);
        }
        backend.set_fault_plan(FaultPlan::Never);
        assert_eq!(tables(backend.as_ref(), &Table::ALL), before);
    }
    {
        let store = Store::open_redb(&path, rewindable()).unwrap();
        assert_eq!((store.height(), store.root()), (4, roots[3]));
        store.rewind_with_labels(4, 2, &labels).unwrap();
    }
    let store = Store::open_redb(&path, rewindable()).unwrap();
    assert_eq!((store.height(), store.root()), (2, roots[1]));
    assert_eq!(store.label("chain/head").unwrap(), Some(1u64.to_be_bytes().to_vec()));
    assert!(store.root_at(3).is_err());
}

/// An overlay opened before a rewind is based on a state that is gone: once the store is back at
/// the same height with other contents, committing it is refused and changes nothing; an overlay
/// opened after the rewind commits.
#[test]
fn an_overlay_opened_before_a_rewind_cannot_be_committed_after_it() {
    let store = memory_store(8);
    let blocks = sample_blocks();
    for block in &blocks[..3] {
        commit(&store, block);
    }
    let mut early = store.begin();
    early.set(&Namespace::wasm(kv_core::Identity([9; 20])).slot_key(1), &7u64.to_be_bytes()).unwrap();
    store.rewind_with_labels(3, 2, &[]).unwrap();
    commit(&store, &blocks[3]);
    assert_eq!((store.height(), early.base_height()), (3, 3));
    let root = store.root();
    let error = store.commit(&early).unwrap_err();
    assert!(matches!(error, StoreError::OverlayBeforeRewind { height: 3 }), "{error:?}");
    assert!(error.to_string().contains("before the store was rewound"), "{error}");
    assert_eq!((store.height(), store.root()), (3, root));
    let mut fresh = store.begin();
    fresh.set(&Namespace::wasm(kv_core::Identity([9; 20])).slot_key(1), &7u64.to_be_bytes()).unwrap();
    assert_eq!(store.commit(&fresh).unwrap().height, 4);
}

/// A store opened with kv-core's default settings keeps no undo records, so its commits cost no
/// extra read, and a rewind is refused as a typed error that changes nothing.
#[test]
fn a_store_that_is_not_rewindable_keeps_no_undo_records_and_refuses_rewinds() {
    let store = Store::in_memory();
    assert!(!kv_core::StoreConfig::default().rewindable);
    for block in sample_blocks() {
        commit(&store, &block);
    }
    let (height, root) = (store.height(), store.root());
    let error = store.rewind_with_labels(height, height - 1, &[]).unwrap_err();
    assert!(matches!(error, StoreError::CannotRewind { .. }), "{error:?}");
    assert_eq!((store.height(), store.root()), (height, root));
}

/// The settings of a store that can rewind.
fn rewindable() -> StoreConfig {
    StoreConfig { rewindable: true, ..StoreConfig::default() }
}
