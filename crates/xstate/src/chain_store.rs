//! The chain's records beside the state: headers, transactions, receipts and the indexes from a
//! block hash and a transaction hash, kept in the store's label table (outside the committed
//! trie: the state root commits to state alone, as Ethereum's does).
//!
//! This module is the one place that knows how they are stored. A block is written in three
//! durable steps so that a crash at any point loses nothing committed:
//! 1. a *pending* record (header without its state root, transactions, receipts) and the store
//!    height it belongs to;
//! 2. the state commit (kv-core), which fixes the state root;
//! 3. the final records (header with the root, body, indexes, head) in one batch, removing the
//!    pending record.
//!
//! A crash after 1 leaves a pending record for a height the store never reached: it is dropped
//! on open. A crash after 2 leaves one for the height the store is at: it is completed on open
//! with the root kv-core kept for that height. kv-core offering to put labels into the batch of
//! the state commit would make this one step (see ADR 0008).

use crate::receipt::{Created, Kind, Receipt, Status};
use crate::signed::SignedTransaction;
use alloy_consensus::{Header, Transaction as _, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, B256, Bytes, Log};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};
use kv_core::{Identity, Store, StoreError, Table, WriteBatch};

/// The prefix kv-core gives label keys in its meta table (`Store::label` reads them back).
const LABEL_PREFIX: &[u8] = b"label/";
const HEAD: &str = "chain/head";
const PENDING: &str = "chain/pending";

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

#[derive(Clone, Debug, PartialEq, Eq, RlpEncodable, RlpDecodable)]
struct PendingBlock {
    store_height: u64,
    header: Header,
    body: StoredBody,
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

    fn write(&self, puts: Vec<(String, Vec<u8>)>, deletes: &[&str]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        let key = |name: &str| [LABEL_PREFIX, name.as_bytes()].concat();
        for (name, value) in puts {
            batch.put(Table::Meta, key(&name), value);
        }
        for name in deletes {
            batch.delete(Table::Meta, key(name));
        }
        Ok(self.store.backend().write(batch)?)
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

    /// Step 1 of a block: what it will be, before the state commit at `store_height`.
    pub fn write_pending(
        &self,
        store_height: u64,
        header: &Header,
        transactions: &[SignedTransaction],
        receipts: &[Receipt],
    ) -> Result<(), StoreError> {
        let pending = PendingBlock { store_height, header: header.clone(), body: body_of(transactions, receipts) };
        self.write(vec![(PENDING.to_owned(), encode(&pending))], &[])
    }

    /// Step 3 of a block: the final records, with the state root the commit produced.
    pub fn finish(
        &self,
        header: &Header,
        transactions: &[SignedTransaction],
        receipts: &[Receipt],
    ) -> Result<B256, StoreError> {
        self.finish_body(header, &body_of(transactions, receipts), transactions.iter().map(SignedTransaction::hash))
    }

    fn finish_body(
        &self,
        header: &Header,
        body: &StoredBody,
        hashes: impl Iterator<Item = B256>,
    ) -> Result<B256, StoreError> {
        let number = header.number;
        let hash = header.hash_slow();
        let mut puts = vec![
            (header_name(number), encode(header)),
            (hash_name(number), hash.to_vec()),
            (number_name(&hash), number.to_be_bytes().to_vec()),
            (body_name(number), encode(body)),
            (HEAD.to_owned(), number.to_be_bytes().to_vec()),
        ];
        for (index, tx_hash) in hashes.enumerate() {
            puts.push((tx_name(&tx_hash), encode(&TxLocation { number, index: index as u64 })));
        }
        self.write(puts, &[PENDING])?;
        Ok(hash)
    }

    /// Completes or drops a block interrupted between its steps (see the module docs).
    pub fn recover(&self) -> Result<(), StoreError> {
        let Some(bytes) = self.store.label(PENDING)? else {
            return Ok(());
        };
        let PendingBlock { store_height, mut header, body } = decode("pending", &bytes)?;
        if store_height != self.store.height() || self.head()? == Some(header.number) {
            // The state commit never happened (or the block was finished): nothing to complete.
            return self.write(Vec::new(), &[PENDING]);
        }
        header.state_root = self.store.root_at(store_height)?;
        let hashes = body
            .transactions
            .iter()
            .map(|raw| {
                Ok(*TxEnvelope::decode_2718_exact(raw).map_err(|error| corrupt("transaction", error))?.tx_hash())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.finish_body(&header, &body, hashes.into_iter())?;
        Ok(())
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

    fn reopen(backend: &Arc<dyn kv_core::Backend>) -> Store {
        Store::open(Arc::clone(backend), StoreConfig::default()).unwrap()
    }

    /// A crash between the steps of a block leaves the records a real crash would; opening the
    /// store again completes the block whose state was committed and drops the one whose state
    /// was not.
    #[test]
    fn an_interrupted_block_is_completed_or_dropped_on_open() {
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
        let backend = Arc::clone(runtime.store().backend());
        drop(runtime);

        // After step 2: the state is committed, the final records are not written.
        let store = reopen(&backend);
        let chain = ChainStore::new(&store);
        let mut unfinished = block.header.clone();
        unfinished.state_root = B256::ZERO;
        chain.write_pending(store.height(), &unfinished, &block.transactions, &block.receipts).unwrap();
        let finals = [header_name(1), hash_name(1), body_name(1), number_name(&block.hash), tx_name(&tx_hash)];
        let finals: Vec<&str> = finals.iter().map(String::as_str).collect();
        chain.write(vec![(HEAD.to_owned(), 0u64.to_be_bytes().to_vec())], &finals).unwrap();
        assert_eq!(chain.header(1).unwrap(), None);
        drop(store);
        let runtime = Runtime::new(reopen(&backend), ChainConfig::default()).unwrap();
        assert_eq!(runtime.latest(), Some((block.header.clone(), block.hash)), "the block was completed");
        assert_eq!(runtime.receipt(&tx_hash).unwrap().map(|(_, receipt)| receipt), Some(block.receipts[0].clone()));
        assert_eq!(runtime.store().label(PENDING).unwrap(), None);
        drop(runtime);

        // After step 1 only: the pending record names a height the state never reached.
        let store = reopen(&backend);
        ChainStore::new(&store).write_pending(store.height() + 1, &unfinished, &[], &[]).unwrap();
        let runtime = Runtime::new(store, ChainConfig::default()).unwrap();
        assert_eq!(runtime.latest(), Some((block.header, block.hash)), "the chain is as before");
        assert_eq!(runtime.store().label(PENDING).unwrap(), None, "the pending record was dropped");
    }
}
