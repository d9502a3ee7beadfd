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

/// A value that names its table, so that a read from the wrong table shows.
fn tagged(table: Table, value: &str) -> Vec<u8> {
    format!("{}:{value}", table.name()).into_bytes()
}

/// The behaviour every backend must have, in every table: the memory backend keeps the node table
/// in a hash map and sorts it for scans, so each table's scans are checked on their own.
fn behavioural_suite(backend: &dyn Backend) {
    // Empty reads.
    for table in Table::ALL {
        assert_eq!(backend.get(table, b"missing").unwrap(), None);
        let mut called = false;
        assert!(!backend.read(table, b"missing", &mut |_| called = true).unwrap());
        assert!(!called);
    }

    // A batch applies in order; a later op on the same key wins.
    let mut batch = WriteBatch::new();
    for table in Table::ALL {
        batch.put(table, b"b".to_vec(), tagged(table, "2"));
        batch.put(table, b"a".to_vec(), tagged(table, "1"));
        batch.put(table, b"c".to_vec(), tagged(table, "x"));
        batch.delete(table, b"c".to_vec());
        batch.put(table, b"ab".to_vec(), tagged(table, "3"));
        batch.put(table, b"d".to_vec(), tagged(table, "4"));
        batch.put(table, b"d".to_vec(), tagged(table, "5"));
        batch.put(table, vec![0xff, 0xff], tagged(table, "top"));
    }
    batch.put(Table::Meta, b"0 meta only".to_vec(), b"meta".to_vec());
    backend.write(batch).unwrap();

    let keys = |entries: Vec<(Vec<u8>, Vec<u8>)>| entries.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    for table in Table::ALL {
        assert_eq!(backend.get(table, b"a").unwrap(), Some(tagged(table, "1")), "{table:?}");
        assert_eq!(backend.get(table, b"c").unwrap(), None, "{table:?}");
        assert_eq!(backend.get(table, b"d").unwrap(), Some(tagged(table, "5")), "{table:?}");
        // Tables are separate key spaces.
        let meta_only = backend.get(table, b"0 meta only").unwrap();
        assert_eq!(meta_only.is_some(), table == Table::Meta, "{table:?}");

        // Scans are ordered, bounded and stop on request.
        let mut all = vec![b"a".to_vec(), b"ab".to_vec(), b"b".to_vec(), b"d".to_vec(), vec![0xff, 0xff]];
        if table == Table::Meta {
            all.insert(0, b"0 meta only".to_vec());
        }
        let scanned = scan_all(backend, table, b"", None);
        assert_eq!(keys(scanned.clone()), all, "{table:?}");
        assert!(scanned.iter().all(|(key, value)| backend.get(table, key).unwrap().as_ref() == Some(value)));
        assert_eq!(keys(scan_all(backend, table, b"a", Some(b"b"))), vec![b"a".to_vec(), b"ab".to_vec()], "{table:?}");
        assert_eq!(keys(scan_all(backend, table, b"ab", Some(b"d"))), vec![b"ab".to_vec(), b"b".to_vec()], "{table:?}");
        assert_eq!(keys(scan_all(backend, table, b"b", Some(b"b"))), Vec::<Vec<u8>>::new(), "{table:?}");
        assert_eq!(keys(scan_all(backend, table, b"e", Some(b"z"))), Vec::<Vec<u8>>::new(), "{table:?}");
        assert_eq!(keys(scan_all(backend, table, &[0xff], None)), vec![vec![0xff, 0xff]], "{table:?}");
        assert_eq!(keys(backend.scan_prefix(table, b"a").unwrap()), vec![b"a".to_vec(), b"ab".to_vec()], "{table:?}");
        assert_eq!(keys(backend.scan_prefix(table, &[0xff]).unwrap()), vec![vec![0xff, 0xff]], "{table:?}");
        for stop_after in [1, 3] {
            let mut seen = Vec::new();
            backend
                .scan(table, b"", None, &mut |key, _| {
                    seen.push(key.to_vec());
                    if seen.len() == stop_after { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
                })
                .unwrap();
            assert_eq!(seen, all[..stop_after], "{table:?}, stop after {stop_after}");
        }
    }

    // Deleting a missing key is not an error; deletes remove, in their own table only.
    let mut batch = WriteBatch::new();
    batch.delete(Table::State, b"never".to_vec());
    batch.delete(Table::State, b"a".to_vec());
    backend.write(batch).unwrap();
    assert_eq!(backend.get(Table::State, b"a").unwrap(), None);
    for table in [Table::Nodes, Table::Stale, Table::Meta] {
        assert_eq!(backend.get(table, b"a").unwrap(), Some(tagged(table, "1")), "{table:?}");
    }
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

/// A batch large enough for the memory backend to apply its node table on a second thread, with
/// several ops on the same keys in every table, leaves what applying its ops one by one in order
/// leaves (a plain model); so does the same batch on redb.
fn large_batches_apply_in_order(backend: &dyn Backend) {
    let mut model: std::collections::BTreeMap<(usize, Vec<u8>), Vec<u8>> = Default::default();
    let mut batch = WriteBatch::new();
    for index in 0u32..12_000 {
        let table = Table::ALL[(index % 4) as usize];
        // 500 keys per table, so every key is written, deleted and written again many times.
        let key = format!("k{:03}", (index / 4) % 500).into_bytes();
        if index % 7 == 3 {
            batch.delete(table, key.clone());
            model.remove(&(table as usize, key));
        } else {
            let value = index.to_be_bytes().to_vec();
            batch.put(table, key.clone(), value.clone());
            model.insert((table as usize, key), value);
        }
    }
    backend.write(batch).unwrap();
    for (position, table) in Table::ALL.into_iter().enumerate() {
        let expected: Vec<(Vec<u8>, Vec<u8>)> = model
            .iter()
            .filter(|((index, _), _)| *index == position)
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect();
        assert_eq!(scan_all(backend, table, b"", None), expected, "{table:?}");
    }
}

#[test]
fn large_batches_apply_in_order_on_both_backends() {
    large_batches_apply_in_order(&MemoryBackend::new());
    let dir = tempfile::tempdir().unwrap();
    large_batches_apply_in_order(&RedbBackend::open(dir.path().join("db")).unwrap());
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
