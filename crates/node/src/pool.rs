//! The transaction pool: transactions waiting for a block, by sender and nonce, bounded, with
//! geth's replacement rule (a transaction with the nonce of a waiting one replaces it only when it
//! raises both the fee cap and the tip by at least 10%; otherwise "replacement transaction
//! underpriced"). A transaction whose nonce is ahead of its sender's next one is held until the
//! nonces before it arrive.

use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, B256};
use std::collections::{BTreeMap, HashMap};
use xstate_chain::SignedTransaction;

/// The least raise, in percent, of both fees that lets a transaction replace a waiting one
/// (geth's `PriceBump`).
pub(crate) const PRICE_BUMP_PERCENT: u128 = 10;

/// Why the pool refused a transaction, worded as geth words it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PoolError {
    /// The same transaction is already waiting.
    #[error("already known")]
    AlreadyKnown,
    /// It has a waiting transaction's nonce without raising both fees enough.
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// The pool holds as many transactions as it may.
    #[error("txpool is full")]
    Full,
}

/// Waiting transactions, by sender and nonce.
#[derive(Debug)]
pub(crate) struct Pool {
    senders: HashMap<Address, BTreeMap<u64, SignedTransaction>>,
    count: usize,
    limit: usize,
}

impl Pool {
    /// An empty pool holding at most `limit` transactions.
    pub(crate) fn new(limit: usize) -> Self {
        Self { senders: HashMap::new(), count: 0, limit }
    }

    /// How many transactions wait.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Adds `transaction`, or replaces the waiting one of the same sender and nonce.
    pub(crate) fn insert(&mut self, transaction: SignedTransaction) -> Result<(), PoolError> {
        let nonce = transaction.envelope.nonce();
        let waiting = self.senders.get(&transaction.sender).and_then(|queue| queue.get(&nonce));
        match waiting {
            Some(old) if old.hash() == transaction.hash() => return Err(PoolError::AlreadyKnown),
            Some(old) => {
                let bumped =
                    |old: u128, new: u128| new.saturating_mul(100) >= old.saturating_mul(100 + PRICE_BUMP_PERCENT);
                let old_tip = old.envelope.max_priority_fee_per_gas().unwrap_or(old.envelope.max_fee_per_gas());
                let new_tip =
                    transaction.envelope.max_priority_fee_per_gas().unwrap_or(transaction.envelope.max_fee_per_gas());
                if !bumped(old.envelope.max_fee_per_gas(), transaction.envelope.max_fee_per_gas())
                    || !bumped(old_tip, new_tip)
                {
                    return Err(PoolError::ReplacementUnderpriced);
                }
            }
            None if self.count >= self.limit => return Err(PoolError::Full),
            None => self.count += 1,
        }
        self.senders.entry(transaction.sender).or_default().insert(nonce, transaction);
        Ok(())
    }

    /// The nonce after `sender`'s waiting transactions that could run now (those that follow
    /// `state_nonce` without a gap): `eth_getTransactionCount` with `pending`.
    pub(crate) fn pending_nonce(&self, sender: Address, state_nonce: u64) -> u64 {
        let mut next = state_nonce;
        if let Some(queue) = self.senders.get(&sender) {
            while queue.contains_key(&next) {
                next += 1;
            }
        }
        next
    }

    /// A waiting transaction by hash.
    pub(crate) fn get(&self, hash: &B256) -> Option<&SignedTransaction> {
        self.senders.values().flat_map(BTreeMap::values).find(|transaction| transaction.hash() == *hash)
    }

    /// Takes out the transactions that can run now, given each sender's next nonce: every
    /// sender's run of consecutive nonces, senders ordered by the tip of their first transaction
    /// (highest first). Transactions whose nonce was already used are dropped; those after a gap
    /// stay.
    pub(crate) fn take_ready(&mut self, state_nonce: impl Fn(Address) -> u64) -> Vec<SignedTransaction> {
        let mut runs: Vec<Vec<SignedTransaction>> = Vec::new();
        for (sender, queue) in &mut self.senders {
            let mut next = state_nonce(*sender);
            let stale: Vec<u64> = queue.range(..next).map(|(nonce, _)| *nonce).collect();
            for nonce in stale {
                queue.remove(&nonce);
                self.count -= 1;
            }
            let mut run = Vec::new();
            while let Some(transaction) = queue.remove(&next) {
                self.count -= 1;
                run.push(transaction);
                next += 1;
            }
            if !run.is_empty() {
                runs.push(run);
            }
        }
        self.senders.retain(|_, queue| !queue.is_empty());
        let tip = |transaction: &SignedTransaction| {
            transaction.envelope.max_priority_fee_per_gas().unwrap_or(transaction.envelope.max_fee_per_gas())
        };
        runs.sort_by_key(|run| std::cmp::Reverse(run.first().map_or(0, tip)));
        runs.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

    use super::*;
    use alloy_consensus::TxEip1559;
    use alloy_eips::eip2718::Encodable2718;
    use alloy_primitives::{TxKind, U256};
    use xstate_chain::dev::{dev_address, sign};

    fn transaction(key: u32, nonce: u64, max_fee: u128, tip: u128) -> SignedTransaction {
        let envelope = sign(
            key,
            TxEip1559 {
                chain_id: 31337,
                nonce,
                gas_limit: 21_000,
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: tip,
                to: TxKind::Call(Address::repeat_byte(1)),
                value: U256::from(1),
                access_list: Default::default(),
                input: Default::default(),
            },
        );
        SignedTransaction::decode(&envelope.encoded_2718(), 31337).unwrap()
    }

    #[test]
    fn a_replacement_must_raise_both_fees_by_a_tenth() {
        let mut pool = Pool::new(10);
        pool.insert(transaction(0, 0, 100, 10)).unwrap();
        assert_eq!(pool.insert(transaction(0, 0, 100, 10)), Err(PoolError::AlreadyKnown));
        assert_eq!(pool.insert(transaction(0, 0, 109, 20)), Err(PoolError::ReplacementUnderpriced));
        assert_eq!(pool.insert(transaction(0, 0, 200, 10)), Err(PoolError::ReplacementUnderpriced));
        let replacement = transaction(0, 0, 110, 11);
        pool.insert(replacement.clone()).unwrap();
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.take_ready(|_| 0), vec![replacement]);
    }

    #[test]
    fn future_nonces_wait_for_the_gap_to_fill() {
        let mut pool = Pool::new(10);
        let sender = dev_address(0);
        pool.insert(transaction(0, 2, 100, 10)).unwrap();
        assert_eq!(pool.pending_nonce(sender, 0), 0);
        assert!(pool.take_ready(|_| 0).is_empty(), "nonce 2 waits for 0 and 1");
        pool.insert(transaction(0, 0, 100, 10)).unwrap();
        pool.insert(transaction(0, 1, 100, 10)).unwrap();
        assert_eq!(pool.pending_nonce(sender, 0), 3);
        let ready: Vec<u64> = pool.take_ready(|_| 0).iter().map(|transaction| transaction.envelope.nonce()).collect();
        assert_eq!(ready, [0, 1, 2]);
        assert_eq!(pool.len(), 0);
    }

    #[test]
    fn senders_are_ordered_by_tip_and_used_nonces_dropped() {
        let mut pool = Pool::new(10);
        pool.insert(transaction(0, 0, 100, 1)).unwrap();
        pool.insert(transaction(1, 0, 100, 50)).unwrap();
        pool.insert(transaction(2, 3, 100, 99)).unwrap();
        let ready = pool.take_ready(|sender| if sender == dev_address(2) { 5 } else { 0 });
        let senders: Vec<Address> = ready.iter().map(|transaction| transaction.sender).collect();
        assert_eq!(senders, [dev_address(1), dev_address(0)]);
        assert_eq!(pool.len(), 0, "the transaction of a used nonce is dropped");
    }

    #[test]
    fn the_pool_is_bounded() {
        let mut pool = Pool::new(2);
        pool.insert(transaction(0, 0, 100, 10)).unwrap();
        pool.insert(transaction(0, 1, 100, 10)).unwrap();
        assert_eq!(pool.insert(transaction(0, 2, 100, 10)), Err(PoolError::Full));
        // A replacement takes no new room.
        pool.insert(transaction(0, 1, 200, 20)).unwrap();
    }
}
