//! Inclusion and exclusion proofs, their binary encoding, and the standalone verifier.
//!
//! The root is an Ethereum state root, so every proof is made of Ethereum Merkle-Patricia proofs:
//! the path in the account trie to a namespace's account leaf, then, for a storage entry, the
//! path in that namespace's storage trie ([`crate::commitment`] says which keys and leaves). An
//! EVM account's proof is exactly what `eth_getProof` (EIP-1186) returns ([`AccountProof`]) and
//! verifies with any standard verifier. The verifier here needs nothing but the root, the key, the
//! claimed value and the proof: no backend, no engine. Each path is checked by alloy-trie's
//! `verify_proof` after a shape check that bounds what untrusted bytes can make it do, so that
//! proof bytes can never make the verifier panic.

use crate::commitment::{Placement, account_key, encode_account, placement, storage_leaf};
use crate::key::{KeyError, KeyLayout, Namespace};
use crate::record::AccountRecord;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::Decodable;
use alloy_trie::nodes::TrieNode;
use alloy_trie::proof::verify_proof;
use alloy_trie::{KECCAK_EMPTY, Nibbles, TrieAccount};

/// Version byte of the proof encoding.
pub const PROOF_FORMAT_VERSION: u8 = 0x02;
/// Most nodes one trie path can have: one per nibble of a 32-byte key, plus the leaf.
pub const MAX_PROOF_NODES: usize = 65;
/// Largest node RLP: a leaf holding the largest WASM value (16 KiB and its RLP headers, under a
/// 33-byte path). A branch with sixteen hashed children is only 532 bytes.
pub const MAX_NODE_LEN: usize = crate::key::MAX_USER_VALUE_LEN + 64;
/// Largest account leaf RLP: four fields of at most 33 bytes and a list header.
const MAX_ACCOUNT_LEN: usize = 4 * 33 + 3;

const KIND_KEY: u8 = 0x01;
const KIND_NAMESPACE: u8 = 0x02;

/// A proof that a key has a given value, or no value, under a state root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyProof {
    /// The path in the account trie to the key's namespace.
    pub account_proof: Vec<Bytes>,
    /// The namespace's account leaf, or `None` when the namespace is absent (then
    /// `account_proof` proves its absence).
    pub account: Option<TrieAccount>,
    /// The path in the namespace's storage trie to the key; empty for an EVM account record,
    /// which is committed in the account leaf itself.
    pub storage_proof: Vec<Bytes>,
}

/// A proof of a namespace's account leaf (or of its absence) under a state root: one proof for a
/// whole module's or contract's state, whose storage root it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceProof {
    /// The path in the account trie to the namespace.
    pub account_proof: Vec<Bytes>,
    /// The namespace's account leaf, or `None` when the namespace is absent.
    pub account: Option<TrieAccount>,
}

/// An EIP-1186 account proof: what `eth_getProof` returns for an address and storage slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountProof {
    /// The address proven.
    pub address: Address,
    /// The account's leaf, or `None` when the account does not exist.
    pub account: Option<TrieAccount>,
    /// The path in the account trie to `keccak256(address)`.
    pub account_proof: Vec<Bytes>,
    /// One proof per requested slot, in request order.
    pub storage: Vec<StorageProof>,
}

/// One storage slot of an [`AccountProof`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageProof {
    /// The slot, as requested.
    pub key: B256,
    /// The slot's value (zero when absent).
    pub value: U256,
    /// The path in the account's storage trie to `keccak256(key)`.
    pub proof: Vec<Bytes>,
}

impl AccountProof {
    /// The fields `eth_getProof` reports for the account: an absent account has nonce 0,
    /// balance 0, the empty code hash and the empty storage root, as geth and reth report it.
    pub fn reported_account(&self) -> TrieAccount {
        self.account.unwrap_or_default()
    }
}

/// Why a proof failed to decode or verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The bytes end early.
    #[error("truncated proof")]
    Truncated,
    /// The format version is not one this verifier knows.
    #[error("unsupported proof format version {0} (this verifier reads version 2)")]
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
    #[error("node of {0} bytes; nodes are 1 to {MAX_NODE_LEN} bytes")]
    NodeLength(usize),
    /// Bytes follow the end of the proof.
    #[error("{0} trailing bytes after the proof")]
    TrailingBytes(usize),
    /// A node is not valid RLP of a trie node.
    #[error("malformed trie node: {0}")]
    MalformedNode(String),
    /// The account leaf carried by the proof is not an account's RLP.
    #[error("malformed account leaf: {0}")]
    MalformedAccount(String),
    /// The nodes walk more than 64 nibbles.
    #[error("proof path is longer than 64 nibbles")]
    PathTooLong,
    /// The key is not a valid state key.
    #[error("invalid key: {0}")]
    InvalidKey(#[from] KeyError),
    /// A code blob was to be proven: blobs are committed through the code hashes that name them.
    #[error("code blobs are not in the trie; prove the account or module whose code hash names the blob")]
    NotCommitted,
    /// The claimed value does not fit the key's layout.
    #[error("invalid claimed value: {0}")]
    InvalidValue(String),
    /// The proof does not show the claimed value (or absence) under the root.
    #[error("proof does not verify: {0}")]
    Mismatch(String),
    /// A value is claimed, but the proof shows the namespace is absent.
    #[error("the proof shows the namespace is absent, so no value can be present")]
    NamespaceAbsent,
}

/// Verifies that `key` (an encoded state key) has `value` (or, for `None`, no value) in the state
/// whose root is `root`.
///
/// For an EVM account record, `None` claims that the account has no record: its leaf is absent,
/// or (when the namespace still has storage) holds an empty account's fields. A record of zero
/// nonce, zero balance and no code is indistinguishable from that, as in Ethereum.
pub fn verify(root: B256, key: &[u8], value: Option<&[u8]>, proof: &KeyProof) -> Result<(), ProofError> {
    let layout = KeyLayout::of(key)?;
    let namespace = Namespace::from_prefix(key)?;
    let account_key = account_key(&namespace).ok_or(ProofError::NotCommitted)?;
    check_account(root, account_key, proof.account.as_ref(), &proof.account_proof)?;
    match placement(key)? {
        Placement::CodeBlob => Err(ProofError::NotCommitted),
        Placement::AccountLeaf => {
            let claimed = value
                .map(AccountRecord::decode)
                .transpose()
                .map_err(|error| ProofError::InvalidValue(error.to_string()))?;
            match (claimed, proof.account) {
                (None, None) => Ok(()),
                (Some(_), None) => Err(ProofError::NamespaceAbsent),
                (None, Some(account)) => {
                    let empty = account.nonce == 0 && account.balance.is_zero() && account.code_hash == KECCAK_EMPTY;
                    if empty { Ok(()) } else { Err(ProofError::Mismatch("the account exists".into())) }
                }
                (Some(record), Some(account)) => {
                    let fields = (account.nonce, account.balance, account.code_hash);
                    if fields == (record.nonce, record.balance, record.code_hash) {
                        Ok(())
                    } else {
                        Err(ProofError::Mismatch("the account leaf holds other fields than the record".into()))
                    }
                }
            }
        }
        Placement::Storage(slot) => {
            // The claimed value is checked before its leaf is built: a word longer than 32 bytes
            // has no leaf, and a proof file may claim one.
            if layout == KeyLayout::EvmStorage && value.is_some_and(|value| value.len() != 32) {
                return Err(ProofError::InvalidValue("storage words are 32 bytes".into()));
            }
            let leaf = value
                .map(|value| storage_leaf(layout, value).ok_or_else(|| ProofError::InvalidValue("no leaf".into())))
                .transpose()?;
            match proof.account {
                None if leaf.is_some() => Err(ProofError::NamespaceAbsent),
                None => Ok(()),
                Some(account) => check_path(account.storage_root, slot, leaf, &proof.storage_proof),
            }
        }
    }
}

/// Verifies that `namespace` has an account leaf whose storage root is `storage_root` (or, for
/// `None`, no account leaf) under `root`.
pub fn verify_namespace(
    root: B256,
    namespace: &Namespace,
    storage_root: Option<B256>,
    proof: &NamespaceProof,
) -> Result<(), ProofError> {
    let account_key = account_key(namespace).ok_or(ProofError::NotCommitted)?;
    check_account(root, account_key, proof.account.as_ref(), &proof.account_proof)?;
    match (storage_root, proof.account) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(ProofError::NamespaceAbsent),
        (None, Some(_)) => Err(ProofError::Mismatch("the namespace exists".into())),
        (Some(claimed), Some(account)) if account.storage_root == claimed => Ok(()),
        (Some(_), Some(_)) => Err(ProofError::Mismatch("the namespace has another storage root".into())),
    }
}

/// Verifies an EIP-1186 proof against `root`: the account (or its absence) and every slot.
pub fn verify_account_proof(root: B256, proof: &AccountProof) -> Result<(), ProofError> {
    check_account(root, keccak256(proof.address), proof.account.as_ref(), &proof.account_proof)?;
    let storage_root = proof.reported_account().storage_root;
    for slot in &proof.storage {
        let leaf = (!slot.value.is_zero()).then(|| alloy_rlp::encode(slot.value));
        check_path(storage_root, keccak256(slot.key), leaf, &slot.proof)?;
    }
    Ok(())
}

fn check_account(
    root: B256,
    account_key: B256,
    account: Option<&TrieAccount>,
    nodes: &[Bytes],
) -> Result<(), ProofError> {
    check_path(root, account_key, account.map(encode_account), nodes)
}

fn check_path(root: B256, key: B256, value: Option<Vec<u8>>, nodes: &[Bytes]) -> Result<(), ProofError> {
    check_shape(nodes)?;
    verify_proof(root, Nibbles::unpack(key), value, nodes).map_err(|error| ProofError::Mismatch(error.to_string()))
}

/// Rejects node lists that alloy-trie's verifier could misread: anything that is not a trie
/// node, and paths beyond 64 nibbles. Embedded children are decoded by the verifier itself; each
/// is shorter than 32 bytes, so they cannot nest deeply.
fn check_shape(nodes: &[Bytes]) -> Result<(), ProofError> {
    if nodes.len() > MAX_PROOF_NODES {
        return Err(ProofError::TooManyNodes(nodes.len()));
    }
    let mut walked = 0usize;
    for node in nodes {
        if node.is_empty() || node.len() > MAX_NODE_LEN {
            return Err(ProofError::NodeLength(node.len()));
        }
        let decoded =
            TrieNode::decode(&mut node.as_ref()).map_err(|error| ProofError::MalformedNode(error.to_string()))?;
        walked += match decoded {
            TrieNode::Branch(_) => 1,
            TrieNode::Extension(extension) => extension.key.len(),
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
    /// The binary form: `version | kind | account path | present flag [| account | storage path]`,
    /// where a path is `count (u8)` then `length (u16 BE) | node` per node, and the account is
    /// `length (u8) | RLP`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = alloc::vec![PROOF_FORMAT_VERSION, KIND_KEY];
        encode_path(&mut out, &self.account_proof);
        encode_account_field(&mut out, self.account.as_ref());
        if self.account.is_some() {
            encode_path(&mut out, &self.storage_proof);
        }
        out
    }

    /// Parses the binary form; any deviation is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProofError> {
        let mut reader = Reader { bytes };
        reader.header(KIND_KEY)?;
        let account_proof = reader.path()?;
        let account = reader.account()?;
        let storage_proof = if account.is_some() { reader.path()? } else { Vec::new() };
        reader.finish()?;
        Ok(Self { account_proof, account, storage_proof })
    }

    /// The total size of the encoded proof in bytes.
    pub fn encoded_len(&self) -> usize {
        self.encode().len()
    }
}

impl NamespaceProof {
    /// The binary form: `version | kind | account path | present flag [| account]`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = alloc::vec![PROOF_FORMAT_VERSION, KIND_NAMESPACE];
        encode_path(&mut out, &self.account_proof);
        encode_account_field(&mut out, self.account.as_ref());
        out
    }

    /// Parses the binary form.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProofError> {
        let mut reader = Reader { bytes };
        reader.header(KIND_NAMESPACE)?;
        let account_proof = reader.path()?;
        let account = reader.account()?;
        reader.finish()?;
        Ok(Self { account_proof, account })
    }
}

fn encode_path(out: &mut Vec<u8>, nodes: &[Bytes]) {
    // Paths built by the store have at most 65 nodes of at most MAX_NODE_LEN bytes.
    out.push(u8::try_from(nodes.len()).unwrap_or(u8::MAX));
    for node in nodes {
        out.extend_from_slice(&u16::try_from(node.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(node);
    }
}

fn encode_account_field(out: &mut Vec<u8>, account: Option<&TrieAccount>) {
    match account {
        None => out.push(0),
        Some(account) => {
            out.push(1);
            let rlp = encode_account(account);
            // An account's RLP is at most 135 bytes.
            out.push(u8::try_from(rlp.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(&rlp);
        }
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

    fn account(&mut self) -> Result<Option<TrieAccount>, ProofError> {
        match self.byte()? {
            0 => Ok(None),
            1 => {
                let length = usize::from(self.byte()?);
                if length == 0 || length > MAX_ACCOUNT_LEN {
                    return Err(ProofError::MalformedAccount(format!("{length} bytes")));
                }
                let mut rlp = self.take(length)?;
                let account =
                    TrieAccount::decode(&mut rlp).map_err(|error| ProofError::MalformedAccount(error.to_string()))?;
                if !rlp.is_empty() {
                    return Err(ProofError::MalformedAccount("trailing bytes".into()));
                }
                Ok(Some(account))
            }
            flag => Err(ProofError::InvalidFlag(flag)),
        }
    }

    fn finish(&self) -> Result<(), ProofError> {
        if self.bytes.is_empty() { Ok(()) } else { Err(ProofError::TrailingBytes(self.bytes.len())) }
    }
}
