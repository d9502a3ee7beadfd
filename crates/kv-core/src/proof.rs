//! Inclusion and exclusion proofs, their binary encoding, and the standalone verifier.
//!
//! A key proof is two Ethereum Merkle-Patricia proofs chained together: the namespace's sub-root
//! in the global trie, then the key's value commitment in the namespace's sub-trie. The verifier
//! needs nothing but the root, the key, the claimed value and the proof: no backend, no engine.
//! Each half is checked by alloy-trie's `verify_proof`, after a shape check that rejects anything
//! our trie never produces (inline nodes, paths longer than 64 nibbles), so that untrusted proof
//! bytes can never make the verifier panic.

use crate::key::{KeyError, KeyLayout, Namespace, PREFIX_LEN};
use crate::trie::{entry_key, global_key};
use alloy_primitives::{B256, Bytes, keccak256};
use alloy_rlp::Decodable;
use alloy_trie::nodes::TrieNode;
use alloy_trie::proof::verify_proof;

/// Version byte of the proof encoding.
pub const PROOF_FORMAT_VERSION: u8 = 0x01;
/// Most nodes one trie path can have: one per nibble of a 32-byte key, plus the leaf.
pub const MAX_PROOF_NODES: usize = 65;
/// Largest node RLP: a branch with sixteen hashed children is 532 bytes.
pub const MAX_NODE_LEN: usize = 1024;

const KIND_KEY: u8 = 0x01;
const KIND_NAMESPACE: u8 = 0x02;

/// A proof that a key has a given value, or no value, under a state root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyProof {
    /// The path in the global trie to the key's namespace.
    pub global: Vec<Bytes>,
    /// The namespace's sub-root and the path in its sub-trie, or `None` when the namespace has
    /// no entries at all (then `global` proves the namespace's absence).
    pub subtree: Option<SubtreeProof>,
}

/// The sub-trie half of a [`KeyProof`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubtreeProof {
    /// The namespace's sub-root.
    pub root: B256,
    /// The path in the sub-trie to the key.
    pub nodes: Vec<Bytes>,
}

/// A proof of a namespace's sub-root (or of its absence) under a state root: one proof for a
/// whole module's or contract's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceProof {
    /// The path in the global trie to the namespace.
    pub global: Vec<Bytes>,
}

/// Why a proof failed to decode or verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The bytes end early.
    #[error("truncated proof")]
    Truncated,
    /// The format version is not one this verifier knows.
    #[error("unsupported proof format version {0}")]
    UnsupportedVersion(u8),
    /// The proof kind byte is unknown, or the proof is of the other kind.
    #[error("unexpected proof kind 0x{0:02x}")]
    WrongKind(u8),
    /// A flag byte is neither 0 nor 1.
    #[error("invalid flag byte 0x{0:02x}")]
    InvalidFlag(u8),
    /// More nodes than any trie path can have.
    #[error("{0} nodes in one path; at most 65")]
    TooManyNodes(usize),
    /// A node is empty or longer than any node of the trie.
    #[error("node of {0} bytes; nodes are 1 to 1024 bytes")]
    NodeLength(usize),
    /// Bytes follow the end of the proof.
    #[error("{0} trailing bytes after the proof")]
    TrailingBytes(usize),
    /// A node is not valid RLP of a trie node.
    #[error("malformed trie node: {0}")]
    MalformedNode(String),
    /// A node references a child inline, which this trie never does.
    #[error("inline child node; every child of this trie is referenced by hash")]
    InlineNode,
    /// The nodes walk more than 64 nibbles.
    #[error("proof path is longer than 64 nibbles")]
    PathTooLong,
    /// The key is not a valid state key.
    #[error("invalid key: {0}")]
    InvalidKey(#[from] KeyError),
    /// The proof does not show the claimed value (or absence) under the root.
    #[error("proof does not verify: {0}")]
    Mismatch(String),
    /// A value is claimed, but the proof shows the namespace has no entries.
    #[error("the proof shows the namespace is empty, so no value can be present")]
    NamespaceAbsent,
}

/// Verifies that `key` (an encoded state key) has `value` (or, for `None`, no value) in the state
/// whose root is `root`.
pub fn verify(root: B256, key: &[u8], value: Option<&[u8]>, proof: &KeyProof) -> Result<(), ProofError> {
    verify_commitment(root, key, value.map(keccak256), proof)
}

/// Verifies that `key` has a value whose keccak256 is `commitment` (or, for `None`, no value)
/// under `root`. The store keeps values only for its latest height, so a proof at an older height
/// shows the value's commitment; the holder of the value checks it with [`verify`].
pub fn verify_commitment(root: B256, key: &[u8], commitment: Option<B256>, proof: &KeyProof) -> Result<(), ProofError> {
    KeyLayout::of(key)?;
    let (prefix, suffix) = key.split_at(PREFIX_LEN);
    match &proof.subtree {
        Some(subtree) => {
            check_path(root, global_key(prefix), Some(subtree.root), &proof.global)?;
            check_path(subtree.root, entry_key(suffix), commitment, &subtree.nodes)
        }
        None => {
            if commitment.is_some() {
                return Err(ProofError::NamespaceAbsent);
            }
            check_path(root, global_key(prefix), None, &proof.global)
        }
    }
}

/// Verifies that `namespace` has sub-root `subroot` (or, for `None`, no entries) under `root`.
pub fn verify_namespace(
    root: B256,
    namespace: &Namespace,
    subroot: Option<B256>,
    proof: &NamespaceProof,
) -> Result<(), ProofError> {
    check_path(root, global_key(namespace.prefix()), subroot, &proof.global)
}

fn check_path(root: B256, key: alloy_trie::Nibbles, value: Option<B256>, nodes: &[Bytes]) -> Result<(), ProofError> {
    check_shape(nodes)?;
    verify_proof(root, key, value.map(|value| value.to_vec()), nodes)
        .map_err(|error| ProofError::Mismatch(error.to_string()))
}

/// Rejects node lists that alloy-trie's verifier could misread or panic on: anything that is not
/// a trie node, inline children, and paths beyond 64 nibbles.
fn check_shape(nodes: &[Bytes]) -> Result<(), ProofError> {
    if nodes.len() > MAX_PROOF_NODES {
        return Err(ProofError::TooManyNodes(nodes.len()));
    }
    let mut walked = 0usize;
    for node in nodes {
        let decoded =
            TrieNode::decode(&mut node.as_ref()).map_err(|error| ProofError::MalformedNode(error.to_string()))?;
        walked += match decoded {
            TrieNode::Branch(branch) => {
                if !branch.stack.iter().all(|child| child.is_hash()) {
                    return Err(ProofError::InlineNode);
                }
                1
            }
            TrieNode::Extension(extension) => {
                if !extension.child.is_hash() {
                    return Err(ProofError::InlineNode);
                }
                extension.key.len()
            }
            TrieNode::Leaf(leaf) => leaf.key.len(),
            TrieNode::EmptyRoot => 0,
        };
        if walked > 64 {
            return Err(ProofError::PathTooLong);
        }
    }
    Ok(())
}

impl KeyProof {
    /// The binary form: `version | kind | global path | present flag [| sub-root | sub path]`,
    /// where a path is `count (u8)` then `length (u16 BE) | node` per node.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROOF_FORMAT_VERSION, KIND_KEY];
        encode_path(&mut out, &self.global);
        match &self.subtree {
            None => out.push(0),
            Some(subtree) => {
                out.push(1);
                out.extend_from_slice(subtree.root.as_slice());
                encode_path(&mut out, &subtree.nodes);
            }
        }
        out
    }

    /// Parses the binary form; any deviation is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProofError> {
        let mut reader = Reader { bytes };
        reader.header(KIND_KEY)?;
        let global = reader.path()?;
        let subtree = match reader.byte()? {
            0 => None,
            1 => {
                let root = B256::from_slice(reader.take(32)?);
                Some(SubtreeProof { root, nodes: reader.path()? })
            }
            flag => return Err(ProofError::InvalidFlag(flag)),
        };
        reader.finish()?;
        Ok(Self { global, subtree })
    }

    /// The total size of the encoded proof in bytes.
    pub fn encoded_len(&self) -> usize {
        self.encode().len()
    }
}

impl NamespaceProof {
    /// The binary form: `version | kind | global path`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![PROOF_FORMAT_VERSION, KIND_NAMESPACE];
        encode_path(&mut out, &self.global);
        out
    }

    /// Parses the binary form.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProofError> {
        let mut reader = Reader { bytes };
        reader.header(KIND_NAMESPACE)?;
        let global = reader.path()?;
        reader.finish()?;
        Ok(Self { global })
    }
}

fn encode_path(out: &mut Vec<u8>, nodes: &[Bytes]) {
    // Paths built by the store have at most 65 nodes of at most 532 bytes.
    out.push(u8::try_from(nodes.len()).unwrap_or(u8::MAX));
    for node in nodes {
        out.extend_from_slice(&u16::try_from(node.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(node);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], ProofError> {
        if self.bytes.len() < len {
            return Err(ProofError::Truncated);
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, ProofError> {
        Ok(self.take(1)?[0])
    }

    fn header(&mut self, kind: u8) -> Result<(), ProofError> {
        let version = self.byte()?;
        if version != PROOF_FORMAT_VERSION {
            return Err(ProofError::UnsupportedVersion(version));
        }
        let found = self.byte()?;
        if found != kind {
            return Err(ProofError::WrongKind(found));
        }
        Ok(())
    }

    fn path(&mut self) -> Result<Vec<Bytes>, ProofError> {
        let count = usize::from(self.byte()?);
        if count > MAX_PROOF_NODES {
            return Err(ProofError::TooManyNodes(count));
        }
        let mut nodes = Vec::with_capacity(count);
        for _ in 0..count {
            let length = self.take(2)?;
            let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
            if length == 0 || length > MAX_NODE_LEN {
                return Err(ProofError::NodeLength(length));
            }
            nodes.push(Bytes::copy_from_slice(self.take(length)?));
        }
        Ok(nodes)
    }

    fn finish(&self) -> Result<(), ProofError> {
        if self.bytes.is_empty() { Ok(()) } else { Err(ProofError::TrailingBytes(self.bytes.len())) }
    }
}
