//! Deploy-time validation: everything a module must satisfy before it is stored.
//!
//! The module must be well-formed WebAssembly restricted to a deterministic feature set (no
//! floating point at all, no SIMD, threads or other post-MVP proposals beyond sign extension,
//! multi-value and `memory.copy`/`memory.fill`), import only host functions of the documented
//! namespace with their exact signatures, export a bounded memory and the entry point, have no
//! start function (which would run before metering is armed), and have every data and element
//! segment fit its memory or table as instantiated. All of it is checked in one pass over the bytes
//! before the module is compiled, so a refused module never costs a compilation, and a module that
//! passes can always be instantiated (short of the machine running out of resources).

use std::collections::HashMap;
use wasmer::wasmparser::{
    ConstExpr, DataKind, ElementItems, ElementKind, ExternalKind, FuncType, FuncValidatorAllocations, MemoryType,
    Operator, Parser, Payload, TypeRef, ValType, ValidPayload, Validator, WasmFeatures,
};
use wasmer::{FunctionType, Type};

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
/// The size of a WebAssembly page.
const PAGE_BYTES: u64 = 64 * 1024;
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
    #[error("module is {0} bytes; the limit is {MAX_MODULE_BYTES}")]
    TooLarge(usize),
    /// The bytes are not valid WebAssembly in the allowed feature set.
    #[error("invalid module: {0}")]
    Malformed(String),
    /// The module has a start function.
    #[error("modules may not have a start function (it would run unmetered)")]
    StartFunction,
    /// An import outside the host namespace or of an unknown name.
    #[error("unknown import `{module}`.`{name}`: only the host functions of `{HOST_NAMESPACE}` may be imported")]
    UnknownImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// A host function imported with the wrong signature.
    #[error("import `{HOST_NAMESPACE}`.`{name}` has signature {found}, expected {expected}")]
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
    #[error("the module must export its memory as `{MEMORY_EXPORT}`")]
    NoMemory,
    /// The memory has no maximum or a maximum above the limit.
    #[error(
        "memory must declare a maximum of at most {MAX_MEMORY_PAGES} pages ({kib} KiB); it declares {0}",
        kib = MAX_MEMORY_PAGES * PAGE_BYTES / 1024
    )]
    MemoryLimit(String),
    /// A function's frame needs more than [`MAX_FRAME_SLOTS`] value slots.
    #[error("function {function} needs {slots} value slots (locals and operand stack); at most {MAX_FRAME_SLOTS}")]
    FrameTooLarge {
        /// The function's index.
        function: u32,
        /// Slots it needs.
        slots: u64,
    },
    /// A table starts with more than [`MAX_TABLE_ELEMENTS`] elements.
    #[error("a table of {0} elements; tables start with at most {MAX_TABLE_ELEMENTS}")]
    TableLimit(u64),
    /// An active data segment does not fit in the memory's initial size, so the module could
    /// never be instantiated.
    #[error(
        "data segment {segment} writes {len} bytes at offset {offset}, past the initial memory of {memory_bytes} bytes"
    )]
    DataSegmentOutOfBounds {
        /// The segment's index.
        segment: u32,
        /// Where it starts.
        offset: u64,
        /// Its length in bytes.
        len: u64,
        /// The memory's initial size in bytes.
        memory_bytes: u64,
    },
    /// An active element segment does not fit in its table's initial size, so the module could
    /// never be instantiated.
    #[error(
        "element segment {segment} writes {len} elements at index {offset}, past the table's {table_elements} initial elements"
    )]
    ElementSegmentOutOfBounds {
        /// The segment's index.
        segment: u32,
        /// Where it starts.
        offset: u64,
        /// Its number of elements.
        len: u64,
        /// The table's initial size.
        table_elements: u64,
    },
    /// No exported function `call: () -> ()`.
    #[error("the module must export the entry point `{ENTRY_POINT}` with no parameters and no results")]
    NoEntryPoint,
}

/// The deterministic feature set: MVP integers, mutable globals, sign extension, multi-value and
/// `memory.copy`/`memory.fill` (charged per byte, see `depth::Instrumentation`); no floats, SIMD,
/// threads (so no shared memories), exceptions, reference types, tail calls, memory64, multiple
/// memories, extended constants, or passive segments with `memory.init` and `data.drop`.
fn features() -> WasmFeatures {
    WasmFeatures::GC_TYPES
        | WasmFeatures::MUTABLE_GLOBAL
        | WasmFeatures::SIGN_EXTENSION
        | WasmFeatures::MULTI_VALUE
        | WasmFeatures::BULK_MEMORY_OPT
        | WasmFeatures::CALL_INDIRECT_OVERLONG
}

/// What the pass has learned so far about the module's functions, memory and tables.
#[derive(Default)]
struct Interface {
    /// The function types of the type section.
    types: Vec<FuncType>,
    /// The type index of every function, imported ones first.
    functions: Vec<u32>,
    /// The memory (at most one: imports are functions only and multi-memory is off).
    memory: Option<MemoryType>,
    /// The initial size of every table.
    tables: Vec<u64>,
    /// Whether the memory is exported as [`MEMORY_EXPORT`].
    memory_exported: bool,
    /// Whether [`ENTRY_POINT`] is exported with the right signature.
    entry_point: bool,
}

/// Checks `code` against everything above, in one pass before compilation; `host` holds the
/// signatures of the host functions a module may import.
pub fn check(code: &[u8], host: &HashMap<String, FunctionType>) -> Result<(), ValidationError> {
    if code.len() > MAX_MODULE_BYTES {
        return Err(ValidationError::TooLarge(code.len()));
    }
    let malformed = |error: wasmer::wasmparser::BinaryReaderError| ValidationError::Malformed(error.to_string());
    let mut validator = Validator::new_with_features(features());
    let mut allocations = FuncValidatorAllocations::default();
    let mut interface = Interface::default();
    let mut parser = Parser::new(0);
    parser.set_features(features());
    for payload in parser.parse_all(code) {
        let payload = payload.map_err(malformed)?;
        // The validator sees each section first, so the checks below only meet well-formed
        // sections of the allowed feature set.
        let valid = validator.payload(&payload).map_err(malformed)?;
        match &payload {
            Payload::StartSection { .. } => return Err(ValidationError::StartFunction),
            Payload::TypeSection(section) => {
                for ty in section.clone().into_iter_err_on_gc_types() {
                    interface.types.push(ty.map_err(malformed)?);
                }
            }
            Payload::ImportSection(section) => {
                for import in section.clone().into_imports() {
                    let import = import.map_err(malformed)?;
                    let TypeRef::Func(type_index) = import.ty else {
                        return Err(ValidationError::NonFunctionImport(import.name.to_owned()));
                    };
                    check_import(import.module, import.name, interface.func_type(type_index), host)?;
                    interface.functions.push(type_index);
                }
            }
            Payload::FunctionSection(section) => {
                for type_index in section.clone() {
                    interface.functions.push(type_index.map_err(malformed)?);
                }
            }
            Payload::TableSection(section) => {
                for table in section.clone() {
                    let table = table.map_err(malformed)?;
                    if table.ty.initial > MAX_TABLE_ELEMENTS {
                        return Err(ValidationError::TableLimit(table.ty.initial));
                    }
                    interface.tables.push(table.ty.initial);
                }
            }
            Payload::MemorySection(section) => {
                for memory in section.clone() {
                    let memory = memory.map_err(malformed)?;
                    match memory.maximum {
                        Some(maximum) if maximum <= MAX_MEMORY_PAGES => {}
                        Some(maximum) => return Err(ValidationError::MemoryLimit(format!("{maximum} pages"))),
                        None => return Err(ValidationError::MemoryLimit("no maximum".to_owned())),
                    }
                    interface.memory = Some(memory);
                }
            }
            Payload::ExportSection(section) => {
                for export in section.clone() {
                    let export = export.map_err(malformed)?;
                    match (export.name, export.kind) {
                        (MEMORY_EXPORT, ExternalKind::Memory) => interface.memory_exported = true,
                        (ENTRY_POINT, ExternalKind::Func) => {
                            let ty =
                                interface.functions.get(export.index as usize).and_then(|&t| interface.func_type(t));
                            interface.entry_point =
                                ty.is_some_and(|ty| ty.params().is_empty() && ty.results().is_empty());
                        }
                        _ => {}
                    }
                }
            }
            Payload::ElementSection(section) => {
                for (segment, element) in (0u32..).zip(section.clone()) {
                    let element = element.map_err(malformed)?;
                    let ElementKind::Active { table_index, offset_expr } = element.kind else { continue };
                    let len = match element.items {
                        ElementItems::Functions(items) => items.count(),
                        ElementItems::Expressions(_, items) => items.count(),
                    };
                    let table_elements = interface.tables.get(table_index.unwrap_or(0) as usize).copied().unwrap_or(0);
                    let offset = segment_offset(&offset_expr)?;
                    if offset + u64::from(len) > table_elements {
                        let len = u64::from(len);
                        return Err(ValidationError::ElementSegmentOutOfBounds {
                            segment,
                            offset,
                            len,
                            table_elements,
                        });
                    }
                }
            }
            Payload::DataSection(section) => {
                let memory_bytes = interface.memory.map_or(0, |memory| memory.initial * PAGE_BYTES);
                for (segment, data) in (0u32..).zip(section.clone()) {
                    let data = data.map_err(malformed)?;
                    let DataKind::Active { offset_expr, .. } = data.kind else { continue };
                    let offset = segment_offset(&offset_expr)?;
                    let len = data.data.len() as u64;
                    if offset + len > memory_bytes {
                        return Err(ValidationError::DataSegmentOutOfBounds { segment, offset, len, memory_bytes });
                    }
                }
            }
            _ => {}
        }
        if let ValidPayload::Func(function, body) = valid {
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
    if !interface.memory_exported {
        return Err(ValidationError::NoMemory);
    }
    if !interface.entry_point {
        return Err(ValidationError::NoEntryPoint);
    }
    Ok(())
}

impl Interface {
    fn func_type(&self, type_index: u32) -> Option<&FuncType> {
        self.types.get(type_index as usize)
    }
}

/// Checks one function import against the host's functions.
fn check_import(
    module: &str,
    name: &str,
    found: Option<&FuncType>,
    host: &HashMap<String, FunctionType>,
) -> Result<(), ValidationError> {
    let unknown = || ValidationError::UnknownImport { module: module.to_owned(), name: name.to_owned() };
    if module != HOST_NAMESPACE {
        return Err(unknown());
    }
    let expected = host.get(name).ok_or_else(unknown)?;
    let found_signature = found.and_then(host_signature);
    if found_signature.as_ref() != Some(expected) {
        return Err(ValidationError::ImportSignature {
            name: name.to_owned(),
            found: found_signature.map_or_else(|| format!("{found:?}"), |signature| signature.to_string()),
            expected: expected.to_string(),
        });
    }
    Ok(())
}

/// A parsed function type in wasmer's terms, to compare with a host function's. The validator
/// admits only `i32` and `i64` in signatures (floats, SIMD and references are off), so any other
/// type has no host counterpart and the signature cannot match.
fn host_signature(ty: &FuncType) -> Option<FunctionType> {
    let convert = |types: &[ValType]| -> Option<Vec<Type>> {
        types
            .iter()
            .map(|ty| match ty {
                ValType::I32 => Some(Type::I32),
                ValType::I64 => Some(Type::I64),
                _ => None,
            })
            .collect()
    };
    Some(FunctionType::new(convert(ty.params())?, convert(ty.results())?))
}

/// The offset of an active segment. The validator allows an `i32.const` here, or a `global.get`
/// of an imported immutable global (extended constants and GC are off); global imports are
/// refused before any segment is read, so anything but a lone `i32.const` is refused rather than
/// guessed at.
fn segment_offset(expr: &ConstExpr<'_>) -> Result<u64, ValidationError> {
    let mut reader = expr.get_operators_reader();
    match (reader.read(), reader.read(), reader.eof()) {
        (Ok(Operator::I32Const { value }), Ok(Operator::End), true) => Ok(u64::from(value.cast_unsigned())),
        _ => Err(ValidationError::Malformed("a segment offset that is not a single i32.const".to_owned())),
    }
}

/// What a module's compiled artifact may hold at most, in bytes, as a function of its code
/// alone: a fixed part, the code's own bytes (data segments are copied into the artifact), a part
/// per imported and per defined function (prologue, epilogue, trampolines, and per local) and a
/// part per instruction, largest for the instructions around
/// which the metering and depth instrumentation add code (calls, branches and blocks, bulk
/// memory) and for memory accesses (bounds checks). The weights are upper bounds of what
/// singlepass emits for each, measured on code made of nothing but that instruction
/// (`tests/artifacts.rs` checks every shape and the example guests against the bound), so the
/// bound is a deterministic price for loading the artifact that no node's compiler output can
/// exceed. `code` must have passed [`check`]; anything that does not parse gets the bound of the
/// largest module.
pub fn artifact_bound(code: &[u8]) -> u64 {
    artifact_weight(code).unwrap_or(ARTIFACT_BOUND_LIMIT)
}

/// The bound of a module that does not parse (never the case for deployed code).
const ARTIFACT_BOUND_LIMIT: u64 = u64::MAX / 4;

/// Artifact bytes: the fixed part of every artifact (about 8 KiB), with room for the fixed cost
/// of loading one (opening it, a fresh engine, deserializing: about 50 µs measured by
/// `wasm/call_cold_module`, which the base cost covers at one gas per bound byte).
pub const ARTIFACT_FIXED_BYTES: u64 = 64 * 1024;
/// Artifact bytes per imported function (its trampolines).
pub const ARTIFACT_BYTES_PER_IMPORT: u64 = 1_024;
/// Artifact bytes per defined function (its prologue, epilogue and trampolines).
pub const ARTIFACT_BYTES_PER_FUNCTION: u64 = 1_024;
/// Artifact bytes per local of a defined function.
pub const ARTIFACT_BYTES_PER_LOCAL: u64 = 24;
/// Artifact bytes per `call` or `call_indirect` (the depth check around it, the metering point).
pub const ARTIFACT_BYTES_PER_CALL: u64 = 768;
/// Artifact bytes per control instruction (a metering point each).
pub const ARTIFACT_BYTES_PER_BRANCH: u64 = 384;
/// Artifact bytes per `br_table` target.
pub const ARTIFACT_BYTES_PER_TABLE_TARGET: u64 = 32;
/// Artifact bytes per bulk memory instruction (the bulk charge around it) or `memory.grow`.
pub const ARTIFACT_BYTES_PER_BULK: u64 = 512;
/// Artifact bytes per load or store (its bounds check).
pub const ARTIFACT_BYTES_PER_MEMORY_ACCESS: u64 = 192;
/// Artifact bytes per integer division or remainder (its checks for zero and overflow) and per
/// bit count (`clz`, `ctz`, `popcnt`, which may be emulated without the CPU's instructions).
pub const ARTIFACT_BYTES_PER_DIVISION: u64 = 128;
/// Artifact bytes per other instruction.
pub const ARTIFACT_BYTES_PER_INSTRUCTION: u64 = 24;

fn artifact_weight(code: &[u8]) -> Result<u64, wasmer::wasmparser::BinaryReaderError> {
    let mut bytes = ARTIFACT_FIXED_BYTES.saturating_add(code.len() as u64);
    let mut parser = Parser::new(0);
    parser.set_features(features());
    for payload in parser.parse_all(code) {
        match payload? {
            Payload::ImportSection(section) => {
                bytes += u64::from(section.count()) * ARTIFACT_BYTES_PER_IMPORT;
            }
            Payload::CodeSectionEntry(body) => {
                bytes += ARTIFACT_BYTES_PER_FUNCTION;
                for local in body.get_locals_reader()? {
                    let (count, _) = local?;
                    bytes = bytes.saturating_add(u64::from(count) * ARTIFACT_BYTES_PER_LOCAL);
                }
                let mut operators = body.get_operators_reader()?;
                while !operators.eof() {
                    bytes = bytes.saturating_add(operator_weight(&operators.read()?));
                }
            }
            _ => {}
        }
    }
    Ok(bytes)
}

fn operator_weight(operator: &Operator<'_>) -> u64 {
    use Operator as O;
    match operator {
        O::Call { .. } | O::CallIndirect { .. } => ARTIFACT_BYTES_PER_CALL,
        O::Block { .. }
        | O::Loop { .. }
        | O::If { .. }
        | O::Else
        | O::End
        | O::Br { .. }
        | O::BrIf { .. }
        | O::Return
        | O::Unreachable => ARTIFACT_BYTES_PER_BRANCH,
        O::BrTable { targets } => {
            ARTIFACT_BYTES_PER_BRANCH + u64::from(targets.len()).saturating_mul(ARTIFACT_BYTES_PER_TABLE_TARGET)
        }
        O::MemoryFill { .. } | O::MemoryCopy { .. } | O::MemoryGrow { .. } => ARTIFACT_BYTES_PER_BULK,
        O::I32Load { .. }
        | O::I64Load { .. }
        | O::I32Load8S { .. }
        | O::I32Load8U { .. }
        | O::I32Load16S { .. }
        | O::I32Load16U { .. }
        | O::I64Load8S { .. }
        | O::I64Load8U { .. }
        | O::I64Load16S { .. }
        | O::I64Load16U { .. }
        | O::I64Load32S { .. }
        | O::I64Load32U { .. }
        | O::I32Store { .. }
        | O::I64Store { .. }
        | O::I32Store8 { .. }
        | O::I32Store16 { .. }
        | O::I64Store8 { .. }
        | O::I64Store16 { .. }
        | O::I64Store32 { .. } => ARTIFACT_BYTES_PER_MEMORY_ACCESS,
        O::I32DivS
        | O::I32DivU
        | O::I32RemS
        | O::I32RemU
        | O::I64DivS
        | O::I64DivU
        | O::I64RemS
        | O::I64RemU
        | O::I32Clz
        | O::I32Ctz
        | O::I32Popcnt
        | O::I64Clz
        | O::I64Ctz
        | O::I64Popcnt => ARTIFACT_BYTES_PER_DIVISION,
        _ => ARTIFACT_BYTES_PER_INSTRUCTION,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

    use super::*;
    use wasmer::wasmparser::BinaryReader;

    #[test]
    fn segment_offsets_are_single_i32_constants() {
        let offset = |bytes: &[u8]| segment_offset(&ConstExpr::new(BinaryReader::new(bytes, 0)));
        // i32.const -1; end: offsets are unsigned.
        assert_eq!(offset(&[0x41, 0x7f, 0x0b]), Ok(u64::from(u32::MAX)));
        // global.get 0; end.
        assert!(matches!(offset(&[0x23, 0x00, 0x0b]), Err(ValidationError::Malformed(_))));
        // i32.const 1; i32.const 2; i32.add; end (extended constants).
        assert!(matches!(offset(&[0x41, 0x01, 0x41, 0x02, 0x6a, 0x0b]), Err(ValidationError::Malformed(_))));
    }
}
