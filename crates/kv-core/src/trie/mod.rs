//! The state trie: Ethereum's account trie extended with WASM namespaces, each namespace with a
//! storage trie of its own, stored as versioned nodes.
//!
//! The layout (which key and which leaf each entry has) is [`crate::commitment`]'s; this module
//! stores and updates the tries. Both levels are Ethereum hexary tries: nodes are RLP-encoded
//! with alloy-trie's node types, short nodes are embedded in their parents, and every root is
//! keccak256 of its root node's RLP, so alloy-trie's `HashBuilder` recomputes any root from
//! scratch and any standard Merkle-Patricia verifier checks our proofs.
//!
//! Nodes are stored per version (block height) and never overwritten; a node replaced at height
//! `h` is listed in the `stale` table under `h` and deleted once no retained root needs it. The
//! trie knows the backend seam but not the store above it: its failures are [`TrieError`]s.

pub(crate) mod node;
pub(crate) mod update;

use crate::backend::{Backend, BackendError, Table, WriteBatch};
use alloy_primitives::{B256, Bytes};
use alloy_trie::Nibbles;
use node::{ChildRef, LeafValue, Node, NodeSource, TreeId, load_verified};
use std::ops::ControlFlow;

/// Why a trie operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TrieError {
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The stored nodes contradict themselves or the references that name them.
    #[error("{0}")]
    Corrupt(String),
}

/// The `stale` key recording that `node` (a `nodes` key) is unreachable from height `since` on:
/// `since (u64) | node key`.
pub(crate) fn stale_node_key(since: u64, node: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + node.len());
    key.extend_from_slice(&since.to_be_bytes());
    key.extend_from_slice(node);
    key
}

/// Marks every node of the tree under `root` stale from `since` on: the namespace was wiped and
/// its sub-trie is rebuilt from nothing. Costs one read per node, like deleting the namespace's
/// values does.
pub(crate) fn mark_tree_stale(
    source: &mut NodeSource<'_>,
    root: ChildRef,
    since: u64,
    batch: &mut WriteBatch,
) -> Result<(), TrieError> {
    let mut pending = vec![(root, Nibbles::new())];
    while let Some((reference, position)) = pending.pop() {
        let node = source.load(reference, &position)?;
        let key = node::node_key(source.tree(), reference.version, &position);
        batch.put(Table::Stale, stale_node_key(since, &key), Vec::new());
        match node {
            Node::Leaf { .. } => {}
            Node::Extension { path, child } => pending.push((child, position.join(&path))),
            Node::Branch { children } => {
                for (nibble, child) in (0u8..16).zip(children) {
                    if let Some(child) = child {
                        let mut next = position;
                        next.push_unchecked(nibble);
                        pending.push((child, next));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The nodes on the path to `key`, as RLP, and the leaf found there if any.
pub(crate) fn walk(
    backend: &dyn Backend,
    tree: &TreeId,
    root: Option<ChildRef>,
    key: &Nibbles,
) -> Result<(Vec<Bytes>, Option<LeafValue>), TrieError> {
    let mut nodes = Vec::new();
    let mut scratch = Vec::new();
    let mut position = Nibbles::new();
    let mut current = root;
    let mut is_root = true;
    while let Some(reference) = current {
        let node = load_verified(backend, tree, reference, &position, &mut scratch)?;
        // An embedded node is already part of its parent's RLP; a proof lists only the root and
        // the nodes referenced by hash, as `eth_getProof` does.
        if is_root || reference.node.is_hash() {
            nodes.push(Bytes::copy_from_slice(&scratch));
        }
        is_root = false;
        current = match node {
            Node::Leaf { path, value } => {
                let found = (position.join(&path) == *key).then_some(value);
                return Ok((nodes, found));
            }
            Node::Extension { path, child } => {
                let next = position.join(&path);
                if !key.starts_with(&next) {
                    return Ok((nodes, None));
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
    Ok((nodes, None))
}

/// The leaves at `keys` (sorted, unique) in the tree rooted at `root`, in one descent that
/// visits each node on the way at most once.
pub(crate) fn find_leaves(
    source: &mut NodeSource<'_>,
    root: Option<ChildRef>,
    keys: &[Nibbles],
) -> Result<Vec<Option<LeafValue>>, TrieError> {
    let mut found = vec![None; keys.len()];
    if let Some(root) = root {
        descend(source, root, &Nibbles::new(), keys, &mut found)?;
    }
    Ok(found)
}

fn descend(
    source: &mut NodeSource<'_>,
    reference: ChildRef,
    position: &Nibbles,
    keys: &[Nibbles],
    found: &mut [Option<LeafValue>],
) -> Result<(), TrieError> {
    match source.load(reference, position)? {
        Node::Leaf { path, value } => {
            let key = position.join(&path);
            if let Ok(index) = keys.binary_search(&key) {
                found[index] = Some(value);
            }
        }
        Node::Extension { path, child } => {
            let next = position.join(&path);
            let start = keys.partition_point(|key| *key < next);
            let end = start + keys[start..].iter().take_while(|key| key.starts_with(&next)).count();
            if start < end {
                descend(source, child, &next, &keys[start..end], &mut found[start..end])?;
            }
        }
        Node::Branch { children } => {
            let depth = position.len();
            let mut start = 0;
            while start < keys.len() {
                let nibble = keys[start].get_unchecked(depth);
                let end = start + keys[start..].iter().take_while(|key| key.get_unchecked(depth) == nibble).count();
                if let Some(child) = children[usize::from(nibble)] {
                    let mut next = *position;
                    next.push_unchecked(nibble);
                    descend(source, child, &next, &keys[start..end], &mut found[start..end])?;
                }
                start = end;
            }
        }
    }
    Ok(())
}

/// Adds to `batch` the deletion of every node that no root at or after `oldest_retained` needs,
/// together with the stale records that listed them.
pub(crate) fn prune(backend: &dyn Backend, oldest_retained: u64, batch: &mut WriteBatch) -> Result<(), TrieError> {
    let end = oldest_retained.saturating_add(1).to_be_bytes();
    let mut malformed = false;
    backend.scan(Table::Stale, &[], Some(&end), &mut |key, _| {
        match key.get(8..) {
            Some(node) if !node.is_empty() => {
                batch.delete(Table::Nodes, node.to_vec());
                batch.delete(Table::Stale, key.to_vec());
            }
            _ => malformed = true,
        }
        ControlFlow::Continue(())
    })?;
    if malformed {
        return Err(TrieError::Corrupt("malformed stale record".to_owned()));
    }
    Ok(())
}

/// Turns every stale record in `batch` into the deletion of the node it lists. A commit calls this
/// when it retains only its own root: the nodes it replaces are then needed by no retained root,
/// and `prune`, which reads stale records from the backend, would only find them one commit later.
pub(crate) fn prune_replaced(batch: &mut WriteBatch) {
    for op in batch.ops_mut() {
        if op.table == Table::Stale && op.value.is_some() && op.key.len() > 8 {
            // A stale key is `since (u64) | node key`; what remains is the node key.
            op.key.drain(..8);
            op.table = Table::Nodes;
            op.value = None;
        }
    }
}

/// The root hash of an optional root reference.
pub(crate) fn root_hash(root: Option<ChildRef>) -> B256 {
    root.map_or(alloy_trie::EMPTY_ROOT_HASH, |root| root.node.hash())
}
