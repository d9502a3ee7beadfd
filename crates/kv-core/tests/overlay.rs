//! The overlay against a plain model: a `BTreeMap` of the current contents and a stack of copies
//! for the open checkpoints. Reads, scans, nested reverts and commits must all agree.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{code_entry_strategy, entry_strategy, namespace_strategy};
use kv_core::{Namespace, Refusal, StateError, StateKey, Store};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
enum Op {
    Set(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    RemoveCode(Vec<u8>),
    Wipe(Namespace),
    Checkpoint,
    Revert,
    Release,
    Commit,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => entry_strategy().prop_map(|(k, v)| Op::Set(k, v)),
        2 => code_entry_strategy().prop_map(|(k, v)| Op::Set(k, v)),
        3 => entry_strategy().prop_map(|(k, _)| Op::Remove(k)),
        1 => code_entry_strategy().prop_map(|(k, _)| Op::RemoveCode(k)),
        1 => namespace_strategy().prop_map(Op::Wipe),
        3 => Just(Op::Checkpoint),
        2 => Just(Op::Revert),
        2 => Just(Op::Release),
        1 => Just(Op::Commit),
    ]
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn assert_matches(overlay: &kv_core::Overlay, model: &Model, probes: &[Vec<u8>]) {
    for key in model.keys().chain(probes) {
        assert_eq!(overlay.get(key).unwrap(), model.get(key).cloned(), "key {key:02x?}");
    }
    let all: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(overlay.scan_prefix(&[]).unwrap(), all);
    for namespace in probes.iter().filter_map(|key| Namespace::from_prefix(key).ok()) {
        let expected: Vec<_> = all.iter().filter(|(k, _)| k.starts_with(namespace.prefix())).cloned().collect();
        assert_eq!(overlay.scan_prefix(namespace.prefix()).unwrap(), expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn overlay_matches_model(ops in prop::collection::vec(op_strategy(), 1..150)) {
        let store = Store::in_memory();
        let mut overlay = store.begin();
        let mut model = Model::new();
        let mut saved: Vec<Model> = Vec::new();
        let mut checkpoints = Vec::new();
        let mut probes = Vec::new();
        for op in ops {
            match op {
                Op::Set(key, value) => {
                    overlay.set(&key, &value).unwrap();
                    model.insert(key.clone(), value);
                    probes.push(key);
                }
                Op::Remove(key) => {
                    overlay.remove(&key).unwrap();
                    model.remove(&key);
                    probes.push(key);
                }
                Op::RemoveCode(key) => {
                    // Code blobs are never deleted: the overlay refuses and stays as it was.
                    let refused = matches!(overlay.remove(&key), Err(StateError::Refused(Refusal::CodeRemoval)));
                    prop_assert!(refused);
                    probes.push(key);
                }
                Op::Wipe(namespace) => {
                    overlay.wipe(&namespace).unwrap();
                    model.retain(|key, _| !key.starts_with(namespace.prefix()));
                }
                Op::Checkpoint => {
                    checkpoints.push(overlay.checkpoint());
                    saved.push(model.clone());
                }
                Op::Revert => {
                    if let Some(checkpoint) = checkpoints.pop() {
                        overlay.revert(checkpoint).unwrap();
                        model = saved.pop().unwrap();
                    }
                }
                Op::Release => {
                    if let Some(checkpoint) = checkpoints.pop() {
                        overlay.release(checkpoint).unwrap();
                        saved.pop();
                    }
                }
                Op::Commit => {
                    if !checkpoints.is_empty() {
                        prop_assert!(matches!(store.commit(&overlay), Err(kv_core::StoreError::OpenCheckpoint)));
                        while let Some(checkpoint) = checkpoints.pop() {
                            overlay.release(checkpoint).unwrap();
                            saved.pop();
                        }
                    }
                    let info = store.commit(&overlay).unwrap();
                    prop_assert_eq!(info.root, kv_core::root_from_scratch(model.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))));
                    // A committed overlay is stale: committing it again is refused.
                    let stale = store.commit(&overlay).unwrap_err();
                    let is_stale = matches!(stale, kv_core::StoreError::StaleOverlay { .. });
                    prop_assert!(is_stale);
                    overlay = store.begin();
                }
            }
            assert_matches(&overlay, &model, &probes);
        }
    }
}

/// Checkpoints must be closed innermost first; misuse is an error, not corruption.
#[test]
fn checkpoints_close_innermost_first() {
    let store = Store::in_memory();
    let mut overlay = store.begin();
    let key = Namespace::wasm(kv_core::Identity([1; 20])).slot_key(1);
    let outer = overlay.checkpoint();
    overlay.set_u64(&key, 5).unwrap();
    let inner = overlay.checkpoint();
    overlay.set_u64(&key, 6).unwrap();
    assert!(matches!(overlay.revert(outer), Err(StateError::Refused(Refusal::CheckpointOrder))));
    assert_eq!(overlay.get_u64(&key).unwrap(), 6);
    overlay.revert(inner).unwrap();
    assert_eq!(overlay.get_u64(&key).unwrap(), 5);
}

/// Invalid writes are refused with a typed error and leave the overlay untouched.
#[test]
fn invalid_writes_are_refused_without_partial_state() {
    let store = Store::in_memory();
    let mut overlay = store.begin();
    let wasm = Namespace::wasm(kv_core::Identity([1; 20]));
    let evm = Namespace::evm(alloy_primitives::Address::repeat_byte(2));
    let mut buffer = [0u8; kv_core::key::MAX_KEY_LEN];
    let user_key = wasm.user_key(b"k", &mut buffer).unwrap().to_vec();
    let word = evm.word_key(&[0; 32]);
    let account = StateKey::EvmAccount(alloy_primitives::Address::repeat_byte(2)).encode().unwrap();
    let code = StateKey::Code(alloy_primitives::B256::ZERO).encode().unwrap();
    let cases: Vec<(Vec<u8>, Vec<u8>, &str)> = vec![
        (vec![0x07; 30], vec![1], "unknown engine"),
        (user_key.clone(), vec![], "never empty"),
        (user_key.clone(), vec![1; kv_core::key::MAX_USER_VALUE_LEN + 1], "16384"),
        (word.to_vec(), vec![0; 32], "zero storage word"),
        (word.to_vec(), vec![1; 31], "32 bytes"),
        (account, vec![1; 71], "account"),
        (code, vec![0x60], "hash"),
        (wasm.record_key().to_vec(), vec![9, 9], "module"),
    ];
    for (key, value, message) in cases {
        let error = overlay.set(&key, &value).unwrap_err();
        assert!(error.to_string().contains(message), "{error} should mention {message}");
    }
    assert!(overlay.is_empty());
    let mut long_key = [0u8; kv_core::key::MAX_KEY_LEN];
    assert!(wasm.user_key(&[1; kv_core::key::MAX_USER_KEY_LEN + 1], &mut long_key).is_err());
    // A u64 slot read of a value that is not 8 bytes is an error, not a truncation.
    let slot = wasm.slot_key(3);
    overlay.set(&slot, &[1, 2, 3]).unwrap();
    assert!(matches!(overlay.get_u64(&slot), Err(StateError::Refused(Refusal::SlotValueLength(3)))));
}

/// Code blobs are never deleted: removing a code key and wiping the runtime namespace are refused
/// with typed errors, before and after the blob is committed, and leave every blob in place.
#[test]
fn code_blobs_are_never_deleted() {
    let store = Store::in_memory();
    let code = [0x60, 0x00];
    let key = kv_core::key::code_key(&alloy_primitives::keccak256(code));
    let pending = [0x60, 0x01];
    let pending_key = kv_core::key::code_key(&alloy_primitives::keccak256(pending));
    let mut overlay = store.begin();
    overlay.set(&key, &code).unwrap();
    store.commit(&overlay).unwrap();

    let mut overlay = store.begin();
    overlay.set(&pending_key, &pending).unwrap();
    let checkpoint = overlay.checkpoint();
    for blob in [&key, &pending_key] {
        assert!(matches!(overlay.remove(blob), Err(StateError::Refused(Refusal::CodeRemoval))));
    }
    assert!(matches!(overlay.wipe(&Namespace::runtime()), Err(StateError::Refused(Refusal::RuntimeWipe))));
    overlay.release(checkpoint).unwrap();
    assert_eq!(overlay.get(&key).unwrap(), Some(code.to_vec()));
    assert_eq!(overlay.get(&pending_key).unwrap(), Some(pending.to_vec()));
    assert_eq!(overlay.scan_prefix(Namespace::runtime().prefix()).unwrap().len(), 2);
    store.commit(&overlay).unwrap();
    assert_eq!(store.get(&key).unwrap(), Some(code.to_vec()));
    assert_eq!(store.get(&pending_key).unwrap(), Some(pending.to_vec()));

    // Engine namespaces can still be wiped, and removing other keys still works.
    let evm = Namespace::evm(alloy_primitives::Address::repeat_byte(2));
    let word = evm.word_key(&[1; 32]);
    let mut overlay = store.begin();
    overlay.set(&word, &[1; 32]).unwrap();
    overlay.wipe(&evm).unwrap();
    assert_eq!(overlay.get(&word).unwrap(), None);
    overlay.set(&word, &[2; 32]).unwrap();
    overlay.remove(&word).unwrap();
    assert_eq!(overlay.get(&word).unwrap(), None);
}

/// `Overlay::changes` counts, per engine, every set, remove and wipe and every one of them a
/// revert undoes; reads and refused changes count nothing.
#[test]
fn changes_are_counted_per_engine_including_reverts() {
    let store = Store::in_memory();
    let mut overlay = store.begin();
    let wasm = Namespace::wasm(kv_core::Identity([1; 20]));
    let evm = Namespace::evm(alloy_primitives::Address::repeat_byte(2));
    let counts = |overlay: &kv_core::Overlay| {
        [kv_core::Engine::Runtime, kv_core::Engine::Wasm, kv_core::Engine::Evm].map(|engine| overlay.changes(engine))
    };
    assert_eq!(counts(&overlay), [0, 0, 0]);
    overlay.set_u64(&wasm.slot_key(1), 5).unwrap();
    overlay.remove(&wasm.slot_key(2)).unwrap();
    assert_eq!(counts(&overlay), [0, 2, 0]);

    let checkpoint = overlay.checkpoint();
    overlay.set(&evm.word_key(&[1; 32]), &[7; 32]).unwrap();
    overlay.wipe(&evm).unwrap();
    assert_eq!(counts(&overlay), [0, 2, 2]);
    overlay.revert(checkpoint).unwrap();
    assert_eq!(counts(&overlay), [0, 2, 4], "each undone change counts again");

    // Reads and refused changes leave every count as it is.
    overlay.get(&evm.word_key(&[1; 32])).unwrap();
    overlay.scan_prefix(evm.prefix()).unwrap();
    assert!(overlay.set(&evm.word_key(&[1; 32]), &[0; 32]).is_err());
    assert!(overlay.wipe(&Namespace::runtime()).is_err());
    let code = [0x60, 0x00];
    let code_key = kv_core::key::code_key(&alloy_primitives::keccak256(code));
    assert!(overlay.remove(&code_key).is_err());
    assert_eq!(counts(&overlay), [0, 2, 4]);
    overlay.set(&code_key, &code).unwrap();
    assert_eq!(counts(&overlay), [1, 2, 4]);
}
