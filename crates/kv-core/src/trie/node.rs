//! Stored trie nodes: their byte layout in the `nodes` table, their position keys, and their
//! Ethereum RLP form (built with alloy-trie's node types) from which every hash is taken.
//!
//! As in Ethereum, a child whose RLP is shorter than 32 bytes is embedded in its parent rather
//! than referenced by hash. The store still keeps every node at its own position, so the stored
//! form of a child reference is its RLP reference (the 33-byte hash form or the embedded node)
//! and the version that wrote it. Proofs then list only the nodes referenced by hash, as
//! `eth_getProof` does.

use super::TrieError;
use crate::backend::{Backend, Table};
use alloy_primitives::map::HashMap;
use alloy_primitives::{B256, Bytes, keccak256};
use alloy_trie::nodes::{BranchNodeRef, ExtensionNodeRef, LeafNodeRef, RlpNode};
use alloy_trie::{Nibbles, TrieMask};

/// Which tree a node belongs to: the 21-byte namespace prefix for a storage trie, or
/// [`ACCOUNT_TREE`] for the account trie.
pub(crate) type TreeId = [u8; 21];

/// The account trie's id. Its first byte is no engine tag, so it never equals a namespace prefix.
pub(crate) const ACCOUNT_TREE: TreeId = [0xff; 21];

const TAG_LEAF: u8 = 0x00;
const TAG_LINK_LEAF: u8 = 0x01;
const TAG_EXTENSION: u8 = 0x02;
const TAG_BRANCH: u8 = 0x03;

/// How a parent refers to a child: the RLP of the child's hash (33 bytes, `0xa0 | hash`), or the
/// child's whole RLP when it is shorter than 32 bytes. A fixed array keeps it `Copy`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodeRef {
    len: u8,
    bytes: [u8; 33],
}

impl NodeRef {
    /// The reference to the node whose RLP is `rlp`.
    pub(crate) fn of_rlp(rlp: &[u8]) -> Self {
        let mut bytes = [0u8; 33];
        if rlp.len() < 32 {
            bytes[..rlp.len()].copy_from_slice(rlp);
            // Shorter than 32, so it fits a u8.
            Self { len: u8::try_from(rlp.len()).unwrap_or(0), bytes }
        } else {
            bytes[0] = alloy_rlp::EMPTY_STRING_CODE + 32;
            bytes[1..].copy_from_slice(keccak256(rlp).as_slice());
            Self { len: 33, bytes }
        }
    }

    /// Parses a stored reference; `None` when it is neither a hash reference nor an embedded node.
    pub(crate) fn from_stored(bytes: &[u8]) -> Option<Self> {
        let hash_form = bytes.len() == 33 && bytes[0] == alloy_rlp::EMPTY_STRING_CODE + 32;
        if !hash_form && !(1..32).contains(&bytes.len()) {
            return None;
        }
        let mut array = [0u8; 33];
        array[..bytes.len()].copy_from_slice(bytes);
        Some(Self { len: u8::try_from(bytes.len()).ok()?, bytes: array })
    }

    /// The reference as it appears in the parent's RLP.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Whether the child is referenced by its hash (and is therefore a node of its own in a proof).
    pub(crate) fn is_hash(&self) -> bool {
        self.len == 33
    }

    /// The node's hash: what a root record or an account's `storageRoot` holds, whether or not
    /// the node is short enough to be embedded.
    pub(crate) fn hash(&self) -> B256 {
        if self.is_hash() { B256::from_slice(&self.bytes[1..]) } else { keccak256(self.as_slice()) }
    }

    fn rlp_node(&self) -> RlpNode {
        RlpNode::from_raw(self.as_slice()).unwrap_or_default()
    }
}

impl std::fmt::Debug for NodeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeRef({})", alloy_primitives::hex::encode(self.as_slice()))
    }
}

/// A reference to a stored node: how its parent refers to it, the version (block height) that
/// wrote it, and the xxh3-64 checksum of the node's stored bytes. The checksum binds the parent to
/// the exact bytes it was built over, so that a node read back is checked against its parent
/// without hashing it again with keccak256 (ADR 0010).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChildRef {
    pub(crate) node: NodeRef,
    pub(crate) version: u64,
    pub(crate) checksum: u64,
}

/// The checksum a [`ChildRef`] holds of a node's stored bytes.
pub(crate) fn checksum(stored: &[u8]) -> u64 {
    twox_hash::XxHash3_64::oneshot(stored)
}

/// What a leaf holds: its value bytes (already in their committed form: an account's RLP, a
/// storage word's RLP or a WASM value's RLP) and, for an account leaf with storage, the stored
/// root of its storage trie (`link`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LeafValue {
    pub(crate) value: Bytes,
    pub(crate) link: Option<ChildRef>,
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
    // Exactly the key's length: a backend may keep a key of this capacity inline (the memory
    // backend's keys are inline up to 56 bytes) instead of keeping this allocation.
    let mut key = Vec::with_capacity(21 + 8 + path_len(position));
    key.extend_from_slice(tree);
    key.extend_from_slice(&version.to_be_bytes());
    push_path(&mut key, position);
    key
}

/// The stored length of `path`: its length byte and its packed nibbles.
fn path_len(path: &Nibbles) -> usize {
    1 + path.len().div_ceil(2)
}

/// The stored length of a child reference (see [`read_ref`]).
fn ref_len(child: &ChildRef) -> usize {
    1 + usize::from(child.node.len) + 16
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

/// A stored child reference: `length (u8) | reference | version (u64 BE) | checksum (u64 BE)`.
pub(crate) fn read_ref(bytes: &[u8]) -> Option<(ChildRef, &[u8])> {
    let (&len, rest) = bytes.split_first()?;
    let len = usize::from(len);
    let node = NodeRef::from_stored(rest.get(..len)?)?;
    let version = u64::from_be_bytes(rest.get(len..len + 8)?.try_into().ok()?);
    let checksum = u64::from_be_bytes(rest.get(len + 8..len + 16)?.try_into().ok()?);
    Some((ChildRef { node, version, checksum }, &rest[len + 16..]))
}

/// Appends the stored form of `child` (see [`read_ref`]).
pub(crate) fn push_ref(out: &mut Vec<u8>, child: &ChildRef) {
    out.push(child.node.len);
    out.extend_from_slice(child.node.as_slice());
    out.extend_from_slice(&child.version.to_be_bytes());
    out.extend_from_slice(&child.checksum.to_be_bytes());
}

impl Node {
    /// The stored byte form. A leaf's value comes last, so it needs no length.
    pub(crate) fn encode(&self) -> Vec<u8> {
        // Exactly the encoded length, so that neither growing the buffer nor a backend's turning
        // it into a boxed slice copies it again.
        let mut out = Vec::with_capacity(self.encoded_len());
        match self {
            Self::Leaf { path, value } => {
                out.push(if value.link.is_some() { TAG_LINK_LEAF } else { TAG_LEAF });
                push_path(&mut out, path);
                if let Some(link) = &value.link {
                    push_ref(&mut out, link);
                }
                out.extend_from_slice(&value.value);
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

    /// The length of [`Node::encode`]'s output.
    fn encoded_len(&self) -> usize {
        1 + match self {
            Self::Leaf { path, value } => path_len(path) + value.link.as_ref().map_or(0, ref_len) + value.value.len(),
            Self::Extension { path, child } => path_len(path) + ref_len(child),
            Self::Branch { children } => 2 + children.iter().flatten().map(ref_len).sum::<usize>(),
        }
    }

    /// Parses the stored byte form; `None` for anything malformed.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let (&tag, rest) = bytes.split_first()?;
        let node = match tag {
            TAG_LEAF | TAG_LINK_LEAF => {
                let (path, rest) = read_path(rest)?;
                let (link, rest) = if tag == TAG_LINK_LEAF {
                    let (link, rest) = read_ref(rest)?;
                    (Some(link), rest)
                } else {
                    (None, rest)
                };
                if rest.is_empty() {
                    return None;
                }
                Self::Leaf { path, value: LeafValue { value: Bytes::copy_from_slice(rest), link } }
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
                LeafNodeRef::new(path, &value.value).rlp(out);
            }
            Self::Extension { path, child } => {
                ExtensionNodeRef::new(path, &child.node.rlp_node()).rlp(out);
            }
            Self::Branch { children } => {
                let stack: smallvec::SmallVec<[RlpNode; 16]> =
                    children.iter().flatten().map(|child| child.node.rlp_node()).collect();
                BranchNodeRef::new(&stack, mask(children)).rlp(out);
            }
        }
    }

    /// How the node's parent refers to it.
    pub(crate) fn reference(&self, scratch: &mut Vec<u8>) -> NodeRef {
        self.rlp(scratch);
        NodeRef::of_rlp(scratch)
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

/// Where a tree update reads stored nodes from. Every node is checked against the checksum its
/// parent holds before it is used, so a stored node that decodes but is not the node its parent
/// was built over is `Corrupt`, never folded into a wrong root. For the account trie, which a
/// commit reads twice (to find the old storage roots, then to update it), checked nodes are kept
/// for the commit's duration.
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

    /// Reads the node `reference` at `position`, checked against the reference.
    pub(crate) fn load(&mut self, reference: ChildRef, position: &Nibbles) -> Result<Node, TrieError> {
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

fn read(backend: &dyn Backend, tree: &TreeId, reference: ChildRef, position: &Nibbles) -> Result<Node, TrieError> {
    let key = node_key(tree, reference.version, position);
    let mut node = None;
    let mut intact = false;
    let found = backend.read(Table::Nodes, &key, &mut |bytes| {
        intact = checksum(bytes) == reference.checksum;
        node = Node::decode(bytes);
    })?;
    if !found {
        return Err(TrieError::Corrupt(format!(
            "missing trie node at version {} (pruned or never written)",
            reference.version
        )));
    }
    let node = node.ok_or_else(|| TrieError::Corrupt("undecodable trie node".to_owned()))?;
    if !node.fits(position) {
        return Err(TrieError::Corrupt(format!("trie node does not fit at depth {}", position.len())));
    }
    if !intact {
        return Err(TrieError::Corrupt(format!(
            "trie node at depth {} does not match the reference its parent holds (checksum)",
            position.len()
        )));
    }
    Ok(node)
}

/// Reads the node `reference` at `position` of `tree` and checks it against the reference: its
/// checksum, and its hash (or its whole RLP for an embedded node), which proofs need anyway.
pub(crate) fn load_verified(
    backend: &dyn Backend,
    tree: &TreeId,
    reference: ChildRef,
    position: &Nibbles,
    scratch: &mut Vec<u8>,
) -> Result<Node, TrieError> {
    let node = read(backend, tree, reference, position)?;
    if node.reference(scratch) != reference.node {
        return Err(TrieError::Corrupt(format!(
            "trie node at depth {} does not match the reference its parent holds",
            position.len()
        )));
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

    use super::*;

    fn child(rlp: &[u8], version: u64) -> ChildRef {
        ChildRef { node: NodeRef::of_rlp(rlp), version, checksum: version.wrapping_mul(0x9e37) }
    }

    /// Every node's stored form is allocated at exactly its length (a backend keeps it without
    /// copying or shrinking it) and decodes back to the node; so is every node key.
    #[test]
    fn stored_forms_are_allocated_at_their_exact_length() {
        let hashed = child(&[0xab; 40], 7);
        let embedded = child(&[0xc2, 0x01, 0x02], 9);
        let mut children = [None; 16];
        children[1] = Some(hashed);
        children[9] = Some(embedded);
        children[15] = Some(hashed);
        let nodes = [
            Node::Leaf {
                path: Nibbles::from_nibbles([1, 2, 3]),
                value: LeafValue { value: Bytes::from_static(b"value"), link: None },
            },
            Node::Leaf {
                path: Nibbles::from_nibbles([4; 64]),
                value: LeafValue { value: Bytes::from_static(&[0x80; 70]), link: Some(hashed) },
            },
            Node::Extension { path: Nibbles::from_nibbles([5, 6]), child: hashed },
            Node::Extension { path: Nibbles::from_nibbles([7]), child: embedded },
            Node::Branch { children },
        ];
        for node in nodes {
            let stored = node.encode();
            assert_eq!(stored.capacity(), stored.len(), "{node:?}");
            assert_eq!(Node::decode(&stored), Some(node));
        }
        for length in [0, 1, 2, 33, 64] {
            let key = node_key(&ACCOUNT_TREE, 3, &Nibbles::from_nibbles(vec![0xa; length]));
            assert_eq!(key.capacity(), key.len(), "a path of {length} nibbles");
        }
    }
}
