//! Proof encoding and verification never panic on untrusted input: garbage, truncations and
//! mutations of valid proofs all give a typed error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use alloy_primitives::{B256, Bytes, keccak256};
use alloy_trie::TrieAccount;
use kv_core::{Identity, KeyLayout, KeyProof, Namespace, NamespaceProof, ProofError, Store, verify, verify_namespace};
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
    assert_eq!(KeyProof::decode(&[1, 1, 0, 0]), Err(ProofError::UnsupportedVersion(1)));
    assert_eq!(KeyProof::decode(&[2, 2, 0, 0]), Err(ProofError::WrongKind(2)));
    assert_eq!(KeyProof::decode(&[2, 1, 0, 7]), Err(ProofError::InvalidFlag(7)));
    assert_eq!(KeyProof::decode(&[2, 1, 66]), Err(ProofError::TooManyNodes(66)));
    assert_eq!(KeyProof::decode(&[2, 1, 1, 0, 0]), Err(ProofError::NodeLength(0)));
    assert!(matches!(KeyProof::decode(&[2, 1, 0, 1, 0]), Err(ProofError::MalformedAccount(_))));
    assert!(matches!(KeyProof::decode(&[2, 1, 0, 1, 3, 0xc2, 0x80, 0x80]), Err(ProofError::MalformedAccount(_))));
}

#[test]
fn proofs_for_invalid_keys_are_rejected() {
    let (store, _) = populated();
    let proof = KeyProof { account_proof: vec![], account: None, storage_proof: vec![] };
    assert!(matches!(verify(store.root(), &[0x09; 30], None, &proof), Err(ProofError::InvalidKey(_))));
    assert!(store.prove(&[0x01; 5], None).is_err());
}

/// A claimed EVM storage word longer than 32 bytes is an invalid value, not a panic: the
/// verifier used to build its leaf (`U256::from_be_slice`, which panics past 32 bytes) before
/// checking its length, so a crafted proof file crashed `xstate verify`. Found by the
/// `proof_file` fuzz target (`crates/fuzz/corpus/proof_file`).
#[test]
fn an_overlong_storage_word_is_an_invalid_value() {
    let (store, entries) = populated();
    let (key, _) = entries
        .iter()
        .find(|(key, _)| KeyLayout::of(key) == Ok(KeyLayout::EvmStorage))
        .expect("the populated state has EVM storage");
    let proof = store.prove(key, None).unwrap();
    for len in [0, 31, 33, 64] {
        let claimed = vec![0x5a; len];
        assert!(
            matches!(verify(store.root(), key, Some(&claimed), &proof), Err(ProofError::InvalidValue(_))),
            "a {len}-byte word"
        );
    }
    assert_eq!(kv_core::commitment::storage_leaf(KeyLayout::EvmStorage, &[1; 33]), None);
    assert!(kv_core::commitment::storage_leaf(KeyLayout::EvmStorage, &[1; 32]).is_some());
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
    let proof = NamespaceProof { account_proof: vec![extension_encoded.into(), leaf_encoded.into()], account: None };
    let namespace = kv_core::Namespace::wasm(kv_core::Identity([1; 20]));
    assert_eq!(kv_core::verify_namespace(root, &namespace, None, &proof), Err(ProofError::PathTooLong));
}

/// One node of a generated proof path, before it is chained to the next by hash.
#[derive(Clone, Debug)]
enum NodeSpec {
    /// A branch with random children; the next node hangs at the key's nibble when `follow`.
    Branch { mask: u16, follow: bool, nibble: u8 },
    /// An extension of `len` nibbles (up to 80, beyond what one node may hold), along the key
    /// when `follow`, random otherwise.
    Extension { len: usize, follow: bool },
    /// A leaf of `len` nibbles, or of exactly what remains of the 64-nibble key when `None`.
    Leaf { len: Option<usize>, follow: bool, value: LeafSpec },
    /// Bytes that are probably no trie node at all.
    Garbage(Vec<u8>),
}

/// What a generated leaf holds.
#[derive(Clone, Debug)]
enum LeafSpec {
    /// The leaf the verifier is asked about.
    Claimed,
    /// Any bytes.
    Other(Vec<u8>),
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    let follow = prop::bool::weighted(0.9);
    let len = prop_oneof![4 => 1usize..16, 1 => 1usize..=80];
    // Garbage is rare: the shape check decodes every node first, so one garbage node stops the
    // verifier before the walk.
    prop_oneof![
        8 => (any::<u16>(), follow, 0u8..16)
            .prop_map(|(mask, follow, nibble)| NodeSpec::Branch { mask, follow, nibble }),
        6 => (len.clone(), follow).prop_map(|(len, follow)| NodeSpec::Extension { len, follow }),
        4 => (prop::option::weighted(0.7, len.prop_map(|len| len - 1)), follow, prop_oneof![
            3 => Just(LeafSpec::Claimed),
            1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(LeafSpec::Other),
        ])
            .prop_map(|(len, follow, value)| NodeSpec::Leaf { len, follow, value }),
        1 => prop::collection::vec(any::<u8>(), 1..80).prop_map(NodeSpec::Garbage),
    ]
}

/// RLP of a byte string.
fn rlp_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    alloy_rlp::Encodable::encode(&bytes, &mut out);
    out
}

/// RLP of a list of already encoded items.
fn rlp_list(items: &[Vec<u8>]) -> Vec<u8> {
    let payload: Vec<u8> = items.concat();
    let mut out = Vec::new();
    alloy_rlp::Header { list: true, payload_length: payload.len() }.encode(&mut out);
    out.extend_from_slice(&payload);
    out
}

/// Ethereum's hex-prefix encoding of a path, by hand, so that paths longer than 64 nibbles (which
/// alloy-trie's `Nibbles` cannot hold) can be encoded too.
fn hex_prefix(path: &[u8], leaf: bool) -> Vec<u8> {
    let flag = if leaf { 0x20 } else { 0x00 };
    let (mut out, rest) = match path.split_first() {
        Some((first, rest)) if path.len() % 2 == 1 => (vec![flag | 0x10 | first], rest),
        _ => (vec![flag], path),
    };
    out.extend(rest.chunks(2).map(|pair| (pair[0] << 4) | pair[1]));
    out
}

/// The nodes of `specs` chained by hash along `key` (nibbles): each node's RLP, with every
/// parent referring to keccak256 of the next node's RLP, so that the verifier gets past each hash
/// comparison and walks the paths. Returns the nodes and whether they are a well-formed proof of
/// `claimed` (`expect_ok`).
fn chain(specs: &[NodeSpec], key: &[u8], noise: &[u8], claimed: &[u8]) -> (Vec<Bytes>, bool) {
    // The nibble at `depth` of the key, or noise once the key is exhausted.
    let along = |depth: usize, offset: usize| key.get(depth).copied().unwrap_or(noise[(depth + offset) % noise.len()]);
    let random = |depth: usize, offset: usize| noise[(depth * 7 + offset) % noise.len()];
    // Top-down: each node's shape, given the depth it sits at.
    enum Shape {
        Branch(u16, u8),
        Extension(Vec<u8>),
        Leaf(Vec<u8>, Vec<u8>),
        Garbage(Vec<u8>),
    }
    let mut depth = 0;
    let mut well_formed = true;
    let mut shapes = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        let last = index + 1 == specs.len();
        shapes.push(match spec {
            NodeSpec::Branch { mask, follow, nibble } => {
                let next = if *follow { along(depth, index) } else { *nibble };
                well_formed &= *follow && !last && depth < 64;
                depth += 1;
                Shape::Branch(mask | (1 << next), next)
            }
            NodeSpec::Extension { len, follow } => {
                let path: Vec<u8> =
                    (depth..depth + len).map(|at| if *follow { along(at, index) } else { random(at, index) }).collect();
                well_formed &= *follow && !last && depth + len < 64;
                depth += len;
                Shape::Extension(path)
            }
            NodeSpec::Leaf { len, follow, value } => {
                let len = len.unwrap_or(64usize.saturating_sub(depth));
                let path: Vec<u8> =
                    (depth..depth + len).map(|at| if *follow { along(at, index) } else { random(at, index) }).collect();
                let value = match value {
                    LeafSpec::Claimed => claimed.to_vec(),
                    LeafSpec::Other(bytes) => bytes.clone(),
                };
                well_formed &= *follow && last && depth + len == 64 && value == claimed;
                depth += len;
                Shape::Leaf(path, value)
            }
            NodeSpec::Garbage(bytes) => {
                well_formed = false;
                Shape::Garbage(bytes.clone())
            }
        });
    }
    // Bottom-up: encode each node with the hash of the one after it (a random hash for the last).
    let mut next_hash = keccak256(noise);
    let mut nodes = Vec::with_capacity(shapes.len());
    for (index, shape) in shapes.iter().enumerate().rev() {
        let encoded = match shape {
            Shape::Branch(mask, next) => {
                let mut items: Vec<Vec<u8>> = (0u8..16)
                    .map(|nibble| {
                        if nibble == *next {
                            rlp_string(next_hash.as_slice())
                        } else if mask & (1 << nibble) != 0 {
                            rlp_string(keccak256([nibble, u8::try_from(index).unwrap()]).as_slice())
                        } else {
                            rlp_string(&[])
                        }
                    })
                    .collect();
                items.push(rlp_string(&[]));
                rlp_list(&items)
            }
            Shape::Extension(path) => {
                rlp_list(&[rlp_string(&hex_prefix(path, false)), rlp_string(next_hash.as_slice())])
            }
            Shape::Leaf(path, value) => rlp_list(&[rlp_string(&hex_prefix(path, true)), rlp_string(value)]),
            Shape::Garbage(bytes) => bytes.clone(),
        };
        // Ethereum embeds a child shorter than 32 bytes in its parent; referenced by hash, as
        // this generator references every child, it is no proof a standard verifier accepts.
        well_formed &= index == 0 || encoded.len() >= 32;
        next_hash = keccak256(&encoded);
        nodes.push(Bytes::from(encoded));
    }
    nodes.reverse();
    (nodes, well_formed)
}

/// The account leaf of a WASM module whose storage root is `subroot`.
fn module_account(subroot: B256) -> TrieAccount {
    TrieAccount { storage_root: subroot, ..TrieAccount::default() }
}

/// The RLP of an account leaf.
fn account_rlp(account: &TrieAccount) -> Vec<u8> {
    alloy_rlp::encode(account)
}

/// A one-leaf account trie holding `namespace` with storage root `subroot`: a valid account
/// half, so that the verifier goes on to the storage half.
fn one_leaf_accounts(namespace: &Namespace, subroot: B256) -> (B256, Vec<Bytes>) {
    let path: Vec<u8> = nibbles(keccak256(namespace.prefix()).as_slice());
    let leaf = rlp_list(&[rlp_string(&hex_prefix(&path, true)), rlp_string(&account_rlp(&module_account(subroot)))]);
    (keccak256(&leaf), vec![Bytes::from(leaf)])
}

fn nibbles(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().flat_map(|byte| [byte >> 4, byte & 0x0f]).collect()
}

/// The generator itself produces a proof the verifier accepts when every node follows the key:
/// a branch, an extension and a leaf that ends at nibble 64, in both halves.
#[test]
fn chained_nodes_along_the_key_verify() {
    let namespace = Namespace::wasm(Identity([1; 20]));
    let key = namespace.slot_key(1);
    let value = [1u8];
    let specs = [
        NodeSpec::Branch { mask: 0b1001, follow: true, nibble: 0 },
        NodeSpec::Extension { len: 5, follow: true },
        NodeSpec::Branch { mask: 0xffff, follow: true, nibble: 0 },
        NodeSpec::Leaf { len: None, follow: true, value: LeafSpec::Claimed },
    ];
    let entry = nibbles(keccak256(&key[kv_core::key::PREFIX_LEN..]).as_slice());
    let (subtree, well_formed) = chain(&specs, &entry, &[3, 1, 4], &rlp_string(&value));
    assert!(well_formed);
    let subroot = keccak256(&subtree[0]);
    let (root, account_proof) = one_leaf_accounts(&namespace, subroot);
    let account = Some(module_account(subroot));
    let proof = KeyProof { account_proof, account, storage_proof: subtree };
    verify(root, &key, Some(&value), &proof).unwrap();
    assert!(verify(root, &key, Some(&[2]), &proof).is_err());

    let account_key = nibbles(keccak256(namespace.prefix()).as_slice());
    let (account_proof, well_formed) = chain(&specs, &account_key, &[2, 7], &account_rlp(&module_account(subroot)));
    assert!(well_formed);
    let root = keccak256(&account_proof[0]);
    verify_namespace(root, &namespace, Some(subroot), &NamespaceProof { account_proof, account }).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random bytes never panic the proof decoders, nor the verifier on whatever decodes; the
    /// root is the first global node's hash, so the verifier gets past its first comparison.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = KeyProof::decode(&bytes);
        let _ = NamespaceProof::decode(&bytes);
        let mut framed = vec![2, 1];
        framed.extend_from_slice(&bytes);
        if let Ok(proof) = KeyProof::decode(&framed) {
            let key = Namespace::wasm(Identity([1; 20])).slot_key(1);
            let root = proof.account_proof.first().map_or(B256::ZERO, keccak256);
            let _ = verify(root, &key, Some(&[1]), &proof);
            let _ = verify(root, &key, None, &proof);
        }
    }

    /// Structured trie nodes chained by hash (branches with random masks, extensions and leaves
    /// with random paths of up to 80 nibbles, along the key or not, and garbage) reach
    /// alloy-trie's path walk in the global half and, behind a valid global half, in the sub-trie
    /// half. The verifier returns a result, never panics, and accepts exactly-formed proofs.
    #[test]
    fn chained_nodes_never_panic(
        specs in prop::collection::vec(node_spec(), 1..10),
        noise in prop::collection::vec(0u8..16, 1..90),
        slot in any::<u64>(),
        value in prop::collection::vec(any::<u8>(), 1..40),
    ) {
        let namespace = Namespace::wasm(Identity([1; 20]));
        let key = namespace.slot_key(slot);
        let claimed = rlp_string(&value);

        // The storage half, behind a valid account half.
        let entry = nibbles(keccak256(&key[kv_core::key::PREFIX_LEN..]).as_slice());
        let (subtree, well_formed) = chain(&specs, &entry, &noise, &claimed);
        let subroot = keccak256(&subtree[0]);
        let (root, account_proof) = one_leaf_accounts(&namespace, subroot);
        let account = Some(module_account(subroot));
        let namespace_proof = NamespaceProof { account_proof: account_proof.clone(), account };
        verify_namespace(root, &namespace, Some(subroot), &namespace_proof).unwrap();
        let proof = KeyProof { account_proof, account, storage_proof: subtree };
        let shown = verify(root, &key, Some(&value), &proof);
        if well_formed {
            prop_assert!(shown.is_ok(), "{shown:?}");
        }
        let _ = verify(root, &key, None, &proof);

        // The account half.
        let account_key = nibbles(keccak256(namespace.prefix()).as_slice());
        let (account_proof, well_formed) = chain(&specs, &account_key, &noise, &account_rlp(&module_account(subroot)));
        let root = keccak256(&account_proof[0]);
        let namespace_proof = NamespaceProof { account_proof: account_proof.clone(), account };
        let shown = verify_namespace(root, &namespace, Some(subroot), &namespace_proof);
        if well_formed {
            prop_assert!(shown.is_ok(), "{shown:?}");
        }
        let _ = verify_namespace(root, &namespace, None, &namespace_proof);
        let proof = KeyProof { account_proof, account, storage_proof: proof.storage_proof };
        let _ = verify(root, &key, Some(&value), &proof);
        let _ = verify(root, &key, None, &KeyProof { account: None, ..proof.clone() });
    }
}
