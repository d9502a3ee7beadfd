//! The write overlay of one block: reads see the block's own writes, nested checkpoints can be
//! reverted, and the store commits the whole overlay as one batch.
//!
//! Engines execute against an [`Overlay`]; nothing reaches the backend until
//! [`Store::commit`](crate::Store::commit). A WASM call runs inside a checkpoint that is reverted
//! when it does not succeed, and the EVM binding applies each transaction's changes inside one
//! that is reverted when the store fails partway, so neither leaves a partial trace in the block.

use crate::backend::{Backend, BackendError, Entry, Table, prefix_end};
use crate::key::{Engine, KeyError, KeyLayout, Namespace, PREFIX_LEN, SLOT_KEY_LEN, check_user_value};
use crate::record::{AccountRecord, ModuleRecord, RecordError};
use alloy_primitives::keccak256;
use alloy_primitives::map::HashSet;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, ControlFlow};
use std::sync::Arc;

type Value = Box<[u8]>;
type Prefix = [u8; PREFIX_LEN];

/// What a checkpoint must undo.
enum Undo {
    /// A key's overlay entry before a write: `None` when the overlay had no entry.
    Write { key: Vec<u8>, previous: Option<Option<Value>> },
    /// A namespace wipe: whether it was already wiped, and the overlay entries it removed.
    Wipe { prefix: Prefix, was_wiped: bool, removed: Vec<(Vec<u8>, Option<Value>)> },
}

/// An open checkpoint. Consumed by [`Overlay::revert`] or [`Overlay::release`].
#[derive(Debug)]
#[must_use = "a checkpoint must be reverted or released"]
pub struct Checkpoint {
    depth: usize,
}

/// Why an overlay operation did not happen: either the request broke a rule ([`Refusal`], the
/// caller's fault, nothing changed) or the committed state could not answer ([`StateFailure`], a
/// fault of the node's store). The two are different types so that an engine can treat them
/// differently without inspecting messages: a guest whose request is refused gets a trap, a
/// failing store abandons the block.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The request broke a rule of the spec; nothing changed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The committed state could not be read.
    #[error(transparent)]
    Failed(#[from] StateFailure),
}

/// A request the overlay refuses: it breaks a rule of `docs/spec/abi/state.md` or of checkpoint
/// use. A refused write changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The key is not one of the spec's layouts.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A value does not fit the layout of its key.
    #[error("invalid value for this key: {0}")]
    Value(String),
    /// A u64 slot holds a value that is not 8 bytes (it was written as a byte key).
    #[error("slot holds a {0}-byte value, not an 8-byte u64")]
    SlotValueLength(usize),
    /// A checkpoint was used out of order.
    #[error("checkpoint used out of order: it is not the innermost open checkpoint")]
    CheckpointOrder,
    /// A code blob was to be removed: blobs are never deleted, since any number of accounts and
    /// modules may share one.
    #[error("code blobs are never deleted")]
    CodeRemoval,
    /// The runtime namespace was to be wiped: it holds the code blobs, which are never deleted.
    #[error("the runtime namespace cannot be wiped: code blobs are never deleted")]
    RuntimeWipe,
}

/// The committed state behind the overlay could not answer: the backend failed, or a stored
/// record does not decode. Never the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum StateFailure {
    /// A stored record could not be decoded.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Reading the committed state failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl From<KeyError> for StateError {
    fn from(error: KeyError) -> Self {
        Self::Refused(Refusal::Key(error))
    }
}

impl From<RecordError> for StateError {
    fn from(error: RecordError) -> Self {
        Self::Failed(StateFailure::Record(error))
    }
}

impl From<BackendError> for StateError {
    fn from(error: BackendError) -> Self {
        Self::Failed(StateFailure::Backend(error))
    }
}

impl StateError {
    /// The backend error underneath, if the state failed because its backend did.
    pub fn backend(&self) -> Option<&BackendError> {
        match self {
            Self::Failed(StateFailure::Backend(error)) => Some(error),
            _ => None,
        }
    }
}

/// The pending writes of one block over the committed state of a store.
pub struct Overlay {
    committed: Arc<dyn Backend>,
    base_height: u64,
    /// How many rewinds the store had made when this overlay was opened: an overlay opened before
    /// a rewind is based on a state that no longer exists, even at an equal height.
    base_rewinds: u64,
    writes: BTreeMap<Vec<u8>, Option<Value>>,
    wiped: BTreeSet<Prefix>,
    journal: Vec<Undo>,
    checkpoints: Vec<usize>,
    /// Per engine tag, how many times its entries may have changed; see [`Overlay::changes`].
    changes: [u64; 3],
    /// The committed keys read, when the overlay records them for a witness
    /// ([`Store::begin_recording`](crate::Store::begin_recording)); shared by the overlays
    /// [`Overlay::take`] splits off, so that a read made through either is recorded.
    reads: Option<Arc<ReadLog>>,
}

/// The committed state keys a recording overlay has read, present or absent: what a block's
/// witness must prove beside the paths its commit updates.
#[derive(Default)]
pub(crate) struct ReadLog {
    keys: Mutex<HashSet<Vec<u8>>>,
}

impl ReadLog {
    fn note(&self, key: &[u8]) {
        let mut keys = self.keys.lock();
        if !keys.contains(key) {
            keys.insert(key.to_vec());
        }
    }

    /// The keys read, sorted.
    pub(crate) fn sorted(&self) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self.keys.lock().iter().cloned().collect();
        keys.sort_unstable();
        keys
    }
}

enum Lookup<'a> {
    Present(&'a [u8]),
    Absent,
    Committed,
}

impl Overlay {
    pub(crate) fn new(committed: Arc<dyn Backend>, base_height: u64) -> Self {
        Self::after_rewinds(committed, base_height, 0)
    }

    pub(crate) fn after_rewinds(committed: Arc<dyn Backend>, base_height: u64, base_rewinds: u64) -> Self {
        Self {
            committed,
            base_height,
            base_rewinds,
            writes: BTreeMap::new(),
            wiped: BTreeSet::new(),
            journal: Vec::new(),
            checkpoints: Vec::new(),
            changes: [0; 3],
            reads: None,
        }
    }

    /// This overlay, recording every committed key it reads.
    pub(crate) fn recording(mut self) -> Self {
        self.reads = Some(Arc::default());
        self
    }

    /// The keys a recording overlay has read from the committed state; `None` for an overlay
    /// that does not record.
    pub(crate) fn reads(&self) -> Option<&ReadLog> {
        self.reads.as_deref()
    }

    /// Notes that the caller answered a read of committed `key` from its own memory instead of
    /// reading it: an engine that runs code it keeps compiled or analysed by code hash names the
    /// code blob here, so that a recording overlay (a block's witness) still holds the code the
    /// block ran. A key the overlay itself holds is not committed state and is not noted;
    /// an overlay that does not record ignores the call.
    #[inline]
    pub fn note_read(&self, key: &[u8]) {
        if let Some(reads) = &self.reads
            && matches!(self.lookup(key), Lookup::Committed)
        {
            reads.note(key);
        }
    }

    /// Moves the overlay's contents out, leaving an empty overlay on the same committed state.
    /// An engine hands the overlay to an instance this way for one call and puts it back after,
    /// without copying anything.
    pub fn take(&mut self) -> Self {
        let mut empty = Self::after_rewinds(Arc::clone(&self.committed), self.base_height, self.base_rewinds);
        empty.reads.clone_from(&self.reads);
        std::mem::replace(self, empty)
    }

    /// The height of the committed state this overlay was opened on.
    pub fn base_height(&self) -> u64 {
        self.base_height
    }

    /// The store's rewind count when this overlay was opened.
    pub(crate) fn base_rewinds(&self) -> u64 {
        self.base_rewinds
    }

    pub(crate) fn committed(&self) -> &Arc<dyn Backend> {
        &self.committed
    }

    #[inline]
    fn lookup(&self, key: &[u8]) -> Lookup<'_> {
        if let Some(entry) = self.writes.get(key) {
            return match entry {
                Some(value) => Lookup::Present(value),
                None => Lookup::Absent,
            };
        }
        if !self.wiped.is_empty()
            && let Some(prefix) = key.get(..PREFIX_LEN)
            && self.wiped.contains(prefix)
        {
            return Lookup::Absent;
        }
        Lookup::Committed
    }

    /// Calls `visit` with the current value of `key`, if any; returns whether there was one.
    /// Allocates nothing.
    #[inline]
    pub fn read(&self, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool, StateError> {
        match self.lookup(key) {
            Lookup::Present(value) => {
                visit(value);
                Ok(true)
            }
            Lookup::Absent => Ok(false),
            Lookup::Committed => {
                if let Some(reads) = &self.reads {
                    reads.note(key);
                }
                Ok(self.committed.read(Table::State, key, visit)?)
            }
        }
    }

    /// The current value of `key`, copied out.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let mut value = None;
        self.read(key, &mut |bytes| value = Some(bytes.to_vec()))?;
        Ok(value)
    }

    /// Reads u64 slot `key` (built by [`Namespace::slot_key`]): 0 when absent. Allocates nothing.
    #[inline]
    pub fn get_u64(&self, key: &[u8; SLOT_KEY_LEN]) -> Result<u64, StateError> {
        let mut word = Ok(0u64);
        self.read(key, &mut |bytes| {
            word = <[u8; 8]>::try_from(bytes)
                .map(u64::from_be_bytes)
                .map_err(|_| StateError::Refused(Refusal::SlotValueLength(bytes.len())));
        })?;
        word
    }

    /// Writes u64 slot `key`; writing 0 removes the entry, since an absent slot reads 0.
    pub fn set_u64(&mut self, key: &[u8; SLOT_KEY_LEN], value: u64) -> Result<(), StateError> {
        if value == 0 { self.remove(key) } else { self.set(key, &value.to_be_bytes()) }
    }

    /// Writes `value` under `key`, after checking both against the spec's layouts: the key must
    /// be valid, the value non-empty and of the right shape for its layout (an EVM storage word is
    /// 32 non-zero bytes, an account record 72 bytes, a code blob hashes to its key, a WASM user
    /// value is at most 16 KiB).
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        check_value(KeyLayout::of(key)?, key, value)?;
        self.record(key.to_vec(), Some(value.into()));
        Ok(())
    }

    /// Removes `key`. Code blobs are never deleted: removing a code key is refused.
    pub fn remove(&mut self, key: &[u8]) -> Result<(), StateError> {
        if KeyLayout::of(key)? == KeyLayout::Code {
            return Err(Refusal::CodeRemoval.into());
        }
        self.record(key.to_vec(), None);
        Ok(())
    }

    /// A count that grows whenever an entry of `engine`'s namespaces may have changed in this
    /// overlay: every set, remove and wipe under its tag, and every one of them a revert undoes.
    /// Equal counts before and after some code mean it changed nothing of that engine, which is
    /// how a cache of decoded state (the EVM binding's) knows whether it went stale.
    pub fn changes(&self, engine: Engine) -> u64 {
        self.changes[usize::from(engine.tag())]
    }

    /// Counts a change under the engine tag `key` starts with (keys reaching here are valid, so
    /// the tag is one of the three).
    fn count_change(&mut self, key: &[u8]) {
        if let Some(count) = key.first().and_then(|&tag| self.changes.get_mut(usize::from(tag))) {
            *count += 1;
        }
    }

    fn record(&mut self, key: Vec<u8>, value: Option<Value>) {
        self.count_change(&key);
        if self.checkpoints.is_empty() {
            self.writes.insert(key, value);
        } else {
            let previous = self.writes.insert(key.clone(), value);
            self.journal.push(Undo::Write { key, previous });
        }
    }

    /// Removes every entry of `namespace`, committed or pending, in one step: the store then
    /// rebuilds the namespace's sub-trie from what is written afterwards. The runtime namespace
    /// holds the code blobs, which are never deleted, so wiping it is refused.
    pub fn wipe(&mut self, namespace: &Namespace) -> Result<(), StateError> {
        if namespace.engine() == Engine::Runtime {
            return Err(Refusal::RuntimeWipe.into());
        }
        self.wipe_unchecked(namespace);
        Ok(())
    }

    fn wipe_unchecked(&mut self, namespace: &Namespace) {
        let prefix = *namespace.prefix();
        self.count_change(&prefix);
        let end = prefix_end(&prefix);
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let keys: Vec<Vec<u8>> =
            self.writes.range::<[u8], _>((Bound::Included(&prefix[..]), upper)).map(|(key, _)| key.clone()).collect();
        let removed: Vec<(Vec<u8>, Option<Value>)> =
            keys.into_iter().filter_map(|key| self.writes.remove(&key).map(|value| (key, value))).collect();
        let was_wiped = !self.wiped.insert(prefix);
        if !self.checkpoints.is_empty() {
            self.journal.push(Undo::Wipe { prefix, was_wiped, removed });
        }
    }

    /// Opens a checkpoint nested in any open ones.
    pub fn checkpoint(&mut self) -> Checkpoint {
        self.checkpoints.push(self.journal.len());
        Checkpoint { depth: self.checkpoints.len() - 1 }
    }

    /// Undoes every write since `checkpoint` and closes it. It must be the innermost open one.
    pub fn revert(&mut self, checkpoint: Checkpoint) -> Result<(), StateError> {
        let start = self.close(&checkpoint)?;
        while self.journal.len() > start {
            match self.journal.pop() {
                Some(Undo::Write { key, previous }) => {
                    self.count_change(&key);
                    match previous {
                        Some(value) => {
                            self.writes.insert(key, value);
                        }
                        None => {
                            self.writes.remove(&key);
                        }
                    }
                }
                Some(Undo::Wipe { prefix, was_wiped, removed }) => {
                    self.count_change(&prefix);
                    if !was_wiped {
                        self.wiped.remove(&prefix);
                    }
                    self.writes.extend(removed);
                }
                None => break,
            }
        }
        Ok(())
    }

    /// Closes `checkpoint`, keeping its writes; they now belong to the enclosing checkpoint, or
    /// to the block when none is open.
    pub fn release(&mut self, checkpoint: Checkpoint) -> Result<(), StateError> {
        self.close(&checkpoint)?;
        if self.checkpoints.is_empty() {
            self.journal.clear();
        }
        Ok(())
    }

    fn close(&mut self, checkpoint: &Checkpoint) -> Result<usize, StateError> {
        if checkpoint.depth + 1 != self.checkpoints.len() {
            return Err(Refusal::CheckpointOrder.into());
        }
        Ok(self.checkpoints.pop().unwrap_or(0))
    }

    /// Whether a checkpoint is open.
    pub fn has_open_checkpoint(&self) -> bool {
        !self.checkpoints.is_empty()
    }

    /// Whether the overlay holds no writes and no wipes.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.wiped.is_empty()
    }

    /// Every current entry whose key starts with `prefix`, in key order: the committed entries
    /// with the overlay applied on top.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StateError> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let end = prefix_end(prefix);
        self.committed.scan(Table::State, prefix, end.as_deref(), &mut |key, value| {
            let wiped = key.get(..PREFIX_LEN).is_some_and(|p| self.wiped.contains(p));
            if !wiped {
                merged.insert(key.to_vec(), value.to_vec());
            }
            ControlFlow::Continue(())
        })?;
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        for (key, value) in self.writes.range::<[u8], _>((Bound::Included(prefix), upper)) {
            match value {
                Some(value) => merged.insert(key.clone(), value.to_vec()),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().collect())
    }

    /// The pending writes in key order (`None` is a delete).
    pub(crate) fn writes(&self) -> &BTreeMap<Vec<u8>, Option<Value>> {
        &self.writes
    }

    /// The wiped namespace prefixes.
    pub(crate) fn wiped(&self) -> &BTreeSet<Prefix> {
        &self.wiped
    }
}

/// A value that does not fit its key's layout.
fn refused_value(reason: impl Into<String>) -> StateError {
    StateError::Refused(Refusal::Value(reason.into()))
}

fn check_value(layout: KeyLayout, key: &[u8], value: &[u8]) -> Result<(), StateError> {
    if value.is_empty() {
        return Err(refused_value("values are never empty; remove the key instead"));
    }
    match layout {
        KeyLayout::WasmStorage => check_user_value(value)?,
        KeyLayout::WasmModule => {
            ModuleRecord::decode(value)?;
        }
        KeyLayout::EvmAccount => {
            AccountRecord::decode(value)?;
        }
        KeyLayout::EvmStorage => {
            if value.len() != 32 {
                return Err(refused_value(format!("storage words are 32 bytes, not {}", value.len())));
            }
            if value.iter().all(|&byte| byte == 0) {
                return Err(refused_value("a zero storage word is stored as absence"));
            }
        }
        KeyLayout::Code => {
            if keccak256(value).as_slice() != &key[PREFIX_LEN + 1..] {
                return Err(refused_value("code blob does not hash to its key"));
            }
        }
    }
    Ok(())
}
