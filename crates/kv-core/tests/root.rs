//! The incremental root against a from-scratch `HashBuilder` root over a `BTreeMap` model, with
//! every key's proof checked after every commit.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use alloy_primitives::{B256, keccak256};
use common::{code_entry_strategy, entry_strategy, memory_store};
use kv_core::{KeyProof, Namespace, Store, StoreConfig, StoreError, Table, root_from_scratch, verify};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::collections::{BTreeMap, BTreeSet};
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
        1 => code_entry_strategy().prop_map(|(key, value)| Op::Set(key, value)),
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
        if key[0] == kv_core::Engine::Runtime.tag() {
            // Code blobs are committed through the code hashes that name them, not as leaves.
            assert!(matches!(store.prove(key, None), Err(StoreError::NotCommitted)));
            continue;
        }
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
    let mut overlay = store.begin();
    let mut probes = Vec::new();
    let mut touched = BTreeSet::new();
    let mut history: Vec<(u64, B256, Model)> = Vec::new();
    for op in ops.into_iter().chain([Op::Commit]) {
        match op {
            Op::Set(key, value) => {
                overlay.set(&key, &value).unwrap();
                touched.insert(key.clone());
                model.insert(key, value);
            }
            Op::Remove(key) => {
                overlay.remove(&key).unwrap();
                model.remove(&key);
                touched.insert(key.clone());
                probes.push(key);
            }
            Op::Wipe(namespace) => {
                overlay.wipe(&namespace).unwrap();
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
                history.push((info.height, info.root, model.clone()));
                overlay = store.begin();
            }
        }
    }
    // Every retained height still proves its own contents, and the absence of every other key
    // the run touched; older heights are refused with the retained range.
    let latest = store.height();
    let oldest = (latest + 1).saturating_sub(retained);
    for (height, root, contents) in &history {
        if height + retained > latest {
            assert_eq!(store.root_at(*height).unwrap(), *root);
            for (key, value) in contents.iter().filter(|(key, _)| key[0] != kv_core::Engine::Runtime.tag()) {
                // The trie's leaves hold the values themselves, so an older height answers them.
                let (proof, found) = store.prove_value(key, Some(*height)).unwrap();
                verify(*root, key, Some(value), &proof).unwrap();
                assert_eq!(found.as_ref(), Some(value), "height {height}");
            }
            for key in
                touched.iter().filter(|key| !contents.contains_key(*key) && key[0] != kv_core::Engine::Runtime.tag())
            {
                let (proof, found) = store.prove_value(key, Some(*height)).unwrap();
                assert_eq!(found, None, "height {height}");
                verify(*root, key, None, &proof).unwrap();
                assert!(verify(*root, key, Some(&[1; 32]), &proof).is_err());
            }
        } else {
            let refused = |error| matches!(error, StoreError::HeightNotRetained { height: h, oldest: o, latest: l } if h == *height && o == oldest && l == latest);
            assert!(refused(store.root_at(*height).unwrap_err()), "height {height}");
            let any_key = Namespace::wasm(kv_core::Identity([0; 20])).slot_key(0);
            assert!(refused(store.prove(&any_key, Some(*height)).unwrap_err()), "height {height}");
        }
    }
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
        entries in prop::collection::vec(entry_strategy(), 1..60),
        split in 0usize..60,
    ) {
        let entries: Vec<(Vec<u8>, Vec<u8>)> = entries.into_iter().collect::<Model>().into_iter().collect();
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

fn count(store: &Store, table: Table) -> usize {
    let mut count = 0;
    store
        .backend()
        .scan(table, &[], None, &mut |_, _| {
            count += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    count
}

/// The heights under which the stale table lists nodes.
fn stale_heights(store: &Store) -> BTreeSet<u64> {
    let mut heights = BTreeSet::new();
    store
        .backend()
        .scan(Table::Stale, &[], None, &mut |key, _| {
            heights.insert(u64::from_be_bytes(key[..8].try_into().unwrap()));
            ControlFlow::Continue(())
        })
        .unwrap();
    heights
}

/// The number of nodes of the trie of `model` alone, built from scratch.
fn fresh_node_count(model: &Model) -> usize {
    let fresh = memory_store(1);
    let mut overlay = fresh.begin();
    for (key, value) in model {
        overlay.set(key, value).unwrap();
    }
    fresh.commit(&overlay).unwrap();
    count(&fresh, Table::Nodes)
}

/// Commits blocks of sets, deletes and wipes, calling `check` with the model after each commit.
fn churn(store: &Store, mut check: impl FnMut(u64, &Model)) {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let entries = prop::collection::vec(entry_strategy(), 200).new_tree(&mut runner).unwrap().current();
    let mut model = BTreeMap::new();
    for chunk in entries.chunks(17) {
        let mut overlay = store.begin();
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
            overlay.wipe(&namespace).unwrap();
            model.retain(|key, _| !key.starts_with(namespace.prefix()));
        }
        let info = store.commit(&overlay).unwrap();
        assert_eq!(info.root, model_root(&model));
        check(info.height, &model);
    }
}

/// With one retained root, every commit leaves exactly the nodes of its own trie: the nodes it
/// replaces go in the same commit, and nothing leaks.
#[test]
fn pruning_with_one_retained_root_leaves_exactly_the_latest_trie() {
    let store = memory_store(1);
    churn(&store, |height, model| {
        assert_eq!(count(&store, Table::Nodes), fresh_node_count(model), "height {height}");
        assert_eq!(count(&store, Table::Stale), 0, "height {height}");
    });
}

/// Committing height h deletes exactly the nodes listed stale at heights <= h + 1 - N: the stale
/// records left are all above that, and the node table holds the latest trie plus exactly the
/// nodes those records list (nothing leaks, nothing a retained root needs is gone; `run` checks
/// the proofs of every retained root).
#[test]
fn pruning_keeps_exactly_what_the_retained_roots_need() {
    for retained in [2u64, 3] {
        let store = memory_store(retained);
        let mut listed_heights = BTreeSet::new();
        churn(&store, |height, model| {
            let heights = stale_heights(&store);
            let cutoff = (height + 1).saturating_sub(retained);
            assert!(heights.iter().all(|&since| since > cutoff), "N = {retained}, height {height}: {heights:?}");
            listed_heights.extend(heights);
            let nodes = count(&store, Table::Nodes);
            assert_eq!(nodes, fresh_node_count(model) + count(&store, Table::Stale), "N = {retained}, height {height}");
        });
        // The churn did replace nodes, so the window above was not trivially empty.
        assert!(listed_heights.len() > 3, "N = {retained}: {listed_heights:?}");
    }
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
        overlay.wipe(&wiped).unwrap();
        model.retain(|key, _| !key.starts_with(wiped.prefix()));
        let info = store.commit(&overlay).unwrap();
        assert_eq!(info.root, model_root(&model), "round {round}");
    }
    check_proofs(&store, &model, &[]);
}

/// Deleting keys that are absent, including ones whose hashed path leaves an extension's path,
/// and wiping a namespace that has no entries, writes no node and no stale record: the root, the
/// node table and the stale table stay as they were.
#[test]
fn deleting_absent_keys_writes_nothing() {
    let store = memory_store(8);
    let namespace = Namespace::wasm(kv_core::Identity([3; 20]));
    let nibbles = |slot: u64| {
        let hash = keccak256(&namespace.slot_key(slot)[kv_core::key::PREFIX_LEN..]);
        (hash[0] >> 4, hash[0] & 0x0f)
    };
    // Two slots whose hashed keys share the first nibble only: the sub-trie's root is then an
    // extension of one nibble above a branch.
    let first = nibbles(0);
    let partner = (1..).find(|&slot| nibbles(slot).0 == first.0 && nibbles(slot).1 != first.1).unwrap();
    let mut overlay = store.begin();
    overlay.set_u64(&namespace.slot_key(0), 1).unwrap();
    overlay.set_u64(&namespace.slot_key(partner), 2).unwrap();
    // Another namespace, so that the global trie is more than one leaf.
    overlay.set_u64(&Namespace::wasm(kv_core::Identity([4; 20])).slot_key(0), 3).unwrap();
    store.commit(&overlay).unwrap();
    let (root, nodes, stale) = (store.root(), count(&store, Table::Nodes), count(&store, Table::Stale));

    let mut overlay = store.begin();
    let absent: Vec<u64> = (1..200).filter(|&slot| slot != partner).collect();
    // Most of these leave the extension's one-nibble path; some follow it and end in the branch.
    assert!(absent.iter().any(|&slot| nibbles(slot).0 != first.0));
    assert!(absent.iter().any(|&slot| nibbles(slot).0 == first.0));
    for &slot in &absent {
        overlay.remove(&namespace.slot_key(slot)).unwrap();
        overlay.remove(&Namespace::wasm(kv_core::Identity([5; 20])).slot_key(slot)).unwrap();
    }
    overlay.wipe(&Namespace::evm(alloy_primitives::Address::repeat_byte(6))).unwrap();
    let info = store.commit(&overlay).unwrap();
    assert_eq!(info.root, root);
    assert_eq!(count(&store, Table::Nodes), nodes);
    assert_eq!(count(&store, Table::Stale), stale);
}

/// Code blobs are stored but not in the trie: writing them leaves the root as it was (the code
/// hashes of accounts and modules commit to them), and proving one is refused with a typed error.
#[test]
fn code_blobs_are_stored_but_not_committed_as_leaves() {
    let store = memory_store(4);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let blobs = prop::collection::vec(code_entry_strategy(), 20).new_tree(&mut runner).unwrap().current();
    let mut overlay = store.begin();
    for (key, code) in &blobs {
        overlay.set(key, code).unwrap();
    }
    let info = store.commit(&overlay).unwrap();
    assert_eq!(info.root, alloy_trie::EMPTY_ROOT_HASH);
    for (key, code) in &blobs {
        assert_eq!(store.get(key).unwrap().as_ref(), Some(code));
        assert!(matches!(store.prove(key, None), Err(StoreError::NotCommitted)));
        let mut absent = key.clone();
        absent[30] ^= 1;
        assert!(matches!(store.prove(&absent, None), Err(StoreError::NotCommitted)));
    }
    assert_eq!(count(&store, Table::Nodes), 0);
}

/// Slots whose hashed keys share 8 leading nibbles, holding one-byte values, have leaves shorter
/// than 32 bytes: the branch above them embeds them, the proof lists the branch last (the
/// embedded leaf is inside it), and the proof verifies.
#[test]
fn short_leaves_are_embedded_in_their_branch() {
    use alloy_rlp::Decodable;
    use alloy_trie::nodes::TrieNode;
    let store = memory_store(4);
    let slots = &common::colliding_slots().evm;
    let namespace = Namespace::evm(alloy_primitives::Address::repeat_byte(7));
    let word = |slot: u64| B256::left_padding_from(&slot.to_be_bytes());
    let mut overlay = store.begin();
    let mut model = Model::new();
    for &slot in &slots[..2] {
        let key = namespace.word_key(&word(slot).0).to_vec();
        overlay.set(&key, B256::with_last_byte(1).as_slice()).unwrap();
        model.insert(key, B256::with_last_byte(1).to_vec());
    }
    let info = store.commit(&overlay).unwrap();
    assert_eq!(info.root, model_root(&model));
    let key = namespace.word_key(&word(slots[0]).0);
    let proof = store.prove(&key, None).unwrap();
    let last = proof.storage_proof.last().unwrap();
    let TrieNode::Branch(branch) = TrieNode::decode(&mut last.as_ref()).unwrap() else {
        panic!("the last node of the path is the branch holding the embedded leaves");
    };
    assert!(branch.stack.iter().all(|child| !child.is_hash()), "both leaves are embedded");
    verify(info.root, &key, Some(B256::with_last_byte(1).as_slice()), &proof).unwrap();
    check_proofs(&store, &model, &[]);
}
