//! A durable backend on redb: one table per [`Table`], one write transaction per batch.
//!
//! redb commits are atomic and crash safe (copy-on-write pages with a checksummed, double-buffered
//! header), so a batch is either wholly in the file or not at all, even if the process dies in
//! the middle of [`Backend::write`]. Reads go through a read transaction that is refreshed after
//! every successful write, so a read costs one B-tree lookup and no transaction setup.

use super::{Backend, BackendError, ScanVisitor, Table, WriteBatch};
use parking_lot::{Mutex, RwLock};
use redb::{Database, ReadOnlyTable, ReadableDatabase, TableDefinition};
use std::ops::Bound;
use std::path::Path;

type Bytes = &'static [u8];

const fn definition(table: Table) -> TableDefinition<'static, Bytes, Bytes> {
    TableDefinition::new(table.name())
}

/// Failures a crash test can inject into the write path. The injected failure happens inside the
/// write transaction, after some of the batch has been written into it, so it exercises exactly
/// the path a real I/O error would take.
///
/// The plan can only be armed with the `test-support` feature; without it every write uses
/// `Never`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(not(feature = "test-support"), allow(unreachable_pub, dead_code))]
pub enum FaultPlan {
    /// No injected failure.
    #[default]
    Never,
    /// Fail after this many ops of the next batch have been inserted, before committing.
    FailAfterOps(usize),
    /// Insert the whole next batch, then fail instead of committing.
    FailBeforeCommit,
}

/// The read side: one read transaction with every table open.
struct Reader {
    tables: Vec<ReadOnlyTable<Bytes, Bytes>>,
}

/// A store on a redb file.
pub struct RedbBackend {
    database: Database,
    /// The read transaction of the latest commit, or `None` when it could not be opened after a
    /// commit; the next read opens it (and fails loudly if it still cannot).
    reader: RwLock<Option<Reader>>,
    fault: Mutex<FaultPlan>,
}

impl RedbBackend {
    /// Opens the store at `path`, creating the file if it does not exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, BackendError> {
        let database =
            Database::builder().set_cache_size(256 * 1024 * 1024).create(path.as_ref()).map_err(database_error)?;
        Self::from_database(database)
    }

    /// Opens an existing store at `path`; a missing file is an error rather than a new store.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, BackendError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(BackendError::Storage(format!("no store at {}", path.display())));
        }
        let database = Database::builder().set_cache_size(256 * 1024 * 1024).open(path).map_err(database_error)?;
        Self::from_database(database)
    }

    /// Opens a store over a custom redb storage backend; crash tests use this to stop writes
    /// from reaching the file at a chosen point.
    pub fn with_storage(storage: impl redb::StorageBackend) -> Result<Self, BackendError> {
        let database = Database::builder().create_with_backend(storage).map_err(database_error)?;
        Self::from_database(database)
    }

    fn from_database(database: Database) -> Result<Self, BackendError> {
        // Create every table once so that read transactions can always open them.
        let transaction = database.begin_write().map_err(storage)?;
        for table in Table::ALL {
            transaction.open_table(definition(table)).map_err(storage)?;
        }
        transaction.commit().map_err(storage)?;
        let reader = RwLock::new(Some(open_reader(&database)?));
        Ok(Self { database, reader, fault: Mutex::new(FaultPlan::Never) })
    }

    /// Arms an injected failure for the next batch written (and every later one until disarmed).
    #[cfg(feature = "test-support")]
    pub fn set_fault_plan(&self, plan: FaultPlan) {
        *self.fault.lock() = plan;
    }

    /// Runs `read` on the read transaction of the latest commit, under the shared lock. Only when
    /// a commit could not open that transaction is it opened here, under the exclusive lock; that
    /// first read then runs under it too, which is rare enough not to matter.
    fn with_reader<T>(&self, read: impl FnOnce(&Reader) -> Result<T, BackendError>) -> Result<T, BackendError> {
        if let Some(reader) = self.reader.read().as_ref() {
            return read(reader);
        }
        let mut slot = self.reader.write();
        if let Some(reader) = slot.as_ref() {
            return read(reader);
        }
        let reader = slot.insert(open_reader(&self.database)?);
        read(reader)
    }
}

fn open_reader(database: &Database) -> Result<Reader, BackendError> {
    let transaction = database.begin_read().map_err(storage)?;
    let tables = Table::ALL
        .iter()
        .map(|&table| transaction.open_table(definition(table)).map_err(storage))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Reader { tables })
}

impl Backend for RedbBackend {
    fn read(&self, table: Table, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool, BackendError> {
        self.with_reader(|reader| match reader.tables[table.index()].get(key).map_err(storage)? {
            Some(guard) => {
                visit(guard.value());
                Ok(true)
            }
            None => Ok(false),
        })
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<(), BackendError> {
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        self.with_reader(|reader| {
            let range =
                reader.tables[table.index()].range::<&[u8]>((Bound::Included(start), upper)).map_err(storage)?;
            for entry in range {
                let (key, value) = entry.map_err(storage)?;
                if visit(key.value(), value.value()).is_break() {
                    break;
                }
            }
            Ok(())
        })
    }

    fn write(&self, batch: WriteBatch) -> Result<(), BackendError> {
        let fault = *self.fault.lock();
        let transaction = self.database.begin_write().map_err(storage)?;
        {
            let mut tables = Table::ALL
                .iter()
                .map(|&table| transaction.open_table(definition(table)).map_err(storage))
                .collect::<Result<Vec<_>, _>>()?;
            for (applied, op) in batch.ops().iter().enumerate() {
                if fault == FaultPlan::FailAfterOps(applied) {
                    // Dropping the transaction without committing aborts it.
                    return Err(BackendError::Injected("write interrupted inside the transaction"));
                }
                let table = &mut tables[op.table.index()];
                match &op.value {
                    Some(value) => {
                        table.insert(op.key.as_slice(), value.as_slice()).map_err(storage)?;
                    }
                    None => {
                        table.remove(op.key.as_slice()).map_err(storage)?;
                    }
                }
            }
        }
        if matches!(fault, FaultPlan::FailBeforeCommit | FaultPlan::FailAfterOps(_)) {
            return Err(BackendError::Injected("commit interrupted before it was durable"));
        }
        transaction.commit().map_err(storage)?;
        // The batch is durable from here on, so this write has succeeded whatever happens next:
        // a read transaction that cannot be opened now is opened by the next read instead.
        *self.reader.write() = open_reader(&self.database).ok();
        Ok(())
    }
}

fn database_error(error: redb::DatabaseError) -> BackendError {
    match error {
        redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch => {
            BackendError::AlreadyOpen
        }
        redb::DatabaseError::UpgradeRequired(version) => {
            BackendError::Corrupt(format!("unsupported redb file format version {version}"))
        }
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(message)) => BackendError::Corrupt(message),
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) if io.kind() == std::io::ErrorKind::InvalidData => {
            BackendError::Corrupt(io.to_string())
        }
        other => BackendError::Storage(other.to_string()),
    }
}

fn storage(error: impl Into<redb::Error>) -> BackendError {
    match error.into() {
        redb::Error::Corrupted(message) => BackendError::Corrupt(message),
        redb::Error::DatabaseAlreadyOpen => BackendError::AlreadyOpen,
        other => BackendError::Storage(other.to_string()),
    }
}
