//! Block witnesses: the pre-state a block touched, recorded while it runs over a past root, and
//! the state view that answers a block's reads from a witness alone.
//!
//! Both sides are one [`StateView`]: a [`Backend`] whose state reads are answered by walking the
//! trie from a root (never from the store's table of latest values), so the same code reads a
//! block's parent state from the store, to record a witness, and from a witness, to verify the
//! block with no store. A view never writes; its [`StateView::root_after`] computes the root an
//! overlay would commit to, reading only the nodes the update needs (the paths of the changed
//! keys and the siblings that a collapsing branch folds into its parent).
//!
//! A witness lists the trie nodes (Ethereum RLP, account trie and storage tries alike), the code
//! blobs and the state keys of a block (spec `docs/spec/witness.md`). A view over a witness
//! checks, before anything runs, that every listed node is reachable by hash from the parent's
//! state root, so it holds no node of any other state; a read that needs a node the witness does
//! not hold fails with [`BackendError::Unproven`], never a default value.

use crate::backend::{Backend, BackendError, ScanVisitor, Table, WriteBatch};
use crate::commitment::{Placement, account_key, decode_storage_leaf, placement};
use crate::key::{Engine, KeyLayout, Namespace, PREFIX_LEN};
use crate::overlay::Overlay;
use crate::record::AccountRecord;
use crate::store::{CommitMode, StoreError, build_commit};
use crate::trie::node::{ACCOUNT_TREE, ChildRef, LeafValue, Node, NodeRef, NodeSource, TreeId, checksum};
use crate::trie::root_hash;
use alloy_primitives::map::{HashMap, HashSet};
use alloy_primitives::{B256, Bytes, keccak256};
use alloy_trie::nodes::TrieNode;
use alloy_trie::{EMPTY_ROOT_HASH, KECCAK_EMPTY, Nibbles, TrieAccount};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The state part of a block witness, in reth's `ExecutionWitness` shape: `state` holds the RLP
/// of every trie node on a touched path (each node referenced by hash, and every trie's root),
/// `codes` the code blobs read (EVM contract code and WASM modules alike), `keys` the encoded
/// state keys (spec `abi/state.md`) the block read or wrote, present or absent. Each list is
/// sorted and free of duplicates: nodes and codes by their keccak256, keys bytewise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Witness {
    /// Trie nodes, RLP.
    pub state: Vec<Bytes>,
    /// Code blobs.
    pub codes: Vec<Bytes>,
    /// Encoded state keys.
    pub keys: Vec<Bytes>,
}

impl Witness {
    /// The number of bytes the three lists hold.
    pub fn byte_len(&self) -> usize {
        [&self.state, &self.codes, &self.keys].iter().flat_map(|list| list.iter()).map(|bytes| bytes.len()).sum()
    }
}

/// Why a witness cannot back a state view. Each names the node or blob at fault.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// The parent's state root node is not in the witness: it is the witness of another state.
    #[error("the witness does not hold the parent state root node {0}: it is not a witness of this parent state")]
    MissingRoot(B256),
    /// A node is listed twice.
    #[error("witness node {0} is listed twice")]
    DuplicateNode(B256),
    /// A code blob is listed twice.
    #[error("witness code blob {0} is listed twice")]
    DuplicateCode(B256),
    /// A node is reachable from no reference of the parent state: added, altered or foreign.
    #[error(
        "witness node {node} is not reachable from the parent state root {root}: it was added, altered or belongs to another state"
    )]
    Unreachable {
        /// The node's keccak256.
        node: B256,
        /// The parent's state root.
        root: B256,
    },
    /// A node does not decode as a trie node, or is not in canonical form.
    #[error("witness node {node} is not a canonical trie node: {reason}")]
    Malformed {
        /// The node's keccak256 (or of the parent node embedding it).
        node: B256,
        /// What is wrong.
        reason: String,
    },
    /// A code blob the block never read: added, or swapped for the one an account names.
    #[error("witness code blob {0} is never read by the block: it was added or swapped for another")]
    UnusedCode(B256),
}

/// Where the code blobs of a view come from.
enum Codes {
    /// The store's state table (blobs are never deleted, so its latest values hold every past one).
    Store(Arc<dyn Backend>),
    /// The witness's blobs by their keccak256.
    Witness(HashMap<B256, Bytes>),
}

/// What a recording view, or a recording commit, has read of a store: the trie nodes as
/// stored, by node key, and the state keys. A node is turned into its RLP and hashed only when
/// the witness is assembled ([`Recorder::nodes`]), so recording a read costs one copy; the
/// recorded nodes also answer later reads of the same node without the backend.
#[derive(Default)]
pub(crate) struct Recorder {
    /// Stored nodes read, by node key: `tree (21) | version (8) | path length (1) | path`.
    nodes: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    /// State keys read.
    keys: Mutex<BTreeSet<Vec<u8>>>,
}

impl Recorder {
    /// Reads node `key` of `backend`, recording it; a node read before is answered from the record.
    fn read_node(&self, backend: &dyn Backend, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool, BackendError> {
        if let Some(stored) = self.nodes.lock().get(key) {
            visit(stored);
            return Ok(true);
        }
        let mut copy = None;
        let found = backend.read(Table::Nodes, key, &mut |stored| {
            copy = Some(stored.to_vec());
            visit(stored);
        })?;
        if let Some(stored) = copy {
            self.nodes.lock().insert(key.to_vec(), stored);
        }
        Ok(found)
    }

    /// The state keys recorded so far.
    pub(crate) fn keys(&self) -> Vec<Vec<u8>> {
        self.keys.lock().iter().cloned().collect()
    }

    /// The RLP of every recorded node a witness lists, by keccak256: every root (an account's
    /// storage root and the state root name even a short one by hash) and every node referenced
    /// by hash; any other embedded node is part of its parent's RLP already.
    fn nodes(&self) -> BTreeMap<B256, Bytes> {
        let mut listed = BTreeMap::new();
        let mut rlp = Vec::new();
        for (key, stored) in self.nodes.lock().iter() {
            let is_root = key.get(PREFIX_LEN + 8) == Some(&0);
            if let Some(node) = Node::decode(stored) {
                node.rlp(&mut rlp);
                if is_root || rlp.len() >= 32 {
                    listed.entry(keccak256(&rlp)).or_insert_with(|| Bytes::copy_from_slice(&rlp));
                }
            }
        }
        listed
    }
}

/// A store's backend as a recording commit reads it: trie nodes are recorded, and so are the
/// state keys the root update reads from the table of latest values (the records an account
/// leaf is built from), whose paths the commit then walks through a view, as a view's own root
/// update reads them through the trie; everything else passes through.
pub(crate) struct RecordingBackend<'a> {
    pub(crate) backend: &'a dyn Backend,
    pub(crate) recorder: &'a Recorder,
}

impl Backend for RecordingBackend<'_> {
    fn read(&self, table: Table, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool, BackendError> {
        match table {
            Table::Nodes => self.recorder.read_node(self.backend, key, visit),
            Table::State => {
                if KeyLayout::of(key).is_ok_and(|layout| layout != KeyLayout::Code) {
                    self.recorder.keys.lock().insert(key.to_vec());
                }
                self.backend.read(table, key, visit)
            }
            Table::Stale | Table::Meta => self.backend.read(table, key, visit),
        }
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<(), BackendError> {
        self.backend.scan(table, start, end, visit)
    }

    fn write(&self, _batch: WriteBatch) -> Result<(), BackendError> {
        Err(BackendError::Storage("a recording read of the store never writes".into()))
    }
}

type AccountEntry = Option<(TrieAccount, Option<ChildRef>)>;

/// A read-only state at one root, read through the trie.
struct TrieState {
    /// Serves the `nodes` table.
    nodes: Arc<dyn Backend>,
    codes: Codes,
    root: Option<ChildRef>,
    /// Account leaves already walked to, by account-trie key.
    accounts: Mutex<HashMap<B256, AccountEntry>>,
    /// Code blobs read, by hash.
    codes_read: Mutex<BTreeMap<B256, Bytes>>,
    recorder: Option<Arc<Recorder>>,
}

impl TrieState {
    fn account(&self, namespace: &Namespace) -> Result<AccountEntry, BackendError> {
        let Some(key) = account_key(namespace) else { return Ok(None) };
        if let Some(entry) = self.accounts.lock().get(&key) {
            return Ok(*entry);
        }
        let leaf = self.find_leaf(&ACCOUNT_TREE, self.root, &Nibbles::unpack(key))?;
        let entry = match leaf {
            None => None,
            Some(leaf) => {
                let account: TrieAccount = alloy_rlp::Decodable::decode(&mut leaf.value.as_ref())
                    .map_err(|error| BackendError::Corrupt(format!("account leaf does not decode: {error}")))?;
                if account.storage_root != root_hash(leaf.link) {
                    return Err(BackendError::Corrupt("account leaf's storage root differs from its link".into()));
                }
                Some((account, leaf.link))
            }
        };
        self.accounts.lock().insert(key, entry);
        Ok(entry)
    }

    /// The leaf at `key` in `tree` under `root`, if any. Each node is checked against the
    /// checksum its parent holds, as a commit checks it (ADR 0010): a store's nodes were hashed
    /// when written, a witness's when the view was built from it.
    fn find_leaf(
        &self,
        tree: &TreeId,
        root: Option<ChildRef>,
        key: &Nibbles,
    ) -> Result<Option<LeafValue>, BackendError> {
        let mut source = NodeSource::new(self, *tree, false);
        let mut position = Nibbles::new();
        let mut current = root;
        while let Some(reference) = current {
            current = match source.load(reference, &position).map_err(trie_error)? {
                Node::Leaf { path, value } => return Ok((position.join(&path) == *key).then_some(value)),
                Node::Extension { path, child } => {
                    let next = position.join(&path);
                    if !key.starts_with(&next) {
                        return Ok(None);
                    }
                    position = next;
                    Some(child)
                }
                Node::Branch { children } => match key.get(position.len()) {
                    Some(nibble) => {
                        position.push_unchecked(nibble);
                        children[usize::from(nibble)]
                    }
                    None => None,
                },
            };
        }
        Ok(None)
    }

    /// The value of a state key at this root.
    fn value(&self, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        let invalid = |error: &dyn std::fmt::Display| BackendError::Corrupt(format!("invalid state key: {error}"));
        let layout = KeyLayout::of(key).map_err(|error| invalid(&error))?;
        if layout == KeyLayout::Code {
            let hash = B256::from_slice(&key[PREFIX_LEN + 1..]);
            return self.code(hash);
        }
        if let Some(recorder) = &self.recorder {
            recorder.keys.lock().insert(key.to_vec());
        }
        let namespace = Namespace::from_prefix(key).map_err(|error| invalid(&error))?;
        let Some((account, link)) = self.account(&namespace)? else { return Ok(None) };
        match placement(key).map_err(|error| invalid(&error))? {
            Placement::CodeBlob => Ok(None),
            Placement::AccountLeaf => {
                let record =
                    AccountRecord { nonce: account.nonce, balance: account.balance, code_hash: account.code_hash };
                let empty = record.nonce == 0 && record.balance.is_zero() && record.code_hash == KECCAK_EMPTY;
                // An EVM leaf without storage exists only for a record, even one of zeros; with
                // storage, empty fields are what a namespace without a record commits to, and the
                // trie cannot tell the two apart (see `commitment::account_leaf`).
                Ok((!empty || link.is_none()).then(|| record.encode().to_vec()))
            }
            Placement::Storage(slot) => {
                let Some(link) = link else { return Ok(None) };
                let leaf = self.find_leaf(namespace.prefix(), Some(link), &Nibbles::unpack(slot))?;
                leaf.map(|leaf| decode_storage_leaf(layout, &leaf.value))
                    .transpose()
                    .map_err(|error| BackendError::Corrupt(format!("storage leaf does not decode: {error}")))
            }
        }
    }

    fn code(&self, hash: B256) -> Result<Option<Vec<u8>>, BackendError> {
        let code =
            match &self.codes {
                Codes::Store(backend) => {
                    let mut code = None;
                    backend.read(Table::State, &crate::key::code_key(&hash), &mut |bytes| {
                        code = Some(Bytes::copy_from_slice(bytes));
                    })?;
                    code
                }
                Codes::Witness(codes) => Some(codes.get(&hash).cloned().ok_or_else(|| {
                    BackendError::Unproven(format!("the code blob {hash}, which is not in the witness"))
                })?),
            };
        if let Some(code) = &code {
            self.codes_read.lock().entry(hash).or_insert_with(|| code.clone());
        }
        Ok(code.map(|code| code.to_vec()))
    }
}

fn trie_error(error: crate::trie::TrieError) -> BackendError {
    match error {
        crate::trie::TrieError::Backend(error) => error,
        crate::trie::TrieError::Corrupt(detail) => BackendError::Corrupt(detail),
    }
}

impl Backend for TrieState {
    fn read(&self, table: Table, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool, BackendError> {
        match table {
            Table::State => {
                let value = self.value(key).map_err(|error| match error {
                    BackendError::Unproven(what) => BackendError::Unproven(format!(
                        "{what}, needed to read key 0x{}",
                        alloy_primitives::hex::encode(key)
                    )),
                    other => other,
                })?;
                Ok(value.map(|value| visit(&value)).is_some())
            }
            Table::Nodes => match &self.recorder {
                Some(recorder) => recorder.read_node(self.nodes.as_ref(), key, visit),
                None => self.nodes.read(table, key, visit),
            },
            Table::Stale | Table::Meta => Ok(false),
        }
    }

    fn scan(
        &self,
        table: Table,
        _start: &[u8],
        _end: Option<&[u8]>,
        _visit: &mut ScanVisitor<'_>,
    ) -> Result<(), BackendError> {
        match table {
            // A trie keyed by hashes cannot list the keys under a prefix without their preimages.
            Table::State => Err(BackendError::Storage("a state view over a trie cannot list a key range".into())),
            Table::Nodes | Table::Stale | Table::Meta => Ok(()),
        }
    }

    fn write(&self, _batch: WriteBatch) -> Result<(), BackendError> {
        Err(BackendError::Storage("a state view is read-only".into()))
    }
}

/// A read-only state at one root, read through the trie: a past root of a store (recording what
/// a block reads, to produce its witness), or the parent state a witness proves.
pub struct StateView {
    state: Arc<TrieState>,
    height: u64,
}

impl StateView {
    pub(crate) fn over_store(
        backend: Arc<dyn Backend>,
        root: Option<ChildRef>,
        height: u64,
        recorder: Arc<Recorder>,
    ) -> Self {
        let state = TrieState {
            nodes: Arc::clone(&backend),
            codes: Codes::Store(backend),
            root,
            accounts: Mutex::new(HashMap::default()),
            codes_read: Mutex::new(BTreeMap::new()),
            recorder: Some(recorder),
        };
        Self { state: Arc::new(state), height }
    }

    /// The parent state `witness` proves against `parent_root`. Every node in the witness must be
    /// reachable by hash from `parent_root` (through the account trie and the storage roots of
    /// its leaves) and in canonical form; every code blob is indexed by its keccak256.
    pub fn from_witness(witness: &Witness, parent_root: B256) -> Result<Self, WitnessError> {
        let mut by_hash: HashMap<B256, &[u8]> = HashMap::default();
        for node in &witness.state {
            let hash = keccak256(node);
            if by_hash.insert(hash, node.as_ref()).is_some() {
                return Err(WitnessError::DuplicateNode(hash));
            }
        }
        let mut codes: HashMap<B256, Bytes> = HashMap::default();
        for code in &witness.codes {
            let hash = keccak256(code);
            if codes.insert(hash, code.clone()).is_some() {
                return Err(WitnessError::DuplicateCode(hash));
            }
        }
        let mut builder = Builder { by_hash: &by_hash, used: HashSet::default(), nodes: WitnessNodes::default() };
        let root = if parent_root == EMPTY_ROOT_HASH {
            None
        } else {
            let rlp = by_hash.get(&parent_root).ok_or(WitnessError::MissingRoot(parent_root))?;
            builder.used.insert(parent_root);
            Some(builder.node(rlp, true, parent_root, 0)?)
        };
        let orphans: Vec<(B256, &[u8])> =
            by_hash.iter().filter(|(hash, _)| !builder.used.contains(*hash)).map(|(hash, rlp)| (*hash, *rlp)).collect();
        // Name the top of the orphans: the node no other orphan refers to (a removed node's
        // child, an added node, a changed node), not some node deep below it.
        let named_by_another = |hash: &B256| {
            orphans.iter().any(|(other, rlp)| other != hash && rlp.windows(32).any(|w| w == hash.as_slice()))
        };
        if let Some(node) = orphans.iter().map(|(hash, _)| *hash).filter(|hash| !named_by_another(hash)).min() {
            return Err(WitnessError::Unreachable { node, root: parent_root });
        }
        let state = TrieState {
            nodes: Arc::new(builder.nodes),
            codes: Codes::Witness(codes),
            root,
            accounts: Mutex::new(HashMap::default()),
            codes_read: Mutex::new(BTreeMap::new()),
            recorder: None,
        };
        Ok(Self { state: Arc::new(state), height: 0 })
    }

    /// An overlay over this state, for a block to execute against.
    pub fn overlay(&self) -> Overlay {
        let backend: Arc<dyn Backend> = self.state.clone();
        Overlay::new(backend, self.height)
    }

    /// The root the state would have with `overlay`'s writes applied: what committing it would
    /// give, computed without writing anything.
    pub fn root_after(&self, overlay: &Overlay) -> Result<B256, StoreError> {
        if overlay.has_open_checkpoint() {
            return Err(StoreError::OpenCheckpoint);
        }
        let (_, root) =
            build_commit(self.state.as_ref(), self.state.root, self.height + 1, overlay, CommitMode::RootOnly)?;
        Ok(root_hash(root))
    }

    /// Reads `keys` through the view, recording the nodes on their paths (and, for a code key,
    /// the blob): the keys a block read from the latest values instead of through the trie.
    pub(crate) fn read_keys(&self, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        for key in keys {
            self.state.read(Table::State, key, &mut |_| {})?;
        }
        Ok(())
    }

    /// The witness of everything read so far through this view (by the block and by
    /// [`StateView::root_after`]), with the keys `overlay` wrote. Empty lists for a view that
    /// records nothing (one over a witness).
    pub fn witness(&self, overlay: &Overlay) -> Witness {
        let Some(recorder) = &self.state.recorder else { return Witness::default() };
        let nodes = recorder.nodes();
        let mut keys = recorder.keys.lock().clone();
        keys.extend(overlay.writes().keys().filter(|key| key.first() != Some(&Engine::Runtime.tag())).cloned());
        Witness {
            state: nodes.into_values().collect(),
            codes: self.state.codes_read.lock().values().cloned().collect(),
            keys: keys.into_iter().map(Bytes::from).collect(),
        }
    }

    /// Reads code blob `hash` through the view, so that the witness carries it: for code an
    /// engine ran from its own memory without reading it (a compiled WASM module). Absent from
    /// the state, it is an error: a block only runs code the state holds.
    pub fn include_code(&self, hash: B256) -> Result<(), StoreError> {
        match self.state.code(hash)? {
            Some(_) => Ok(()),
            None => Err(StoreError::Corrupt(format!("code blob {hash} is named by a record but not stored"))),
        }
    }

    /// Fails when a code blob of `witness` was never read through this view: a witness holds
    /// only the code a block runs, so an unread blob was added or swapped for another.
    pub fn check_codes_used(&self, witness: &Witness) -> Result<(), WitnessError> {
        let read = self.state.codes_read.lock();
        match witness.codes.iter().map(keccak256).filter(|hash| !read.contains_key(hash)).min() {
            Some(hash) => Err(WitnessError::UnusedCode(hash)),
            None => Ok(()),
        }
    }
}

/// The `nodes` table of a witness: each distinct node stored under a version of its own (the
/// tree and position of a node key are ignored; the reading trie checks that a node fits its
/// position), and the versions of the nodes the witness lacks, so that reading one fails with
/// the hash of what was missing.
#[derive(Default)]
struct WitnessNodes {
    stored: HashMap<u64, Vec<u8>>,
    missing: HashMap<u64, B256>,
    next: u64,
}

impl WitnessNodes {
    fn version(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

impl Backend for WitnessNodes {
    fn read(&self, table: Table, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool, BackendError> {
        if table != Table::Nodes {
            return Ok(false);
        }
        let version = key
            .get(PREFIX_LEN..PREFIX_LEN + 8)
            .and_then(|bytes| bytes.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or_default();
        if let Some(stored) = self.stored.get(&version) {
            visit(stored);
            return Ok(true);
        }
        if let Some(hash) = self.missing.get(&version) {
            let depth = key.get(PREFIX_LEN + 8).copied().unwrap_or_default();
            return Err(BackendError::Unproven(format!(
                "the trie node {hash} at depth {depth}, which is not in the witness"
            )));
        }
        Ok(false)
    }

    fn scan(&self, _: Table, _: &[u8], _: Option<&[u8]>, _: &mut ScanVisitor<'_>) -> Result<(), BackendError> {
        Ok(())
    }

    fn write(&self, _batch: WriteBatch) -> Result<(), BackendError> {
        Err(BackendError::Storage("a witness is read-only".into()))
    }
}

/// Turns the witness's RLP nodes into stored nodes, from the root down.
struct Builder<'a> {
    by_hash: &'a HashMap<B256, &'a [u8]>,
    used: HashSet<B256>,
    nodes: WitnessNodes,
}

impl Builder<'_> {
    /// The stored form of the node whose RLP is `rlp` (in the account trie when `accounts`),
    /// its children first. `named` is the hash errors name: the node's own, or its parent's
    /// for an embedded node.
    /// `depth` is the node's position in its trie, in nibbles: a node that cannot sit there is
    /// refused, which also bounds the recursion by the depth of two tries.
    fn node(&mut self, rlp: &[u8], accounts: bool, named: B256, depth: usize) -> Result<ChildRef, WitnessError> {
        let malformed = |reason: String| WitnessError::Malformed { node: named, reason };
        let decoded =
            <TrieNode as alloy_rlp::Decodable>::decode(&mut &rlp[..]).map_err(|error| malformed(error.to_string()))?;
        let node = match decoded {
            TrieNode::EmptyRoot => return Err(malformed("an empty node is never stored".into())),
            TrieNode::Leaf(leaf) => {
                if depth + leaf.key.len() != 64 {
                    return Err(malformed(format!("a leaf does not end at 64 nibbles from depth {depth}")));
                }
                let link = if accounts {
                    let account: TrieAccount = alloy_rlp::Decodable::decode(&mut leaf.value.as_slice())
                        .map_err(|error| malformed(format!("account leaf does not decode: {error}")))?;
                    if account.storage_root == EMPTY_ROOT_HASH {
                        None
                    } else {
                        Some(self.hashed(account.storage_root, false, 0)?)
                    }
                } else {
                    None
                };
                Node::Leaf { path: leaf.key, value: LeafValue { value: leaf.value.into(), link } }
            }
            TrieNode::Extension(extension) => {
                if depth + extension.key.len() >= 64 {
                    return Err(malformed(format!("an extension does not fit at depth {depth}")));
                }
                let child = self.reference(extension.child.as_slice(), accounts, named, depth + extension.key.len())?;
                Node::Extension { path: extension.key, child }
            }
            TrieNode::Branch(branch) => {
                if depth >= 64 {
                    return Err(malformed(format!("a branch does not fit at depth {depth}")));
                }
                let mut children = [None; 16];
                let mut stack = branch.stack.iter();
                for (nibble, child) in (0u8..16).zip(children.iter_mut()) {
                    if branch.state_mask.is_bit_set(nibble) {
                        let reference =
                            stack.next().ok_or_else(|| malformed("branch mask and children differ".into()))?;
                        *child = Some(self.reference(reference.as_slice(), accounts, named, depth + 1)?);
                    }
                }
                Node::Branch { children }
            }
        };
        let mut canonical = Vec::with_capacity(rlp.len());
        node.rlp(&mut canonical);
        if canonical != rlp {
            return Err(malformed("not in canonical RLP form".into()));
        }
        let stored = node.encode();
        let reference =
            ChildRef { node: NodeRef::of_rlp(rlp), version: self.nodes.version(), checksum: checksum(&stored) };
        self.nodes.stored.insert(reference.version, stored);
        Ok(reference)
    }

    /// A child as its parent refers to it: by hash (looked up in the witness) or embedded.
    fn reference(
        &mut self,
        reference: &[u8],
        accounts: bool,
        parent: B256,
        depth: usize,
    ) -> Result<ChildRef, WitnessError> {
        if reference.len() == 33 && reference[0] == alloy_rlp::EMPTY_STRING_CODE + 32 {
            return self.hashed(B256::from_slice(&reference[1..]), accounts, depth);
        }
        self.node(reference, accounts, parent, depth)
    }

    /// The node named by `hash`, or a placeholder whose reading fails when it is not in the
    /// witness (a node no execution path reaches need not be there).
    fn hashed(&mut self, hash: B256, accounts: bool, depth: usize) -> Result<ChildRef, WitnessError> {
        if let Some(rlp) = self.by_hash.get(&hash).copied() {
            self.used.insert(hash);
            return self.node(rlp, accounts, hash, depth);
        }
        let mut form = [0u8; 33];
        form[0] = alloy_rlp::EMPTY_STRING_CODE + 32;
        form[1..].copy_from_slice(hash.as_slice());
        let node =
            NodeRef::from_stored(&form).ok_or(WitnessError::Malformed { node: hash, reason: "bad hash".into() })?;
        let version = self.nodes.version();
        self.nodes.missing.insert(version, hash);
        Ok(ChildRef { node, version, checksum: 0 })
    }
}
