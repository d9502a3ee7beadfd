//! The incremental root against a from-scratch `HashBuilder` root over a `BTreeMap` model, with
//! every key's proof checked after every commit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use alloy_primitives::B256;
use common::{entry_strategy, memory_store};
use kv_core::{KeyProof, Namespace, Store, StoreConfig, Table, root_from_scratch, verify};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::collections::BTreeMap;
use std::ops::ControlFlow;

#[derive(Clone, Debug)]
enum Op {
    Set(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Wipe(Namespace),
    Commit,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => entry_strategy().prop_map(|(key, value)| Op::Set(key, value)),
        3 => entry_strategy().prop_map(|(key, _)| Op::Remove(key)),
        1 => common::namespace_strategy().prop_map(Op::Wipe),
        2 => Just(Op::Commit),
    ]
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn model_root(model: &BTreeMap<Vec<u8>, Vec<u8>>) -> B256 {
    root_from_scratch(model.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
}

fn check_proofs(store: &Store, model: &BTreeMap<Vec<u8>, Vec<u8>>, probes: &[Vec<u8>]) {
    let root = store.root();
    for key in model.keys().chain(probes) {
        let value = model.get(key);
        let proof = store.prove(key, None).unwrap();
        let decoded = KeyProof::decode(&proof.encode()).unwrap();
        assert_eq!(decoded, proof);
        verify(root, key, value.map(Vec::as_slice), &decoded).unwrap();
        // The same proof must not show a different value, or the key's absence when present.
        let mut flipped = value.cloned().unwrap_or_else(|| vec![1; 32]);
        flipped[0] ^= 1;
        assert!(verify(root, key, Some(&flipped), &proof).is_err());
        if value.is_some() {
            assert!(verify(root, key, None, &proof).is_err());
        }
        let mut other_root = root;
        other_root.0[31] ^= 1;
        assert!(verify(other_root, key, value.map(Vec::as_slice), &proof).is_err());
    }
}

fn run(ops: Vec<Op>, retained: u64) {
    let store = memory_store(retained);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut committed = model.clone();
    let mut overlay = store.begin();
    let mut probes = Vec::new();
    let mut history: Vec<(u64, B256, Model)> = Vec::new();
    for op in ops.into_iter().chain([Op::Commit]) {
        match op {
            Op::Set(key, value) => {
                overlay.set(&key, &value).unwrap();
                model.insert(key, value);
            }
            Op::Remove(key) => {
                overlay.remove(&key).unwrap();
                model.remove(&key);
                probes.push(key);
            }
            Op::Wipe(namespace) => {
                overlay.wipe(&namespace);
                model.retain(|key, _| !key.starts_with(namespace.prefix()));
            }
            Op::Commit => {
                let info = store.commit(&overlay).unwrap();
                assert_eq!(info.root, model_root(&model), "root after commit {}", info.height);
                for (key, value) in &model {
                    assert_eq!(store.get(key).unwrap().as_ref(), Some(value));
                }
                for key in &probes {
                    assert_eq!(store.get(key).unwrap(), model.get(key).cloned());
                }
                check_proofs(&store, &model, &probes);
                committed = model.clone();
                history.push((info.height, info.root, committed.clone()));
                overlay = store.begin();
            }
        }
    }
    // Every retained height still proves its own contents.
    let latest = store.height();
    for (height, root, contents) in &history {
        if height + retained > latest {
            assert_eq!(store.root_at(*height).unwrap(), *root);
            for (key, value) in contents {
                let (proof, commitment) = store.prove_commitment(key, Some(*height)).unwrap();
                verify(*root, key, Some(value), &proof).unwrap();
                assert_eq!(commitment, Some(alloy_primitives::keccak256(value)));
                kv_core::verify_commitment(*root, key, commitment, &proof).unwrap();
            }
        } else {
            assert!(store.root_at(*height).is_err());
        }
    }
    let _ = committed;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn incremental_root_matches_model(ops in prop::collection::vec(op_strategy(), 1..120)) {
        run(ops, 4);
    }

    #[test]
    fn incremental_root_matches_model_with_one_retained_root(ops in prop::collection::vec(op_strategy(), 1..80)) {
        run(ops, 1);
    }

    /// The root depends only on the final contents, not on the order of the writes or how they
    /// were split into blocks.
    #[test]
    fn root_is_independent_of_write_order_and_block_boundaries(
        entries in prop::collection::btree_map(entry_strategy().prop_map(|(k, _)| k), any::<u64>().prop_map(|v| v | 1), 1..60),
        split in 0usize..60,
    ) {
        let entries: Vec<(Vec<u8>, Vec<u8>)> = entries.into_iter().map(|(key, value)| {
            let value = if key.len() == kv_core::key::SLOT_KEY_LEN { value.to_be_bytes().to_vec() } else { alloy_primitives::B256::left_padding_from(&value.to_be_bytes()).to_vec() };
            (key, value)
        }).collect();
        let one = memory_store(8);
        let mut overlay = one.begin();
        for (key, value) in &entries {
            overlay.set(key, value).unwrap();
        }
        let single = one.commit(&overlay).unwrap().root;

        // The same entries in reverse order, in two blocks split anywhere.
        let two = memory_store(8);
        let mut reversed = entries.clone();
        reversed.reverse();
        let split = split.min(reversed.len());
        for part in [&reversed[..split], &reversed[split..]] {
            let mut overlay = two.begin();
            for (key, value) in part {
                overlay.set(key, value).unwrap();
            }
            two.commit(&overlay).unwrap();
        }
        prop_assert_eq!(single, two.root());
    }
}

fn node_count(store: &Store) -> usize {
    let mut count = 0;
    store
        .backend()
        .scan(Table::Nodes, &[], None, &mut |_, _| {
            count += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    count
}

/// With one retained root, pruning leaves exactly the nodes of the latest trie: nothing leaks.
#[test]
fn pruning_leaves_exactly_the_latest_trie() {
    let churned = memory_store(1);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let entries = prop::collection::vec(entry_strategy(), 200).new_tree(&mut runner).unwrap().current();
    let mut model = BTreeMap::new();
    for chunk in entries.chunks(17) {
        let mut overlay = churned.begin();
        for (index, (key, value)) in chunk.iter().enumerate() {
            if index % 5 == 4 {
                overlay.remove(key).unwrap();
                model.remove(key);
            } else {
                overlay.set(key, value).unwrap();
                model.insert(key.clone(), value.clone());
            }
        }
        if chunk.len() > 10 {
            let namespace = Namespace::from_prefix(&chunk[3].0).unwrap();
            overlay.wipe(&namespace);
            model.retain(|key, _| !key.starts_with(namespace.prefix()));
        }
        churned.commit(&overlay).unwrap();
    }
    // One empty commit lets the last commit's stale nodes fall out of the window.
    churned.commit(&churned.begin()).unwrap();

    let fresh = memory_store(1);
    let mut overlay = fresh.begin();
    for (key, value) in &model {
        overlay.set(key, value).unwrap();
    }
    fresh.commit(&overlay).unwrap();
    assert_eq!(churned.root(), fresh.root());
    assert_eq!(node_count(&churned), node_count(&fresh));
    let mut stale = 0;
    churned
        .backend()
        .scan(Table::Stale, &[], None, &mut |_, _| {
            stale += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(stale, 0);
}

/// The root of the same contents is the same on both backends.
#[test]
fn root_is_independent_of_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let on_disk = common::redb_store(&dir, 8);
    let in_memory = memory_store(8);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let entries = prop::collection::vec(entry_strategy(), 300).new_tree(&mut runner).unwrap().current();
    for chunk in entries.chunks(50) {
        for store in [&on_disk, &in_memory] {
            let mut overlay = store.begin();
            for (key, value) in chunk {
                overlay.set(key, value).unwrap();
            }
            store.commit(&overlay).unwrap();
        }
        assert_eq!(on_disk.root(), in_memory.root());
    }
    let root = on_disk.root();
    drop(on_disk);
    let reopened = common::redb_store(&dir, 8);
    assert_eq!(reopened.root(), root);
    assert_eq!(reopened.height(), 6);
}

/// An empty store has Ethereum's empty-trie root, and an empty commit keeps the root.
#[test]
fn empty_store_and_empty_commit() {
    let store = Store::in_memory_with(StoreConfig::default());
    assert_eq!(store.root(), alloy_trie::EMPTY_ROOT_HASH);
    let info = store.commit(&store.begin()).unwrap();
    assert_eq!(info.height, 1);
    assert_eq!(info.root, alloy_trie::EMPTY_ROOT_HASH);
}

/// Commits large enough to update sub-tries on several threads give the same root as the
/// from-scratch computation, including wipes and deletes in the same commit.
#[test]
fn large_parallel_commits_match_the_model() {
    let store = memory_store(4);
    let mut model = Model::new();
    for round in 0..3u64 {
        let mut overlay = store.begin();
        for index in 0..3_000u64 {
            let namespace = Namespace::wasm(kv_core::Identity([u8::try_from(index % 97).unwrap(); 20]));
            let key = namespace.slot_key(index / 97 + round * 7).to_vec();
            if index % 11 == 0 {
                overlay.remove(&key).unwrap();
                model.remove(&key);
            } else {
                let value = (index * 31 + round + 1).to_be_bytes().to_vec();
                overlay.set(&key, &value).unwrap();
                model.insert(key, value);
            }
        }
        let wiped = Namespace::wasm(kv_core::Identity([u8::try_from(round * 5).unwrap(); 20]));
        overlay.wipe(&wiped);
        model.retain(|key, _| !key.starts_with(wiped.prefix()));
        let info = store.commit(&overlay).unwrap();
        assert_eq!(info.root, model_root(&model), "round {round}");
    }
    check_proofs(&store, &model, &[]);
}
