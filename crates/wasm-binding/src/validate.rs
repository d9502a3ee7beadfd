//! Deploy-time validation: everything a module must satisfy before it is stored.
//!
//! The module must be well-formed WebAssembly restricted to a deterministic feature set (no
//! floating point at all, no SIMD, threads or other post-MVP proposals beyond sign extension,
//! multi-value and bulk memory), import only host functions of the documented namespace with
//! their exact signatures, export a bounded memory and the entry point, and have no start function
//! (which would run before metering is armed).

use std::collections::HashMap;
use wasmer::wasmparser::{Parser, Payload, Validator, WasmFeatures};
use wasmer::{ExternType, FunctionType, Module};

/// The import module name of every host function.
pub const HOST_NAMESPACE: &str = "xstate";
/// The exported entry point: `call: () -> ()`.
pub const ENTRY_POINT: &str = "call";
/// The exported memory.
pub const MEMORY_EXPORT: &str = "memory";
/// The largest module accepted, in bytes.
pub const MAX_MODULE_BYTES: usize = 512 * 1024;
/// The most 64 KiB pages a module's memory may declare as its maximum (4 MiB).
pub const MAX_MEMORY_PAGES: u64 = 64;

/// Why a module was refused at deploy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The module is larger than [`MAX_MODULE_BYTES`].
    #[error("module is {0} bytes; the limit is 524288")]
    TooLarge(usize),
    /// The bytes are not valid WebAssembly in the allowed feature set.
    #[error("invalid module: {0}")]
    Malformed(String),
    /// The module has a start function.
    #[error("modules may not have a start function (it would run unmetered)")]
    StartFunction,
    /// An import outside the host namespace or of an unknown name.
    #[error("unknown import `{module}`.`{name}`: only the host functions of `xstate` may be imported")]
    UnknownImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// A host function imported with the wrong signature.
    #[error("import `xstate`.`{name}` has signature {found}, expected {expected}")]
    ImportSignature {
        /// Import name.
        name: String,
        /// The module's signature.
        found: String,
        /// The host's signature.
        expected: String,
    },
    /// An import that is not a function (memory, table or global).
    #[error("import `{0}` is not a function: modules may only import host functions")]
    NonFunctionImport(String),
    /// No exported memory named `memory`.
    #[error("the module must export its memory as `memory`")]
    NoMemory,
    /// The memory has no maximum or a maximum above the limit.
    #[error("memory must declare a maximum of at most 64 pages (4 MiB); it declares {0}")]
    MemoryLimit(String),
    /// No exported function `call: () -> ()`.
    #[error("the module must export the entry point `call` with no parameters and no results")]
    NoEntryPoint,
}

/// The deterministic feature set: MVP integers, mutable globals, sign extension, multi-value and
/// the bulk memory instructions; no floats, SIMD, threads, exceptions or reference types.
fn features() -> WasmFeatures {
    WasmFeatures::GC_TYPES
        | WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::BULK_MEMORY_OPT
        | WasmFeatures::CALL_INDIRECT_OVERLONG
}

/// Checks the bytes before compilation: size, feature set, no start function.
pub fn check_bytes(code: &[u8]) -> Result<(), ValidationError> {
    if code.len() > MAX_MODULE_BYTES {
        return Err(ValidationError::TooLarge(code.len()));
    }
    Validator::new_with_features(features())
        .validate_all(code)
        .map_err(|error| ValidationError::Malformed(error.to_string()))?;
    for payload in Parser::new(0).parse_all(code) {
        if let Payload::StartSection { .. } = payload.map_err(|error| ValidationError::Malformed(error.to_string()))? {
            return Err(ValidationError::StartFunction);
        }
    }
    Ok(())
}

/// Checks a compiled module's imports and exports against the host ABI.
pub fn check_interface(module: &Module, host: &HashMap<String, FunctionType>) -> Result<(), ValidationError> {
    for import in module.imports() {
        let name = import.name().to_owned();
        if import.module() != HOST_NAMESPACE {
            return Err(ValidationError::UnknownImport { module: import.module().to_owned(), name });
        }
        let ExternType::Function(found) = import.ty() else {
            return Err(ValidationError::NonFunctionImport(name));
        };
        let expected = host
            .get(&name)
            .ok_or_else(|| ValidationError::UnknownImport { module: HOST_NAMESPACE.to_owned(), name: name.clone() })?;
        if found != expected {
            return Err(ValidationError::ImportSignature {
                name,
                found: found.to_string(),
                expected: expected.to_string(),
            });
        }
    }
    let mut memory = None;
    let mut entry = false;
    for export in module.exports() {
        match (export.name(), export.ty()) {
            (MEMORY_EXPORT, ExternType::Memory(ty)) => memory = Some(*ty),
            (ENTRY_POINT, ExternType::Function(ty)) => entry = ty.params().is_empty() && ty.results().is_empty(),
            _ => {}
        }
    }
    let memory = memory.ok_or(ValidationError::NoMemory)?;
    match memory.maximum {
        Some(maximum) if u64::from(maximum.0) <= MAX_MEMORY_PAGES => {}
        Some(maximum) => return Err(ValidationError::MemoryLimit(format!("{} pages", maximum.0))),
        None => return Err(ValidationError::MemoryLimit("no maximum".to_owned())),
    }
    if memory.shared {
        return Err(ValidationError::MemoryLimit("a shared memory".to_owned()));
    }
    if !entry {
        return Err(ValidationError::NoEntryPoint);
    }
    Ok(())
}
