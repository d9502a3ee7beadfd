//! Stored state that contradicts itself is a typed error, never a panic or a silently wrong root:
//! a node that decodes and fits its position but is not the node its parent commits to, and
//! heights pruned under one retention setting that a reopened store with another setting must
//! not pretend to hold. And what a store keeps beside the state, its labels, commits with it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use alloy_primitives::{Address, B256};
use kv_core::{Namespace, Store, StoreError, Table, WriteBatch};
use std::ops::ControlFlow;

/// The `nodes` key and bytes of the account trie's current root node.
fn account_root_node(store: &Store) -> (Vec<u8>, Vec<u8>) {
    let mut found: Option<(Vec<u8>, Vec<u8>)> = None;
    store
        .backend()
        .scan(Table::Nodes, &[0xff; 21], None, &mut |key, value| {
            // `tree (21) | version (8) | path length (1)`: the root has an empty path; the scan is
            // in version order, so the last root seen is the current one.
            if key.len() == 30 && key[29] == 0 {
                found = Some((key.to_vec(), value.to_vec()));
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    found.unwrap()
}

fn word_key(address: u8, slot: u8) -> Vec<u8> {
    Namespace::evm(Address::repeat_byte(address)).word_key(&B256::with_last_byte(slot).0).to_vec()
}

#[test]
fn a_node_that_is_not_the_one_its_parent_names_is_corrupt() {
    let store = common::memory_store(4);
    let mut overlay = store.begin();
    for address in 1..=40u8 {
        overlay.set(&word_key(address, 1), B256::with_last_byte(address).as_slice()).unwrap();
    }
    store.commit(&overlay).unwrap();
    let (root, height) = (store.root(), store.height());

    // Flip one byte of the first child hash of the root branch: `tag | mask (2) | length | 0xa0 |
    // hash`. The node still decodes and fits at the root, but is no longer the node the root
    // hash names.
    let (key, mut bytes) = account_root_node(&store);
    assert_eq!(bytes[0], 0x03, "the account trie's root is a branch");
    bytes[6] ^= 0x01;
    let mut batch = WriteBatch::new();
    batch.put(Table::Nodes, key, bytes);
    store.backend().write(batch).unwrap();

    // A commit through that branch would otherwise keep the flipped reference and commit to a
    // root nobody can prove anything under.
    let mut overlay = store.begin();
    overlay.set(&word_key(200, 1), B256::with_last_byte(9).as_slice()).unwrap();
    let error = store.commit(&overlay).unwrap_err();
    assert!(matches!(&error, StoreError::Corrupt(detail) if detail.contains("does not match")), "{error}");
    assert_eq!((store.root(), store.height()), (root, height), "a refused commit changes nothing");
    assert!(matches!(store.prove(&word_key(1, 1), None), Err(StoreError::Corrupt(_))));
    assert!(matches!(
        store.eip1186_proof(Address::repeat_byte(1), &[B256::with_last_byte(1)], None),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn reopening_with_more_retained_roots_keeps_pruned_heights_unprovable() {
    let dir = tempfile::tempdir().unwrap();
    let probe = word_key(1, 1);
    {
        let store = common::redb_store(&dir, 2);
        for height in 1..=5u8 {
            let mut overlay = store.begin();
            overlay.set(&probe, B256::with_last_byte(height).as_slice()).unwrap();
            overlay.set(&word_key(height, 2), B256::with_last_byte(1).as_slice()).unwrap();
            store.commit(&overlay).unwrap();
        }
    }
    let store = common::redb_store(&dir, 10);
    assert_eq!(store.oldest_provable(), 4);
    for height in 1..=3 {
        let refused = |error: StoreError| matches!(error, StoreError::HeightNotRetained { oldest: 4, latest: 5, .. });
        assert!(refused(store.root_at(height).unwrap_err()), "height {height}");
        assert!(refused(store.prove(&probe, Some(height)).unwrap_err()), "height {height}");
    }
    for height in 4..=5u8 {
        let (proof, value) = store.prove_value(&probe, Some(u64::from(height))).unwrap();
        assert_eq!(value, Some(B256::with_last_byte(height).to_vec()));
        kv_core::verify(store.root_at(u64::from(height)).unwrap(), &probe, value.as_deref(), &proof).unwrap();
    }
    // Later commits keep what the larger window allows from now on.
    for _ in 0..3 {
        store.commit(&store.begin()).unwrap();
    }
    assert_eq!(store.oldest_provable(), 4);
    store.prove(&probe, Some(4)).unwrap();
}

/// Labels written with a commit land in its batch: both or neither, across a failed commit too.
#[test]
fn labels_commit_atomically_with_the_state() {
    let store = common::memory_store(4);
    let mut overlay = store.begin();
    overlay.set(&word_key(1, 1), B256::with_last_byte(1).as_slice()).unwrap();
    let info = store
        .commit_with_labels(&overlay, |info| {
            vec![(format!("chain/root/{}", info.height), Some(info.root.to_vec())), ("chain/absent".to_owned(), None)]
        })
        .unwrap();
    assert_eq!(store.label("chain/root/1").unwrap(), Some(info.root.to_vec()));
    store.write_labels(&[("a".into(), Some(vec![1])), ("b".into(), Some(vec![2]))]).unwrap();
    store.write_labels(&[("a".into(), None)]).unwrap();
    assert_eq!((store.label("a").unwrap(), store.label("b").unwrap()), (None, Some(vec![2])));
    // A commit that fails writes none of its labels.
    let stale = store.begin();
    store.commit(&store.begin()).unwrap();
    let refused = store.commit_with_labels(&stale, |_| vec![("chain/late".to_owned(), Some(vec![1]))]);
    assert!(matches!(refused, Err(StoreError::StaleOverlay { .. })));
    assert_eq!(store.label("chain/late").unwrap(), None);
}
