//! xstate is the runtime facade over the four crates, and the `xstate` command built on it.
//!
//! It sits on top of everything: a [`Runtime`] opens a store (in memory or a redb file), executes
//! blocks of mixed transactions (EVM create and call on revm, WASM deploy and call on wasmer, both
//! with cross-engine reads) in order, the first block with its genesis, and commits each block
//! under one state root. Proofs and the standalone verifier are re-exported from kv-core.
//!
//! It deliberately adds no execution semantics of its own: every rule lives in the crate below
//! that owns it, and this crate only sequences them and reports what happened.

pub mod demo;
mod runtime;
pub mod transaction;

pub use kv_core::{
    AccountProof, KeyProof, NamespaceProof, ProofError, StateKey, verify, verify_account_proof, verify_namespace,
};
pub use runtime::{BLOCK_GAS_LIMIT, BLOCK_WASM_GAS_LIMIT, BlockOutcome, DEFAULT_CHAIN_ID, Runtime, RuntimeError, SPEC};
pub use transaction::{BlockFile, BlockFileError, Created, Genesis, ModuleRef, Receipt, Status, Transaction};
