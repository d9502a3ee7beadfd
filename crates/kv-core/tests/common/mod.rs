//! Helpers shared by kv-core's integration tests: key strategies and store factories.
//! Each test binary uses a different subset of them.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failed unwrap is a failed test.

use alloy_primitives::{Address, B256, keccak256};
use kv_core::key::code_key;
use kv_core::{Identity, Namespace, Store, StoreConfig};
use proptest::prelude::*;

/// A small pool of namespaces, so that generated keys collide often enough to exercise updates,
/// deletes and shared sub-tries.
pub(crate) fn namespace_strategy() -> impl Strategy<Value = Namespace> {
    (0u8..6, 0u8..3).prop_map(|(id, engine)| {
        let identity = Identity([id; 20]);
        match engine {
            0 => Namespace::wasm(identity),
            _ => Namespace::evm(Address::from(identity.0)),
        }
    })
}

/// A valid encoded key with a valid value for its layout.
pub(crate) fn entry_strategy() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (namespace_strategy(), 0u8..40, 1u64..u64::MAX).prop_map(|(namespace, slot, value)| match namespace.engine() {
        kv_core::Engine::Wasm => (namespace.slot_key(u64::from(slot)).to_vec(), value.to_be_bytes().to_vec()),
        _ => {
            let word = B256::left_padding_from(&[slot]);
            (namespace.word_key(&word.0).to_vec(), B256::left_padding_from(&value.to_be_bytes()).to_vec())
        }
    })
}

/// A code blob under its key, from a small pool of blobs (so the same blob is written again) of up
/// to a few kilobytes.
pub(crate) fn code_entry_strategy() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (1u8..8, prop::sample::select(vec![1usize, 2, 33, 700, 4096])).prop_map(|(seed, len)| {
        let code: Vec<u8> = (0..len).map(|index| seed.wrapping_mul(index.to_le_bytes()[0] | 1)).collect();
        (code_key(&keccak256(&code)).to_vec(), code)
    })
}

pub(crate) fn memory_store(retained: u64) -> Store {
    Store::in_memory_with(StoreConfig { retained_roots: retained })
}

pub(crate) fn redb_store(dir: &tempfile::TempDir, retained: u64) -> Store {
    Store::open_redb(dir.path().join("state.redb"), StoreConfig { retained_roots: retained }).unwrap()
}
