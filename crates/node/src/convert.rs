//! The chain's records in alloy's RPC types: blocks, transactions, receipts and logs as
//! Ethereum clients read them.

use alloy_consensus::transaction::Recovered;
use alloy_consensus::{Eip658Value, ReceiptEnvelope, ReceiptWithBloom, TxEnvelope, TxType};
use alloy_eips::eip4895::Withdrawals;
use alloy_primitives::U256;
use alloy_rlp::Encodable;
use alloy_rpc_types_eth::{
    Block, BlockTransactions, EIP1186AccountProofResponse, EIP1186StorageProof, Header, Log, Transaction,
    TransactionReceipt,
};
use xstate_chain::{Receipt, StoredBlock};

/// Transaction `index` of `block` as `eth_getTransactionByHash` answers it.
pub(crate) fn transaction(block: &StoredBlock, index: usize) -> Option<Transaction> {
    let signed = block.transactions.get(index)?;
    let receipt = block.receipts.get(index)?;
    Some(Transaction {
        inner: Recovered::new_unchecked(signed.envelope.clone(), signed.sender),
        block_hash: Some(block.hash),
        block_number: Some(block.header.number),
        transaction_index: Some(index as u64),
        effective_gas_price: Some(receipt.effective_gas_price),
        block_timestamp: Some(block.header.timestamp),
    })
}

/// The logs of receipt `index` of `block`, with their positions in the block.
pub(crate) fn logs(block: &StoredBlock, index: usize) -> Vec<Log> {
    let first: usize = block.receipts.iter().take(index).map(|receipt| receipt.logs.len()).sum();
    let Some(receipt) = block.receipts.get(index) else { return Vec::new() };
    receipt
        .logs
        .iter()
        .enumerate()
        .map(|(position, log)| Log {
            inner: log.clone(),
            block_hash: Some(block.hash),
            block_number: Some(block.header.number),
            block_timestamp: Some(block.header.timestamp),
            transaction_hash: Some(receipt.hash),
            transaction_index: Some(index as u64),
            log_index: Some((first + position) as u64),
            removed: false,
        })
        .collect()
}

/// Receipt `index` of `block` as `eth_getTransactionReceipt` answers it. A WASM deploy's
/// `contractAddress` is the module identity it created (ADR 0012), so that libraries waiting for
/// a deployment find what was deployed.
pub(crate) fn receipt(block: &StoredBlock, index: usize) -> Option<TransactionReceipt> {
    let receipt: &Receipt = block.receipts.get(index)?;
    let envelope = receipt.envelope();
    let rpc_receipt = alloy_consensus::Receipt {
        status: Eip658Value::Eip658(receipt.status.is_success()),
        cumulative_gas_used: receipt.cumulative_gas_used,
        logs: logs(block, index),
    };
    let tx_type = TxType::try_from(receipt.tx_type).unwrap_or(TxType::Legacy);
    let inner = ReceiptEnvelope::from_typed(
        tx_type,
        ReceiptWithBloom { receipt: rpc_receipt, logs_bloom: *envelope.logs_bloom() },
    );
    Some(TransactionReceipt {
        inner,
        transaction_hash: receipt.hash,
        transaction_index: Some(index as u64),
        block_hash: Some(block.hash),
        block_number: Some(block.header.number),
        gas_used: receipt.gas_used,
        effective_gas_price: receipt.effective_gas_price,
        blob_gas_used: None,
        blob_gas_price: None,
        from: receipt.sender,
        to: receipt.to,
        contract_address: receipt.created.map(xstate_chain::Created::address),
    })
}

/// `block` as `eth_getBlockByNumber` answers it: every header field, and the transactions as
/// hashes or in full.
pub(crate) fn block(block: &StoredBlock, full: bool) -> Block {
    let transactions = if full {
        BlockTransactions::Full((0..block.transactions.len()).filter_map(|index| transaction(block, index)).collect())
    } else {
        BlockTransactions::Hashes(block.transactions.iter().map(|transaction| transaction.hash()).collect())
    };
    let body = alloy_consensus::Block {
        header: block.header.clone(),
        body: alloy_consensus::BlockBody::<TxEnvelope> {
            transactions: block.transactions.iter().map(|transaction| transaction.envelope.clone()).collect(),
            ommers: Vec::new(),
            withdrawals: Some(Withdrawals::default()),
        },
    };
    Block {
        header: Header {
            hash: block.hash,
            inner: block.header.clone(),
            total_difficulty: Some(U256::ZERO),
            size: Some(U256::from(body.length())),
        },
        uncles: Vec::new(),
        transactions,
        withdrawals: Some(Withdrawals::default()),
    }
}

/// An EIP-1186 proof in alloy's `eth_getProof` response type, so that its JSON is exactly what
/// Ethereum clients and libraries read: what the node answers and `xstate prove --eip1186` prints.
pub fn account_proof_response(proof: &kv_core::AccountProof) -> EIP1186AccountProofResponse {
    let account = proof.reported_account();
    EIP1186AccountProofResponse {
        address: proof.address,
        balance: account.balance,
        code_hash: account.code_hash,
        nonce: account.nonce,
        storage_hash: account.storage_root,
        account_proof: proof.account_proof.clone(),
        storage_proof: proof
            .storage
            .iter()
            .map(|slot| EIP1186StorageProof { key: slot.key.into(), value: slot.value, proof: slot.proof.clone() })
            .collect(),
    }
}
