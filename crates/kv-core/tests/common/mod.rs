//! Helpers shared by kv-core's integration tests: key strategies and store factories.
//! Each test binary uses a different subset of them.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failed unwrap is a failed test.

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_trie::KECCAK_EMPTY;
use kv_core::key::code_key;
use kv_core::{AccountRecord, Identity, ModuleRecord, Namespace, Store, StoreConfig};
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

/// A valid encoded key with a valid value for its layout: WASM u64 slots and EVM words from small
/// pools, account and module records (never an empty account's, which the trie cannot tell from
/// no record), and slots whose hashed trie keys share at least 8 leading
/// nibbles with another slot's, holding one-byte values, so that their leaves are shorter than 32
/// bytes and are embedded in their parent branch as Ethereum embeds them.
pub(crate) fn entry_strategy() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let plain =
        (namespace_strategy(), 0u8..40, 1u64..u64::MAX).prop_map(|(namespace, slot, value)| match namespace.engine() {
            kv_core::Engine::Wasm => (namespace.slot_key(u64::from(slot)).to_vec(), value.to_be_bytes().to_vec()),
            _ => {
                let word = B256::left_padding_from(&[slot]);
                (namespace.word_key(&word.0).to_vec(), B256::left_padding_from(&value.to_be_bytes()).to_vec())
            }
        });
    let record =
        (namespace_strategy(), 0u64..3, 1u64..1_000_000, 0u8..3).prop_map(|(namespace, nonce, balance, code)| {
            let code_hash = if code == 0 { KECCAK_EMPTY } else { keccak256([code]) };
            let value = match namespace.engine() {
                kv_core::Engine::Wasm => {
                    let name = kv_core::ModuleName::new("module").unwrap();
                    ModuleRecord { code_hash, name, version: u32::try_from(nonce).unwrap() }.encode()
                }
                _ => AccountRecord { nonce, balance: U256::from(balance), code_hash }.encode().to_vec(),
            };
            (namespace.record_key().to_vec(), value)
        });
    let embedded =
        (namespace_strategy(), any::<prop::sample::Index>(), 1u8..=255).prop_map(|(namespace, pick, byte)| {
            match namespace.engine() {
                kv_core::Engine::Wasm => {
                    let slots = &colliding_slots().wasm;
                    (namespace.slot_key(slots[pick.index(slots.len())]).to_vec(), vec![byte])
                }
                _ => {
                    let slots = &colliding_slots().evm;
                    let word = B256::left_padding_from(&slots[pick.index(slots.len())].to_be_bytes());
                    (namespace.word_key(&word.0).to_vec(), B256::with_last_byte(byte).to_vec())
                }
            }
        });
    prop_oneof![6 => plain, 1 => record, 3 => embedded]
}

/// Slot numbers whose hashed storage-trie keys come in pairs sharing their first 8 nibbles.
pub(crate) struct CollidingSlots {
    /// EVM slots (as 32-byte words of the number): `keccak256(word)` collides.
    pub(crate) evm: Vec<u64>,
    /// WASM u64 slots: `keccak256(0x01 | slot)` collides.
    pub(crate) wasm: Vec<u64>,
}

/// Found once per test binary by a birthday search over 2^19 slots (a few tenths of a second).
pub(crate) fn colliding_slots() -> &'static CollidingSlots {
    static SLOTS: std::sync::OnceLock<CollidingSlots> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let search = |hash: &dyn Fn(u64) -> B256| {
            let mut seen = std::collections::HashMap::new();
            let mut found = Vec::new();
            for slot in 0..(1u64 << 19) {
                let prefix: [u8; 4] = hash(slot)[..4].try_into().unwrap();
                if let Some(other) = seen.insert(prefix, slot) {
                    found.extend([other, slot]);
                    if found.len() >= 16 {
                        break;
                    }
                }
            }
            assert!(found.len() >= 4, "the birthday search found too few colliding slots");
            found
        };
        let evm = search(&|slot| keccak256(B256::left_padding_from(&slot.to_be_bytes())));
        let wasm = search(&|slot| {
            let mut engine_key = [0u8; 9];
            engine_key[0] = 0x01;
            engine_key[1..].copy_from_slice(&slot.to_be_bytes());
            keccak256(engine_key)
        });
        CollidingSlots { evm, wasm }
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
    // Rewindable, so that every test's commits also write (and are checked with) undo records.
    Store::in_memory_with(StoreConfig { retained_roots: retained, rewindable: true })
}

pub(crate) fn redb_store(dir: &tempfile::TempDir, retained: u64) -> Store {
    Store::open_redb(dir.path().join("state.redb"), StoreConfig { retained_roots: retained, rewindable: true }).unwrap()
}
