//! One behavioural suite, run against both backends, plus redb-only durability and failure
//! tests (a failed batch leaves the file unchanged, including after reopening).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use kv_core::backend::{BackendExt, FaultPlan, prefix_end};
use kv_core::{Backend, BackendError, MemoryBackend, RedbBackend, Table, WriteBatch};
use std::ops::ControlFlow;

fn scan_all(backend: &dyn Backend, table: Table, start: &[u8], end: Option<&[u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    backend
        .scan(table, start, end, &mut |key, value| {
            out.push((key.to_vec(), value.to_vec()));
            ControlFlow::Continue(())
        })
        .unwrap();
    out
}

/// The behaviour every backend must have.
fn behavioural_suite(backend: &dyn Backend) {
    // Empty reads.
    assert_eq!(backend.get(Table::State, b"missing").unwrap(), None);
    let mut called = false;
    assert!(!backend.read(Table::State, b"missing", &mut |_| called = true).unwrap());
    assert!(!called);

    // A batch applies in order; a later op on the same key wins.
    let mut batch = WriteBatch::new();
    batch.put(Table::State, b"b".to_vec(), b"2".to_vec());
    batch.put(Table::State, b"a".to_vec(), b"1".to_vec());
    batch.put(Table::State, b"c".to_vec(), b"x".to_vec());
    batch.delete(Table::State, b"c".to_vec());
    batch.put(Table::State, b"ab".to_vec(), b"3".to_vec());
    batch.put(Table::Meta, b"a".to_vec(), b"meta".to_vec());
    batch.put(Table::State, b"d".to_vec(), b"4".to_vec());
    batch.put(Table::State, b"d".to_vec(), b"5".to_vec());
    batch.put(Table::State, vec![0xff, 0xff], b"top".to_vec());
    backend.write(batch).unwrap();
    assert_eq!(backend.get(Table::State, b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(backend.get(Table::State, b"c").unwrap(), None);
    assert_eq!(backend.get(Table::State, b"d").unwrap(), Some(b"5".to_vec()));
    // Tables are separate key spaces.
    assert_eq!(backend.get(Table::Meta, b"a").unwrap(), Some(b"meta".to_vec()));
    assert_eq!(backend.get(Table::Nodes, b"a").unwrap(), None);

    // Scans are ordered, bounded and stop on request.
    let keys = |entries: Vec<(Vec<u8>, Vec<u8>)>| entries.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(scan_all(backend, Table::State, b"", None)),
        vec![b"a".to_vec(), b"ab".to_vec(), b"b".to_vec(), b"d".to_vec(), vec![0xff, 0xff]]
    );
    assert_eq!(keys(scan_all(backend, Table::State, b"a", Some(b"b"))), vec![b"a".to_vec(), b"ab".to_vec()]);
    assert_eq!(
        keys(backend.scan_prefix(Table::State, b"a").unwrap().into_iter().collect()),
        vec![b"a".to_vec(), b"ab".to_vec()]
    );
    assert_eq!(keys(backend.scan_prefix(Table::State, &[0xff]).unwrap()), vec![vec![0xff, 0xff]]);
    let mut first = Vec::new();
    backend
        .scan(Table::State, b"", None, &mut |key, _| {
            first.push(key.to_vec());
            ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!(first, vec![b"a".to_vec()]);

    // Deleting a missing key is not an error; deletes remove.
    let mut batch = WriteBatch::new();
    batch.delete(Table::State, b"never".to_vec());
    batch.delete(Table::State, b"a".to_vec());
    backend.write(batch).unwrap();
    assert_eq!(backend.get(Table::State, b"a").unwrap(), None);
    // An empty batch is fine.
    backend.write(WriteBatch::new()).unwrap();
}

#[test]
fn memory_backend_behaviour() {
    behavioural_suite(&MemoryBackend::new());
}

#[test]
fn redb_backend_behaviour() {
    let dir = tempfile::tempdir().unwrap();
    behavioural_suite(&RedbBackend::open(dir.path().join("db")).unwrap());
}

#[test]
fn prefix_end_is_the_first_key_after_the_prefix() {
    assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
    assert_eq!(prefix_end(&[0x01, 0xff]), Some(vec![0x02]));
    assert_eq!(prefix_end(&[0xff, 0xff]), None);
    assert_eq!(prefix_end(&[]), None);
}

fn sample_batch(size: usize, tag: u8) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for index in 0..size {
        batch.put(Table::State, format!("key{index:04}").into_bytes(), vec![tag; 8]);
    }
    batch
}

/// A batch interrupted at any op leaves the backend exactly as it was, also after reopening.
#[test]
fn redb_failed_batch_changes_nothing_even_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let before = {
        let backend = RedbBackend::open(&path).unwrap();
        backend.write(sample_batch(20, 1)).unwrap();
        scan_all(&backend, Table::State, b"", None)
    };
    for fail_after in [0, 1, 7, 19, 20, 40] {
        let backend = RedbBackend::open(&path).unwrap();
        backend.set_fault_plan(FaultPlan::FailAfterOps(fail_after));
        let mut batch = sample_batch(40, 2);
        batch.delete(Table::State, b"key0003".to_vec());
        let error = backend.write(batch).unwrap_err();
        assert!(matches!(error, BackendError::Injected(_)), "{error}");
        assert_eq!(scan_all(&backend, Table::State, b"", None), before, "in process, fail after {fail_after}");
        drop(backend);
        let reopened = RedbBackend::open(&path).unwrap();
        assert_eq!(scan_all(&reopened, Table::State, b"", None), before, "reopened, fail after {fail_after}");
    }
    let backend = RedbBackend::open(&path).unwrap();
    backend.set_fault_plan(FaultPlan::FailBeforeCommit);
    assert!(backend.write(sample_batch(5, 3)).is_err());
    backend.set_fault_plan(FaultPlan::Never);
    backend.write(sample_batch(5, 3)).unwrap();
    assert_eq!(backend.get(Table::State, b"key0000").unwrap(), Some(vec![3; 8]));
}

#[test]
fn redb_refuses_a_second_open_and_rejects_garbage_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let first = RedbBackend::open(&path).unwrap();
    assert!(matches!(RedbBackend::open(&path), Err(BackendError::AlreadyOpen)));
    drop(first);
    RedbBackend::open(&path).unwrap();

    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let error = RedbBackend::open(&garbage).err().unwrap();
    assert!(matches!(error, BackendError::Corrupt(_)), "{error}");

    let missing = dir.path().join("missing");
    assert!(matches!(RedbBackend::open_existing(&missing), Err(BackendError::Storage(_))));
    assert!(!missing.exists());
}
