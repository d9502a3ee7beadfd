//! wasm-binding runs WASM modules on wasmer with their state in the shared key-value substrate.
//!
//! It sits on `kv-core`: a module's identity is kv-core's synthetic address, its code and record
//! live in the state (so the root commits to them), and its storage is the WASM layout of the
//! spec, reached through the instance's cached 21-byte namespace prefix. It provides deploy-time
//! validation, compilation once per module at deploy with the node's sealed artifacts kept by code
//! hash (so no call compiles), metered calls on a fresh store per call with checkpointed writes,
//! the host ABI (`docs/spec/abi/wasm-host.md`), and the gas schedule, whose storage prices match
//! the EVM's (warm and cold access, EIP-2200 writes with EIP-3529 refunds, growth per byte) and
//! whose conversion to EVM gas lets one block gas limit cover both engines.
//!
//! It deliberately knows nothing about the EVM: cross-engine reads are added by `cross-read`
//! through [`HostExtension`], and no host function here can write outside the called module's
//! own namespace.

pub mod artifacts;
mod depth;
mod engine;
pub mod gas;
pub mod host;
pub mod validate;

pub use artifacts::{ArtifactStore, DirectoryArtifacts, MemoryArtifacts};
pub use depth::MAX_CALL_DEPTH;
pub use engine::{
    CallError, CallRequest, CallStatus, DeployError, DuplicateHostFunction, MAX_CACHED_MODULES, Receipt, WasmEngine,
};
pub use gas::BlockGas;
pub use host::{
    HostEnv, HostError, HostExtension, charge, charge_cold_surcharge, read_guest, read_guest_array, state_failure,
    write_guest,
};
pub use validate::ValidationError;
