//! Phase A, kv-core: the prefix budget on the `state_get` path and the costs of the state root.
//!
//! [`StateGet`] holds 100,000 u64 slots spread over 100 identities in one in-memory map type,
//! read four ways: by the engine-native 8-byte slot key alone (the store before the RFC), by the
//! full key built from a cached prefix, by the full key encoded from scratch each call, and
//! through the block overlay (the path a WASM `state_get` takes). [`RootState`] holds the
//! stores the root figures commit to.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Benchmark code: a failed unwrap is a failed run.

use crate::support::{Aligned, splitmix};
use alloy_primitives::{B256, keccak256};
use alloy_trie::{HashBuilder, Nibbles};
use kv_core::{
    Backend, Identity, MemoryBackend, Namespace, Overlay, StateKey, Store, StoreConfig, Table, WriteBatch, verify,
};
use std::hint::black_box;
use std::sync::Arc;

const IDENTITIES: u64 = 100;
const SLOTS_PER_IDENTITY: u64 = 1_000;
/// Reads per measured batch; every figure of this fixture is per batch, so ratios are per read.
pub const STATE_GET_READS: usize = 4_096;

/// Which of the two maps a [`StateGet`] fixture fills: building only the one a benchmark reads
/// halves its setup under valgrind.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Maps {
    /// The engine-native map, keyed by the 8-byte slot alone.
    Native,
    /// The shared map, keyed by the full 30-byte state key, and a store and overlay over it.
    Shared,
    /// Both, for the side-by-side wall-clock run.
    Both,
}

/// The `state_get` fixture: the same 100,000 entries keyed natively and by full state keys, and
/// 4,096 reads in a random order.
pub struct StateGet {
    native: MemoryBackend,
    shared: Arc<dyn Backend>,
    overlay: Option<Overlay>,
    identities: Vec<Identity>,
    handles: Vec<Namespace>,
    reads: Vec<(usize, u64)>,
    expected: u64,
}

fn identity(index: u64) -> Identity {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&index.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    bytes[12..].copy_from_slice(&index.to_be_bytes());
    Identity(bytes)
}

fn read_u64(backend: &dyn Backend, key: &[u8]) -> u64 {
    let mut value = 0;
    let _ = backend.read(Table::State, key, &mut |bytes| {
        value = bytes.try_into().map(u64::from_be_bytes).unwrap_or(0);
    });
    value
}

impl StateGet {
    /// Builds the fixture with the maps `maps` names.
    pub fn new(maps: Maps) -> Self {
        let mut seed = 7;
        // Slots are random u64s, unique across identities, so the native map keyed by slot alone
        // holds the same 100,000 entries as the shared map.
        let entries: Vec<(u64, u64)> = (0..IDENTITIES * SLOTS_PER_IDENTITY)
            .map(|index| (index / SLOTS_PER_IDENTITY, splitmix(&mut seed)))
            .collect();
        let native = MemoryBackend::new();
        let shared: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let mut native_batch = WriteBatch::new();
        let mut shared_batch = WriteBatch::new();
        for &(owner, slot) in &entries {
            let value = (slot | 1).to_be_bytes();
            if maps != Maps::Shared {
                native_batch.put(Table::State, slot.to_be_bytes(), value);
            }
            if maps != Maps::Native {
                shared_batch.put(Table::State, Namespace::wasm(identity(owner)).slot_key(slot), value);
            }
        }
        native.write(native_batch).unwrap();
        shared.write(shared_batch).unwrap();
        let overlay =
            (maps != Maps::Native).then(|| Store::open(Arc::clone(&shared), StoreConfig::default()).unwrap().begin());
        // Each engine instance holds its handle; the reads follow a random order.
        let identities: Vec<Identity> = (0..IDENTITIES).map(identity).collect();
        let handles: Vec<Namespace> = identities.iter().map(|&id| Namespace::wasm(id)).collect();
        let reads: Vec<(usize, u64)> = (0..STATE_GET_READS)
            .map(|_| {
                let (owner, slot) =
                    entries[usize::try_from(splitmix(&mut seed) % (IDENTITIES * SLOTS_PER_IDENTITY)).unwrap()];
                (usize::try_from(owner).unwrap(), slot)
            })
            .collect();
        let expected = reads.iter().fold(0u64, |sum, &(_, slot)| sum.wrapping_add(slot | 1));
        let fixture = Self { native, shared, overlay, identities, handles, reads, expected };
        // One untimed pass over the reads of every map built, so a measurement starts from warm
        // caches, as the wall clock's pairs do after their warm-up rounds. Without it, each side's
        // cache misses would depend on what its setup happened to touch last (the shared side also
        // opens a store), not on its keys.
        if maps != Maps::Shared {
            fixture.native();
        }
        if maps != Maps::Native {
            fixture.prefixed_cached();
            fixture.overlay_cached();
        }
        fixture
    }

    /// The fixture with the native map only.
    pub fn native_only() -> Self {
        Self::new(Maps::Native)
    }

    /// The fixture with the shared map only.
    pub fn shared_only() -> Self {
        Self::new(Maps::Shared)
    }

    fn check(&self, sum: u64) -> u64 {
        assert_eq!(sum, self.expected, "a read returned the wrong value");
        sum
    }

    /// 4,096 reads by the engine-native slot key.
    pub fn native(&self) -> u64 {
        let mut sum = 0u64;
        for &(_, slot) in &self.reads {
            let key = Aligned(black_box(slot).to_be_bytes());
            sum = sum.wrapping_add(read_u64(&self.native, &key.0));
        }
        self.check(sum)
    }

    /// 4,096 reads by the full key, built from the engine instance's cached prefix.
    pub fn prefixed_cached(&self) -> u64 {
        let mut sum = 0u64;
        for &(owner, slot) in &self.reads {
            let key = Aligned(self.handles[owner].slot_key(black_box(slot)));
            sum = sum.wrapping_add(read_u64(self.shared.as_ref(), &key.0));
        }
        self.check(sum)
    }

    /// 4,096 reads by the full key, encoded from the identity each call.
    pub fn prefixed_uncached(&self) -> u64 {
        let mut sum = 0u64;
        for &(owner, slot) in &self.reads {
            let key = StateKey::wasm_slot(self.identities[owner], black_box(slot)).encode().unwrap();
            sum = sum.wrapping_add(read_u64(self.shared.as_ref(), &key));
        }
        self.check(sum)
    }

    /// 4,096 reads through the block overlay, by the cached prefix: a WASM `state_get`'s path.
    pub fn overlay_cached(&self) -> u64 {
        let overlay = self.overlay.as_ref().expect("the fixture was built without the shared map");
        let mut sum = 0u64;
        for &(owner, slot) in &self.reads {
            let key = Aligned(self.handles[owner].slot_key(black_box(slot)));
            sum = sum.wrapping_add(overlay.get_u64(&key.0).unwrap());
        }
        self.check(sum)
    }
}

/// Changes per measured commit.
pub const ROOT_CHANGES: usize = 1_000;
/// Every state is spread over the same 1,000 identities (10 entries each at 10k, 1,000 each at
/// 1M), so a batch of random changes touches many namespaces at every size.
const ROOT_IDENTITIES: u64 = 1_000;

fn namespace(index: u64) -> Namespace {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&splitmix(&mut index.clone()).to_be_bytes());
    bytes[12..].copy_from_slice(&index.to_be_bytes());
    if index.is_multiple_of(2) { Namespace::wasm(Identity(bytes)) } else { Namespace::evm(bytes.into()) }
}

/// The key of entry `index`: WASM slots and EVM words, spread over the identities.
pub fn root_key(index: u64) -> Vec<u8> {
    let owner = namespace(index % ROOT_IDENTITIES);
    let slot = index / ROOT_IDENTITIES;
    match owner.engine() {
        kv_core::Engine::Wasm => owner.slot_key(slot).to_vec(),
        _ => owner.word_key(&B256::left_padding_from(&slot.to_be_bytes()).0).to_vec(),
    }
}

/// A 32-byte value, never zero.
pub fn root_value(seed: &mut u64) -> Vec<u8> {
    B256::left_padding_from(&(splitmix(seed) | 1).to_be_bytes()).to_vec()
}

/// Fills `store` with entries `0..entries`, in commits of 250,000.
pub fn fill(store: &Store, entries: u64) {
    let mut seed = entries;
    for chunk in (0..entries).collect::<Vec<_>>().chunks(250_000) {
        let mut overlay = store.begin();
        for &index in chunk {
            overlay.set(&root_key(index), &root_value(&mut seed)).unwrap();
        }
        store.commit(&overlay).unwrap();
    }
}

/// The entries of a state that keeps its size under a stream of blocks: indexes
/// `start..start + entries` exist (after [`fill`], `start` is 0).
///
/// A benchmark that only added entries would measure a different state at every commit: 100 new
/// entries a block grew a 10,000-entry state to 20,000 over one run, so its commits slowed as the
/// run went on and a ratio against them drifted from its first pair to its last.
pub struct Window {
    entries: u64,
    start: u64,
    seed: u64,
}

impl Window {
    /// The window over entries `0..entries` that [`fill`] wrote, with its own change seed.
    pub fn new(entries: u64, seed: u64) -> Self {
        assert!(entries > 2 * ROOT_MOVES, "the window must outlast a block's deletions");
        Self { entries, start: 0, seed }
    }

    /// A block's 1,000 changes: one in twenty deletes the oldest entry, one in twenty adds the
    /// entry just past the newest, and the rest rewrite random entries that stay, so the state
    /// keeps its size.
    pub fn changes(&mut self, store: &Store) -> Overlay {
        let mut overlay = store.begin();
        let end = self.start + self.entries;
        for offset in 0..ROOT_MOVES {
            overlay.remove(&root_key(self.start + offset)).unwrap();
            overlay.set(&root_key(end + offset), &root_value(&mut self.seed)).unwrap();
        }
        let kept = self.start + ROOT_MOVES;
        for _ in 0..ROOT_CHANGES as u64 - 2 * ROOT_MOVES {
            let index = kept + splitmix(&mut self.seed) % (self.entries - ROOT_MOVES);
            overlay.set(&root_key(index), &root_value(&mut self.seed)).unwrap();
        }
        self.start = kept;
        overlay
    }
}

/// Entries a block deletes, and as many as it adds: one change in twenty each.
const ROOT_MOVES: u64 = ROOT_CHANGES as u64 / 20;

/// An in-memory store of `entries` entries.
pub fn memory_store(entries: u64) -> Store {
    let store = Store::in_memory_with(StoreConfig { retained_roots: 2, ..StoreConfig::default() });
    fill(&store, entries);
    store
}

/// Hashed, sorted leaves of a flat trie of `entries` entries, as `HashBuilder` takes them.
pub fn hashed_leaves(entries: u64) -> Vec<(Nibbles, B256)> {
    let mut seed = 99;
    let mut leaves: Vec<(Nibbles, B256)> = (0..entries)
        .map(|index| (Nibbles::unpack(keccak256(index.to_be_bytes())), keccak256(root_value(&mut seed))))
        .collect();
    leaves.sort_unstable_by_key(|leaf| leaf.0);
    leaves
}

/// alloy-trie's root of `leaves`: the from-scratch rebuild an incremental commit is compared with.
pub fn hash_builder_root(leaves: &[(Nibbles, B256)]) -> B256 {
    let mut builder = HashBuilder::default();
    for (key, value) in leaves {
        builder.add_leaf(*key, value.as_slice());
    }
    builder.root()
}

/// A full build of 100,000 entries in a fresh store: keys and values hashed, every node written.
pub fn full_build_overlay() -> (Store, Overlay) {
    let store = Store::in_memory_with(StoreConfig { retained_roots: 2, ..StoreConfig::default() });
    let mut seed = 3;
    let mut overlay = store.begin();
    for index in 0..100_000 {
        overlay.set(&root_key(index), &root_value(&mut seed)).unwrap();
    }
    (store, overlay)
}

/// The account and slots the EIP-1186 figure proves: an EVM identity of the uniform state and two
/// of its slots (every identity holds slots `0..entries / 1,000` after [`fill`]; the slots are in
/// the middle of that range, which a run's [`Window`] deletions, a few thousand entries from index
/// 0, never reach).
pub fn eip1186_probe() -> (alloy_primitives::Address, [B256; 2]) {
    let holder = namespace(1).identity().to_address();
    (holder, [B256::left_padding_from(&300u64.to_be_bytes()), B256::left_padding_from(&700u64.to_be_bytes())])
}

/// 100,000 EVM accounts with records, and one hot contract of 500,000 storage slots.
pub struct HotContractState {
    /// The store.
    pub store: Store,
}

const HOT_ACCOUNTS: u64 = 100_000;
const HOT_SLOTS: u64 = 500_000;

fn hot_account(index: u64) -> Namespace {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&splitmix(&mut index.clone()).to_be_bytes());
    bytes[12..].copy_from_slice(&index.to_be_bytes());
    Namespace::evm(bytes.into())
}

fn hot_contract() -> Namespace {
    Namespace::evm(alloy_primitives::Address::repeat_byte(0xc0))
}

fn account_record(seed: &mut u64) -> Vec<u8> {
    let balance = alloy_primitives::U256::from(splitmix(seed) | 1);
    kv_core::AccountRecord { nonce: splitmix(seed) % 100, balance, code_hash: alloy_trie::KECCAK_EMPTY }
        .encode()
        .to_vec()
}

impl HotContractState {
    /// Builds the state, in commits of about 250,000 entries.
    pub fn new() -> Self {
        let store = Store::in_memory_with(StoreConfig { retained_roots: 2, ..StoreConfig::default() });
        let mut seed = 17;
        let mut overlay = store.begin();
        for index in 0..HOT_ACCOUNTS {
            overlay.set(&hot_account(index).record_key(), &account_record(&mut seed)).unwrap();
        }
        store.commit(&overlay).unwrap();
        let contract = hot_contract();
        for chunk in (0..HOT_SLOTS).collect::<Vec<_>>().chunks(250_000) {
            let mut overlay = store.begin();
            for &slot in chunk {
                let word = B256::left_padding_from(&slot.to_be_bytes());
                overlay.set(&contract.word_key(&word.0), &root_value(&mut seed)).unwrap();
            }
            store.commit(&overlay).unwrap();
        }
        Self { store }
    }

    /// A block's 1,000 changes: 900 to the hot contract's slots (one in ten a new slot), 100 to
    /// the balances of random accounts.
    pub fn changes(&self, seed: &mut u64) -> Overlay {
        let mut overlay = self.store.begin();
        let contract = hot_contract();
        for change in 0..ROOT_CHANGES {
            if change % 10 == 9 {
                let account = hot_account(splitmix(seed) % HOT_ACCOUNTS);
                overlay.set(&account.record_key(), &account_record(seed)).unwrap();
            } else {
                let slot =
                    if change % 10 == 8 { HOT_SLOTS + splitmix(seed) % HOT_SLOTS } else { splitmix(seed) % HOT_SLOTS };
                let word = B256::left_padding_from(&slot.to_be_bytes());
                overlay.set(&contract.word_key(&word.0), &root_value(seed)).unwrap();
            }
        }
        overlay
    }
}

impl Default for HotContractState {
    fn default() -> Self {
        Self::new()
    }
}

/// Verifies a proof of `key` in `store` and returns its encoded size.
pub fn check_proof(store: &Store, key: &[u8]) -> usize {
    let proof = store.prove(key, None).unwrap();
    let stored = store.get(key).unwrap();
    verify(store.root(), key, stored.as_deref(), &proof).unwrap();
    proof.encoded_len()
}

/// Runs phase A's wall-clock figures into `samples`.
pub fn wall(quick: bool, samples: &mut crate::harness::Samples) {
    use crate::harness::{Budget, pairs, repeats, timed};
    let budget = Budget::new(quick);
    let heavy = Budget::heavy(quick);
    let per_read = |ns: f64| ns / STATE_GET_READS as f64;

    let state_get = StateGet::new(Maps::Both);
    let mut native = || timed(|| state_get.native());
    let mut prefixed = || timed(|| state_get.prefixed_cached());
    let measured = pairs(budget, &mut prefixed, &mut native);
    samples.pair_ratios("state_get/prefixed_vs_native", &measured, |a, b| a / b);
    samples.repeated("state_get/native_ns", measured.iter().map(|&(_, b)| per_read(b)));
    let mut uncached = || timed(|| state_get.prefixed_uncached());
    samples.pair_ratios("state_get/uncached_vs_native", &pairs(budget, &mut uncached, &mut native), |a, b| a / b);
    let mut overlay = || timed(|| state_get.overlay_cached());
    samples.pair_ratios("state_get/overlay_vs_native", &pairs(budget, &mut overlay, &mut native), |a, b| a / b);
    drop(state_get);

    // Incremental commits at two sizes, and against a from-scratch rebuild of 1,000,000 leaves.
    let small = memory_store(10_000);
    let large = memory_store(1_000_000);
    let (mut small_window, mut large_window) = (Window::new(10_000, 5), Window::new(1_000_000, 6));
    let mut commit_small = || {
        let overlay = small_window.changes(&small);
        timed(|| small.commit(&overlay).unwrap())
    };
    let mut commit_large = || {
        let overlay = large_window.changes(&large);
        timed(|| large.commit(&overlay).unwrap())
    };
    let growth = pairs(budget, &mut commit_large, &mut commit_small);
    samples.pair_ratios("root/growth_1m_vs_10k", &growth, |a, b| a / b);
    samples.repeated("root/commit_1k_changes_at_10k", growth.iter().map(|&(_, b)| b));
    let leaves = hashed_leaves(1_000_000);
    let mut rebuild = || timed(|| hash_builder_root(black_box(&leaves)));
    // The rebuild takes a second, but the commit only tens of milliseconds, which one preemption
    // on a busy machine can double: each pair compares the fastest of three of each, as the
    // pairs of short operations do, instead of the heavy budget's single runs.
    let against_rebuild = pairs(Budget { alternations: 3, ..heavy }, &mut commit_large, &mut rebuild);
    samples.pair_ratios("root/commit_1k_at_1m_vs_rebuild", &against_rebuild, |a, b| a / b);
    samples.repeated("root/commit_1k_changes_at_1m", against_rebuild.iter().map(|&(a, _)| a));
    samples.repeated("root/hash_builder_1m", against_rebuild.iter().map(|&(_, b)| b));
    drop(leaves);

    // Proof size and verification time for a key in the 1,000,000-entry state.
    let probe = root_key(123_457);
    let proof_bytes = check_proof(&large, &probe);
    samples.repeated("root/proof_bytes_at_1m", [proof_bytes as f64]);
    let proof = large.prove(&probe, None).unwrap();
    let stored = large.get(&probe).unwrap();
    let root = large.root();
    const VERIFICATIONS: u32 = 1_000;
    let mut verify_many = || {
        timed(|| {
            for _ in 0..VERIFICATIONS {
                verify(black_box(root), &probe, stored.as_deref(), black_box(&proof)).unwrap();
            }
        })
    };
    let verified = repeats(budget, &mut verify_many);
    samples.repeated("root/verify_proof_at_1m", verified.iter().map(|ns| ns / f64::from(VERIFICATIONS)));

    // An EIP-1186 proof (what `eth_getProof` answers) of an account and two of its slots in the
    // 1,000,000-entry state, read from the stored nodes on the paths alone.
    let (holder, slots) = eip1186_probe();
    let answer = large.eip1186_proof(holder, &slots, None).unwrap();
    kv_core::verify_account_proof(large.root(), &answer).unwrap();
    assert!(answer.storage.iter().all(|slot| !slot.value.is_zero()), "the probed slots hold values");
    const PROOFS: u32 = 200;
    let mut prove_many = || {
        timed(|| {
            for _ in 0..PROOFS {
                black_box(large.eip1186_proof(holder, &slots, None).unwrap());
            }
        })
    };
    let proven = repeats(budget, &mut prove_many);
    samples.repeated("root/eip1186_proof_us", proven.iter().map(|ns| ns / f64::from(PROOFS) / 1000.0));
    drop(large);

    // A realistic shape beside the uniform one: 100,000 EVM accounts and one hot contract with
    // 500,000 slots, where nine in ten of a block's 1,000 changes hit the hot contract.
    let hot = HotContractState::new();
    let mut hot_seed = 21;
    let mut commit_hot = || {
        let overlay = hot.changes(&mut hot_seed);
        timed(|| hot.store.commit(&overlay).unwrap())
    };
    samples.repeated("root/commit_1k_hot_contract", repeats(heavy, &mut commit_hot));
    drop(hot);
    drop(small);

    // Full builds of 100,000 entries: ours (keys and values hashed, every node written to the
    // backend) against HashBuilder over pre-hashed sorted leaves, side by side.
    let leaves = hashed_leaves(100_000);
    let mut ours = || {
        let (store, overlay) = full_build_overlay();
        timed(|| store.commit(&overlay).unwrap())
    };
    let mut theirs = || timed(|| hash_builder_root(black_box(&leaves)));
    let builds = pairs(heavy, &mut ours, &mut theirs);
    // A throughput ratio: ours over alloy-trie's, so time theirs over time ours.
    samples.pair_ratios("root/full_build_vs_alloy_trie", &builds, |a, b| b / a);
    samples.repeated("root/full_build_100k", builds.iter().map(|&(a, _)| 100_000.0 * 1e9 / a));

    // The same 1,000-change commit on redb, including its durable write transaction.
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open_redb(dir.path().join("bench.redb"), StoreConfig { retained_roots: 2, ..StoreConfig::default() })
            .unwrap();
    fill(&store, 1_000_000);
    let mut window = Window::new(1_000_000, 11);
    let mut seed = 11;
    let mut commit_redb = || {
        let overlay = window.changes(&store);
        timed(|| store.commit(&overlay).unwrap())
    };
    samples.repeated("root/commit_1k_changes_at_1m_redb", repeats(heavy, &mut commit_redb));
    // A whole store commit of 10,000 new entries on redb (values, trie nodes, one transaction).
    let mut commit_10k = || {
        let mut overlay = store.begin();
        for _ in 0..10_000 {
            overlay.set(&root_key(splitmix(&mut seed) % 4_000_000), &root_value(&mut seed)).unwrap();
        }
        timed(|| store.commit(&overlay).unwrap())
    };
    let committed = repeats(heavy, &mut commit_10k);
    samples.repeated("root/commit_10k_entries_redb", committed.iter().map(|ns| 10_000.0 * 1e9 / ns));
    drop(store);

    // The raw backend: one redb write transaction of 10,000 puts.
    let backend = kv_core::RedbBackend::open(dir.path().join("raw.redb")).unwrap();
    let mut batch_10k = || {
        let mut batch = WriteBatch::new();
        for _ in 0..10_000 {
            batch.put(Table::State, root_key(splitmix(&mut seed) % 4_000_000), root_value(&mut seed));
        }
        timed(|| backend.write(batch).unwrap())
    };
    let written = repeats(heavy, &mut batch_10k);
    samples.repeated("redb/batch_10k_entries", written.iter().map(|ns| 10_000.0 * 1e9 / ns));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window's blocks keep the state at its size: each deletes the oldest entries and adds as
    /// many past the newest, so a growth figure compares states of the sizes it names. Every
    /// entry ever written lies in `0..start + ENTRIES + ROOT_MOVES`; exactly the window's are live.
    #[test]
    fn a_window_keeps_the_state_at_its_size() {
        const ENTRIES: u64 = 1_000;
        let store = memory_store(ENTRIES);
        let mut window = Window::new(ENTRIES, 1);
        for block in 1..=30 {
            store.commit(&window.changes(&store)).unwrap();
            let start = block * ROOT_MOVES;
            for index in 0..start + ENTRIES + ROOT_MOVES {
                let live = (start..start + ENTRIES).contains(&index);
                assert_eq!(store.get(&root_key(index)).unwrap().is_some(), live, "block {block}, entry {index}");
            }
        }
    }
}
