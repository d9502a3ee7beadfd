//! The store: committed state on a backend, its root history, block commits and proofs.
//!
//! A commit turns one [`Overlay`] into one [`WriteBatch`]: the value changes, the new trie nodes,
//! the stale-node records, the pruning of nodes no retained root needs, and the new head and root
//! record. The backend applies it atomically, so after a crash the store reopens at the previous
//! or the new root and never in between.

use crate::backend::{Backend, BackendError, BackendExt, MemoryBackend, RedbBackend, Table, WriteBatch};
use crate::key::{KeyError, Namespace, PREFIX_LEN, StateKey};
use crate::overlay::{Overlay, StateError};
use crate::proof::{KeyProof, NamespaceProof, SubtreeProof};
use crate::trie::node::{ChildRef, GLOBAL_TREE, LeafValue, NodeSource, TreeId};
use crate::trie::update::{Change, TreeWriter};
use crate::trie::{entry_key, find_leaves, global_key, mark_tree_stale, prune, root_hash, subtree_link, walk};
use alloy_primitives::{B256, keccak256};
use alloy_trie::Nibbles;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

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
    /// The overlay refused an operation.
    #[error(transparent)]
    State(#[from] StateError),
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

/// Runs `work` over `jobs`, on every available core when the jobs are large enough, and returns
/// the results in job order.
fn run_jobs<J: JobSize + Sync, R: Send>(
    jobs: &[J],
    work: impl Fn(&J) -> Result<R, StoreError> + Sync,
) -> Result<Vec<R>, StoreError> {
    let total: usize = jobs.iter().map(JobSize::size).sum();
    let workers = std::thread::available_parallelism().map_or(1, usize::from).min(jobs.len());
    if workers <= 1 || total < PARALLEL_WRITES {
        return jobs.iter().map(&work).collect();
    }
    // Contiguous chunks of roughly equal write counts keep the results in order.
    let mut chunks = Vec::with_capacity(workers);
    let mut start = 0;
    let mut taken = 0;
    for (index, job) in jobs.iter().enumerate() {
        taken += job.size();
        if taken * workers >= total * (chunks.len() + 1) && chunks.len() + 1 < workers {
            chunks.push(&jobs[start..=index]);
            start = index + 1;
        }
    }
    chunks.push(&jobs[start..]);
    let work = &work;
    let parts: Vec<Result<Vec<R>, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| scope.spawn(move || chunk.iter().map(work).collect::<Result<Vec<R>, StoreError>>()))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|_| Err(StoreError::Corrupt("a commit worker panicked".into()))))
            .collect()
    });
    let mut results = Vec::with_capacity(jobs.len());
    for part in parts {
        results.extend(part?);
    }
    Ok(results)
}

/// How much work a job is, for splitting jobs evenly between workers.
trait JobSize {
    fn size(&self) -> usize;
}

impl JobSize for SubtreeJob<'_> {
    fn size(&self) -> usize {
        self.writes.len() + 1
    }
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

    /// The configuration.
    pub fn config(&self) -> StoreConfig {
        self.config
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
        let results = run_jobs(&jobs, |job| self.update_subtree(overlay, job, height))?;
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
    fn update_subtree(
        &self,
        overlay: &Overlay,
        job: &SubtreeJob<'_>,
        height: u64,
    ) -> Result<(Option<Change>, WriteBatch), StoreError> {
        let mut batch = WriteBatch::new();
        let mut old_root = job.old_root;
        if job.wiped {
            self.delete_namespace(overlay, job.prefix, old_root.take(), height, &mut batch)?;
        }
        let mut changes = Vec::with_capacity(job.writes.len());
        for &(key, value) in job.writes {
            match value {
                Some(value) => batch.put(Table::State, key, value),
                None => batch.delete(Table::State, key),
            }
            changes.push(Change {
                key: entry_key(&key[PREFIX_LEN..]),
                value: value.map(|value| LeafValue { commitment: keccak256(value), link: None }),
            });
        }
        changes.sort_unstable_by_key(|change| change.key);
        let mut source = NodeSource::new(self.backend.as_ref(), *job.prefix, false);
        let new_root = TreeWriter::new(&mut source, height, &mut batch).apply(old_root, &changes)?;
        let change = (new_root != old_root || job.wiped).then(|| Change {
            key: job.global_key,
            value: new_root.map(|root| LeafValue { commitment: root.hash, link: Some(root.version) }),
        });
        Ok((change, batch))
    }

    /// Adds to `batch` the deletion of every committed entry of a wiped namespace that the
    /// overlay does not write again, and marks every node of its old sub-trie stale.
    fn delete_namespace(
        &self,
        overlay: &Overlay,
        prefix: &TreeId,
        old_root: Option<ChildRef>,
        height: u64,
        batch: &mut WriteBatch,
    ) -> Result<(), StoreError> {
        let mut gone = Vec::new();
        let end = crate::backend::prefix_end(prefix);
        self.backend.scan(Table::State, prefix, end.as_deref(), &mut |key, _| {
            if !overlay.writes().contains_key(key) {
                gone.push(key.to_vec());
            }
            ControlFlow::Continue(())
        })?;
        for key in gone {
            batch.delete(Table::State, key);
        }
        if let Some(root) = old_root {
            mark_tree_stale(&mut NodeSource::new(self.backend.as_ref(), *prefix, false), root, height, batch)?;
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
        StateKey::decode(key)?;
        let head = self.head.lock();
        let global_root = self.global_root_at(&head, height.unwrap_or(head.height))?;
        let backend = self.backend.as_ref();
        let (prefix, suffix) = key.split_at(PREFIX_LEN);
        let (global, leaf) = walk(backend, &GLOBAL_TREE, global_root, &global_key(prefix))?;
        let mut commitment = None;
        let subtree = match leaf {
            None => None,
            Some(leaf) => {
                let tree: TreeId =
                    prefix.try_into().map_err(|_| KeyError::Truncated { len: key.len(), expected: PREFIX_LEN })?;
                let version =
                    leaf.link.ok_or_else(|| StoreError::Corrupt("global trie leaf without a sub-trie link".into()))?;
                let root = ChildRef { hash: leaf.commitment, version };
                let (nodes, found) = walk(backend, &tree, Some(root), &entry_key(suffix))?;
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
