//! An in-memory backend: one ordered map per table behind a read-write lock.

use super::{Backend, BackendError, ScanVisitor, Table, WriteBatch};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::ops::Bound;

type Map = BTreeMap<Box<[u8]>, Box<[u8]>>;

/// A backend that keeps everything in memory. Batches are atomic because they are applied under
/// one write lock after being checked.
#[derive(Default)]
pub struct MemoryBackend {
    tables: RwLock<[Map; Table::ALL.len()]>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries in `table`.
    pub fn len(&self, table: Table) -> usize {
        self.tables.read()[table.index()].len()
    }

    /// Whether `table` is empty.
    pub fn is_empty(&self, table: Table) -> bool {
        self.len(table) == 0
    }
}

impl Backend for MemoryBackend {
    #[inline]
    fn read(
        &self,
        table: Table,
        key: &[u8],
        visit: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, BackendError> {
        let tables = self.tables.read();
        match tables[table.index()].get(key) {
            Some(value) => {
                visit(value);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<(), BackendError> {
        let tables = self.tables.read();
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        for (key, value) in tables[table.index()].range::<[u8], _>((Bound::Included(start), upper))
        {
            if visit(key, value).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), BackendError> {
        let mut tables = self.tables.write();
        for op in batch.into_ops() {
            let map = &mut tables[op.table.index()];
            match op.value {
                Some(value) => {
                    map.insert(op.key.into_boxed_slice(), value.into_boxed_slice());
                }
                None => {
                    map.remove(op.key.as_slice());
                }
            }
        }
        Ok(())
    }
}
