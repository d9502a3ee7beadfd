//! Deploy-time validation: everything a module must satisfy before it is stored.
//!
//! The module must be well-formed WebAssembly restricted to a deterministic feature set (no
//! floating point at all, no SIMD, threads or other post-MVP proposals beyond sign extension,
//! multi-value and bulk memory), import only host functions of the documented namespace with
//! their exact signatures, export a bounded memory and the entry point, and have no start function
//! (which would run before metering is armed).

use std::collections::HashMap;
use wasmer::wasmparser::{FuncValidatorAllocations, Parser, Payload, ValidPayload, Validator, WasmFeatures};
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
/// The most elements a table may start with (tables are allocated at every instantiation).
pub const MAX_TABLE_ELEMENTS: u64 = 4_096;
/// The most value slots one function's frame may need: its parameters and locals plus the
/// deepest its operand stack gets. With at most 1,024 nested calls, every frame fits in the WASM
/// stack ([`WASM_STACK_BYTES`]) several times over, so the call-depth limit, not the machine's
/// stack, decides where recursion stops.
pub const MAX_FRAME_SLOTS: u64 = 2_048;
/// The stack wasmer runs guests on: 64 MiB, against at most 1,024 frames of at most 2,048 slots
/// (about 17 MiB).
pub const WASM_STACK_BYTES: usize = 64 * 1024 * 1024;

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
    /// A function's frame needs more than [`MAX_FRAME_SLOTS`] value slots.
    #[error("function {function} needs {slots} value slots (locals and operand stack); at most 2048")]
    FrameTooLarge {
        /// The function's index.
        function: u32,
        /// Slots it needs.
        slots: u64,
    },
    /// A table starts with more than [`MAX_TABLE_ELEMENTS`] elements.
    #[error("a table of {0} elements; tables start with at most 4096")]
    TableLimit(u64),
    /// No exported function `call: () -> ()`.
    #[error("the module must export the entry point `call` with no parameters and no results")]
    NoEntryPoint,
}

/// The deterministic feature set: MVP integers, mutable globals, sign extension, multi-value and
/// `memory.copy`/`memory.fill` (charged per byte, see `depth::BulkMemoryGas`); no floats, SIMD,
/// threads, exceptions or reference types.
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
    let malformed = |error: wasmer::wasmparser::BinaryReaderError| ValidationError::Malformed(error.to_string());
    let mut validator = Validator::new_with_features(features());
    let mut allocations = FuncValidatorAllocations::default();
    for payload in Parser::new(0).parse_all(code) {
        let payload = payload.map_err(malformed)?;
        match &payload {
            Payload::StartSection { .. } => return Err(ValidationError::StartFunction),
            Payload::TableSection(tables) => {
                for table in tables.clone() {
                    let table = table.map_err(malformed)?;
                    if table.ty.initial > MAX_TABLE_ELEMENTS {
                        return Err(ValidationError::TableLimit(table.ty.initial));
                    }
                }
            }
            _ => {}
        }
        if let ValidPayload::Func(function, body) = validator.payload(&payload).map_err(malformed)? {
            let mut function = function.into_validator(allocations);
            let mut reader = body.get_binary_reader();
            function.read_locals(&mut reader).map_err(malformed)?;
            let mut deepest = 0;
            while !reader.eof() {
                let offset = reader.original_position();
                reader.visit_operator(&mut function.visitor(offset)).map_err(malformed)?.map_err(malformed)?;
                deepest = deepest.max(function.operand_stack_height());
            }
            reader.finish_expression(&function.visitor(reader.original_position())).map_err(malformed)?;
            let slots = u64::from(function.len_locals()) + u64::from(deepest);
            if slots > MAX_FRAME_SLOTS {
                return Err(ValidationError::FrameTooLarge { function: function.index(), slots });
            }
            allocations = function.into_allocations();
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
