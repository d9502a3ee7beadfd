//! Stored trie nodes: their byte layout in the `nodes` table, their position keys, and their
//! Ethereum RLP form (built with alloy-trie's node types) from which every hash is taken.
//!
//! Every leaf carries a 32-byte value commitment, so every node's RLP is at least 35 bytes and is
//! therefore referenced by its keccak256 hash: no node is ever inlined into its parent. That keeps
//! the stored form simple (a child is always `hash | version`) and makes every proof a list of
//! whole nodes that alloy-trie's `verify_proof` checks unchanged.

use crate::backend::{Backend, Table};
use crate::store::StoreError;
use alloy_primitives::map::HashMap;
use alloy_primitives::{B256, keccak256};
use alloy_trie::nodes::{BranchNodeRef, ExtensionNodeRef, LeafNodeRef, RlpNode};
use alloy_trie::{Nibbles, TrieMask};

/// Which tree a node belongs to: the 21-byte namespace prefix for a sub-trie, or
/// [`GLOBAL_TREE`] for the tree of sub-roots.
pub(crate) type TreeId = [u8; 21];

/// The global tree's id. Its first byte is no engine tag, so it never equals a namespace prefix.
pub(crate) const GLOBAL_TREE: TreeId = [0xff; 21];

const TAG_LEAF: u8 = 0x00;
const TAG_LINK_LEAF: u8 = 0x01;
const TAG_EXTENSION: u8 = 0x02;
const TAG_BRANCH: u8 = 0x03;

/// A reference to a stored node: its hash and the version (block height) that wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChildRef {
    pub(crate) hash: B256,
    pub(crate) version: u64,
}

/// What a leaf commits to: keccak256 of a value in a sub-trie, or a sub-root in the global tree
/// together with the version of that sub-trie's root node (`link`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LeafValue {
    pub(crate) commitment: B256,
    pub(crate) link: Option<u64>,
}

/// A decoded stored node. Nodes only live for the duration of one update step, so the branch's
/// inline array costs less than the allocation a boxed one would need.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Node {
    Leaf { path: Nibbles, value: LeafValue },
    Extension { path: Nibbles, child: ChildRef },
    Branch { children: [Option<ChildRef>; 16] },
}

/// The `nodes` table key of the node at `position` in `tree`, written at `version`:
/// `tree (21) | version (u64 BE) | path length (u8) | packed path`.
pub(crate) fn node_key(tree: &TreeId, version: u64, position: &Nibbles) -> Vec<u8> {
    let mut key = Vec::with_capacity(21 + 8 + 1 + 32);
    key.extend_from_slice(tree);
    key.extend_from_slice(&version.to_be_bytes());
    push_path(&mut key, position);
    key
}

fn push_path(out: &mut Vec<u8>, path: &Nibbles) {
    // A path has at most 64 nibbles.
    out.push(u8::try_from(path.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(&path.pack());
}

fn read_path(bytes: &[u8]) -> Option<(Nibbles, &[u8])> {
    let (&len, rest) = bytes.split_first()?;
    let len = usize::from(len);
    if len > 64 {
        return None;
    }
    let byte_len = len.div_ceil(2);
    let packed = rest.get(..byte_len)?;
    let mut path = Nibbles::unpack(packed);
    path.truncate(len);
    // A packed odd-length path must pad with a zero nibble, so each path has one encoding.
    if len % 2 == 1 && packed[byte_len - 1] & 0x0f != 0 {
        return None;
    }
    Some((path, &rest[byte_len..]))
}

fn read_ref(bytes: &[u8]) -> Option<(ChildRef, &[u8])> {
    let hash = B256::from_slice(bytes.get(..32)?);
    let version = u64::from_be_bytes(bytes.get(32..40)?.try_into().ok()?);
    Some((ChildRef { hash, version }, &bytes[40..]))
}

fn push_ref(out: &mut Vec<u8>, child: &ChildRef) {
    out.extend_from_slice(child.hash.as_slice());
    out.extend_from_slice(&child.version.to_be_bytes());
}

impl Node {
    /// The stored byte form.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(80);
        match self {
            Self::Leaf { path, value } => {
                out.push(if value.link.is_some() { TAG_LINK_LEAF } else { TAG_LEAF });
                push_path(&mut out, path);
                out.extend_from_slice(value.commitment.as_slice());
                if let Some(link) = value.link {
                    out.extend_from_slice(&link.to_be_bytes());
                }
            }
            Self::Extension { path, child } => {
                out.push(TAG_EXTENSION);
                push_path(&mut out, path);
                push_ref(&mut out, child);
            }
            Self::Branch { children } => {
                out.push(TAG_BRANCH);
                out.extend_from_slice(&mask(children).get().to_be_bytes());
                for child in children.iter().flatten() {
                    push_ref(&mut out, child);
                }
            }
        }
        out
    }

    /// Parses the stored byte form; `None` for anything malformed.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let (&tag, rest) = bytes.split_first()?;
        let node = match tag {
            TAG_LEAF | TAG_LINK_LEAF => {
                let (path, rest) = read_path(rest)?;
                let commitment = B256::from_slice(rest.get(..32)?);
                let rest = &rest[32..];
                let (link, rest) = if tag == TAG_LINK_LEAF {
                    (Some(u64::from_be_bytes(rest.get(..8)?.try_into().ok()?)), &rest[8..])
                } else {
                    (None, rest)
                };
                if !rest.is_empty() || path.is_empty() {
                    return None;
                }
                Self::Leaf { path, value: LeafValue { commitment, link } }
            }
            TAG_EXTENSION => {
                let (path, rest) = read_path(rest)?;
                let (child, rest) = read_ref(rest)?;
                if !rest.is_empty() || path.is_empty() {
                    return None;
                }
                Self::Extension { path, child }
            }
            TAG_BRANCH => {
                let mask = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?);
                if mask.count_ones() < 2 {
                    return None;
                }
                let mut rest = &rest[2..];
                let mut children = [None; 16];
                for (nibble, child) in children.iter_mut().enumerate() {
                    if mask & (1 << nibble) != 0 {
                        let (reference, tail) = read_ref(rest)?;
                        *child = Some(reference);
                        rest = tail;
                    }
                }
                if !rest.is_empty() {
                    return None;
                }
                Self::Branch { children }
            }
            _ => return None,
        };
        Some(node)
    }

    /// Whether the node can sit at `position`: a leaf ends exactly at 64 nibbles, an extension
    /// ends before them, a branch starts before them. A stored node that cannot is corrupt.
    pub(crate) fn fits(&self, position: &Nibbles) -> bool {
        match self {
            Self::Leaf { path, .. } => position.len() + path.len() == 64,
            Self::Extension { path, .. } => position.len() + path.len() < 64,
            Self::Branch { .. } => position.len() < 64,
        }
    }

    /// The node's Ethereum RLP encoding, written into `out` (which is cleared first).
    pub(crate) fn rlp(&self, out: &mut Vec<u8>) {
        out.clear();
        match self {
            Self::Leaf { path, value } => {
                LeafNodeRef::new(path, value.commitment.as_slice()).rlp(out);
            }
            Self::Extension { path, child } => {
                let child = RlpNode::word_rlp(&child.hash);
                ExtensionNodeRef::new(path, &child).rlp(out);
            }
            Self::Branch { children } => {
                let stack: Vec<RlpNode> =
                    children.iter().flatten().map(|child| RlpNode::word_rlp(&child.hash)).collect();
                BranchNodeRef::new(&stack, mask(children)).rlp(out);
            }
        }
    }

    /// keccak256 of the node's RLP: the hash its parent (or the root record) refers to.
    pub(crate) fn hash(&self, scratch: &mut Vec<u8>) -> B256 {
        self.rlp(scratch);
        keccak256(scratch.as_slice())
    }
}

fn mask(children: &[Option<ChildRef>; 16]) -> TrieMask {
    let mut mask = TrieMask::default();
    for (nibble, child) in children.iter().enumerate() {
        if child.is_some() {
            // `nibble` is below 16.
            mask.set_bit(u8::try_from(nibble).unwrap_or(0));
        }
    }
    mask
}

/// Where a tree update reads stored nodes from. For the global trie, which a commit reads twice
/// (to find the old sub-roots, then to update it), decoded nodes are kept for the commit's
/// duration.
pub(crate) struct NodeSource<'a> {
    backend: &'a dyn Backend,
    tree: TreeId,
    cache: Option<HashMap<(u64, Nibbles), Node>>,
}

impl<'a> NodeSource<'a> {
    pub(crate) fn new(backend: &'a dyn Backend, tree: TreeId, cached: bool) -> Self {
        Self { backend, tree, cache: cached.then(HashMap::default) }
    }

    pub(crate) fn tree(&self) -> &TreeId {
        &self.tree
    }

    /// Reads the node `reference` at `position`.
    pub(crate) fn load(&mut self, reference: ChildRef, position: &Nibbles) -> Result<Node, StoreError> {
        if let Some(node) = self.cache.as_ref().and_then(|cache| cache.get(&(reference.version, *position))) {
            return Ok(node.clone());
        }
        let node = read(self.backend, &self.tree, reference, position)?;
        if let Some(cache) = self.cache.as_mut() {
            cache.insert((reference.version, *position), node.clone());
        }
        Ok(node)
    }
}

fn read(backend: &dyn Backend, tree: &TreeId, reference: ChildRef, position: &Nibbles) -> Result<Node, StoreError> {
    let key = node_key(tree, reference.version, position);
    let mut node = None;
    let found = backend.read(Table::Nodes, &key, &mut |bytes| node = Node::decode(bytes))?;
    if !found {
        return Err(StoreError::Corrupt(format!(
            "missing trie node at version {} (pruned or never written)",
            reference.version
        )));
    }
    let node = node.ok_or_else(|| StoreError::Corrupt("undecodable trie node".to_owned()))?;
    if !node.fits(position) {
        return Err(StoreError::Corrupt(format!("trie node does not fit at depth {}", position.len())));
    }
    Ok(node)
}

/// Reads the node `reference` at `position` of `tree` and checks it against its hash; proofs are
/// built from verified nodes.
pub(crate) fn load_verified(
    backend: &dyn Backend,
    tree: &TreeId,
    reference: ChildRef,
    position: &Nibbles,
    scratch: &mut Vec<u8>,
) -> Result<Node, StoreError> {
    let node = read(backend, tree, reference, position)?;
    if node.hash(scratch) != reference.hash {
        return Err(StoreError::Corrupt("trie node does not match its hash".to_owned()));
    }
    Ok(node)
}
