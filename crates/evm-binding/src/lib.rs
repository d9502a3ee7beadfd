//! evm-binding runs revm over the shared key-value substrate, and reads the EVM namespace back as
//! Ethereum state.
//!
//! It sits on `kv-core`: accounts, storage words and code blobs live in the spec's EVM layout, and
//! revm reaches them through this crate's `Database`, `DatabaseRef` and `DatabaseCommit`
//! implementations, which apply committed state exactly as Ethereum does. The Ethereum view hashes
//! the namespace into Ethereum's state root, which the conformance suite (`state-tests` binary,
//! `cargo xtask conformance`) checks against the public state tests.
//!
//! It deliberately knows nothing about WASM: the cross-engine precompile is added by `cross-read`
//! through [`EvmExecutor::transact_with`].

pub mod abi;
pub mod conformance;
pub mod database;
pub mod ethereum;
mod executor;

pub use database::{BlockHashes, CodeCache, EvmDatabase, EvmDbError, EvmView, GenesisAccount, insert_account};
pub use ethereum::{EthAccount, ethereum_accounts, ethereum_state_root, logs_hash};
pub use executor::{BindingEvm, EvmContext, EvmError, EvmExecutor, EvmSession};
pub use revm;
