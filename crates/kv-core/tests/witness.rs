//! Block witnesses at the store's level: a block of reads, writes, deletions and wipes run over a
//! recording view of the parent state gives the root the store commits to, and its witness alone
//! answers the same reads and reproduces the same root; a tampered witness fails, naming the fault.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use alloy_primitives::{B256, Bytes, keccak256};
use common::{code_entry_strategy, entry_strategy, memory_store};
use kv_core::{BackendError, Namespace, Overlay, StateError, StateFailure, StateView, Store, Witness, WitnessError};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Op {
    Read(Vec<u8>),
    Set(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    Wipe(Namespace),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => entry_strategy().prop_map(|(key, _)| Op::Read(key)),
        4 => entry_strategy().prop_map(|(key, value)| Op::Set(key, value)),
        1 => code_entry_strategy().prop_map(|(key, value)| Op::Set(key, value)),
        4 => entry_strategy().prop_map(|(key, _)| Op::Remove(key)),
        1 => common::namespace_strategy().prop_map(Op::Wipe),
    ]
}

/// Runs the block on `overlay`, returning what each read saw.
fn run(overlay: &mut Overlay, ops: &[Op]) -> Result<Vec<Option<Vec<u8>>>, StateError> {
    let mut seen = Vec::new();
    for op in ops {
        match op {
            Op::Read(key) => seen.push(overlay.get(key)?),
            Op::Set(key, value) => overlay.set(key, value)?,
            Op::Remove(key) => overlay.remove(key)?,
            Op::Wipe(namespace) => overlay.wipe(namespace)?,
        }
    }
    Ok(seen)
}

fn parent_store(entries: &[(Vec<u8>, Vec<u8>)]) -> (Store, BTreeMap<Vec<u8>, Vec<u8>>) {
    let store = memory_store(8);
    let mut overlay = store.begin();
    let mut model = BTreeMap::new();
    for (key, value) in entries {
        overlay.set(key, value).unwrap();
        model.insert(key.clone(), value.clone());
    }
    store.commit(&overlay).unwrap();
    (store, model)
}

/// Records the block's witness over the store's latest state and commits the block to the store;
/// returns the witness, the parent root, the reads and the committed root.
fn record(store: &Store, ops: &[Op]) -> (Witness, B256, Vec<Option<Vec<u8>>>, B256) {
    let parent = store.root();
    let view = store.view_at(store.height()).unwrap();
    let mut overlay = view.overlay();
    let seen = run(&mut overlay, ops).unwrap();
    let root = view.root_after(&overlay).unwrap();
    let witness = view.witness(&overlay);

    // The same block on the store's own recording overlay: its commit gathers the same witness.
    let mut stateful = store.begin_recording();
    assert_eq!(run(&mut stateful, ops).unwrap(), seen, "the view reads what the store reads");
    let mut labelled = None;
    let (info, recorded) = store
        .commit_witnessed(&stateful, |_, witness| {
            labelled = Some(witness.clone());
            Vec::new()
        })
        .unwrap();
    assert_eq!(root, info.root, "the view's root is the committed root");
    if recorded != witness {
        let only = |a: &[Bytes], b: &[Bytes]| a.iter().filter(|x| !b.contains(x)).cloned().collect::<Vec<_>>();
        panic!(
            "the witness recorded by the commit is not the one the view records:\nnodes only recorded {:?}\nnodes only viewed {:?}\nkeys only recorded {:?}\nkeys only viewed {:?}\ncodes {:?} vs {:?}\nops {ops:?}",
            only(&recorded.state, &witness.state),
            only(&witness.state, &recorded.state),
            only(&recorded.keys, &witness.keys),
            only(&witness.keys, &recorded.keys),
            recorded.codes,
            witness.codes,
        );
    }
    assert_eq!(labelled.as_ref(), Some(&recorded), "the labels see the witness the commit returns");
    (witness, parent, seen, info.root)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Every witness answers the block's reads as the store did and reproduces the store's root,
    /// over random states with deletions that collapse branches, several deletions under one
    /// branch, inserts beside updated and deleted neighbours (the colliding slots of the entry
    /// strategy share long prefixes) and wipes.
    #[test]
    fn every_witness_reproduces_the_store_root(
        entries in prop::collection::vec(entry_strategy(), 1..60),
        ops in prop::collection::vec(op_strategy(), 1..40),
    ) {
        let (store, _) = parent_store(&entries);
        let (witness, parent, seen, committed) = record(&store, &ops);
        let view = StateView::from_witness(&witness, parent).unwrap();
        let mut overlay = view.overlay();
        prop_assert_eq!(run(&mut overlay, &ops).unwrap(), seen);
        prop_assert_eq!(view.root_after(&overlay).unwrap(), committed);
        view.check_codes_used(&witness).unwrap();
    }
}

/// A witnessed commit needs an overlay that recorded its reads: any other is refused, and nothing
/// is committed.
#[test]
fn a_witnessed_commit_of_an_overlay_that_did_not_record_is_refused() {
    let (store, _) = parent_store(&[(
        Namespace::wasm(kv_core::Identity::from(alloy_primitives::Address::repeat_byte(7))).slot_key(1).to_vec(),
        5u64.to_be_bytes().to_vec(),
    )]);
    let (height, root) = (store.height(), store.root());
    let mut overlay = store.begin();
    overlay
        .set_u64(&Namespace::wasm(kv_core::Identity::from(alloy_primitives::Address::repeat_byte(7))).slot_key(2), 9)
        .unwrap();
    let error = store.commit_witnessed(&overlay, |_, _| Vec::new()).unwrap_err();
    assert!(matches!(error, kv_core::StoreError::NotRecording), "{error}");
    assert_eq!((store.height(), store.root()), (height, root));
}

/// An engine that answers a read from its own memory names the key: a recording overlay records
/// it as a read of the committed state, unless the block itself wrote the key.
#[test]
fn a_noted_read_is_recorded_unless_the_block_wrote_the_key() {
    let code = b"module code".to_vec();
    let key = kv_core::key::code_key(&keccak256(&code)).to_vec();
    let (store, _) = parent_store(&[(key.clone(), code.clone())]);
    let overlay = store.begin_recording();
    overlay.note_read(&key);
    let (_, witness) = store.commit_witnessed(&overlay, |_, _| Vec::new()).unwrap();
    assert_eq!(witness.codes, vec![Bytes::from(code.clone())], "the noted code blob is in the witness");

    let other = b"other code".to_vec();
    let other_key = kv_core::key::code_key(&keccak256(&other)).to_vec();
    let mut overlay = store.begin_recording();
    overlay.set(&other_key, &other).unwrap();
    overlay.note_read(&other_key);
    let (_, witness) = store.commit_witnessed(&overlay, |_, _| Vec::new()).unwrap();
    assert!(witness.codes.is_empty(), "code the block wrote is not the parent's: {:?}", witness.codes);
}

/// A parent state with two namespaces of several slots each, and a block that reads and deletes.
fn sample() -> (Witness, B256, Vec<Op>) {
    let mut entries = Vec::new();
    for id in 1u8..4 {
        let namespace = Namespace::evm([id; 20].into());
        for slot in 0u8..6 {
            entries
                .push((namespace.word_key(&B256::with_last_byte(slot).0).to_vec(), B256::with_last_byte(id).to_vec()));
        }
    }
    let code = vec![0x60, 0x00, 0x60, 0x00, 0xf3];
    entries.push((kv_core::key::code_key(&keccak256(&code)).to_vec(), code.clone()));
    let (store, _) = parent_store(&entries);
    let first = Namespace::evm([1; 20].into());
    let ops = vec![
        Op::Read(first.word_key(&B256::with_last_byte(3).0).to_vec()),
        Op::Read(kv_core::key::code_key(&keccak256(&code)).to_vec()),
        Op::Remove(first.word_key(&B256::with_last_byte(4).0).to_vec()),
        Op::Remove(first.word_key(&B256::with_last_byte(5).0).to_vec()),
        Op::Set(
            Namespace::evm([2; 20].into()).word_key(&B256::with_last_byte(9).0).to_vec(),
            B256::with_last_byte(7).to_vec(),
        ),
    ];
    let (witness, parent, _, _) = record(&store, &ops);
    (witness, parent, ops)
}

/// Runs `ops` over the view `witness` gives, to the root.
fn replay(witness: &Witness, parent: B256, ops: &[Op]) -> Result<B256, String> {
    let view = StateView::from_witness(witness, parent).map_err(|error| error.to_string())?;
    let mut overlay = view.overlay();
    run(&mut overlay, ops).map_err(|error| error.to_string())?;
    let root = view.root_after(&overlay).map_err(|error| error.to_string())?;
    view.check_codes_used(witness).map_err(|error| error.to_string())?;
    Ok(root)
}

#[test]
fn the_sample_witness_verifies() {
    let (witness, parent, ops) = sample();
    assert!(witness.state.len() > 3 && witness.codes.len() == 1 && !witness.keys.is_empty());
    replay(&witness, parent, &ops).unwrap();
}

#[test]
fn a_changed_node_is_unreachable() {
    let (mut witness, parent, ops) = sample();
    let index = witness.state.len() - 1;
    let mut node = witness.state[index].to_vec();
    let last = node.len() - 1;
    node[last] ^= 1;
    let hash = keccak256(&node);
    witness.state[index] = node.into();
    let error = replay(&witness, parent, &ops).unwrap_err();
    assert!(error.contains(&hash.to_string()) && error.contains("not reachable"), "{error}");
}

#[test]
fn a_removed_node_is_named_when_it_is_needed() {
    let (witness, parent, ops) = sample();
    // Remove each non-root node in turn: a block reads or rewrites every listed path, so each
    // removal fails, naming the missing node and what needed it.
    let mut failures = 0;
    for index in 0..witness.state.len() {
        let removed = keccak256(&witness.state[index]);
        if removed == parent {
            let mut shorter = witness.clone();
            shorter.state.remove(index);
            let error = replay(&shorter, parent, &ops).unwrap_err();
            assert!(error.contains("does not hold the parent state root node"), "{error}");
            continue;
        }
        let mut shorter = witness.clone();
        shorter.state.remove(index);
        let error = replay(&shorter, parent, &ops).unwrap_err();
        if error.contains("not reachable") {
            // The removed node's own children are then orphans: the error names one of them.
            let named: B256 = error["witness node ".len()..][..66].parse().unwrap();
            assert!(
                witness.state[index].windows(32).any(|window| window == named.as_slice()),
                "{error} names no child of the removed node"
            );
        } else {
            assert!(error.contains("does not prove") && error.contains(&removed.to_string()), "{error}");
        }
        failures += 1;
    }
    assert!(failures > 0);
}

#[test]
fn an_added_node_is_unreachable() {
    let (mut witness, parent, ops) = sample();
    let stranger = Bytes::from(alloy_rlp::encode(vec![Bytes::from(vec![0x20, 1]), Bytes::from(vec![7; 40])]));
    witness.state.push(stranger.clone());
    let error = replay(&witness, parent, &ops).unwrap_err();
    assert!(error.contains(&keccak256(&stranger).to_string()) && error.contains("not reachable"), "{error}");
}

#[test]
fn a_swapped_code_blob_is_named() {
    let (mut witness, parent, ops) = sample();
    let original = keccak256(&witness.codes[0]);
    witness.codes[0] = Bytes::from(vec![0x60, 0x01, 0x60, 0x00, 0xf3]);
    let error = replay(&witness, parent, &ops).unwrap_err();
    assert!(error.contains(&format!("the code blob {original}")), "{error}");
    // Unread, the swapped blob is itself the fault.
    let view = StateView::from_witness(&witness, parent).unwrap();
    let error = view.check_codes_used(&witness).unwrap_err();
    assert!(matches!(error, WitnessError::UnusedCode(hash) if hash == keccak256(&witness.codes[0])));
}

#[test]
fn a_witness_of_another_state_is_refused() {
    let (witness, _, ops) = sample();
    let error = replay(&witness, B256::repeat_byte(0x11), &ops).unwrap_err();
    assert!(error.contains("does not hold the parent state root node"), "{error}");
}

#[test]
fn an_unproven_read_is_an_error_never_an_absence() {
    let (witness, parent, _) = sample();
    let view = StateView::from_witness(&witness, parent).unwrap();
    let overlay = view.overlay();
    // A namespace the block never touched: the walk leaves the witness.
    let key = Namespace::evm([3; 20].into()).word_key(&B256::with_last_byte(1).0);
    let error = overlay.get(&key).unwrap_err();
    assert!(matches!(error, StateError::Failed(StateFailure::Backend(BackendError::Unproven(_)))), "{error}");
}

#[test]
fn a_witness_deeper_than_a_trie_is_refused_without_recursing() {
    // A chain of 1,000 branches, each naming the next by hash, under a root that names the first:
    // no trie is that deep, so the view refuses it at depth 64 instead of recursing further.
    let leaf = Bytes::from(alloy_rlp::encode(vec![Bytes::from(vec![0x20; 1]), Bytes::from(vec![1; 40])]));
    let mut nodes = vec![leaf];
    for _ in 0..1_000 {
        let child = keccak256(nodes.last().unwrap());
        let mut items: Vec<Bytes> = vec![Bytes::new(); 17];
        items[0] = Bytes::copy_from_slice(child.as_slice());
        items[1] = Bytes::copy_from_slice(child.as_slice());
        nodes.push(Bytes::from(alloy_rlp::encode(items)));
    }
    let root = keccak256(nodes.last().unwrap());
    let witness = Witness { state: nodes, codes: Vec::new(), keys: Vec::new() };
    let error = StateView::from_witness(&witness, root).err().unwrap();
    assert!(matches!(error, WitnessError::Malformed { .. }), "{error}");
    assert!(error.to_string().contains("depth 64"), "{error}");
}
