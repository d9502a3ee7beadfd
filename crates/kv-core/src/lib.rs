//! kv-core is the shared key-value substrate that both engines store their state in, and the one
//! state root that commits to all of it: Ethereum's state root, extended with WASM namespaces.
//!
//! It sits at the bottom of the workspace and depends on no engine. Without features it is the
//! part a light client or bridge takes alone: the key layout `engine (1) | identity (20) | engine
//! key` and the record layouts ([`key`], [`record`]), what the root commits to ([`commitment`]),
//! and proofs with their verifier ([`proof`]), on nothing heavier than alloy-primitives, alloy-rlp
//! and alloy-trie. The default `store` feature adds a small storage seam with an in-memory and a
//! redb implementation ([`backend`]), the write overlay a block executes against ([`Overlay`]),
//! and the [`Store`] that commits overlays into versioned trie nodes and answers proofs, EIP-1186
//! ones included, and block witnesses ([`witness`]): a recording overlay whose commit gathers the
//! block's witness as it goes ([`Store::commit_witnessed`]), a [`StateView`] that records what a
//! block reads at a past root, and one that answers a block's reads from a witness alone. The
//! `test-support` feature adds the hooks tests use to inject faults and reach the raw backend.
//!
//! It deliberately does not execute anything, know about wasmer or revm, or interpret values
//! beyond their layouts and the account fields the root commits to.

extern crate alloc;

#[cfg(feature = "store")]
pub mod backend;
pub mod commitment;
pub mod key;
#[cfg(feature = "store")]
pub mod overlay;
pub mod proof;
pub mod record;
#[cfg(feature = "store")]
pub mod store;
#[cfg(feature = "store")]
mod trie;
#[cfg(feature = "store")]
pub mod witness;

#[cfg(feature = "store")]
pub use backend::{Backend, BackendError, MemoryBackend, RedbBackend, Table, WriteBatch};
pub use commitment::root_from_scratch;
pub use key::{Engine, Identity, KeyError, KeyLayout, ModuleName, Namespace, StateKey, module_identity};
#[cfg(feature = "store")]
pub use overlay::{Checkpoint, Overlay, Refusal, StateError, StateFailure};
pub use proof::{
    AccountProof, KeyProof, NamespaceProof, ProofError, StorageProof, verify, verify_account_proof, verify_namespace,
};
pub use record::{AccountRecord, ModuleRecord, RecordError};
#[cfg(feature = "store")]
pub use store::{CommitInfo, Store, StoreConfig, StoreError};
#[cfg(feature = "store")]
pub use witness::{StateView, Witness, WitnessError};
