//! The storage seam: a small trait with one read, one ordered scan and one atomic batch write.
//!
//! A backend knows nothing about keys, engines or tries: it stores byte strings in a few named
//! tables and applies a [`WriteBatch`] atomically (all of it or none of it). Two implementations
//! live here: [`MemoryBackend`] for tests and benchmarks, and [`RedbBackend`], durable on redb with
//! one write transaction per batch.

mod memory;
mod redb_backend;

pub use memory::MemoryBackend;
#[cfg(feature = "test-support")]
pub use redb_backend::FaultPlan;
pub use redb_backend::RedbBackend;

use std::ops::ControlFlow;

/// A key and its value, copied out of a backend.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The visitor of [`Backend::scan`]: called per entry in key order, stops on `Break`.
pub type ScanVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// The tables of a store. Values and trie nodes share one backend so that one batch, and on redb
/// one write transaction, covers a whole block commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Encoded state key to value: what the engines read.
    State,
    /// Trie nodes keyed by tree, version and position.
    Nodes,
    /// Which trie nodes became unreachable at which height, for pruning.
    Stale,
    /// Store metadata: the head, root history and format version.
    Meta,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Self; 4] = [Self::State, Self::Nodes, Self::Stale, Self::Meta];

    /// The table's name on disk.
    pub const fn name(self) -> &'static str {
        match self {
            Self::State => "state",
            Self::Nodes => "nodes",
            Self::Stale => "stale",
            Self::Meta => "meta",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// One change in a batch: a put (`Some`) or a delete (`None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOp {
    /// The table written.
    pub table: Table,
    /// The key.
    pub key: Vec<u8>,
    /// The new value, or `None` to delete.
    pub value: Option<Vec<u8>>,
}

/// An ordered list of puts and deletes, applied atomically by [`Backend::write`]. A later op on
/// the same key wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp { table, key: key.into(), value: Some(value.into()) });
    }

    /// Adds a delete.
    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) {
        self.ops.push(BatchOp { table, key: key.into(), value: None });
    }

    /// The ops in order.
    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    /// Appends every op of `other`, after this batch's own.
    pub fn append(&mut self, mut other: WriteBatch) {
        self.ops.append(&mut other.ops);
    }

    /// The ops in order, to rewrite in place.
    pub(crate) fn ops_mut(&mut self) -> &mut [BatchOp] {
        &mut self.ops
    }

    /// The ops in order, by value.
    pub fn into_ops(self) -> Vec<BatchOp> {
        self.ops
    }

    /// Number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Why a backend operation failed. A failed [`Backend::write`] has changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The database file is already open, in this process or another one.
    #[error("the store is already open by another process or handle")]
    AlreadyOpen,
    /// The database file is not a store of this format, or is damaged beyond repair.
    #[error("the store file is corrupt or not a store: {0}")]
    Corrupt(String),
    /// An I/O or database failure.
    #[error("storage failure: {0}")]
    Storage(String),
    /// A state view over a witness was asked for something the witness does not prove: a trie
    /// node it lacks or a code blob it does not carry. Never answered with a default.
    #[error("the witness does not prove {0}")]
    Unproven(String),
    /// A failure injected by a test through [`FaultPlan`].
    #[error("injected fault: {0}")]
    Injected(&'static str),
}

/// A key-value store with a few tables, ordered scans and atomic batches.
///
/// Reads take a visitor instead of returning an owned value so that the hot path (a u64 slot
/// read) allocates nothing: the visitor decodes straight from the backend's own buffer.
pub trait Backend: Send + Sync {
    /// Calls `visit` with the value of `key` in `table` if there is one; returns whether there was.
    /// As for [`Backend::scan`], the visitor must not call back into the backend.
    fn read(&self, table: Table, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool, BackendError>;

    /// Calls `visit` for every entry of `table` with `start <= key < end` (no upper bound when
    /// `end` is `None`) in ascending key order, until it returns [`ControlFlow::Break`].
    ///
    /// Implementations may hold a lock while they call `visit` (both of this crate's do), so the
    /// visitor must not call back into the backend.
    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<(), BackendError>;

    /// Applies `batch` atomically: afterwards either every op is visible, or (on error) none is.
    fn write(&self, batch: WriteBatch) -> Result<(), BackendError>;
}

/// Conveniences over [`Backend`] that allocate; kept out of the trait so implementations stay
/// small.
pub trait BackendExt: Backend {
    /// The value of `key` in `table`, copied out.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        let mut value = None;
        self.read(table, key, &mut |bytes| value = Some(bytes.to_vec()))?;
        Ok(value)
    }

    /// Every entry of `table` whose key starts with `prefix`, in order.
    fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Vec<Entry>, BackendError> {
        let mut entries = Vec::new();
        let end = prefix_end(prefix);
        self.scan(table, prefix, end.as_deref(), &mut |key, value| {
            entries.push((key.to_vec(), value.to_vec()));
            ControlFlow::Continue(())
        })?;
        Ok(entries)
    }
}

impl<B: Backend + ?Sized> BackendExt for B {}

/// The smallest key greater than every key starting with `prefix`, or `None` when no such key
/// exists (the prefix is all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
