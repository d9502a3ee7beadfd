//! kv-core is the shared key-value substrate that both engines store their state in, and the one
//! state root that commits to all of it.
//!
//! It sits at the bottom of the workspace and depends on no engine: it defines the key layout
//! `engine (1) | identity (20) | engine key` and the record layouts ([`key`], [`record`]), a small
//! storage seam with an in-memory and a redb implementation ([`backend`]), the write overlay a
//! block executes against ([`Overlay`]), and the [`Store`] that commits overlays, maintains the
//! two-level Merkle-Patricia root and produces proofs that [`verify`] checks without a store.
//!
//! It deliberately does not execute anything, know about wasmer or revm, or interpret values
//! beyond checking that they fit their key's layout.

pub mod backend;
pub mod key;
pub mod overlay;
pub mod proof;
pub mod record;
pub mod store;
mod trie;

pub use backend::{Backend, BackendError, MemoryBackend, RedbBackend, Table, WriteBatch};
pub use key::{Engine, Identity, KeyError, KeyLayout, ModuleName, Namespace, StateKey, module_identity};
pub use overlay::{Checkpoint, Overlay, StateError};
pub use proof::{KeyProof, NamespaceProof, ProofError, SubtreeProof, verify, verify_commitment, verify_namespace};
pub use record::{AccountRecord, ModuleRecord, RecordError};
pub use store::{CommitInfo, Store, StoreConfig, StoreError};
pub use trie::root_from_scratch;
