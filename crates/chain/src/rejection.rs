//! Why a transaction was refused: one typed reason per rule, worded as geth words it.
//!
//! A rejected transaction changes nothing: it is not in the block, has no receipt, uses no nonce
//! and pays nothing. Wallets and libraries match on geth's messages ("nonce too low",
//! "insufficient funds for gas * price + value", ...), so each message starts with geth's text
//! and then gives the numbers, as geth does.

use alloy_primitives::{Address, B256, U256};

/// Why a transaction was refused before it ran.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The bytes are not an EIP-2718 envelope (or legacy RLP transaction).
    #[error("failed to decode signed transaction: {0}")]
    Undecodable(String),
    /// An envelope type the chain does not run (EIP-4844 blob transactions: the chain keeps no
    /// blobs).
    #[error("transaction type not supported: type {0}")]
    UnsupportedType(u8),
    /// The signature does not recover to a sender (or has a high `s`, refused since EIP-2).
    #[error("invalid transaction v, r, s values")]
    BadSignature,
    /// A legacy transaction without EIP-155 replay protection.
    #[error("only replay-protected (EIP-155) transactions allowed over RPC")]
    MissingChainId,
    /// Signed for another chain.
    #[error("invalid chain id for signer: have {have} want {want}")]
    WrongChainId {
        /// The transaction's chain id.
        have: u64,
        /// This chain's.
        want: u64,
    },
    /// The nonce was already used.
    #[error("nonce too low: address {address}, tx: {tx} state: {state}")]
    NonceTooLow {
        /// The sender.
        address: Address,
        /// The transaction's nonce.
        tx: u64,
        /// The sender's next nonce.
        state: u64,
    },
    /// The nonce is ahead of the sender's next one.
    #[error("nonce too high: address {address}, tx: {tx} state: {state}")]
    NonceTooHigh {
        /// The sender.
        address: Address,
        /// The transaction's nonce.
        tx: u64,
        /// The sender's next nonce.
        state: u64,
    },
    /// The sender has code that is not an EIP-7702 delegation (EIP-3607).
    #[error("sender not an eoa: address {address}, codehash: {code_hash}")]
    SenderNotEoa {
        /// The sender.
        address: Address,
        /// Its code hash.
        code_hash: B256,
    },
    /// The priority fee is above the fee cap.
    #[error(
        "max priority fee per gas higher than max fee per gas: address {address}, maxPriorityFeePerGas: {tip}, maxFeePerGas: {max_fee}"
    )]
    TipAboveFeeCap {
        /// The sender.
        address: Address,
        /// The priority fee per gas.
        tip: u128,
        /// The fee cap per gas.
        max_fee: u128,
    },
    /// The fee cap is below the block's base fee.
    #[error(
        "max fee per gas less than block base fee: address {address}, maxFeePerGas: {max_fee}, baseFee: {base_fee}"
    )]
    FeeCapTooLow {
        /// The sender.
        address: Address,
        /// The fee cap per gas (the gas price of a legacy transaction).
        max_fee: u128,
        /// The block's base fee.
        base_fee: u64,
    },
    /// The gas limit is above the block's.
    #[error("exceeds block gas limit: gas limit {gas}, block gas limit {limit}")]
    ExceedsBlockGasLimit {
        /// The transaction's gas limit.
        gas: u64,
        /// The block's.
        limit: u64,
    },
    /// The gas limit is above what the transactions before it left of the block's.
    #[error("gas limit reached: gas limit {gas}, block gas left {left}")]
    BlockGasLimitReached {
        /// The transaction's gas limit.
        gas: u64,
        /// What is left in the block.
        left: u64,
    },
    /// The sender cannot pay `gas limit * max fee + value`.
    #[error("insufficient funds for gas * price + value: address {address} have {have} want {want}")]
    InsufficientFunds {
        /// The sender.
        address: Address,
        /// Its balance.
        have: U256,
        /// What the transaction may cost at most.
        want: U256,
    },
    /// The gas limit does not cover the intrinsic gas (21,000, calldata, access list,
    /// authorizations, creation).
    #[error("intrinsic gas too low: have {have}, want {want}")]
    IntrinsicGasTooLow {
        /// The gas limit.
        have: u64,
        /// The intrinsic gas.
        want: u64,
    },
    /// The gas limit does not cover EIP-7623's calldata floor.
    #[error("insufficient gas for floor data gas cost: have {have}, want {want}")]
    FloorDataGas {
        /// The gas limit.
        have: u64,
        /// The floor.
        want: u64,
    },
    /// Creation code above EIP-3860's limit.
    #[error("max initcode size exceeded: code size {size}, limit {limit}")]
    InitCodeTooLarge {
        /// The code's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// An EIP-7702 transaction must carry authorizations.
    #[error("EIP-7702 transaction with empty auth list (sender {address})")]
    EmptyAuthorizationList {
        /// The sender.
        address: Address,
    },
    /// WASM modules hold no balance, so a WASM deploy or call cannot carry value.
    #[error("value transfer to a WASM module is not supported: to {to}, value {value}")]
    ValueToModule {
        /// The module identity or the deploy address.
        to: Address,
        /// The value.
        value: U256,
    },
    /// A rule revm enforces that has no variant above (kept with revm's own wording).
    #[error("invalid transaction: {0}")]
    Other(String),
}
