//! The state root's costs: incremental commits against a from-scratch rebuild, growth with the
//! size of the state, full builds against alloy-trie's `HashBuilder`, the same commit on redb, and
//! proof size and verification time in a 1,000,000-entry state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use alloy_primitives::{B256, keccak256};
use alloy_trie::{HashBuilder, Nibbles};
mod support;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kv_core::{Identity, Namespace, Overlay, Store, StoreConfig, verify};
use std::hint::black_box;
use support::splitmix;

const CHANGES: usize = 1_000;
/// Every state is spread over the same 1,000 identities (10 entries each at 10k, 1,000 each at
/// 1M), so a batch of random changes touches many namespaces at every size.
const IDENTITIES: u64 = 1_000;

fn namespace(index: u64) -> Namespace {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&splitmix(&mut index.clone()).to_be_bytes());
    bytes[12..].copy_from_slice(&index.to_be_bytes());
    if index.is_multiple_of(2) { Namespace::wasm(Identity(bytes)) } else { Namespace::evm(bytes.into()) }
}

/// The key of entry `index`: WASM slots and EVM words, spread over the identities.
fn key(index: u64) -> Vec<u8> {
    let owner = namespace(index % IDENTITIES);
    let slot = index / IDENTITIES;
    match owner.engine() {
        kv_core::Engine::Wasm => owner.slot_key(slot).to_vec(),
        _ => owner.word_key(&B256::left_padding_from(&slot.to_be_bytes()).0).to_vec(),
    }
}

fn value(seed: &mut u64) -> Vec<u8> {
    B256::left_padding_from(&(splitmix(seed) | 1).to_be_bytes()).to_vec()
}

fn fill(store: &Store, entries: u64) {
    let mut seed = entries;
    for chunk in (0..entries).collect::<Vec<_>>().chunks(250_000) {
        let mut overlay = store.begin();
        for &index in chunk {
            overlay.set(&key(index), &value(&mut seed)).unwrap();
        }
        store.commit(&overlay).unwrap();
    }
}

/// 1,000 random changes: nine in ten rewrite an existing entry, one in ten adds a new one.
fn changes(store: &Store, entries: u64, seed: &mut u64) -> Overlay {
    let mut overlay = store.begin();
    for change in 0..CHANGES {
        let index = if change % 10 == 9 { entries + splitmix(seed) % (entries * 4) } else { splitmix(seed) % entries };
        overlay.set(&key(index), &value(seed)).unwrap();
    }
    overlay
}

fn memory_store(entries: u64) -> Store {
    let store = Store::in_memory_with(StoreConfig { retained_roots: 2 });
    fill(&store, entries);
    store
}

/// Hashed, sorted leaves of a flat trie of `entries` entries, as `HashBuilder` takes them.
fn hashed_leaves(entries: u64) -> Vec<(Nibbles, B256)> {
    let mut seed = 99;
    let mut leaves: Vec<(Nibbles, B256)> = (0..entries)
        .map(|index| (Nibbles::unpack(keccak256(index.to_be_bytes())), keccak256(value(&mut seed))))
        .collect();
    leaves.sort_unstable_by_key(|leaf| leaf.0);
    leaves
}

fn hash_builder_root(leaves: &[(Nibbles, B256)]) -> B256 {
    let mut builder = HashBuilder::default();
    for (key, value) in leaves {
        builder.add_leaf(*key, value.as_slice());
    }
    builder.root()
}

/// Records a measured fact that is not a time (here: a proof's size) for `cargo xtask bench`.
fn record_fact(name: &str, value: usize, unit: &str) {
    if let Some(dir) = std::env::var_os("XTASK_BENCH_FACTS") {
        let path = std::path::Path::new(&dir).join(format!("{}.json", name.replace('/', "__")));
        let json = format!("{{\"name\": \"{name}\", \"value\": {value}, \"unit\": \"{unit}\"}}\n");
        std::fs::write(path, json).unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("root");
    group.sample_size(10);

    for (label, entries) in [("10k", 10_000u64), ("1m", 1_000_000)] {
        let store = memory_store(entries);
        let mut seed = 5;
        group.throughput(Throughput::Elements(CHANGES as u64));
        group.bench_function(format!("commit_1k_changes_at_{label}"), |b| {
            b.iter_batched(
                || changes(&store, entries, &mut seed),
                |overlay| store.commit(&overlay).unwrap(),
                BatchSize::PerIteration,
            );
        });
        if entries == 1_000_000 {
            // Proof size and verification time for a key in the 1,000,000-entry state.
            let probe = key(123_457);
            let proof = store.prove(&probe, None).unwrap();
            let stored = store.get(&probe).unwrap();
            let root = store.root();
            verify(root, &probe, stored.as_deref(), &proof).unwrap();
            record_fact("root/proof_bytes_at_1m", proof.encoded_len(), "bytes");
            group.throughput(Throughput::Elements(1));
            group.bench_function("verify_proof_at_1m", |b| {
                b.iter(|| verify(black_box(root), &probe, stored.as_deref(), black_box(&proof)).unwrap());
            });
        }
    }

    let leaves = hashed_leaves(1_000_000);
    group.throughput(Throughput::Elements(1_000_000));
    group.bench_function("hash_builder_1m", |b| b.iter(|| hash_builder_root(black_box(&leaves))));
    drop(leaves);

    // Full builds of 100,000 entries: ours (keys and values hashed, every node written to the
    // backend) against HashBuilder over pre-hashed sorted leaves.
    let leaves = hashed_leaves(100_000);
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("hash_builder_100k", |b| b.iter(|| hash_builder_root(black_box(&leaves))));
    group.bench_function("full_build_100k", |b| {
        b.iter_batched(
            || {
                let store = Store::in_memory_with(StoreConfig { retained_roots: 2 });
                let mut seed = 3;
                let mut overlay = store.begin();
                for index in 0..100_000 {
                    overlay.set(&key(index), &value(&mut seed)).unwrap();
                }
                (store, overlay)
            },
            |(store, overlay)| store.commit(&overlay).unwrap(),
            BatchSize::PerIteration,
        );
    });

    // The same 1,000-change commit on redb, including its durable write transaction.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_redb(dir.path().join("bench.redb"), StoreConfig { retained_roots: 2 }).unwrap();
    fill(&store, 1_000_000);
    let mut seed = 11;
    group.throughput(Throughput::Elements(CHANGES as u64));
    group.bench_function("commit_1k_changes_at_1m_redb", |b| {
        b.iter_batched(
            || changes(&store, 1_000_000, &mut seed),
            |overlay| store.commit(&overlay).unwrap(),
            BatchSize::PerIteration,
        );
    });

    // A whole store commit of 10,000 new entries on redb (values, trie nodes, one transaction).
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("commit_10k_entries_redb", |b| {
        b.iter_batched(
            || {
                let mut overlay = store.begin();
                for _ in 0..10_000 {
                    overlay.set(&key(splitmix(&mut seed) % 4_000_000), &value(&mut seed)).unwrap();
                }
                overlay
            },
            |overlay| store.commit(&overlay).unwrap(),
            BatchSize::PerIteration,
        );
    });
    group.finish();
    drop(store);

    // The raw backend: one redb write transaction of 10,000 puts.
    let backend = kv_core::RedbBackend::open(dir.path().join("raw.redb")).unwrap();
    let mut group = c.benchmark_group("redb");
    group.sample_size(10);
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("batch_10k_entries", |b| {
        b.iter_batched(
            || {
                let mut batch = kv_core::WriteBatch::new();
                for _ in 0..10_000 {
                    batch.put(kv_core::Table::State, key(splitmix(&mut seed) % 4_000_000), value(&mut seed));
                }
                batch
            },
            |batch| kv_core::Backend::write(&backend, batch).unwrap(),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
