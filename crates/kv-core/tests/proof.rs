//! Proof encoding and verification never panic on untrusted input: garbage, truncations and
//! mutations of valid proofs all give a typed error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use kv_core::{KeyProof, NamespaceProof, ProofError, Store, verify};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn populated() -> (Store, Vec<kv_core::backend::Entry>) {
    let store = Store::in_memory();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let entries = prop::collection::vec(common::entry_strategy(), 150).new_tree(&mut runner).unwrap().current();
    let mut overlay = store.begin();
    for (key, value) in &entries {
        overlay.set(key, value).unwrap();
    }
    store.commit(&overlay).unwrap();
    (store, entries)
}

#[test]
fn every_truncation_and_byte_flip_of_a_proof_is_rejected() {
    let (store, entries) = populated();
    let root = store.root();
    let (key, _) = &entries[0];
    let value = store.get(key).unwrap().unwrap();
    let encoded = store.prove(key, None).unwrap().encode();
    for len in 0..encoded.len() {
        assert!(KeyProof::decode(&encoded[..len]).is_err(), "truncated to {len}");
    }
    let mut longer = encoded.clone();
    longer.push(0);
    assert_eq!(KeyProof::decode(&longer), Err(ProofError::TrailingBytes(1)));
    for index in 0..encoded.len() {
        for bit in [0x01, 0x80] {
            let mut mutated = encoded.clone();
            mutated[index] ^= bit;
            if let Ok(proof) = KeyProof::decode(&mutated) {
                assert!(verify(root, key, Some(&value), &proof).is_err(), "flip at {index}");
            }
        }
    }
    assert_eq!(KeyProof::decode(&[2, 1, 0, 0]), Err(ProofError::UnsupportedVersion(2)));
    assert_eq!(KeyProof::decode(&[1, 2, 0, 0]), Err(ProofError::WrongKind(2)));
    assert_eq!(KeyProof::decode(&[1, 1, 0, 7]), Err(ProofError::InvalidFlag(7)));
    assert_eq!(KeyProof::decode(&[1, 1, 66]), Err(ProofError::TooManyNodes(66)));
    assert_eq!(KeyProof::decode(&[1, 1, 1, 0, 0]), Err(ProofError::NodeLength(0)));
}

#[test]
fn proofs_for_invalid_keys_are_rejected() {
    let (store, _) = populated();
    let proof = KeyProof { global: vec![], subtree: None };
    assert!(matches!(verify(store.root(), &[0x09; 30], None, &proof), Err(ProofError::InvalidKey(_))));
    assert!(store.prove(&[0x01; 5], None).is_err());
}

/// A path of valid-looking nodes longer than 64 nibbles must be refused before alloy-trie's
/// verifier walks it (it would panic on the overlong path).
#[test]
fn overlong_paths_are_refused() {
    use alloy_trie::Nibbles;
    use alloy_trie::nodes::{ExtensionNode, LeafNode, RlpNode};
    let leaf = LeafNode::new(Nibbles::unpack([0x11; 32]), vec![7; 32]);
    let mut leaf_rlp = Vec::new();
    leaf.as_ref().rlp(&mut leaf_rlp);
    let mut leaf_encoded = Vec::new();
    alloy_rlp::Encodable::encode(&leaf, &mut leaf_encoded);
    let extension =
        ExtensionNode::new(Nibbles::unpack([0x22; 32]), RlpNode::word_rlp(&alloy_primitives::keccak256(&leaf_encoded)));
    let mut extension_encoded = Vec::new();
    alloy_rlp::Encodable::encode(&extension, &mut extension_encoded);
    let root = alloy_primitives::keccak256(&extension_encoded);
    let proof = NamespaceProof { global: vec![extension_encoded.into(), leaf_encoded.into()] };
    let namespace = kv_core::Namespace::wasm(kv_core::Identity([1; 20]));
    assert_eq!(kv_core::verify_namespace(root, &namespace, None, &proof), Err(ProofError::PathTooLong));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = KeyProof::decode(&bytes);
        let _ = NamespaceProof::decode(&bytes);
        let mut framed = vec![1, 1];
        framed.extend_from_slice(&bytes);
        if let Ok(proof) = KeyProof::decode(&framed) {
            let key = kv_core::Namespace::wasm(kv_core::Identity([1; 20])).slot_key(1);
            let _ = verify(alloy_primitives::B256::ZERO, &key, Some(&[1]), &proof);
        }
    }

    /// Random node lists, including real RLP lists, never panic the verifier.
    #[test]
    fn arbitrary_nodes_never_panic(nodes in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..100), 0..8), root in any::<[u8; 32]>()) {
        let proof = KeyProof {
            global: nodes.iter().map(|n| alloy_primitives::Bytes::from(n.clone())).collect(),
            subtree: Some(kv_core::SubtreeProof { root: root.into(), nodes: nodes.into_iter().map(Into::into).collect() }),
        };
        let key = kv_core::Namespace::wasm(kv_core::Identity([1; 20])).slot_key(1);
        let _ = verify(root.into(), &key, Some(&[1]), &proof);
        let _ = verify(root.into(), &key, None, &proof);
    }
}
