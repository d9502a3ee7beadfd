//! evm-binding runs revm over the shared key-value substrate, and reads the EVM namespace back as
//! Ethereum state.
//!
//! It sits on `kv-core`: accounts, storage words and code blobs live in the spec's EVM layout, and
//! revm reaches them through this crate's `Database`, `DatabaseRef` and `DatabaseCommit`
//! implementations, which apply committed state exactly as Ethereum does. The Ethereum view hashes
//! the namespace into Ethereum's state root, which the conformance suite (the `evm-conformance`
//! crate, `cargo xtask conformance`) checks against the public state tests.
//!
//! It deliberately knows nothing about WASM: the cross-engine precompile is added by `cross-read`
//! through [`EvmExecutor::transact_with`], written against [`StatePrecompile`], whose only handle
//! on the state ([`PrecompileState`]) reads. Nor does it carry the state-test runner, its fixture
//! types, JSON parsing or progress bar: those live in `evm-conformance`.

pub mod abi;
pub mod database;
pub mod ethereum;
mod executor;
mod precompile;

pub use database::{BlockHashes, CodeCache, EvmDatabase, EvmDbError, EvmView, GenesisAccount, insert_account};
pub use ethereum::{EthAccount, ethereum_accounts, ethereum_state_root, logs_hash};
pub use executor::{BindingEvm, EvmContext, EvmError, EvmExecutor, EvmSession};
pub use precompile::{PrecompileAnswer, PrecompileState, StatePrecompile, WithStatePrecompile};
pub use revm;
