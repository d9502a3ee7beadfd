//! xstate-chain is the chain layer over the four phase crates; the `xstate` command, and the
//! node, are built on it in crates of their own.
//!
//! It sits on top of everything: a [`Runtime`] opens a store (in memory or a redb file), turns
//! signed Ethereum transactions (EIP-2718 envelopes: legacy with EIP-155, EIP-2930, EIP-1559,
//! EIP-7702) into paid, routed transactions of either engine (EVM create and call on revm; WASM
//! deploy to `0x…0a01` and WASM call to a module identity on wasmer), executes them in blocks
//! with Ethereum headers (EIP-1559 base fee, Prague's system calls, real `BLOCKHASH`), and
//! commits each block's state under one root, with its header, transactions, receipts and
//! transaction index kept beside the state. Proofs and the standalone verifier are re-exported
//! from kv-core; [`witness`] records a block's witness and verifies a block from one with no
//! store.
//!
//! It deliberately adds no execution semantics of its own beyond the chain's: every engine rule
//! lives in the crate below that owns it, and this crate only authenticates, charges, sequences
//! and records. It serves no JSON-RPC, keeps no transaction pool and has no command line; the
//! demo scenario and the artifacts it embeds are behind the `demo` feature, for tools and tests.

pub mod chain_store;
#[cfg(feature = "demo")]
pub mod demo;
pub mod dev;
mod receipt;
mod rejection;
mod runtime;
pub mod signed;
pub mod transaction;
pub mod witness;

pub use chain_store::{ChainStore, StoredBlock};
pub use kv_core::{
    AccountProof, KeyProof, NamespaceProof, ProofError, StateKey, verify, verify_account_proof, verify_namespace,
};
pub use receipt::{Created, Kind, Receipt, Status};
pub use rejection::Rejection;
pub use runtime::{
    BlockInput, BlockOutcome, CallFailure, CallInput, CallOutcome, ChainConfig, DEFAULT_BLOCK_GAS_LIMIT,
    DEFAULT_CHAIN_ID, DEFAULT_GENESIS_BASE_FEE, RejectedTransaction, Runtime, RuntimeError, SPEC, WASM_DEPLOY_ADDRESS,
    deployCall, evm_gas_for_wasm_gas, wasm_gas_for_evm_gas,
};
pub use signed::SignedTransaction;
pub use transaction::{BlockFields, BlockFile, BlockFileError, FileTransaction, Genesis};
pub use witness::{BlockWitness, StatelessBlock, VerifiedBlock, VerifyError, WitnessFileError, verify_block};
