//! The Ethereum view: the EVM namespace of the shared store, read back as Ethereum accounts and
//! hashed into Ethereum's Merkle-Patricia state root with alloy-trie, from scratch.
//!
//! The store's own root already is Ethereum's state root for EVM-only state (ADR 0010); this
//! view is the independent oracle the conformance runner and the tests compare it with.
//!
//! Every EVM account record in the store is an account (as in Ethereum, an untouched empty account
//! stays); its storage trie maps keccak256(slot) to rlp(word), and the state trie maps
//! keccak256(address) to rlp([nonce, balance, storage root, code hash]).

use crate::database::EvmDbError;
use alloy_trie::root::storage_root_unhashed;
use alloy_trie::{HashBuilder, Nibbles, TrieAccount};
use kv_core::{AccountRecord, Engine, KeyError, Overlay, StateKey};
use revm::primitives::{Address, B256, U256, keccak256};
use std::collections::BTreeMap;

/// One account as Ethereum sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EthAccount {
    /// The nonce.
    pub nonce: u64,
    /// The balance.
    pub balance: U256,
    /// keccak256 of the code.
    pub code_hash: B256,
    /// Non-zero storage words.
    pub storage: BTreeMap<U256, U256>,
}

/// Every EVM account in `overlay`'s current state, by address. A key of the namespace that has
/// none of the spec's layouts is a [`EvmDbError::CorruptKey`].
pub fn ethereum_accounts(overlay: &Overlay) -> Result<BTreeMap<Address, EthAccount>, EvmDbError> {
    let mut accounts: BTreeMap<Address, EthAccount> = BTreeMap::new();
    // The scan is in key order, so an account's record (`0x02 | address | 0x00`) comes before
    // its words (`0x02 | address | 0x01 | slot`).
    for (key, value) in overlay.scan_prefix(&[Engine::Evm.tag()])? {
        match evm_key(&key) {
            Ok((address, None)) => {
                let record =
                    AccountRecord::decode(&value).map_err(|error| EvmDbError::CorruptAccount { address, error })?;
                let account = accounts.entry(address).or_default();
                account.nonce = record.nonce;
                account.balance = record.balance;
                account.code_hash = record.code_hash;
            }
            Ok((address, Some(slot))) => {
                if value.len() != 32 {
                    return Err(EvmDbError::CorruptWord { address, len: value.len() });
                }
                // Storage only counts under an account record; the binding never leaves it
                // without one.
                if let Some(account) = accounts.get_mut(&address) {
                    account.storage.insert(slot, U256::from_be_slice(&value));
                }
            }
            Err(error) => return Err(EvmDbError::CorruptKey { key, error }),
        }
    }
    Ok(accounts)
}

/// The address of an EVM key, and the slot when it is a storage word.
fn evm_key(key: &[u8]) -> Result<(Address, Option<U256>), KeyError> {
    match StateKey::decode(key)? {
        StateKey::EvmAccount(address) => Ok((address, None)),
        StateKey::EvmStorage(address, slot) => Ok((address, Some(U256::from_be_bytes(slot.0)))),
        // Only keys under the runtime or WASM prefix decode to these, and the scan yields none.
        other => Err(KeyError::UnknownEngine(other.namespace().engine().tag())),
    }
}

/// Ethereum's state root of the EVM namespace of `overlay`.
pub fn ethereum_state_root(overlay: &Overlay) -> Result<B256, EvmDbError> {
    Ok(state_root(&ethereum_accounts(overlay)?))
}

/// Ethereum's state root of `accounts`.
pub fn state_root(accounts: &BTreeMap<Address, EthAccount>) -> B256 {
    let mut leaves: Vec<(B256, TrieAccount)> = accounts
        .iter()
        .map(|(address, account)| {
            let storage_root =
                storage_root_unhashed(account.storage.iter().map(|(slot, word)| (B256::from(*slot), *word)));
            (keccak256(address), TrieAccount::new(account.nonce, account.balance, storage_root, account.code_hash))
        })
        .collect();
    leaves.sort_unstable_by_key(|(key, _)| *key);
    let mut builder = HashBuilder::default();
    let mut buffer = Vec::new();
    for (key, account) in leaves {
        buffer.clear();
        alloy_rlp::Encodable::encode(&account, &mut buffer);
        builder.add_leaf(Nibbles::unpack(key), &buffer);
    }
    builder.root()
}

/// keccak256 of the RLP list of `logs`: the `logs` field of a state test or a receipt.
pub fn logs_hash(logs: &[revm::primitives::Log]) -> B256 {
    let mut out = Vec::with_capacity(alloy_rlp::list_length(logs));
    alloy_rlp::encode_list(logs, &mut out);
    keccak256(&out)
}
