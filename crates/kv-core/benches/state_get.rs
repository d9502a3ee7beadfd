//! The RFC's budget: prefix encoding costs under 10% on the `state_get` hot path.
//!
//! One in-memory map holds 100,000 u64 slots spread over 100 identities. The same map type is
//! read by the engine-native 8-byte slot key alone (the store before the RFC), by the full 30-byte
//! key built from a cached prefix, by the full key encoded from scratch each call, and through the
//! block overlay (the path a WASM `state_get` takes). `cargo xtask bench` turns the times into
//! `state_get/prefixed_vs_native` and the other ratios.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kv_core::{Backend, Identity, MemoryBackend, Namespace, StateKey, Store, Table, WriteBatch};
use std::hint::black_box;
use std::sync::Arc;
use support::splitmix;

const IDENTITIES: u64 = 100;
const SLOTS_PER_IDENTITY: u64 = 1_000;
const READS: usize = 4_096;

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

fn bench(c: &mut Criterion) {
    let mut seed = 7;
    // Slots are random u64s, unique across identities, so the native map keyed by slot alone
    // holds the same 100,000 entries as the shared map.
    let entries: Vec<(u64, u64)> =
        (0..IDENTITIES * SLOTS_PER_IDENTITY).map(|index| (index / SLOTS_PER_IDENTITY, splitmix(&mut seed))).collect();
    let native = MemoryBackend::new();
    let shared: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let mut native_batch = WriteBatch::new();
    let mut shared_batch = WriteBatch::new();
    for &(owner, slot) in &entries {
        let value = (slot | 1).to_be_bytes();
        native_batch.put(Table::State, slot.to_be_bytes(), value);
        shared_batch.put(Table::State, Namespace::wasm(identity(owner)).slot_key(slot), value);
    }
    native.write(native_batch).unwrap();
    shared.write(shared_batch).unwrap();
    let store = Store::open(Arc::clone(&shared), kv_core::StoreConfig::default()).unwrap();
    let overlay = store.begin();

    // Each engine instance holds its handle; the reads follow a random order.
    let identities: Vec<Identity> = (0..IDENTITIES).map(identity).collect();
    let handles: Vec<Namespace> = identities.iter().map(|&id| Namespace::wasm(id)).collect();
    let reads: Vec<(usize, u64)> = (0..READS)
        .map(|_| {
            let (owner, slot) =
                entries[usize::try_from(splitmix(&mut seed) % (IDENTITIES * SLOTS_PER_IDENTITY)).unwrap()];
            (usize::try_from(owner).unwrap(), slot)
        })
        .collect();
    let expected: u64 = reads.iter().fold(0u64, |sum, &(_, slot)| sum.wrapping_add(slot | 1));

    let mut group = c.benchmark_group("state_get");
    group.throughput(Throughput::Elements(READS as u64));
    group.bench_function("native", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for &(_, slot) in &reads {
                sum = sum.wrapping_add(read_u64(&native, &black_box(slot).to_be_bytes()));
            }
            assert_eq!(sum, expected);
        });
    });
    group.bench_function("prefixed_cached", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for &(owner, slot) in &reads {
                let key = handles[owner].slot_key(black_box(slot));
                sum = sum.wrapping_add(read_u64(shared.as_ref(), &key));
            }
            assert_eq!(sum, expected);
        });
    });
    group.bench_function("prefixed_uncached", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for &(owner, slot) in &reads {
                let key = StateKey::wasm_slot(identities[owner], black_box(slot)).encode().unwrap();
                sum = sum.wrapping_add(read_u64(shared.as_ref(), &key));
            }
            assert_eq!(sum, expected);
        });
    });
    group.bench_function("overlay_cached", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for &(owner, slot) in &reads {
                sum = sum.wrapping_add(overlay.get_u64(&handles[owner].slot_key(black_box(slot))).unwrap());
            }
            assert_eq!(sum, expected);
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
