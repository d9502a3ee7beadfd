//! Crash safety on redb: a commit interrupted at any point leaves a store that reopens at the
//! previous or the new root, never anything else.
//!
//! Two seams are used. `FaultPlan` fails the batch inside the write transaction after any number
//! of ops. `CrashingStorage` is a redb storage backend that stops making writes durable after a
//! chosen number of them (as redb's own crash-consistency test does): the file is then rebuilt from
//! only the durable writes and reopened.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use alloy_primitives::B256;
use kv_core::backend::FaultPlan;
use kv_core::{Backend, RedbBackend, Store, StoreConfig, StoreError, Table};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

type Contents = BTreeMap<Vec<u8>, Vec<u8>>;

fn block_entries(block: u8, count: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    (0..count)
        .map(|index| {
            let namespace = kv_core::Namespace::wasm(kv_core::Identity([u8::try_from(index % 7).unwrap(); 20]));
            let key = namespace.slot_key(index).to_vec();
            // The second block deletes every fifth slot and rewrites the rest.
            let value =
                (block == 1 || index % 5 != 0).then(|| (u64::from(block) * 1000 + index).to_be_bytes().to_vec());
            (key, value)
        })
        .collect()
}

fn apply(store: &Store, entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<kv_core::CommitInfo, StoreError> {
    let mut overlay = store.begin();
    for (key, value) in entries {
        match value {
            Some(value) => overlay.set(key, value).unwrap(),
            None => overlay.remove(key).unwrap(),
        }
    }
    store.commit(&overlay)
}

fn contents(backend: &dyn Backend) -> Contents {
    let mut out = Contents::new();
    backend
        .scan(Table::State, &[], None, &mut |key, value| {
            out.insert(key.to_vec(), value.to_vec());
            ControlFlow::Continue(())
        })
        .unwrap();
    out
}

struct Expected {
    old_root: B256,
    old: Contents,
    new_root: B256,
    new: Contents,
}

/// Builds block 1 on a file, then computes what block 2 must produce, on a copy.
fn prepare(dir: &tempfile::TempDir) -> (std::path::PathBuf, Expected) {
    let path = dir.path().join("base.redb");
    let config = StoreConfig { retained_roots: 4, ..StoreConfig::default() };
    let store = Store::open_redb(&path, config).unwrap();
    let old_root = apply(&store, &block_entries(1, 60)).unwrap().root;
    let old = contents(store.backend().as_ref());
    drop(store);
    let copy = dir.path().join("copy.redb");
    std::fs::copy(&path, &copy).unwrap();
    let store = Store::open_redb(&copy, config).unwrap();
    let new_root = apply(&store, &block_entries(2, 60)).unwrap().root;
    let new = contents(store.backend().as_ref());
    assert_ne!(old_root, new_root);
    (path, Expected { old_root, old, new_root, new })
}

/// Reopens the file and checks it holds exactly the old or exactly the new state. Returns
/// whether it is the new one.
fn check_reopened(path: &std::path::Path, expected: &Expected) -> bool {
    let store = Store::open_redb(path, StoreConfig { retained_roots: 4, ..StoreConfig::default() }).unwrap();
    let found = contents(store.backend().as_ref());
    if store.root() == expected.new_root {
        assert_eq!(store.height(), 2);
        assert_eq!(found, expected.new);
        true
    } else {
        assert_eq!(store.root(), expected.old_root, "reopened at neither the old nor the new root");
        assert_eq!(store.height(), 1);
        assert_eq!(found, expected.old);
        // The old state is still fully usable: the block can be committed again.
        assert_eq!(apply(&store, &block_entries(2, 60)).unwrap().root, expected.new_root);
        false
    }
}

#[test]
fn injected_failure_inside_the_write_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (path, expected) = prepare(&dir);
    for fail_after in (0..400).step_by(7) {
        let attempt = dir.path().join(format!("attempt{fail_after}.redb"));
        std::fs::copy(&path, &attempt).unwrap();
        {
            let backend = Arc::new(RedbBackend::open(&attempt).unwrap());
            backend.set_fault_plan(FaultPlan::FailAfterOps(fail_after));
            let store = Store::open(backend, StoreConfig { retained_roots: 4, ..StoreConfig::default() }).unwrap();
            assert!(apply(&store, &block_entries(2, 60)).is_err());
            // In process, the failed commit changed nothing either.
            assert_eq!(store.root(), expected.old_root);
            assert_eq!(store.height(), 1);
        }
        assert!(!check_reopened(&attempt, &expected), "a failed commit must not be visible");
    }
}

/// A redb storage backend over an in-memory image that keeps a second, "durable" image which
/// stops receiving writes once its budget is spent.
#[derive(Debug)]
struct CrashingStorage {
    live: Mutex<Vec<u8>>,
    durable: Arc<Mutex<Vec<u8>>>,
    budget: AtomicUsize,
}

impl CrashingStorage {
    fn persist(&self, apply: impl FnOnce(&mut Vec<u8>)) {
        let spent = self.budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1));
        if spent.is_ok() {
            apply(&mut self.durable.lock());
        }
    }
}

fn write_at(image: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = usize::try_from(offset).unwrap();
    if image.len() < start + data.len() {
        image.resize(start + data.len(), 0);
    }
    image[start..start + data.len()].copy_from_slice(data);
}

impl redb::StorageBackend for CrashingStorage {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(u64::try_from(self.live.lock().len()).unwrap())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let live = self.live.lock();
        let start = usize::try_from(offset).unwrap();
        let bytes = live.get(start..start + out.len()).ok_or_else(|| std::io::Error::other("read past end"))?;
        out.copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let len = usize::try_from(len).unwrap();
        self.live.lock().resize(len, 0);
        self.persist(|image| image.resize(len, 0));
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        write_at(&mut self.live.lock(), offset, data);
        self.persist(|image| write_at(image, offset, data));
        Ok(())
    }

    fn try_lock_range(&self, _: Bound<u64>, _: Bound<u64>) -> Result<bool, redb::BackendError> {
        Ok(true)
    }
}

#[test]
fn writes_stop_reaching_the_disk_at_any_point() {
    let dir = tempfile::tempdir().unwrap();
    let (path, expected) = prepare(&dir);
    let image = std::fs::read(&path).unwrap();
    let mut saw_old = false;
    let mut saw_new = false;
    for budget in 0..160 {
        let durable = Arc::new(Mutex::new(image.clone()));
        {
            let storage = CrashingStorage {
                live: Mutex::new(image.clone()),
                durable: Arc::clone(&durable),
                budget: AtomicUsize::new(budget),
            };
            let backend = RedbBackend::with_storage(storage).unwrap();
            let store =
                Store::open(Arc::new(backend), StoreConfig { retained_roots: 4, ..StoreConfig::default() }).unwrap();
            assert_eq!(store.root(), expected.old_root);
            apply(&store, &block_entries(2, 60)).unwrap();
        }
        let crashed = dir.path().join(format!("crashed{budget}.redb"));
        std::fs::write(&crashed, durable.lock().as_slice()).unwrap();
        if check_reopened(&crashed, &expected) {
            saw_new = true;
        } else {
            saw_old = true;
        }
    }
    assert!(saw_old && saw_new, "the budgets must cover crashes before and after the commit point");
}
