//! The chain's records beside the state: headers, transactions, receipts and the indexes from a
//! block hash and a transaction hash, kept in the store's label table (outside the committed
//! trie: the state root commits to state alone, as Ethereum's does).
//!
//! This module is the one place that knows how they are stored. A block's records (header with
//! the state root, body, indexes, head) go into the state commit's own batch through
//! `Store::commit_with_labels`, which hands them the new root: a crash leaves the block's state
//! and its records, or neither.

use crate::receipt::{Created, Kind, Receipt, Status};
use crate::signed::SignedTransaction;
use alloy_consensus::{Header, Transaction as _, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, B256, Bytes, Log};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};
use kv_core::{Identity, Store, StoreError, Witness};

const HEAD: &str = "chain/head";

fn header_name(number: u64) -> String {
    format!("chain/header/{number:016x}")
}
fn hash_name(number: u64) -> String {
    format!("chain/hash/{number:016x}")
}
fn body_name(number: u64) -> String {
    format!("chain/body/{number:016x}")
}
fn number_name(hash: &B256) -> String {
    format!("chain/number/{hash:x}")
}
fn tx_name(hash: &B256) -> String {
    format!("chain/tx/{hash:x}")
}
fn witness_name(number: u64) -> String {
    format!("chain/witness/{number:016x}")
}

/// A block's witness as it was recorded while the block executed: the state part and the
/// oldest block whose hash `BLOCKHASH` read (the parent when none was), from which the witness's
/// headers are taken when it is read back.
#[derive(Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable)]
struct StoredWitness {
    state: Vec<Bytes>,
    codes: Vec<Bytes>,
    keys: Vec<Bytes>,
    oldest_hash_read: u64,
}

/// A recorded witness of a block, read back: its state part and the oldest block whose header
/// it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedWitness {
    /// Nodes, codes and keys.
    pub state: Witness,
    /// The oldest block whose header the witness carries (the parent, when `BLOCKHASH` read
    /// none older).
    pub oldest_header: u64,
}

/// A receipt as stored: what Ethereum's receipt holds and what only this chain knows.
#[derive(Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable)]
struct StoredReceipt {
    /// 0 success, 1 revert, 2 failed.
    status: u8,
    cumulative_gas_used: u64,
    logs: Vec<Log>,
    gas_used: u64,
    effective_gas_price: u128,
    sender: Address,
    kind: u8,
    /// Empty, or the 20 bytes of what was created.
    created: Bytes,
    /// Return data, or the revert data.
    output: Bytes,
    /// Why it failed (UTF-8), empty otherwise.
    reason: Bytes,
}

/// A block's transactions (EIP-2718 encodings) and receipts.
#[derive(Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable)]
struct StoredBody {
    transactions: Vec<Bytes>,
    receipts: Vec<StoredReceipt>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable)]
struct TxLocation {
    number: u64,
    index: u64,
}

/// A block as the chain keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlock {
    /// The header (its state root is the one root).
    pub header: Header,
    /// Its hash.
    pub hash: B256,
    /// The transactions, in order.
    pub transactions: Vec<SignedTransaction>,
    /// Their receipts.
    pub receipts: Vec<Receipt>,
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("chain record {what}: {error}"))
}

fn encode(value: &impl Encodable) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.length());
    value.encode(&mut out);
    out
}

fn decode<T: Decodable>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    let mut slice = bytes;
    let value = T::decode(&mut slice).map_err(|error| corrupt(what, error))?;
    if !slice.is_empty() {
        return Err(corrupt(what, "trailing bytes"));
    }
    Ok(value)
}

fn store_receipt(receipt: &Receipt) -> StoredReceipt {
    let (status, output, reason) = match &receipt.status {
        Status::Success => (0, receipt.output.clone(), Bytes::new()),
        Status::Revert(data) => (1, data.clone(), Bytes::new()),
        Status::Failed(reason) => (2, receipt.output.clone(), Bytes::copy_from_slice(reason.as_bytes())),
    };
    StoredReceipt {
        status,
        cumulative_gas_used: receipt.cumulative_gas_used,
        logs: receipt.logs.clone(),
        gas_used: receipt.gas_used,
        effective_gas_price: receipt.effective_gas_price,
        sender: receipt.sender,
        kind: receipt.kind.code(),
        created: receipt
            .created
            .map_or_else(Bytes::new, |created| Bytes::copy_from_slice(created.address().as_slice())),
        output,
        reason,
    }
}

fn load_receipt(index: usize, transaction: &SignedTransaction, stored: StoredReceipt) -> Result<Receipt, StoreError> {
    let kind = Kind::from_code(stored.kind).ok_or_else(|| corrupt("receipt", format!("kind {}", stored.kind)))?;
    let created = match stored.created.len() {
        0 => None,
        20 => {
            let address = Address::from_slice(&stored.created);
            Some(if kind == Kind::WasmDeploy {
                Created::Module(Identity::from(address))
            } else {
                Created::Contract(address)
            })
        }
        length => return Err(corrupt("receipt", format!("created address of {length} bytes"))),
    };
    let (status, output) = match stored.status {
        0 => (Status::Success, stored.output),
        1 => (Status::Revert(stored.output), Bytes::new()),
        2 => (Status::Failed(String::from_utf8_lossy(&stored.reason).into_owned()), stored.output),
        other => return Err(corrupt("receipt", format!("status {other}"))),
    };
    let envelope = &transaction.envelope;
    Ok(Receipt {
        index,
        hash: transaction.hash(),
        tx_type: alloy_eips::Typed2718::ty(envelope),
        sender: stored.sender,
        nonce: envelope.nonce(),
        to: envelope.to(),
        kind,
        status,
        gas_used: stored.gas_used,
        cumulative_gas_used: stored.cumulative_gas_used,
        effective_gas_price: stored.effective_gas_price,
        output,
        logs: stored.logs,
        created,
    })
}

fn body_of(transactions: &[SignedTransaction], receipts: &[Receipt]) -> StoredBody {
    StoredBody {
        transactions: transactions.iter().map(SignedTransaction::encoded).collect(),
        receipts: receipts.iter().map(store_receipt).collect(),
    }
}

/// The chain's records in `store`.
#[derive(Clone, Copy)]
pub struct ChainStore<'a> {
    store: &'a Store,
}

impl<'a> ChainStore<'a> {
    /// The records of `store`.
    pub fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// The number of the latest block, `None` before the genesis block.
    pub fn head(&self) -> Result<Option<u64>, StoreError> {
        match self.store.label(HEAD)? {
            None => Ok(None),
            Some(bytes) => {
                let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| corrupt("head", "not 8 bytes"))?;
                Ok(Some(u64::from_be_bytes(bytes)))
            }
        }
    }

    /// The records of a block whose header (state root included) is final, as labels for the
    /// state commit's batch, and the block's hash.
    pub fn block_records(
        header: &Header,
        transactions: &[SignedTransaction],
        receipts: &[Receipt],
    ) -> (B256, Vec<(String, Option<Vec<u8>>)>) {
        let number = header.number;
        let hash = header.hash_slow();
        let mut labels = vec![
            (header_name(number), Some(encode(header))),
            (hash_name(number), Some(hash.to_vec())),
            (number_name(&hash), Some(number.to_be_bytes().to_vec())),
            (body_name(number), Some(encode(&body_of(transactions, receipts)))),
            (HEAD.to_owned(), Some(number.to_be_bytes().to_vec())),
        ];
        for (index, transaction) in transactions.iter().enumerate() {
            labels.push((tx_name(&transaction.hash()), Some(encode(&TxLocation { number, index: index as u64 }))));
        }
        (hash, labels)
    }

    /// The record of block `number`'s witness, for the state commit's batch: the witness the
    /// commit gathered and the oldest block whose hash the block read.
    pub fn witness_record(number: u64, witness: &Witness, oldest_hash_read: u64) -> (String, Option<Vec<u8>>) {
        let stored = StoredWitness {
            state: witness.state.clone(),
            codes: witness.codes.clone(),
            keys: witness.keys.clone(),
            oldest_hash_read,
        };
        (witness_name(number), Some(encode(&stored)))
    }

    /// The witness recorded while block `number` executed, if it was.
    pub fn witness(&self, number: u64) -> Result<Option<RecordedWitness>, StoreError> {
        let Some(bytes) = self.store.label(&witness_name(number))? else { return Ok(None) };
        let stored: StoredWitness = decode("witness", &bytes)?;
        if stored.oldest_hash_read >= number {
            return Err(corrupt("witness", format!("block {number} names block {} as read", stored.oldest_hash_read)));
        }
        Ok(Some(RecordedWitness {
            state: Witness { state: stored.state, codes: stored.codes, keys: stored.keys },
            oldest_header: stored.oldest_hash_read,
        }))
    }

    /// The labels that drop blocks `number + 1..=latest` and make `number` the head: every
    /// block's header, hash, body, witness and indexes, for the store's rewind batch. Reads the bodies of
    /// the dropped blocks to find their transactions' index entries.
    pub fn rewind_records(&self, number: u64, latest: u64) -> Result<Vec<(String, Option<Vec<u8>>)>, StoreError> {
        let mut labels = Vec::new();
        for dropped in number + 1..=latest {
            let block = self.block(dropped)?.ok_or_else(|| corrupt("block", format!("{dropped} is missing")))?;
            for transaction in &block.transactions {
                labels.push((tx_name(&transaction.hash()), None));
            }
            labels.extend([
                (header_name(dropped), None),
                (hash_name(dropped), None),
                (number_name(&block.hash), None),
                (body_name(dropped), None),
                (witness_name(dropped), None),
            ]);
        }
        labels.push((HEAD.to_owned(), Some(number.to_be_bytes().to_vec())));
        Ok(labels)
    }

    /// The header of block `number`.
    pub fn header(&self, number: u64) -> Result<Option<Header>, StoreError> {
        self.store.label(&header_name(number))?.map(|bytes| decode("header", &bytes)).transpose()
    }

    /// The hash of block `number`.
    pub fn hash(&self, number: u64) -> Result<Option<B256>, StoreError> {
        match self.store.label(&hash_name(number))? {
            None => Ok(None),
            Some(bytes) if bytes.len() == 32 => Ok(Some(B256::from_slice(&bytes))),
            Some(_) => Err(corrupt("block hash", "not 32 bytes")),
        }
    }

    /// The number of the block with `hash`.
    pub fn number(&self, hash: &B256) -> Result<Option<u64>, StoreError> {
        match self.store.label(&number_name(hash))? {
            None => Ok(None),
            Some(bytes) => {
                let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| corrupt("block number", "not 8 bytes"))?;
                Ok(Some(u64::from_be_bytes(bytes)))
            }
        }
    }

    /// Block `number` with its transactions and receipts.
    pub fn block(&self, number: u64) -> Result<Option<StoredBlock>, StoreError> {
        let (Some(header), Some(hash)) = (self.header(number)?, self.hash(number)?) else {
            return Ok(None);
        };
        let bytes = self.store.label(&body_name(number))?.ok_or_else(|| corrupt("body", "missing"))?;
        let body: StoredBody = decode("body", &bytes)?;
        if body.transactions.len() != body.receipts.len() {
            return Err(corrupt("body", "transactions and receipts differ in number"));
        }
        let mut transactions = Vec::with_capacity(body.transactions.len());
        let mut receipts = Vec::with_capacity(body.receipts.len());
        for (index, (raw, stored)) in body.transactions.iter().zip(body.receipts).enumerate() {
            let envelope = TxEnvelope::decode_2718_exact(raw).map_err(|error| corrupt("transaction", error))?;
            let transaction = SignedTransaction { envelope, sender: stored.sender };
            receipts.push(load_receipt(index, &transaction, stored)?);
            transactions.push(transaction);
        }
        Ok(Some(StoredBlock { header, hash, transactions, receipts }))
    }

    /// Where the transaction with `hash` is: its block number and position.
    pub fn transaction_location(&self, hash: &B256) -> Result<Option<(u64, usize)>, StoreError> {
        let Some(bytes) = self.store.label(&tx_name(hash))? else {
            return Ok(None);
        };
        let location: TxLocation = decode("transaction index", &bytes)?;
        let index = usize::try_from(location.index).map_err(|_| corrupt("transaction index", "position too large"))?;
        Ok(Some((location.number, index)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

    use super::*;
    use crate::{BlockInput, ChainConfig, Runtime};
    use alloy_consensus::TxEip1559;
    use alloy_eips::eip2718::Encodable2718;
    use alloy_primitives::{TxKind, U256};
    use kv_core::StoreConfig;
    use std::sync::Arc;

    /// A block's records are written by its state commit: a commit that fails writes none of
    /// them, and a reopened store finds the block, its receipt and its index.
    #[test]
    fn a_block_and_its_records_commit_together() {
        let runtime = Runtime::in_memory(ChainConfig::default());
        runtime.init_genesis(&crate::dev::anvil_genesis(0)).unwrap();
        let transfer = TxEip1559 {
            chain_id: crate::DEFAULT_CHAIN_ID,
            nonce: 0,
            gas_limit: 21_000,
            max_fee_per_gas: 10_000_000_000,
            max_priority_fee_per_gas: 1,
            to: TxKind::Call(Address::repeat_byte(0x77)),
            value: U256::from(5),
            access_list: Default::default(),
            input: Bytes::new(),
        };
        let raw = Bytes::from(crate::dev::sign(1, transfer).encoded_2718());
        let block = runtime.execute_block(&BlockInput { timestamp: 1, ..Default::default() }, &[raw], |_| {}).unwrap();
        let tx_hash = block.receipts[0].hash;
        assert_eq!(block.header.state_root, runtime.store().root(), "the header names the committed root");
        let backend = Arc::clone(runtime.store().backend());
        drop(runtime);

        let store = Store::open(Arc::clone(&backend), StoreConfig::default()).unwrap();
        let chain = ChainStore::new(&store);
        assert_eq!(chain.head().unwrap(), Some(1));
        assert_eq!(chain.header(1).unwrap(), Some(block.header.clone()));
        assert_eq!(chain.transaction_location(&tx_hash).unwrap(), Some((1, 0)));
        // A refused commit (an overlay of another height) writes none of a block's records.
        let stale = store.begin();
        store.commit(&store.begin()).unwrap();
        let mut next = block.header.clone();
        next.number = 2;
        let refused = store.commit_with_labels(&stale, |_| ChainStore::block_records(&next, &[], &[]).1);
        assert!(refused.is_err());
        assert_eq!(chain.header(2).unwrap(), None);
        assert_eq!(chain.head().unwrap(), Some(1));
    }
}
