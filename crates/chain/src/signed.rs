//! Signed transactions: EIP-2718 envelopes decoded, checked for this chain and their senders
//! recovered, all with alloy's consensus types (secp256k1 recovery by k256).
//!
//! Recovery is the expensive part of admitting a transaction, and it depends on nothing but the
//! bytes, so [`recover_all`] spreads a block's transactions over the machine's cores before the
//! block executes them in order.

use crate::rejection::Rejection;
use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction as _, TxEnvelope};
use alloy_eips::Typed2718;
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, Bytes};

/// A transaction whose envelope decoded, whose chain id is this chain's and whose signature
/// recovered to `sender`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTransaction {
    /// The envelope.
    pub envelope: TxEnvelope,
    /// The recovered sender.
    pub sender: Address,
}

impl SignedTransaction {
    /// Decodes `raw` (the EIP-2718 encoding `eth_sendRawTransaction` takes) for chain
    /// `chain_id` and recovers its sender.
    pub fn decode(raw: &[u8], chain_id: u64) -> Result<Self, Rejection> {
        let envelope = TxEnvelope::decode_2718_exact(raw).map_err(|error| Rejection::Undecodable(error.to_string()))?;
        Self::recover(envelope, chain_id)
    }

    /// Checks `envelope` for chain `chain_id` and recovers its sender.
    pub fn recover(envelope: TxEnvelope, chain_id: u64) -> Result<Self, Rejection> {
        if envelope.is_eip4844() {
            return Err(Rejection::UnsupportedType(envelope.ty()));
        }
        match envelope.chain_id() {
            None => return Err(Rejection::MissingChainId),
            Some(have) if have != chain_id => return Err(Rejection::WrongChainId { have, want: chain_id }),
            Some(_) => {}
        }
        let sender = envelope.recover_signer().map_err(|_| Rejection::BadSignature)?;
        Ok(Self { envelope, sender })
    }

    /// The transaction hash.
    pub fn hash(&self) -> B256 {
        *self.envelope.tx_hash()
    }

    /// The EIP-2718 encoding.
    pub fn encoded(&self) -> Bytes {
        self.envelope.encoded_2718().into()
    }
}

/// Transactions below this many are recovered on the calling thread: starting threads costs more
/// than recovering a few signatures.
const PARALLEL_RECOVERY_THRESHOLD: usize = 64;

/// Decodes and recovers every transaction of `raws`, in order, spread over the available cores.
pub fn recover_all(raws: &[Bytes], chain_id: u64) -> Vec<Result<SignedTransaction, Rejection>> {
    let threads = std::thread::available_parallelism().map_or(1, |count| count.get());
    if threads == 1 || raws.len() < PARALLEL_RECOVERY_THRESHOLD {
        return raws.iter().map(|raw| SignedTransaction::decode(raw, chain_id)).collect();
    }
    let chunk = raws.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = raws
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || part.iter().map(|raw| SignedTransaction::decode(raw, chain_id)).collect::<Vec<_>>())
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| match worker.join() {
                Ok(part) => part,
                // Recovery does not panic; should it, the panic is the caller's to see.
                Err(payload) => std::panic::resume_unwind(payload),
            })
            .collect()
    })
}
