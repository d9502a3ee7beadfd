//! What the state root commits to: the trie key of every namespace and entry, and the bytes of
//! every leaf.
//!
//! The one root is Ethereum's state root extended with WASM namespaces. The account trie maps
//! `keccak256(address)` to Ethereum's account leaf `rlp([nonce, balance, storageRoot, codeHash])`
//! for every EVM account, exactly as Ethereum does, and `keccak256(0x01 | identity)` to a leaf of
//! the same shape for every WASM module: a 21-byte preimage can never equal a 20-byte one, so a
//! module's key collides with an account's only through a keccak256 collision. Each namespace's
//! storage trie maps `keccak256(slot)` to `rlp(word without leading zeros)` (Ethereum's own storage
//! trie) for the EVM, and `keccak256(engine key)` to `rlp(value bytes)` for WASM, where the engine
//! key is the module key after the 21-byte prefix (so the module record, engine key `0x00`, is
//! committed inside its module's storage trie). Code blobs are not in the trie: they are committed
//! through the code hashes of the account and module leaves, as in Ethereum.
//!
//! Everything here is pure and needs no store, so a light client can derive the keys a proof is
//! checked against.

use crate::key::{Engine, KeyError, KeyLayout, Namespace, PREFIX_LEN};
use crate::record::{AccountRecord, ModuleRecord, RecordError};
use alloc::vec::Vec;
use alloy_primitives::{B256, U256, keccak256};
use alloy_trie::{EMPTY_ROOT_HASH, KECCAK_EMPTY, TrieAccount};

/// The account-trie key of a namespace, or `None` for the runtime namespace, which the trie does
/// not hold.
pub fn account_key(namespace: &Namespace) -> Option<B256> {
    match namespace.engine() {
        Engine::Runtime => None,
        Engine::Evm => Some(keccak256(namespace.identity().as_bytes())),
        Engine::Wasm => Some(keccak256(namespace.prefix())),
    }
}

/// Where an encoded state key is committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// In the fields of its namespace's account leaf: an EVM account record.
    AccountLeaf,
    /// In its namespace's storage trie, under this hashed key.
    Storage(B256),
    /// Nowhere in the trie: a code blob, committed through the code hashes that name it.
    CodeBlob,
}

/// Where `key` is committed; an invalid key is an error.
pub fn placement(key: &[u8]) -> Result<Placement, KeyError> {
    Ok(match KeyLayout::of(key)? {
        KeyLayout::Code => Placement::CodeBlob,
        KeyLayout::EvmAccount => Placement::AccountLeaf,
        // An EVM storage key is `prefix | 0x01 | slot`: Ethereum hashes the slot alone.
        KeyLayout::EvmStorage => Placement::Storage(keccak256(&key[PREFIX_LEN + 1..])),
        KeyLayout::WasmModule | KeyLayout::WasmStorage => Placement::Storage(keccak256(&key[PREFIX_LEN..])),
    })
}

/// The storage-trie leaf of `value` under a key of `layout`: the RLP of the word without leading
/// zeros for an EVM storage word, the RLP byte string of the value for a WASM entry. `None` for
/// layouts that have no storage leaf, and for an EVM word longer than 32 bytes.
pub fn storage_leaf(layout: KeyLayout, value: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len() + 3);
    match layout {
        KeyLayout::EvmStorage => alloy_rlp::Encodable::encode(&U256::try_from_be_slice(value)?, &mut out),
        KeyLayout::WasmModule | KeyLayout::WasmStorage => alloy_rlp::Encodable::encode(value, &mut out),
        KeyLayout::EvmAccount | KeyLayout::Code => return None,
    }
    Some(out)
}

/// Decodes a storage-trie leaf back into the value stored under a key of `layout`: the 32-byte
/// word for EVM storage, the value bytes for WASM. Any other shape is an error.
pub fn decode_storage_leaf(layout: KeyLayout, leaf: &[u8]) -> Result<Vec<u8>, alloy_rlp::Error> {
    let mut bytes = leaf;
    let value = match layout {
        KeyLayout::EvmStorage => {
            let word: U256 = alloy_rlp::Decodable::decode(&mut bytes)?;
            word.to_be_bytes::<32>().to_vec()
        }
        KeyLayout::WasmModule | KeyLayout::WasmStorage => {
            let header = alloy_rlp::Header::decode(&mut bytes)?;
            if header.list || bytes.len() < header.payload_length {
                return Err(alloy_rlp::Error::UnexpectedList);
            }
            let (value, rest) = bytes.split_at(header.payload_length);
            bytes = rest;
            value.to_vec()
        }
        KeyLayout::EvmAccount | KeyLayout::Code => return Err(alloy_rlp::Error::Custom("no storage leaf")),
    };
    if !bytes.is_empty() {
        return Err(alloy_rlp::Error::UnexpectedLength);
    }
    Ok(value)
}

/// The account leaf of a namespace, given its record (EVM account or WASM module record, if any)
/// and the root of its storage trie. An EVM namespace without a record but with storage has an
/// empty account's fields, as an Ethereum account with storage and nothing else would.
pub fn account_leaf(engine: Engine, record: Option<&[u8]>, storage_root: B256) -> Result<TrieAccount, RecordError> {
    let (nonce, balance, code_hash) = match (engine, record) {
        (Engine::Evm, Some(record)) => {
            let record = AccountRecord::decode(record)?;
            (record.nonce, record.balance, record.code_hash)
        }
        (Engine::Wasm, Some(record)) => (0, U256::ZERO, ModuleRecord::decode(record)?.code_hash),
        _ => (0, U256::ZERO, KECCAK_EMPTY),
    };
    Ok(TrieAccount { nonce, balance, storage_root, code_hash })
}

/// The RLP of an account leaf.
pub fn encode_account(account: &TrieAccount) -> Vec<u8> {
    let mut out = Vec::with_capacity(110);
    alloy_rlp::Encodable::encode(account, &mut out);
    out
}

/// The storage root of a namespace whose storage trie is empty.
pub const EMPTY_STORAGE_ROOT: B256 = EMPTY_ROOT_HASH;

/// The state root of `entries` (encoded key, value) computed from scratch with alloy-trie's
/// `HashBuilder`, independently of any stored node: the reference the incremental root is tested
/// against. Keys that are not valid state keys, and code blobs (which the trie does not hold),
/// are skipped; duplicates keep the last value.
pub fn root_from_scratch<'a>(entries: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> B256 {
    use alloc::collections::BTreeMap;
    use alloy_trie::{HashBuilder, Nibbles};
    #[derive(Default)]
    struct NamespaceEntries<'a> {
        record: Option<&'a [u8]>,
        storage: BTreeMap<B256, Vec<u8>>,
    }
    let mut namespaces: BTreeMap<[u8; PREFIX_LEN], NamespaceEntries<'a>> = BTreeMap::new();
    for (key, value) in entries {
        let (Ok(layout), Ok(placement)) = (KeyLayout::of(key), placement(key)) else { continue };
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&key[..PREFIX_LEN]);
        let entries = namespaces.entry(prefix).or_default();
        if matches!(layout, KeyLayout::EvmAccount | KeyLayout::WasmModule) {
            entries.record = Some(value);
        }
        if let (Placement::Storage(slot), Some(leaf)) = (placement, storage_leaf(layout, value)) {
            entries.storage.insert(slot, leaf);
        }
    }
    let mut accounts: BTreeMap<B256, Vec<u8>> = BTreeMap::new();
    for (prefix, entries) in namespaces {
        let Ok(namespace) = Namespace::from_prefix(&prefix) else { continue };
        let Some(key) = account_key(&namespace) else { continue };
        let mut builder = HashBuilder::default();
        for (slot, leaf) in &entries.storage {
            builder.add_leaf(Nibbles::unpack(slot), leaf);
        }
        let storage_root = builder.root();
        let exists = !entries.storage.is_empty() || (namespace.engine() == Engine::Evm && entries.record.is_some());
        if !exists {
            continue;
        }
        let Ok(account) = account_leaf(namespace.engine(), entries.record, storage_root) else { continue };
        accounts.insert(key, encode_account(&account));
    }
    let mut builder = HashBuilder::default();
    for (key, leaf) in &accounts {
        builder.add_leaf(Nibbles::unpack(key), leaf);
    }
    builder.root()
}
