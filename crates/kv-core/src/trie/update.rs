//! Batch updates of one versioned Merkle-Patricia trie.
//!
//! A commit hands each touched tree its changes sorted by hashed key. The update walks down only
//! the stored nodes whose subtrees contain a change, rebuilds those paths bottom-up and writes each
//! new node once, at `(tree, new version, position)`. Nodes it replaces are recorded as stale at the
//! new version, so they stay readable for proofs against older roots until pruning. Untouched
//! subtrees are shared with the previous version by reference. The cost of a commit is therefore
//! proportional to the number of changes times the depth of the trie.
//!
//! Branch nodes never move: a branch sits at the longest common prefix of the keys below it, which
//! only changes if those keys change. Leaves and extensions can move up when a sibling disappears,
//! so they are only written once their final position is known (see [`Sub`]).

use super::TrieError;
use super::node::{ChildRef, LeafValue, Node, NodeSource, node_key};
use crate::backend::{Table, WriteBatch};
use alloy_trie::Nibbles;

/// One change to a tree: the 64-nibble hashed key and the new leaf, or `None` to delete.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub(crate) key: Nibbles,
    pub(crate) value: Option<LeafValue>,
}

/// A node that exists before the update: a stored one, or an extension that only exists in
/// memory because its stored parent extension was split.
#[derive(Clone, Copy, Debug)]
enum Existing {
    Stored(ChildRef),
    VirtualExtension { path: Nibbles, child: ChildRef },
}

/// The result of updating the subtree at some position, relative to that position.
#[derive(Clone, Debug)]
enum Sub {
    /// The stored node that was there is unchanged.
    Keep(ChildRef),
    /// A new branch, already written at this position.
    Branch(ChildRef),
    /// A leaf not yet written: its parent decides where it ends up.
    Leaf { path: Nibbles, value: LeafValue },
    /// An extension not yet written, pointing at a stored branch.
    Extension { path: Nibbles, child: ChildRef },
}

/// Writes the new version of one tree into a batch.
pub(crate) struct TreeWriter<'a, 'b> {
    source: &'a mut NodeSource<'b>,
    version: u64,
    batch: &'a mut WriteBatch,
    scratch: Vec<u8>,
}

impl<'a, 'b> TreeWriter<'a, 'b> {
    pub(crate) fn new(source: &'a mut NodeSource<'b>, version: u64, batch: &'a mut WriteBatch) -> Self {
        Self { source, version, batch, scratch: Vec::with_capacity(600) }
    }

    /// Applies `changes` (sorted by key, keys unique) to the tree whose root is `root` and returns
    /// the new root, or `None` when the tree is now empty.
    pub(crate) fn apply(&mut self, root: Option<ChildRef>, changes: &[Change]) -> Result<Option<ChildRef>, TrieError> {
        let position = Nibbles::new();
        let sub = self.update(&position, root.map(Existing::Stored), changes)?;
        Ok(sub.map(|sub| self.materialize(&position, sub)))
    }

    fn update(
        &mut self,
        position: &Nibbles,
        existing: Option<Existing>,
        changes: &[Change],
    ) -> Result<Option<Sub>, TrieError> {
        if changes.is_empty() {
            return Ok(existing.map(|existing| match existing {
                Existing::Stored(reference) => Sub::Keep(reference),
                Existing::VirtualExtension { path, child } => Sub::Extension { path, child },
            }));
        }
        match existing {
            None => {
                let entries: Vec<(Nibbles, LeafValue)> =
                    changes.iter().filter_map(|change| change.value.clone().map(|value| (change.key, value))).collect();
                self.build(position, &entries)
            }
            Some(Existing::VirtualExtension { path, child }) => {
                self.update_extension(position, None, path, child, changes)
            }
            Some(Existing::Stored(reference)) => match self.source.load(reference, position)? {
                Node::Leaf { path, value } => self.update_leaf(position, reference, path, value, changes),
                Node::Extension { path, child } => {
                    self.update_extension(position, Some(reference), path, child, changes)
                }
                Node::Branch { children } => {
                    self.update_branch(position, Some(reference), children.map(|c| c.map(Existing::Stored)), changes)
                }
            },
        }
    }

    /// Updates the stored leaf `stored` (only stored leaves exist before an update: a virtual
    /// node is always an extension).
    fn update_leaf(
        &mut self,
        position: &Nibbles,
        stored: ChildRef,
        path: Nibbles,
        value: LeafValue,
        changes: &[Change],
    ) -> Result<Option<Sub>, TrieError> {
        let leaf_key = position.join(&path);
        let mut entries = Vec::with_capacity(changes.len() + 1);
        let mut leaf_pending = true;
        let mut changed = false;
        for change in changes {
            if leaf_pending && change.key >= leaf_key {
                leaf_pending = false;
                if change.key == leaf_key {
                    changed |= change.value.as_ref() != Some(&value);
                    entries.extend(change.value.clone().map(|new| (change.key, new)));
                    continue;
                }
                entries.push((leaf_key, value.clone()));
            }
            if let Some(new) = &change.value {
                entries.push((change.key, new.clone()));
                changed = true;
            }
        }
        if leaf_pending {
            entries.push((leaf_key, value));
        }
        if !changed {
            return Ok(Some(Sub::Keep(stored)));
        }
        self.mark_stale(Some(stored), position);
        self.build(position, &entries)
    }

    fn update_extension(
        &mut self,
        position: &Nibbles,
        stored: Option<ChildRef>,
        path: Nibbles,
        child: ChildRef,
        changes: &[Change],
    ) -> Result<Option<Sub>, TrieError> {
        let child_position = position.join(&path);
        // The changes below the child are contiguous in the sorted list. Deletes outside them are
        // of absent keys (nothing but the child lies under this extension), so they must not split
        // the extension: that would rebuild it unchanged and rewrite the path to the root.
        let start = changes.partition_point(|c| c.key < child_position);
        let end = start + changes[start..].iter().take_while(|c| c.key.starts_with(&child_position)).count();
        let writes_outside = changes[..start].iter().chain(&changes[end..]).any(|c| c.value.is_some());
        if !writes_outside {
            let sub = self.update(&child_position, Some(Existing::Stored(child)), &changes[start..end])?;
            if let Some(Sub::Keep(kept)) = sub
                && kept == child
            {
                return Ok(Some(match stored {
                    Some(reference) => Sub::Keep(reference),
                    None => Sub::Extension { path, child },
                }));
            }
            self.mark_stale(stored, position);
            return Ok(match sub {
                None => None,
                Some(Sub::Branch(branch) | Sub::Keep(branch)) => Some(Sub::Extension { path, child: branch }),
                Some(Sub::Extension { path: tail, child }) => Some(Sub::Extension { path: path.join(&tail), child }),
                Some(Sub::Leaf { path: tail, value }) => Some(Sub::Leaf { path: path.join(&tail), value }),
            });
        }
        // Some change leaves the extension's path: treat the extension as a branch with a single
        // child at its first nibble, and let the branch update split and collapse as needed.
        self.mark_stale(stored, position);
        let first = usize::from(path.get_unchecked(0));
        let rest = path.slice(1..);
        let mut children = [None; 16];
        children[first] = Some(if rest.is_empty() {
            Existing::Stored(child)
        } else {
            Existing::VirtualExtension { path: rest, child }
        });
        self.update_branch(position, None, children, changes)
    }

    fn update_branch(
        &mut self,
        position: &Nibbles,
        stored: Option<ChildRef>,
        children: [Option<Existing>; 16],
        changes: &[Change],
    ) -> Result<Option<Sub>, TrieError> {
        let depth = position.len();
        let mut results: [Option<Sub>; 16] = children.map(|child| {
            child.map(|existing| match existing {
                Existing::Stored(reference) => Sub::Keep(reference),
                Existing::VirtualExtension { path, child } => Sub::Extension { path, child },
            })
        });
        let mut start = 0;
        while start < changes.len() {
            let nibble = changes[start].key.get_unchecked(depth);
            let mut end = start + 1;
            while end < changes.len() && changes[end].key.get_unchecked(depth) == nibble {
                end += 1;
            }
            let index = usize::from(nibble);
            let mut child_position = *position;
            child_position.push_unchecked(nibble);
            results[index] = self.update(&child_position, children[index], &changes[start..end])?;
            start = end;
        }
        // A stored branch is unchanged when every child came back as the very node it was
        // (the changes were deletes of absent keys or writes of equal values).
        let unchanged = stored.is_some()
            && children.iter().zip(&results).all(|(before, after)| match (before, after) {
                (None, None) => true,
                (Some(Existing::Stored(before)), Some(Sub::Keep(after))) => before == after,
                _ => false,
            });
        if unchanged {
            return Ok(stored.map(Sub::Keep));
        }
        self.mark_stale(stored, position);
        let mut present = (0u8..16).filter(|&nibble| results[usize::from(nibble)].is_some());
        let (Some(first), second) = (present.next(), present.next()) else {
            return Ok(None);
        };
        if second.is_none() {
            let Some(only) = results[usize::from(first)].take() else {
                return Ok(None);
            };
            return self.collapse(position, first, only).map(Some);
        }
        let mut references = [None; 16];
        for nibble in 0u8..16 {
            if let Some(sub) = results[usize::from(nibble)].take() {
                let mut child_position = *position;
                child_position.push_unchecked(nibble);
                references[usize::from(nibble)] = Some(self.materialize(&child_position, sub));
            }
        }
        Ok(Some(Sub::Branch(self.write(position, &Node::Branch { children: references }))))
    }

    /// Places the only remaining child `sub` (at `nibble`) of a vanished branch at `position`.
    fn collapse(&mut self, position: &Nibbles, nibble: u8, sub: Sub) -> Result<Sub, TrieError> {
        let prefix = Nibbles::from_nibbles_unchecked([nibble]);
        Ok(match sub {
            Sub::Branch(branch) => Sub::Extension { path: prefix, child: branch },
            Sub::Leaf { path, value } => Sub::Leaf { path: prefix.join(&path), value },
            Sub::Extension { path, child } => Sub::Extension { path: prefix.join(&path), child },
            Sub::Keep(reference) => {
                let mut child_position = *position;
                child_position.push_unchecked(nibble);
                match self.source.load(reference, &child_position)? {
                    Node::Branch { .. } => Sub::Extension { path: prefix, child: reference },
                    Node::Leaf { path, value } => {
                        self.mark_stale(Some(reference), &child_position);
                        Sub::Leaf { path: prefix.join(&path), value }
                    }
                    Node::Extension { path, child } => {
                        self.mark_stale(Some(reference), &child_position);
                        Sub::Extension { path: prefix.join(&path), child }
                    }
                }
            }
        })
    }

    /// Builds a fresh subtree at `position` over `entries` (sorted, unique, all below `position`).
    fn build(&mut self, position: &Nibbles, entries: &[(Nibbles, LeafValue)]) -> Result<Option<Sub>, TrieError> {
        let depth = position.len();
        Ok(match entries {
            [] => None,
            [(key, value)] => Some(Sub::Leaf { path: key.slice(depth..), value: value.clone() }),
            [(first, _), .., (last, _)] => {
                let common = first.common_prefix_length(last);
                if common > depth {
                    let branch_position = first.slice(..common);
                    let branch = self.build_branch(&branch_position, entries)?;
                    Some(Sub::Extension { path: first.slice(depth..common), child: branch })
                } else {
                    Some(Sub::Branch(self.build_branch(position, entries)?))
                }
            }
        })
    }

    fn build_branch(&mut self, position: &Nibbles, entries: &[(Nibbles, LeafValue)]) -> Result<ChildRef, TrieError> {
        let depth = position.len();
        let mut children = [None; 16];
        let mut start = 0;
        while start < entries.len() {
            let nibble = entries[start].0.get_unchecked(depth);
            let mut end = start + 1;
            while end < entries.len() && entries[end].0.get_unchecked(depth) == nibble {
                end += 1;
            }
            let mut child_position = *position;
            child_position.push_unchecked(nibble);
            if let Some(sub) = self.build(&child_position, &entries[start..end])? {
                children[usize::from(nibble)] = Some(self.materialize(&child_position, sub));
            }
            start = end;
        }
        Ok(self.write(position, &Node::Branch { children }))
    }

    /// Writes `sub` at `position` if it is not stored yet, and returns its reference.
    fn materialize(&mut self, position: &Nibbles, sub: Sub) -> ChildRef {
        match sub {
            Sub::Keep(reference) | Sub::Branch(reference) => reference,
            Sub::Leaf { path, value } => self.write(position, &Node::Leaf { path, value }),
            Sub::Extension { path, child } => self.write(position, &Node::Extension { path, child }),
        }
    }

    fn write(&mut self, position: &Nibbles, node: &Node) -> ChildRef {
        let reference = node.reference(&mut self.scratch);
        let stored = node.encode();
        let checksum = super::node::checksum(&stored);
        self.batch.put(Table::Nodes, node_key(self.source.tree(), self.version, position), stored);
        ChildRef { node: reference, version: self.version, checksum }
    }

    fn mark_stale(&mut self, stored: Option<ChildRef>, position: &Nibbles) {
        if let Some(reference) = stored {
            let node = node_key(self.source.tree(), reference.version, position);
            self.batch.put(Table::Stale, super::stale_node_key(self.version, &node), Vec::new());
        }
    }
}
