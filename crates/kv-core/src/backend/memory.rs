//! An in-memory backend: one map per table behind a read-write lock.
//!
//! Tables the store scans (state, stale, meta) are ordered maps. The node table is only ever read
//! by exact key (a node's tree, version and position), so it is a hash map: a lookup costs one
//! probe instead of a walk down a tree of millions of keys. Scanning it still works, by sorting
//! the matching keys, so the backend honours the whole [`Backend`] contract.

use super::{Backend, BackendError, BatchOp, ScanVisitor, Table, WriteBatch};
use alloy_primitives::map::HashMap;
use parking_lot::RwLock;
use smallvec::SmallVec;
use std::collections::BTreeMap;
use std::ops::Bound;

/// Keys up to 56 bytes (every state key but long WASM user keys, and nearly every trie-node and
/// stale key) are stored inline, so comparing or hashing a key does not chase a pointer. 56 makes
/// a key exactly 64 bytes (with its length), one cache line: a B-tree node's keys are scanned a
/// line per key, where 72-byte keys straddled two lines one time in two.
type Key = SmallVec<[u8; 56]>;
type Value = Box<[u8]>;

enum Map {
    Ordered(BTreeMap<Key, Value>),
    Hashed(HashMap<Key, Value>),
}

impl Map {
    fn for_table(table: Table) -> Self {
        match table {
            Table::Nodes => Self::Hashed(HashMap::default()),
            Table::State | Table::Stale | Table::Meta => Self::Ordered(BTreeMap::new()),
        }
    }

    fn get(&self, key: &[u8]) -> Option<&Value> {
        match self {
            Self::Ordered(map) => map.get(key),
            Self::Hashed(map) => map.get(key),
        }
    }

    fn insert(&mut self, key: Key, value: Value) {
        match self {
            Self::Ordered(map) => map.insert(key, value),
            Self::Hashed(map) => map.insert(key, value),
        };
    }

    fn apply(&mut self, op: BatchOp) {
        match op.value {
            Some(value) => self.insert(Key::from_vec(op.key), value.into_boxed_slice()),
            None => self.remove(&op.key),
        }
    }

    fn remove(&mut self, key: &[u8]) {
        match self {
            Self::Ordered(map) => map.remove(key),
            Self::Hashed(map) => map.remove(key),
        };
    }

    fn scan(&self, start: &[u8], end: Option<&[u8]>, visit: &mut ScanVisitor<'_>) {
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        match self {
            Self::Ordered(map) => {
                for (key, value) in map.range::<[u8], _>((Bound::Included(start), upper)) {
                    if visit(key, value).is_break() {
                        break;
                    }
                }
            }
            Self::Hashed(map) => {
                let in_range = |key: &[u8]| key >= start && end.is_none_or(|end| key < end);
                let mut entries: Vec<(&Key, &Value)> = map.iter().filter(|(key, _)| in_range(key)).collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (key, value) in entries {
                    if visit(key, value).is_break() {
                        break;
                    }
                }
            }
        }
    }
}

/// Batches of at least this many ops apply their node-table ops on a second thread: below it,
/// starting the thread costs more than it saves (a commit of a few thousand changes is above).
const PARALLEL_OPS: usize = 8_192;

/// A backend that keeps everything in memory. A batch is applied under one write lock, so readers
/// see all of it or none of it.
pub struct MemoryBackend {
    tables: RwLock<[Map; Table::ALL.len()]>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self { tables: RwLock::new(Table::ALL.map(Map::for_table)) }
    }
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Backend for MemoryBackend {
    #[inline]
    fn read(&self, table: Table, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool, BackendError> {
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
        self.tables.read()[table.index()].scan(start, end, visit);
        Ok(())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), BackendError> {
        let ops = batch.into_ops();
        let mut tables = self.tables.write();
        if ops.len() < PARALLEL_OPS {
            for op in ops {
                tables[op.table.index()].apply(op);
            }
            return Ok(());
        }
        // Tables are independent and each keeps its ops in batch order (a later op on a key wins),
        // so a large batch applies the node table, usually half its ops, on a second core; the
        // write lock is held throughout, so readers still see all of it or none of it.
        let mut by_table: [Vec<BatchOp>; Table::ALL.len()] = Default::default();
        for op in ops {
            by_table[op.table.index()].push(op);
        }
        // Both arrays are in the order of `Table::ALL`, which the tables' indexes follow.
        let [state, nodes, stale, meta] = &mut *tables;
        let [state_ops, node_ops, stale_ops, meta_ops] = by_table;
        std::thread::scope(|scope| {
            scope.spawn(|| node_ops.into_iter().for_each(|op| nodes.apply(op)));
            for (map, ops) in [(state, state_ops), (stale, stale_ops), (meta, meta_ops)] {
                ops.into_iter().for_each(|op| map.apply(op));
            }
        });
        Ok(())
    }
}
