//! The store: committed state on a backend, its root history, block commits and proofs.
//!
//! A commit turns one [`Overlay`] into one [`WriteBatch`]: the value changes, the new trie nodes,
//! the stale-node records, the pruning of nodes no retained root needs, and the new head and root
//! record. The backend applies it atomically, so after a crash the store reopens at the previous
//! or the new root and never in between.
//!
//! Each commit also records, in the same batch, how to undo it: the values its keys had before
//! and the trie nodes it created. [`Store::rewind_with_labels`] applies those records to go back
//! to an earlier retained height in one batch, so a crash leaves the store at the later or at the
//! earlier height and never in between.

use crate::backend::{Backend, BackendError, BackendExt, MemoryBackend, RedbBackend, Table, WriteBatch};
use crate::commitment::{
    Placement, account_key, account_leaf, decode_storage_leaf, encode_account, placement, storage_leaf,
};
use crate::key::{Engine, KeyError, KeyLayout, Namespace, PREFIX_LEN};
use crate::overlay::Overlay;
use crate::proof::{AccountProof, KeyProof, NamespaceProof, StorageProof};
use crate::record::AccountRecord;
use crate::trie::node::{ACCOUNT_TREE, ChildRef, LeafValue, NodeSource, TreeId};
use crate::trie::update::{Change, TreeWriter};
use crate::trie::{TrieError, find_leaves, mark_tree_stale, prune, prune_replaced, root_hash, walk};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_trie::{KECCAK_EMPTY, Nibbles, TrieAccount};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, LazyLock};

const FORMAT_KEY: &[u8] = b"format";
const FORMAT_VALUE: &[u8] = b"xstate-kv/2";
const HEAD_KEY: &[u8] = b"head";
const ROOT_PREFIX: &[u8] = b"root/";
const UNDO_PREFIX: &[u8] = b"undo/";

/// How a store is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// How many of the latest roots stay provable (at least 1).
    pub retained_roots: u64,
    /// Whether each commit keeps an undo record, so that [`Store::rewind_with_labels`] can go
    /// back to any retained height (ADR 0014). It costs every commit a read of each written key's
    /// old value; a store that never rewinds leaves it off and pays nothing.
    pub rewindable: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { retained_roots: 128, rewindable: false }
    }
}

/// The result of a commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The height of the new state.
    pub height: u64,
    /// The new state root.
    pub root: B256,
}

/// Why a store operation failed. A failed commit has changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A key is invalid.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The stored data contradicts itself.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The overlay was opened on another height or another store.
    #[error("the overlay was opened at height {overlay}, but the store is at height {store}")]
    StaleOverlay {
        /// Height the overlay was opened at.
        overlay: u64,
        /// Height of the store.
        store: u64,
    },
    /// The overlay was opened before a rewind: the state it was opened on is gone, even if the
    /// store is at the same height again.
    #[error("the overlay was opened at height {height} before the store was rewound; open a new one")]
    OverlayBeforeRewind {
        /// Height the overlay was opened at.
        height: u64,
    },
    /// The overlay still has an open checkpoint.
    #[error("cannot commit an overlay with an open checkpoint")]
    OpenCheckpoint,
    /// A witnessed commit was asked of an overlay that did not record its reads.
    #[error("a witnessed commit needs an overlay from Store::begin_recording, which records the block's reads")]
    NotRecording,
    /// A proof was asked for a code blob or the runtime namespace, which the trie does not hold:
    /// code is committed through the code hashes of the accounts and modules that run it.
    #[error("code blobs are not in the trie; prove the account or module whose code hash names the blob")]
    NotCommitted,
    /// A stored account leaf is not an account's RLP.
    #[error("corrupt store: account leaf does not decode: {0}")]
    CorruptAccount(#[source] alloy_rlp::Error),
    /// A rewind was asked for a height the store cannot go back to.
    #[error("cannot rewind to height {target}: the store can go back to heights {oldest}..={latest}")]
    CannotRewind {
        /// Height asked for.
        target: u64,
        /// Oldest retained height.
        oldest: u64,
        /// Latest height.
        latest: u64,
    },
    /// A rewind was prepared for another latest height than the store's: a commit came between.
    #[error("the rewind was prepared at height {expected}, but the store is at height {store}")]
    StaleRewind {
        /// Height the caller expected.
        expected: u64,
        /// Height of the store.
        store: u64,
    },
    /// No root is retained for that height.
    #[error("height {height} is not provable: retained heights are {oldest}..={latest}")]
    HeightNotRetained {
        /// Height asked for.
        height: u64,
        /// Oldest retained height.
        oldest: u64,
        /// Latest height.
        latest: u64,
    },
}

impl From<TrieError> for StoreError {
    fn from(error: TrieError) -> Self {
        match error {
            TrieError::Backend(error) => Self::Backend(error),
            TrieError::Corrupt(detail) => Self::Corrupt(detail),
        }
    }
}

/// The work of updating one namespace's storage trie and account leaf in a commit.
struct SubtreeJob<'a> {
    account_key: Nibbles,
    prefix: &'a TreeId,
    wiped: bool,
    old_leaf: Option<LeafValue>,
    writes: &'a [(&'a [u8], Option<&'a [u8]>)],
}

/// Below this many writes a commit updates its sub-tries on the calling thread: spawning workers
/// would cost more than it saves.
const PARALLEL_WRITES: usize = 256;

/// The number of cores, asked once: `available_parallelism` may read the cgroup files on every
/// call, which is too slow for a path every commit takes.
static CORES: LazyLock<usize> = LazyLock::new(|| std::thread::available_parallelism().map_or(1, usize::from));

impl SubtreeJob<'_> {
    /// How much work the job is, for splitting jobs evenly between workers. The one is for the
    /// sub-root lookup and global change that even a wipe without writes costs.
    fn size(&self) -> usize {
        self.writes.len() + 1
    }
}

/// Runs `work` over `jobs`, on every available core when the jobs are large enough, and returns
/// the results in job order. The calling thread takes the first share of the jobs itself.
fn run_jobs<R: Send>(
    jobs: &[SubtreeJob<'_>],
    work: impl Fn(&SubtreeJob<'_>) -> Result<R, StoreError> + Sync,
) -> Result<Vec<R>, StoreError> {
    let total: usize = jobs.iter().map(SubtreeJob::size).sum();
    if total < PARALLEL_WRITES {
        return jobs.iter().map(&work).collect();
    }
    let chunks = split_jobs(jobs, total, *CORES);
    let Some((first, rest)) = chunks.split_first() else {
        return Ok(Vec::new());
    };
    if rest.is_empty() {
        return first.iter().map(&work).collect();
    }
    let work = &work;
    let run = move |chunk: &[SubtreeJob<'_>]| chunk.iter().map(work).collect::<Result<Vec<R>, StoreError>>();
    let parts: Vec<Result<Vec<R>, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = rest.iter().map(|chunk| scope.spawn(move || run(chunk))).collect();
        let mut parts = Vec::with_capacity(chunks.len());
        parts.push(run(first));
        parts.extend(handles.into_iter().map(|handle| {
            handle.join().unwrap_or_else(|_| Err(StoreError::Corrupt("a commit worker panicked".into())))
        }));
        parts
    });
    let mut results = Vec::with_capacity(jobs.len());
    for part in parts {
        results.extend(part?);
    }
    Ok(results)
}

/// Splits `jobs` (of summed size `total`) into at most `workers` contiguous, non-empty chunks of
/// roughly equal size, so that concatenating the chunks' results keeps the job order.
fn split_jobs<'s, 'a>(jobs: &'s [SubtreeJob<'a>], total: usize, workers: usize) -> Vec<&'s [SubtreeJob<'a>]> {
    let workers = workers.clamp(1, jobs.len().max(1));
    let mut chunks = Vec::with_capacity(workers);
    let mut start = 0;
    let mut taken = 0;
    for (index, job) in jobs.iter().enumerate() {
        taken += job.size();
        // A chunk closes once it reaches its share; the last chunk takes whatever is left.
        if chunks.len() + 1 < workers && taken * workers >= total * (chunks.len() + 1) {
            chunks.push(&jobs[start..=index]);
            start = index + 1;
        }
    }
    if start < jobs.len() {
        chunks.push(&jobs[start..]);
    }
    chunks
}

/// One namespace's part of an overlay: whether it was wiped, and its writes in key order.
type NamespaceChanges<'a> = (bool, Vec<(&'a [u8], Option<&'a [u8]>)>);

#[derive(Clone, Copy, Debug)]
struct Head {
    height: u64,
    /// The oldest height whose nodes are still kept. Stored with the head, so that reopening the
    /// store with more retained roots than it was pruned to cannot make pruned heights look
    /// provable (they would fail as `Corrupt` on the first missing node).
    oldest: u64,
    root: Option<ChildRef>,
}

/// Committed state with one root over every engine: Ethereum's state root, extended with the
/// WASM namespaces.
pub struct Store {
    backend: Arc<dyn Backend>,
    config: StoreConfig,
    head: Mutex<Head>,
    /// How many rewinds this store has made since it was opened (changed under the head's lock):
    /// an overlay opened before one cannot be committed after it.
    rewinds: std::sync::atomic::AtomicU64,
}

impl Store {
    /// Opens the store kept in `backend`; an empty backend is an empty store at height 0.
    pub fn open(backend: Arc<dyn Backend>, config: StoreConfig) -> Result<Self, StoreError> {
        let config = StoreConfig { retained_roots: config.retained_roots.max(1), ..config };
        let head = match backend.get(Table::Meta, FORMAT_KEY)? {
            Some(format) if format == FORMAT_VALUE => {
                let head = backend
                    .get(Table::Meta, HEAD_KEY)?
                    .ok_or_else(|| StoreError::Corrupt("store has no head record".into()))?;
                decode_head(&head)?
            }
            Some(format) => {
                return Err(StoreError::Corrupt(format!(
                    "not a store of format {} (found {:?}); a store of an older format must be created anew",
                    String::from_utf8_lossy(FORMAT_VALUE),
                    String::from_utf8_lossy(&format)
                )));
            }
            None => {
                let mut any = false;
                backend.scan(Table::Meta, &[], None, &mut |_, _| {
                    any = true;
                    ControlFlow::Break(())
                })?;
                if any {
                    return Err(StoreError::Corrupt("store metadata without a format record".into()));
                }
                let head = Head { height: 0, oldest: 0, root: None };
                let mut batch = WriteBatch::new();
                batch.put(Table::Meta, FORMAT_KEY, FORMAT_VALUE);
                batch.put(Table::Meta, HEAD_KEY, encode_head(&head));
                batch.put(Table::Meta, root_record_key(0), encode_root(None));
                backend.write(batch)?;
                head
            }
        };
        Ok(Self { backend, config, head: Mutex::new(head), rewinds: std::sync::atomic::AtomicU64::new(0) })
    }

    /// A fresh in-memory store.
    pub fn in_memory() -> Self {
        Self::in_memory_with(StoreConfig::default())
    }

    /// A fresh in-memory store with `config`.
    pub fn in_memory_with(config: StoreConfig) -> Self {
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        Self::open(backend, config).expect("an empty in-memory backend always opens")
    }

    /// Opens (or creates) a store in the redb file at `path`.
    pub fn open_redb(path: impl AsRef<Path>, config: StoreConfig) -> Result<Self, StoreError> {
        Self::open(Arc::new(RedbBackend::open(path)?), config)
    }

    /// The backend, for tests that corrupt or inspect what is stored.
    #[cfg(feature = "test-support")]
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The height of the latest commit (0 for a new store).
    pub fn height(&self) -> u64 {
        self.head.lock().height
    }

    /// The latest state root.
    pub fn root(&self) -> B256 {
        root_hash(self.head.lock().root)
    }

    /// The state root at `height`, if it is retained.
    pub fn root_at(&self, height: u64) -> Result<B256, StoreError> {
        Ok(root_hash(self.root_ref_at(&self.head.lock(), height)?))
    }

    /// The oldest height whose root is still provable.
    pub fn oldest_provable(&self) -> u64 {
        let head = self.head.lock();
        self.oldest_retained(&head, head.height)
    }

    /// A label the store keeps outside the state (not committed to by the root), such as the
    /// chain id a runtime was created with.
    pub fn label(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.backend.get(Table::Meta, &label_key(name))?)
    }

    /// Sets a label (see [`Store::label`]), durably and on its own.
    pub fn set_label(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write_labels(&[(name.to_owned(), Some(value.to_vec()))])
    }

    /// Sets (`Some`) and removes (`None`) labels in one atomic batch, outside any commit.
    pub fn write_labels(&self, labels: &[(String, Option<Vec<u8>>)]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        push_labels(&mut batch, labels);
        Ok(self.backend.write(batch)?)
    }

    /// The committed value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.backend.get(Table::State, key)?)
    }

    /// Opens an overlay on the latest committed state.
    pub fn begin(&self) -> Overlay {
        let head = self.head.lock();
        let rewinds = self.rewinds.load(std::sync::atomic::Ordering::Relaxed);
        Overlay::after_rewinds(Arc::clone(&self.backend), head.height, rewinds)
    }

    /// A read-only view of the state at retained `height`, read through that height's trie (not
    /// the table of latest values), that records every node, key and code blob read through it:
    /// run a block's transactions over [`StateView::overlay`], then [`StateView::root_after`] and
    /// [`StateView::witness`] give the root it commits to and its witness. The store's own
    /// overlays never record, so a block that is not asked for a witness pays nothing for it.
    pub fn view_at(&self, height: u64) -> Result<crate::witness::StateView, StoreError> {
        let head = self.head.lock();
        let root = self.root_ref_at(&head, height)?;
        Ok(crate::witness::StateView::over_store(Arc::clone(&self.backend), root, height, Arc::default()))
    }

    /// Commits `overlay` as the next height and returns the new root. On error nothing changed.
    pub fn commit(&self, overlay: &Overlay) -> Result<CommitInfo, StoreError> {
        self.commit_with_labels(overlay, |_| Vec::new())
    }

    /// Commits `overlay` like [`Store::commit`], and in the same atomic batch the labels
    /// `labels` returns once it knows the new height and root: records a chain keeps beside the
    /// state, outside the committed trie (headers naming the root, receipts, indexes). A crash
    /// leaves both or neither. `labels` runs while the commit holds the store and must not call
    /// back into it.
    pub fn commit_with_labels(
        &self,
        overlay: &Overlay,
        labels: impl FnOnce(&CommitInfo) -> Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<CommitInfo, StoreError> {
        self.commit_recorded(overlay, None, |info, _| labels(info)).map(|(info, _)| info)
    }

    /// Opens an overlay on the latest committed state that records every committed key read
    /// through it, present or absent, for [`Store::commit_witnessed`]: the block executed on it
    /// gets its witness from its own execution, without running again. Recording costs a set
    /// insertion per distinct key read; [`Store::begin`]'s overlays record nothing.
    pub fn begin_recording(&self) -> Overlay {
        self.begin().recording()
    }

    /// Commits a recording overlay ([`Store::begin_recording`]) like
    /// [`Store::commit_with_labels`], and returns with it the block's witness: the parent
    /// state's trie nodes the commit read to update the root (the paths of the written keys
    /// and the siblings that collapsing branches fold in), those on the paths of the keys the
    /// block only read, the code blobs it read or ran, and every key it read or wrote. It is
    /// what [`StateView::witness`](crate::StateView::witness) gives for the same block run over
    /// [`Store::view_at`] the parent height. `labels` gets the witness too, so that a chain can
    /// keep it in the commit's own batch. An overlay that does not record is refused with
    /// [`StoreError::NotRecording`], and nothing is committed.
    pub fn commit_witnessed(
        &self,
        overlay: &Overlay,
        labels: impl FnOnce(&CommitInfo, &crate::Witness) -> Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<(CommitInfo, crate::Witness), StoreError> {
        let recorder = Arc::new(crate::witness::Recorder::default());
        let (info, witness) = self.commit_recorded(overlay, Some(&recorder), |info, witness| {
            labels(info, witness.unwrap_or(&crate::Witness::default()))
        })?;
        Ok((info, witness.unwrap_or_default()))
    }

    /// The commit behind [`Store::commit_with_labels`] and, with a `recorder`,
    /// [`Store::commit_witnessed`].
    fn commit_recorded(
        &self,
        overlay: &Overlay,
        recorder: Option<&Arc<crate::witness::Recorder>>,
        labels: impl FnOnce(&CommitInfo, Option<&crate::Witness>) -> Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<(CommitInfo, Option<crate::Witness>), StoreError> {
        let mut head = self.head.lock();
        if overlay.base_height() != head.height || !Arc::ptr_eq(overlay.committed(), &self.backend) {
            return Err(StoreError::StaleOverlay { overlay: overlay.base_height(), store: head.height });
        }
        if overlay.base_rewinds() != self.rewinds.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::OverlayBeforeRewind { height: overlay.base_height() });
        }
        if overlay.has_open_checkpoint() {
            return Err(StoreError::OpenCheckpoint);
        }
        let height = head.height + 1;
        let backend = self.backend.as_ref();
        let (mut batch, root, witness) = match recorder {
            None => {
                let (batch, root) = build_commit(backend, head.root, height, overlay, CommitMode::Store(backend))?;
                (batch, root, None)
            }
            Some(recorder) => {
                let reads = overlay.reads().ok_or(StoreError::NotRecording)?;
                let recording = crate::witness::RecordingBackend { backend, recorder };
                let (batch, root) = build_commit(&recording, head.root, height, overlay, CommitMode::Store(backend))?;
                // The keys the block read, and the records the commit read from the table of
                // latest values to build account leaves, lie on paths the commit may not have
                // walked (a key read and never written); a view of the parent state over the same
                // recorder walks them, answering the nodes the commit already read from the record.
                let view = crate::witness::StateView::over_store(
                    Arc::clone(&self.backend),
                    head.root,
                    head.height,
                    Arc::clone(recorder),
                );
                let mut keys = reads.sorted();
                keys.extend(recorder.keys());
                view.read_keys(&keys)?;
                (batch, root, Some(view.witness(overlay)))
            }
        };

        let oldest = self.oldest_retained(&head, height);
        if self.config.rewindable && height > oldest {
            // Only a commit above the oldest retained height can be undone: undoing it goes back
            // to a height that is still retained.
            let undo = undo_record(backend, &batch)?;
            batch.put(Table::Meta, undo_record_key(height), undo);
        }
        let new_head = Head { height, oldest, root };
        batch.put(Table::Meta, HEAD_KEY, encode_head(&new_head));
        batch.put(Table::Meta, root_record_key(height), encode_root(root));

        prune(backend, oldest, &mut batch)?;
        if oldest == height {
            // Only the new root is retained, so the nodes this very commit replaces are needed by
            // no retained root either; they are in this batch's stale records, which `prune`
            // cannot see in the backend yet.
            prune_replaced(&mut batch);
        }
        // Root records and undo records that left the retained window.
        let mut expired = Vec::new();
        backend.scan(Table::Meta, &root_record_key(0), Some(&root_record_key(oldest)), &mut |key, _| {
            expired.push(key.to_vec());
            ControlFlow::Continue(())
        })?;
        // The undo record of height `h` goes back to `h - 1`, so the oldest one kept is the one
        // of `oldest + 1`.
        backend.scan(
            Table::Meta,
            &undo_record_key(0),
            Some(&undo_record_key(oldest.saturating_add(1))),
            &mut |key, _| {
                expired.push(key.to_vec());
                ControlFlow::Continue(())
            },
        )?;
        for key in expired {
            batch.delete(Table::Meta, key);
        }

        let info = CommitInfo { height, root: root_hash(root) };
        push_labels(&mut batch, &labels(&info, witness.as_ref()));
        backend.write(batch)?;
        *head = new_head;
        Ok((info, witness))
    }

    /// Goes back to the retained height `target`, as if the commits after it had never been
    /// made: the values, the trie nodes, the stale records and the root history are those the
    /// store had at `target`, the head is `target`, and in the same atomic batch the labels
    /// `labels` are set or removed (a chain removes the records of the blocks it drops). A crash
    /// leaves the store at `latest` or at `target`, never in between.
    ///
    /// `latest` is the height the caller prepared `labels` for; the rewind is refused with
    /// [`StoreError::StaleRewind`] when a commit came between. A `target` below the oldest
    /// retained height (or above the latest) is refused with [`StoreError::CannotRewind`], and
    /// so is a `target` whose later commits carry no undo record. Rewinding to the latest height
    /// changes only the labels. An overlay opened before a rewind is refused by a commit after it
    /// ([`StoreError::OverlayBeforeRewind`]).
    pub fn rewind_with_labels(
        &self,
        latest: u64,
        target: u64,
        labels: &[(String, Option<Vec<u8>>)],
    ) -> Result<CommitInfo, StoreError> {
        let mut head = self.head.lock();
        if head.height != latest {
            return Err(StoreError::StaleRewind { expected: latest, store: head.height });
        }
        let oldest = self.oldest_retained(&head, head.height);
        let refused = || StoreError::CannotRewind { target, oldest, latest: head.height };
        if target > head.height || target < oldest {
            return Err(refused());
        }
        let root = self.root_ref_at(&head, target)?;
        let backend = self.backend.as_ref();
        let mut batch = WriteBatch::new();
        // The value a key had at `target` is the one the undo record of the first commit after
        // `target` that wrote it holds; later records are overwritten on the way down.
        let mut values: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for height in (target + 1..=head.height).rev() {
            let record = backend.get(Table::Meta, &undo_record_key(height))?.ok_or_else(refused)?;
            let undo = decode_undo(&record)?;
            values.extend(undo.values);
            for node in undo.created {
                batch.delete(Table::Nodes, node);
            }
            batch.delete(Table::Meta, undo_record_key(height));
            batch.delete(Table::Meta, root_record_key(height));
        }
        for (key, value) in values {
            match value {
                Some(value) => batch.put(Table::State, key, value),
                None => batch.delete(Table::State, key),
            }
        }
        // Nodes that became stale after `target` are live again at `target`.
        let mut stale = Vec::new();
        backend.scan(Table::Stale, &(target + 1).to_be_bytes(), None, &mut |key, _| {
            stale.push(key.to_vec());
            ControlFlow::Continue(())
        })?;
        for key in stale {
            batch.delete(Table::Stale, key);
        }
        let new_head = Head { height: target, oldest: head.oldest, root };
        batch.put(Table::Meta, HEAD_KEY, encode_head(&new_head));
        push_labels(&mut batch, labels);
        backend.write(batch)?;
        *head = new_head;
        self.rewinds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(CommitInfo { height: target, root: root_hash(root) })
    }

    /// The oldest height retained once `latest` is committed: the setting's window, but never
    /// below what earlier commits already pruned.
    fn oldest_retained(&self, head: &Head, latest: u64) -> u64 {
        (latest + 1).saturating_sub(self.config.retained_roots).max(head.oldest)
    }

    fn root_ref_at(&self, head: &Head, height: u64) -> Result<Option<ChildRef>, StoreError> {
        let oldest = self.oldest_retained(head, head.height);
        if height > head.height || height < oldest {
            return Err(StoreError::HeightNotRetained { height, oldest, latest: head.height });
        }
        if height == head.height {
            return Ok(head.root);
        }
        let record = self
            .backend
            .get(Table::Meta, &root_record_key(height))?
            .ok_or_else(|| StoreError::Corrupt(format!("no root record for height {height}")))?;
        decode_root(&record)
    }

    /// The account leaf of `account_key` at the retained root `root`, with its proof path.
    fn walk_account(
        &self,
        root: Option<ChildRef>,
        account_key: B256,
    ) -> Result<(Vec<Bytes>, Option<(TrieAccount, Option<ChildRef>)>), StoreError> {
        let (nodes, leaf) = walk(self.backend.as_ref(), &ACCOUNT_TREE, root, &Nibbles::unpack(account_key))?;
        let account = match leaf {
            None => None,
            Some(leaf) => {
                let account: TrieAccount =
                    alloy_rlp::Decodable::decode(&mut leaf.value.as_ref()).map_err(StoreError::CorruptAccount)?;
                if account.storage_root != root_hash(leaf.link) {
                    return Err(StoreError::Corrupt("account leaf's storage root differs from its link".into()));
                }
                Some((account, leaf.link))
            }
        };
        Ok((nodes, account))
    }

    /// A proof of `key`'s value (or absence) at `height` (the latest when `None`).
    pub fn prove(&self, key: &[u8], height: Option<u64>) -> Result<KeyProof, StoreError> {
        self.prove_value(key, height).map(|(proof, _)| proof)
    }

    /// A proof of `key` at `height` (the latest when `None`), with the value the key had then,
    /// read from the trie itself (so older heights, whose values the state table no longer
    /// holds, are answered too). Code blobs are not in the trie and have no proof.
    pub fn prove_value(&self, key: &[u8], height: Option<u64>) -> Result<(KeyProof, Option<Vec<u8>>), StoreError> {
        let layout = KeyLayout::of(key)?;
        let placement = placement(key)?;
        let namespace = Namespace::from_prefix(key)?;
        let account_key = account_key(&namespace).filter(|_| placement != Placement::CodeBlob);
        let account_key = account_key.ok_or(StoreError::NotCommitted)?;
        let head = self.head.lock();
        let root = self.root_ref_at(&head, height.unwrap_or(head.height))?;
        let (account_proof, found) = self.walk_account(root, account_key)?;
        let Some((account, storage)) = found else {
            return Ok((KeyProof { account_proof, account: None, storage_proof: Vec::new() }, None));
        };
        let (storage_proof, value) = match placement {
            Placement::CodeBlob => return Err(StoreError::NotCommitted),
            Placement::AccountLeaf => {
                // An empty account's fields are what an account without a record but with storage
                // commits to; the trie cannot tell a record of zeros from no record, so neither
                // can its answer (see `verify`).
                let record =
                    AccountRecord { nonce: account.nonce, balance: account.balance, code_hash: account.code_hash };
                let empty = record.nonce == 0 && record.balance.is_zero() && record.code_hash == KECCAK_EMPTY;
                (Vec::new(), (!empty).then(|| record.encode().to_vec()))
            }
            Placement::Storage(slot) => {
                let (nodes, leaf) = walk(self.backend.as_ref(), namespace.prefix(), storage, &Nibbles::unpack(slot))?;
                let value = leaf
                    .map(|leaf| decode_storage_leaf(layout, &leaf.value))
                    .transpose()
                    .map_err(|error| StoreError::Corrupt(format!("storage leaf does not decode: {error}")))?;
                (nodes, value)
            }
        };
        Ok((KeyProof { account_proof, account: Some(account), storage_proof }, value))
    }

    /// A namespace's storage root at `height` (the latest when `None`) with its proof; the
    /// storage root is `None` when the namespace has no account leaf.
    pub fn prove_namespace(
        &self,
        namespace: &Namespace,
        height: Option<u64>,
    ) -> Result<(Option<B256>, NamespaceProof), StoreError> {
        let account_key = account_key(namespace).ok_or(StoreError::NotCommitted)?;
        let head = self.head.lock();
        let root = self.root_ref_at(&head, height.unwrap_or(head.height))?;
        let (account_proof, found) = self.walk_account(root, account_key)?;
        let account = found.map(|(account, _)| account);
        Ok((account.map(|account| account.storage_root), NamespaceProof { account_proof, account }))
    }

    /// The EIP-1186 proof of `address` and `slots` at `height` (the latest when `None`): what
    /// `eth_getProof` returns. Reads only the nodes on the proven paths.
    pub fn eip1186_proof(
        &self,
        address: Address,
        slots: &[B256],
        height: Option<u64>,
    ) -> Result<AccountProof, StoreError> {
        let namespace = Namespace::evm(address);
        let head = self.head.lock();
        let root = self.root_ref_at(&head, height.unwrap_or(head.height))?;
        let (account_proof, found) = self.walk_account(root, keccak256(address))?;
        let storage_root = found.as_ref().and_then(|(_, link)| *link);
        let mut storage = Vec::with_capacity(slots.len());
        for slot in slots {
            let (proof, leaf) =
                walk(self.backend.as_ref(), namespace.prefix(), storage_root, &Nibbles::unpack(keccak256(slot)))?;
            let value = leaf
                .map(|leaf| alloy_rlp::Decodable::decode(&mut leaf.value.as_ref()))
                .transpose()
                .map_err(|error| StoreError::Corrupt(format!("storage leaf does not decode: {error}")))?
                .unwrap_or(U256::ZERO);
            storage.push(StorageProof { key: *slot, value, proof });
        }
        Ok(AccountProof { address, account: found.map(|(account, _)| account), account_proof, storage })
    }
}

/// What a commit's batch must hold besides the new trie.
#[derive(Clone, Copy)]
pub(crate) enum CommitMode<'a> {
    /// Everything the store applies: also the deletion of a wiped namespace's old values and the
    /// stale records of its old storage trie (which needs every node of that trie), read through
    /// the backend given here: the store's own, so that a recording commit, whose trie reads go
    /// through a recorder, records only what the new root needs.
    Store(&'a dyn Backend),
    /// Only what the new root needs: a view that never writes (a past root, a witness) skips
    /// the clean-up of wiped namespaces, so neither reads nor a witness need the old sub-trie.
    RootOnly,
}

/// The batch of a commit of `overlay` onto the tree rooted at `root` as version `height`, and the
/// new root: the value changes, the new trie nodes and the stale records, with no head, root
/// record, pruning or label (the caller adds what it keeps). Every committed read goes through
/// `backend`, so a state view that answers from a witness or an older root computes the root of
/// a block it will never write.
pub(crate) fn build_commit(
    backend: &dyn Backend,
    root: Option<ChildRef>,
    height: u64,
    overlay: &Overlay,
    mode: CommitMode<'_>,
) -> Result<(WriteBatch, Option<ChildRef>), StoreError> {
    let mut batch = WriteBatch::new();
    // Group the overlay by namespace; a wiped namespace may have no writes at all. Code blobs
    // are stored but not in the trie: their hashes in account and module leaves commit them.
    let mut namespaces: BTreeMap<TreeId, NamespaceChanges<'_>> = BTreeMap::new();
    for prefix in overlay.wiped() {
        namespaces.entry(*prefix).or_default().0 = true;
    }
    for (key, value) in overlay.writes() {
        if key[0] == Engine::Runtime.tag() {
            match value {
                Some(value) => batch.put(Table::State, key.as_slice(), value.as_ref()),
                None => batch.delete(Table::State, key.as_slice()),
            }
            continue;
        }
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&key[..PREFIX_LEN]);
        namespaces.entry(prefix).or_default().1.push((key.as_slice(), value.as_deref()));
    }

    // Find every touched namespace's current account leaf in one descent of the account
    // trie, whose nodes stay cached for the account-trie update below.
    let mut accounts = NodeSource::new(backend, ACCOUNT_TREE, true);
    let mut by_key: Vec<(Nibbles, TreeId)> = Vec::with_capacity(namespaces.len());
    for prefix in namespaces.keys() {
        let namespace = Namespace::from_prefix(prefix)?;
        if let Some(key) = account_key(&namespace) {
            by_key.push((Nibbles::unpack(key), *prefix));
        }
    }
    by_key.sort_unstable();
    let keys: Vec<Nibbles> = by_key.iter().map(|(key, _)| *key).collect();
    let leaves = find_leaves(&mut accounts, root, &keys)?;

    // Storage tries are independent of each other, so large commits update them on every
    // core; each worker writes its own batch.
    let mut jobs = Vec::with_capacity(by_key.len());
    for ((account_key, prefix), old_leaf) in by_key.iter().zip(leaves) {
        let (wiped, writes) = &namespaces[prefix];
        jobs.push(SubtreeJob { account_key: *account_key, prefix, wiped: *wiped, old_leaf, writes });
    }
    let results = run_jobs(&jobs, |job| update_namespace(backend, job, height, mode))?;
    let mut account_changes = Vec::with_capacity(results.len());
    for (change, part) in results {
        batch.append(part);
        account_changes.extend(change);
    }
    let root = TreeWriter::new(&mut accounts, height, &mut batch).apply(root, &account_changes)?;
    Ok((batch, root))
}

/// Writes one namespace's new values and storage trie into a batch of its own and returns the
/// account-trie change for its new account leaf, if the leaf changed.
fn update_namespace(
    backend: &dyn Backend,
    job: &SubtreeJob<'_>,
    height: u64,
    mode: CommitMode<'_>,
) -> Result<(Option<Change>, WriteBatch), StoreError> {
    let mut batch = WriteBatch::new();
    let old_storage = job.old_leaf.as_ref().and_then(|leaf| leaf.link);
    // A wiped namespace is rebuilt from nothing; its old leaf still decides below whether
    // the account trie changes.
    let base = if job.wiped { None } else { old_storage };
    if job.wiped
        && let CommitMode::Store(cleanup) = mode
    {
        delete_namespace(cleanup, job, old_storage, height, &mut batch)?;
    }
    let mut changes = Vec::with_capacity(job.writes.len());
    for &(key, value) in job.writes {
        match value {
            Some(value) => batch.put(Table::State, key, value),
            None => batch.delete(Table::State, key),
        }
        if let Placement::Storage(slot) = placement(key)? {
            let layout = KeyLayout::of(key)?;
            let leaf = value.and_then(|value| storage_leaf(layout, value));
            changes.push(Change {
                key: Nibbles::unpack(slot),
                value: leaf.map(|leaf| LeafValue { value: Bytes::from(leaf), link: None }),
            });
        }
    }
    changes.sort_unstable_by_key(|change| change.key);
    let mut source = NodeSource::new(backend, *job.prefix, false);
    let storage = TreeWriter::new(&mut source, height, &mut batch).apply(base, &changes)?;

    let namespace = Namespace::from_prefix(job.prefix)?;
    let leaf = new_account(backend, job, &namespace, storage)?
        .map(|account| LeafValue { value: Bytes::from(encode_account(&account)), link: storage });
    // A reference names a node version, so a wiped namespace rebuilt to the same contents
    // still changes its leaf (its link moves to the new nodes), while a wipe of a namespace
    // that had no entries and gets none changes nothing.
    let change = (leaf != job.old_leaf).then_some(Change { key: job.account_key, value: leaf });
    Ok((change, batch))
}

/// The fields of the namespace's account leaf after the job, or `None` when it has no leaf: a
/// WASM namespace has one while its storage trie is not empty, an EVM account also while its
/// record exists.
fn new_account(
    backend: &dyn Backend,
    job: &SubtreeJob<'_>,
    namespace: &Namespace,
    storage: Option<ChildRef>,
) -> Result<Option<TrieAccount>, StoreError> {
    let storage_root = root_hash(storage);
    let written = record_write(job, namespace);
    if storage.is_some()
        && !job.wiped
        && written.is_none()
        && let Some(old) = &job.old_leaf
    {
        // The leaf exists either way, and the record it was built from is unchanged, so every
        // field but the storage root carries over. Reading the record again would cost a lookup
        // in the table of values per namespace, on a large state a walk through cold memory:
        // about 0.9 ms of CPU per block of 1,000 changes at 1,000,000 entries, against 0.2 ms at
        // 10,000.
        let mut account: TrieAccount =
            alloy_rlp::Decodable::decode(&mut old.value.as_ref()).map_err(StoreError::CorruptAccount)?;
        account.storage_root = storage_root;
        return Ok(Some(account));
    }
    if storage.is_none() && namespace.engine() == Engine::Wasm {
        return Ok(None);
    }
    let record = match written {
        Some(write) => write.map(<[u8]>::to_vec),
        None if job.wiped => None,
        None => backend.get(Table::State, &namespace.record_key())?,
    };
    if storage.is_none() && record.is_none() {
        return Ok(None);
    }
    account_leaf(namespace.engine(), record.as_deref(), storage_root)
        .map(Some)
        .map_err(|error| StoreError::Corrupt(format!("record of {namespace:?}: {error}")))
}

/// The job's write of the namespace's record, if it makes one: the new record, or `None` for a
/// deletion.
fn record_write<'a>(job: &SubtreeJob<'a>, namespace: &Namespace) -> Option<Option<&'a [u8]>> {
    let key = namespace.record_key();
    // The job's writes are in key order, as the overlay keeps them.
    let index = job.writes.binary_search_by(|(written, _)| (*written).cmp(key.as_slice())).ok()?;
    Some(job.writes[index].1)
}

/// Adds to `batch` the deletion of every committed entry of a wiped namespace that the
/// job does not write again, and marks every node of its old storage trie stale.
fn delete_namespace(
    backend: &dyn Backend,
    job: &SubtreeJob<'_>,
    old_storage: Option<ChildRef>,
    height: u64,
    batch: &mut WriteBatch,
) -> Result<(), StoreError> {
    let mut gone = Vec::new();
    let end = crate::backend::prefix_end(job.prefix);
    backend.scan(Table::State, job.prefix, end.as_deref(), &mut |key, _| {
        // The job's writes are in key order, as the overlay keeps them.
        if job.writes.binary_search_by(|(written, _)| (*written).cmp(key)).is_err() {
            gone.push(key.to_vec());
        }
        ControlFlow::Continue(())
    })?;
    for key in gone {
        batch.delete(Table::State, key);
    }
    if let Some(root) = old_storage {
        mark_tree_stale(&mut NodeSource::new(backend, *job.prefix, false), root, height, batch)?;
    }
    Ok(())
}

/// How to undo one commit: the value each state key it writes had before it (`None`: absent), and
/// the keys of the trie nodes it created.
struct Undo {
    values: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    created: Vec<Vec<u8>>,
}

/// The undo record of the commit `batch` (before its pruning): reads each state key's value
/// before the batch, once per key.
fn undo_record(backend: &dyn Backend, batch: &WriteBatch) -> Result<Vec<u8>, StoreError> {
    let mut seen = std::collections::HashSet::new();
    let mut values = Vec::new();
    let mut created = Vec::new();
    for op in batch.ops() {
        match op.table {
            Table::State if seen.insert(op.key.as_slice()) => {
                values.push((op.key.as_slice(), backend.get(Table::State, &op.key)?));
            }
            Table::Nodes if op.value.is_some() => created.push(op.key.as_slice()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    push_count(&mut out, values.len());
    for (key, value) in &values {
        push_bytes(&mut out, key);
        match value {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                push_bytes(&mut out, value);
            }
        }
    }
    push_count(&mut out, created.len());
    for key in created {
        push_bytes(&mut out, key);
    }
    Ok(out)
}

fn push_count(out: &mut Vec<u8>, count: usize) {
    // A batch never holds 2^32 entries, nor a key or value of 4 GiB.
    out.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_be_bytes());
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    push_count(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Reads undo records: `count (u32 BE)` then that many `(key, flag, value?)`, then `count` node
/// keys; every length is a u32 BE prefix.
struct UndoReader<'a> {
    rest: &'a [u8],
}

impl<'a> UndoReader<'a> {
    fn malformed() -> StoreError {
        StoreError::Corrupt("malformed undo record".into())
    }

    fn count(&mut self) -> Result<usize, StoreError> {
        let (count, rest) = self.rest.split_first_chunk::<4>().ok_or_else(Self::malformed)?;
        self.rest = rest;
        usize::try_from(u32::from_be_bytes(*count)).map_err(|_| Self::malformed())
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = self.count()?;
        if self.rest.len() < len {
            return Err(Self::malformed());
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(bytes)
    }

    fn flag(&mut self) -> Result<bool, StoreError> {
        let (&flag, rest) = self.rest.split_first().ok_or_else(Self::malformed)?;
        self.rest = rest;
        match flag {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Self::malformed()),
        }
    }
}

fn decode_undo(bytes: &[u8]) -> Result<Undo, StoreError> {
    let mut reader = UndoReader { rest: bytes };
    let count = reader.count()?;
    // Each entry takes at least five bytes, so a count larger than that is corrupt (and is not
    // allowed to reserve memory).
    let mut values = Vec::with_capacity(count.min(bytes.len() / 5));
    for _ in 0..count {
        let key = reader.bytes()?.to_vec();
        let value = if reader.flag()? { Some(reader.bytes()?.to_vec()) } else { None };
        values.push((key, value));
    }
    let count = reader.count()?;
    let mut created = Vec::with_capacity(count.min(bytes.len() / 4));
    for _ in 0..count {
        created.push(reader.bytes()?.to_vec());
    }
    if !reader.rest.is_empty() {
        return Err(UndoReader::malformed());
    }
    Ok(Undo { values, created })
}

fn undo_record_key(height: u64) -> Vec<u8> {
    let mut key = UNDO_PREFIX.to_vec();
    key.extend_from_slice(&height.to_be_bytes());
    key
}

fn push_labels(batch: &mut WriteBatch, labels: &[(String, Option<Vec<u8>>)]) {
    for (name, value) in labels {
        match value {
            Some(value) => batch.put(Table::Meta, label_key(name), value.as_slice()),
            None => batch.delete(Table::Meta, label_key(name)),
        }
    }
}

fn label_key(name: &str) -> Vec<u8> {
    let mut key = b"label/".to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

fn root_record_key(height: u64) -> Vec<u8> {
    let mut key = ROOT_PREFIX.to_vec();
    key.extend_from_slice(&height.to_be_bytes());
    key
}

/// A root record: `0` for the empty trie, or `1 |` the root's stored child reference.
fn encode_root(root: Option<ChildRef>) -> Vec<u8> {
    match root {
        None => vec![0],
        Some(root) => {
            let mut out = vec![1];
            crate::trie::node::push_ref(&mut out, &root);
            out
        }
    }
}

fn decode_root(bytes: &[u8]) -> Result<Option<ChildRef>, StoreError> {
    let malformed = || StoreError::Corrupt("malformed root record".into());
    match bytes {
        [0] => Ok(None),
        [1, rest @ ..] => match crate::trie::node::read_ref(rest) {
            Some((root, [])) => Ok(Some(root)),
            _ => Err(malformed()),
        },
        _ => Err(malformed()),
    }
}

/// The head record: `height (u64 BE) | oldest kept height (u64 BE) | root record`.
fn encode_head(head: &Head) -> Vec<u8> {
    let mut out = head.height.to_be_bytes().to_vec();
    out.extend_from_slice(&head.oldest.to_be_bytes());
    out.extend_from_slice(&encode_root(head.root));
    out
}

fn decode_head(bytes: &[u8]) -> Result<Head, StoreError> {
    let malformed = || StoreError::Corrupt("malformed head record".into());
    let (height, rest) = bytes.split_first_chunk::<8>().ok_or_else(malformed)?;
    let (oldest, root) = rest.split_first_chunk::<8>().ok_or_else(malformed)?;
    let (height, oldest) = (u64::from_be_bytes(*height), u64::from_be_bytes(*oldest));
    if oldest > height {
        return Err(malformed());
    }
    Ok(Head { height, oldest, root: decode_root(root)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jobs are split into at most one chunk per worker, in order, covering every job once and
    /// never leaving a chunk empty (an empty chunk would cost a thread for nothing).
    #[test]
    fn jobs_split_into_ordered_non_empty_chunks() {
        let prefix: TreeId = [1; PREFIX_LEN];
        let writes: Vec<(&[u8], Option<&[u8]>)> = vec![(&[][..], None); 1000];
        let cases: &[&[usize]] = &[&[0, 999], &[999, 0], &[5], &[0, 0, 0, 0], &[300, 1, 1, 1, 300, 2, 2], &[10; 40]];
        for sizes in cases {
            let jobs: Vec<SubtreeJob<'_>> = sizes
                .iter()
                .map(|&size| SubtreeJob {
                    account_key: Nibbles::new(),
                    prefix: &prefix,
                    wiped: false,
                    old_leaf: None,
                    writes: &writes[..size],
                })
                .collect();
            let total: usize = jobs.iter().map(SubtreeJob::size).sum();
            for workers in [1, 2, 3, 8, 64] {
                let chunks = split_jobs(&jobs, total, workers);
                assert!(!chunks.is_empty() && chunks.len() <= workers, "{sizes:?} on {workers}: {}", chunks.len());
                assert!(chunks.iter().all(|chunk| !chunk.is_empty()), "{sizes:?} on {workers}");
                let mut next = jobs.as_ptr();
                for chunk in &chunks {
                    assert_eq!(chunk.as_ptr(), next, "{sizes:?} on {workers}: chunks out of order");
                    next = next.wrapping_add(chunk.len());
                }
                assert_eq!(chunks.iter().map(|chunk| chunk.len()).sum::<usize>(), jobs.len());
            }
        }
        // Even jobs are shared evenly.
        let jobs: Vec<SubtreeJob<'_>> = (0..40)
            .map(|_| SubtreeJob {
                account_key: Nibbles::new(),
                prefix: &prefix,
                wiped: false,
                old_leaf: None,
                writes: &writes[..10],
            })
            .collect();
        let chunks = split_jobs(&jobs, 440, 4);
        assert_eq!(chunks.iter().map(|chunk| chunk.len()).collect::<Vec<_>>(), [10, 10, 10, 10]);
    }
}
