//! The store: committed state on a backend, its root history, block commits and proofs.
//!
//! A commit turns one [`Overlay`] into one [`WriteBatch`]: the value changes, the new trie nodes,
//! the stale-node records, the pruning of nodes no retained root needs, and the new head and root
//! record. The backend applies it atomically, so after a crash the store reopens at the previous
//! or the new root and never in between.

use crate::backend::{Backend, BackendError, BackendExt, MemoryBackend, RedbBackend, Table, WriteBatch};
use crate::key::{CODE_KEY_LEN, Engine, KeyError, KeyLayout, Namespace, PREFIX_LEN, STORAGE_TAG};
use crate::overlay::Overlay;
use crate::proof::{KeyProof, NamespaceProof, SubtreeProof};
use crate::trie::node::{ChildRef, GLOBAL_TREE, LeafValue, NodeSource, TreeId};
use crate::trie::update::{Change, TreeWriter};
use crate::trie::{
    entry_key, find_leaves, global_key, mark_tree_stale, prune, prune_replaced, root_hash, subtree_link, walk,
};
use alloy_primitives::{B256, keccak256};
use alloy_trie::Nibbles;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, LazyLock};

const FORMAT_KEY: &[u8] = b"format";
const FORMAT_VALUE: &[u8] = b"xstate-kv/1";
const HEAD_KEY: &[u8] = b"head";
const ROOT_PREFIX: &[u8] = b"root/";

/// How a store is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// How many of the latest roots stay provable (at least 1).
    pub retained_roots: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { retained_roots: 128 }
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
    /// The overlay still has an open checkpoint.
    #[error("cannot commit an overlay with an open checkpoint")]
    OpenCheckpoint,
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

/// The work of updating one namespace's sub-trie in a commit.
struct SubtreeJob<'a> {
    global_key: Nibbles,
    prefix: &'a TreeId,
    wiped: bool,
    old_root: Option<ChildRef>,
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
    global: Option<ChildRef>,
}

/// Committed state with one root over every engine.
pub struct Store {
    backend: Arc<dyn Backend>,
    config: StoreConfig,
    head: Mutex<Head>,
}

impl Store {
    /// Opens the store kept in `backend`; an empty backend is an empty store at height 0.
    pub fn open(backend: Arc<dyn Backend>, config: StoreConfig) -> Result<Self, StoreError> {
        let config = StoreConfig { retained_roots: config.retained_roots.max(1) };
        let head = match backend.get(Table::Meta, FORMAT_KEY)? {
            Some(format) if format == FORMAT_VALUE => {
                let head = backend
                    .get(Table::Meta, HEAD_KEY)?
                    .ok_or_else(|| StoreError::Corrupt("store has no head record".into()))?;
                decode_head(&head)?
            }
            Some(_) => {
                return Err(StoreError::Corrupt("not a store of format xstate-kv/1".into()));
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
                let head = Head { height: 0, global: None };
                let mut batch = WriteBatch::new();
                batch.put(Table::Meta, FORMAT_KEY, FORMAT_VALUE);
                batch.put(Table::Meta, HEAD_KEY, encode_head(&head));
                batch.put(Table::Meta, root_record_key(0), encode_root(None));
                backend.write(batch)?;
                head
            }
        };
        Ok(Self { backend, config, head: Mutex::new(head) })
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

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The height of the latest commit (0 for a new store).
    pub fn height(&self) -> u64 {
        self.head.lock().height
    }

    /// The latest state root.
    pub fn root(&self) -> B256 {
        root_hash(self.head.lock().global)
    }

    /// The state root at `height`, if it is retained.
    pub fn root_at(&self, height: u64) -> Result<B256, StoreError> {
        Ok(root_hash(self.global_root_at(&self.head.lock(), height)?))
    }

    /// A label the store keeps outside the state (not committed to by the root), such as the
    /// chain id a runtime was created with.
    pub fn label(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.backend.get(Table::Meta, &label_key(name))?)
    }

    /// Sets a label (see [`Store::label`]), durably and on its own.
    pub fn set_label(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        batch.put(Table::Meta, label_key(name), value);
        Ok(self.backend.write(batch)?)
    }

    /// The committed value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.backend.get(Table::State, key)?)
    }

    /// Opens an overlay on the latest committed state.
    pub fn begin(&self) -> Overlay {
        Overlay::new(Arc::clone(&self.backend), self.head.lock().height)
    }

    /// Commits `overlay` as the next height and returns the new root. On error nothing changed.
    pub fn commit(&self, overlay: &Overlay) -> Result<CommitInfo, StoreError> {
        let mut head = self.head.lock();
        if overlay.base_height() != head.height || !Arc::ptr_eq(overlay.committed(), &self.backend) {
            return Err(StoreError::StaleOverlay { overlay: overlay.base_height(), store: head.height });
        }
        if overlay.has_open_checkpoint() {
            return Err(StoreError::OpenCheckpoint);
        }
        let height = head.height + 1;
        let backend = self.backend.as_ref();
        let mut batch = WriteBatch::new();

        // Group the overlay by namespace; a wiped namespace may have no writes at all.
        let mut namespaces: BTreeMap<TreeId, NamespaceChanges<'_>> = BTreeMap::new();
        for prefix in overlay.wiped() {
            namespaces.entry(*prefix).or_default().0 = true;
        }
        for (key, value) in overlay.writes() {
            let mut prefix = [0u8; PREFIX_LEN];
            prefix.copy_from_slice(&key[..PREFIX_LEN]);
            namespaces.entry(prefix).or_default().1.push((key.as_slice(), value.as_deref()));
        }

        // Find every touched namespace's current sub-root in one descent of the global trie,
        // whose nodes stay cached for the global update below.
        let mut global = NodeSource::new(backend, GLOBAL_TREE, true);
        let mut by_hash: Vec<(Nibbles, TreeId)> =
            namespaces.keys().map(|prefix| (global_key(prefix), *prefix)).collect();
        by_hash.sort_unstable();
        let hashed: Vec<Nibbles> = by_hash.iter().map(|(key, _)| *key).collect();
        let leaves = find_leaves(&mut global, head.global, &hashed)?;

        // Sub-tries are independent of each other (that is what scoped commitments buy), so
        // large commits update them on every core; each worker writes its own batch.
        let mut jobs = Vec::with_capacity(by_hash.len());
        for ((global_key, prefix), leaf) in by_hash.iter().zip(leaves) {
            let (wiped, writes) = &namespaces[prefix];
            let old_root = leaf.map(subtree_link).transpose()?;
            jobs.push(SubtreeJob { global_key: *global_key, prefix, wiped: *wiped, old_root, writes });
        }
        let results = run_jobs(&jobs, |job| self.update_subtree(job, height))?;
        let mut global_changes = Vec::with_capacity(results.len());
        for (change, part) in results {
            batch.append(part);
            global_changes.extend(change);
        }
        let global_root = TreeWriter::new(&mut global, height, &mut batch).apply(head.global, &global_changes)?;

        let new_head = Head { height, global: global_root };
        batch.put(Table::Meta, HEAD_KEY, encode_head(&new_head));
        batch.put(Table::Meta, root_record_key(height), encode_root(global_root));

        let oldest = self.oldest_retained(height);
        prune(backend, oldest, &mut batch)?;
        if oldest == height {
            // Only the new root is retained, so the nodes this very commit replaces are needed by
            // no retained root either; they are in this batch's stale records, which `prune`
            // cannot see in the backend yet.
            prune_replaced(&mut batch);
        }
        let mut old_roots = Vec::new();
        backend.scan(Table::Meta, &root_record_key(0), Some(&root_record_key(oldest)), &mut |key, _| {
            old_roots.push(key.to_vec());
            ControlFlow::Continue(())
        })?;
        for key in old_roots {
            batch.delete(Table::Meta, key);
        }

        backend.write(batch)?;
        *head = new_head;
        Ok(CommitInfo { height, root: root_hash(global_root) })
    }

    /// Writes one namespace's new values and sub-trie into a batch of its own and returns the
    /// global-trie change for its new sub-root, if the sub-root changed.
    fn update_subtree(&self, job: &SubtreeJob<'_>, height: u64) -> Result<(Option<Change>, WriteBatch), StoreError> {
        let mut batch = WriteBatch::new();
        // A wiped namespace is rebuilt from nothing; its old sub-root still decides below whether
        // the global trie changes.
        let base = if job.wiped { None } else { job.old_root };
        if job.wiped {
            self.delete_namespace(job, height, &mut batch)?;
        }
        let mut changes = Vec::with_capacity(job.writes.len());
        for &(key, value) in job.writes {
            match value {
                Some(value) => batch.put(Table::State, key, value),
                None => batch.delete(Table::State, key),
            }
            changes.push(Change {
                key: entry_key(&key[PREFIX_LEN..]),
                value: value.map(|value| LeafValue { commitment: value_commitment(key, value), link: None }),
            });
        }
        changes.sort_unstable_by_key(|change| change.key);
        let mut source = NodeSource::new(self.backend.as_ref(), *job.prefix, false);
        let new_root = TreeWriter::new(&mut source, height, &mut batch).apply(base, &changes)?;
        // A reference names a node version, so a wiped namespace rebuilt to the same contents
        // still changes its global leaf (its link moves to the new nodes), while a wipe of a
        // namespace that had no entries and gets none changes nothing.
        let change = (new_root != job.old_root).then(|| Change {
            key: job.global_key,
            value: new_root.map(|root| LeafValue { commitment: root.hash, link: Some(root.version) }),
        });
        Ok((change, batch))
    }

    /// Adds to `batch` the deletion of every committed entry of a wiped namespace that the
    /// job does not write again, and marks every node of its old sub-trie stale.
    fn delete_namespace(&self, job: &SubtreeJob<'_>, height: u64, batch: &mut WriteBatch) -> Result<(), StoreError> {
        let mut gone = Vec::new();
        let end = crate::backend::prefix_end(job.prefix);
        self.backend.scan(Table::State, job.prefix, end.as_deref(), &mut |key, _| {
            // The job's writes are in key order, as the overlay keeps them.
            if job.writes.binary_search_by(|(written, _)| (*written).cmp(key)).is_err() {
                gone.push(key.to_vec());
            }
            ControlFlow::Continue(())
        })?;
        for key in gone {
            batch.delete(Table::State, key);
        }
        if let Some(root) = job.old_root {
            mark_tree_stale(&mut NodeSource::new(self.backend.as_ref(), *job.prefix, false), root, height, batch)?;
        }
        Ok(())
    }

    fn oldest_retained(&self, latest: u64) -> u64 {
        (latest + 1).saturating_sub(self.config.retained_roots)
    }

    fn global_root_at(&self, head: &Head, height: u64) -> Result<Option<ChildRef>, StoreError> {
        let oldest = self.oldest_retained(head.height);
        if height > head.height || height < oldest {
            return Err(StoreError::HeightNotRetained { height, oldest, latest: head.height });
        }
        if height == head.height {
            return Ok(head.global);
        }
        let record = self
            .backend
            .get(Table::Meta, &root_record_key(height))?
            .ok_or_else(|| StoreError::Corrupt(format!("no root record for height {height}")))?;
        decode_root(&record)
    }

    /// A proof of `key`'s value (or absence) at `height` (the latest when `None`).
    pub fn prove(&self, key: &[u8], height: Option<u64>) -> Result<KeyProof, StoreError> {
        self.prove_commitment(key, height).map(|(proof, _)| proof)
    }

    /// A proof of `key` at `height` (the latest when `None`), with the commitment (keccak256) of
    /// the value the key had then, or `None` when it had none. Values themselves are kept only for
    /// the latest height.
    pub fn prove_commitment(&self, key: &[u8], height: Option<u64>) -> Result<(KeyProof, Option<B256>), StoreError> {
        KeyLayout::of(key)?;
        let (prefix, suffix) = key
            .split_first_chunk::<PREFIX_LEN>()
            .ok_or(KeyError::Truncated { len: key.len(), expected: PREFIX_LEN })?;
        let head = self.head.lock();
        let global_root = self.global_root_at(&head, height.unwrap_or(head.height))?;
        let backend = self.backend.as_ref();
        let (global, leaf) = walk(backend, &GLOBAL_TREE, global_root, &global_key(prefix))?;
        let mut commitment = None;
        let subtree = match leaf {
            None => None,
            Some(leaf) => {
                let (nodes, found) = walk(backend, prefix, Some(subtree_link(leaf)?), &entry_key(suffix))?;
                commitment = found.map(|value| value.commitment);
                Some(SubtreeProof { root: leaf.commitment, nodes })
            }
        };
        Ok((KeyProof { global, subtree }, commitment))
    }

    /// A namespace's sub-root at `height` (the latest when `None`) with its proof; the sub-root
    /// is `None` when the namespace has no entries.
    pub fn prove_namespace(
        &self,
        namespace: &Namespace,
        height: Option<u64>,
    ) -> Result<(Option<B256>, NamespaceProof), StoreError> {
        let head = self.head.lock();
        let global_root = self.global_root_at(&head, height.unwrap_or(head.height))?;
        let (global, leaf) = walk(self.backend.as_ref(), &GLOBAL_TREE, global_root, &global_key(namespace.prefix()))?;
        Ok((leaf.map(|leaf| leaf.commitment), NamespaceProof { global }))
    }
}

/// The commitment of `value` under `key`: its keccak256. A code blob's key is already that hash
/// (the overlay refuses a blob that does not hash to its key), so a blob of hundreds of kilobytes
/// is not hashed a second time.
fn value_commitment(key: &[u8], value: &[u8]) -> B256 {
    if key.len() == CODE_KEY_LEN && key[0] == Engine::Runtime.tag() && key[PREFIX_LEN] == STORAGE_TAG {
        B256::from_slice(&key[PREFIX_LEN + 1..])
    } else {
        keccak256(value)
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

fn encode_root(root: Option<ChildRef>) -> Vec<u8> {
    match root {
        None => vec![0],
        Some(root) => {
            let mut out = vec![1];
            out.extend_from_slice(root.hash.as_slice());
            out.extend_from_slice(&root.version.to_be_bytes());
            out
        }
    }
}

fn decode_root(bytes: &[u8]) -> Result<Option<ChildRef>, StoreError> {
    match bytes {
        [0] => Ok(None),
        [1, rest @ ..] if rest.len() == 40 => {
            let mut version = [0u8; 8];
            version.copy_from_slice(&rest[32..]);
            Ok(Some(ChildRef { hash: B256::from_slice(&rest[..32]), version: u64::from_be_bytes(version) }))
        }
        _ => Err(StoreError::Corrupt("malformed root record".into())),
    }
}

fn encode_head(head: &Head) -> Vec<u8> {
    let mut out = head.height.to_be_bytes().to_vec();
    out.extend_from_slice(&encode_root(head.global));
    out
}

fn decode_head(bytes: &[u8]) -> Result<Head, StoreError> {
    let (height, root) =
        bytes.split_at_checked(8).ok_or_else(|| StoreError::Corrupt("malformed head record".into()))?;
    let mut height_bytes = [0u8; 8];
    height_bytes.copy_from_slice(height);
    Ok(Head { height: u64::from_be_bytes(height_bytes), global: decode_root(root)? })
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
                    global_key: Nibbles::new(),
                    prefix: &prefix,
                    wiped: false,
                    old_root: None,
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
                global_key: Nibbles::new(),
                prefix: &prefix,
                wiped: false,
                old_root: None,
                writes: &writes[..10],
            })
            .collect();
        let chunks = split_jobs(&jobs, 440, 4);
        assert_eq!(chunks.iter().map(|chunk| chunk.len()).collect::<Vec<_>>(), [10, 10, 10, 10]);
    }
}
