//! `wasm_vs_wasmi`: a differential check of wasmer, compiled as the binding compiles (singlepass
//! with the metering middleware and the binding's operator costs), against the reference
//! interpreter wasmi, on wasm-smith modules of the allowed feature set with no imports. Every
//! loop and call is bounded (`ensure_termination`), every function is exported and called with
//! the same arguments in the same order; both engines must agree on each call's results, on
//! trap versus no trap (and on the trap's kind where both name it), and on the exported globals
//! and memory afterwards.
//!
//! The binding keeps its compiler configuration private, and with it the middleware that counts
//! call depth and charges bulk memory per byte; this target builds the rest of the same
//! configuration (see `compiler_engine` in `wasm-binding/src/engine.rs`). A stack overflow on
//! either side ends the comparison of that module, since where each engine runs out of stack is
//! its own limit, not a semantic.

use super::wasm_deploy::allowed_features;
use arbitrary::Unstructured;
use std::sync::Arc;
use wasmer::sys::{CompilerConfig, EngineBuilder, Singlepass};
use wasmer_middlewares::Metering;

/// Loop iterations and calls a module may make in all, across its calls.
const FUEL: u32 = 1_000;
/// Functions called per module.
const MAX_CALLS: usize = 8;

/// How a call ended, in terms both engines share.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Returned(Vec<i64>),
    /// A trap, with the kind both engines name (`None` when one of them gives none).
    Trapped(Option<&'static str>),
    Exhausted,
}

fn wasmer_trap(error: wasmer::RuntimeError) -> Ended {
    use wasmer_types::TrapCode;
    match error.to_trap() {
        Some(TrapCode::StackOverflow) => Ended::Exhausted,
        Some(TrapCode::HeapAccessOutOfBounds | TrapCode::HeapMisaligned) => Ended::Trapped(Some("memory")),
        Some(TrapCode::TableAccessOutOfBounds) => Ended::Trapped(Some("table")),
        Some(TrapCode::IndirectCallToNull) => Ended::Trapped(Some("null")),
        Some(TrapCode::BadSignature) => Ended::Trapped(Some("signature")),
        Some(TrapCode::IntegerOverflow) => Ended::Trapped(Some("overflow")),
        Some(TrapCode::IntegerDivisionByZero) => Ended::Trapped(Some("division")),
        Some(TrapCode::BadConversionToInteger) => Ended::Trapped(Some("conversion")),
        Some(TrapCode::UnreachableCodeReached) => Ended::Trapped(Some("unreachable")),
        _ => Ended::Trapped(None),
    }
}

fn wasmi_trap(error: &wasmi::Error) -> Ended {
    use wasmi::TrapCode;
    match error.as_trap_code() {
        Some(TrapCode::StackOverflow) => Ended::Exhausted,
        Some(TrapCode::MemoryOutOfBounds) => Ended::Trapped(Some("memory")),
        Some(TrapCode::TableOutOfBounds) => Ended::Trapped(Some("table")),
        Some(TrapCode::IndirectCallToNull) => Ended::Trapped(Some("null")),
        Some(TrapCode::BadSignature) => Ended::Trapped(Some("signature")),
        Some(TrapCode::IntegerOverflow) => Ended::Trapped(Some("overflow")),
        Some(TrapCode::IntegerDivisionByZero) => Ended::Trapped(Some("division")),
        Some(TrapCode::BadConversionToInteger) => Ended::Trapped(Some("conversion")),
        Some(TrapCode::UnreachableCodeReached) => Ended::Trapped(Some("unreachable")),
        _ => Ended::Trapped(None),
    }
}

/// Two trap outcomes agree when they are the same kind, or when one engine names no kind.
fn agree(left: &Ended, right: &Ended) -> bool {
    match (left, right) {
        (Ended::Trapped(Some(a)), Ended::Trapped(Some(b))) => a == b,
        (Ended::Trapped(_), Ended::Trapped(_)) => true,
        _ => left == right,
    }
}

/// A value as both engines hold it, as the bits of an i64.
fn wasmer_bits(value: &wasmer::Value) -> Option<i64> {
    match value {
        wasmer::Value::I32(v) => Some(i64::from(*v)),
        wasmer::Value::I64(v) => Some(*v),
        _ => None,
    }
}

fn wasmi_bits(value: &wasmi::Val) -> Option<i64> {
    match value {
        wasmi::Val::I32(v) => Some(i64::from(*v)),
        wasmi::Val::I64(v) => Some(*v),
        _ => None,
    }
}

/// The engine the binding compiles with, less its private depth middleware.
fn binding_like_engine() -> wasmer::Engine {
    let mut compiler = Singlepass::new();
    compiler.push_middleware(Arc::new(Metering::new(u64::MAX / 2, wasm_binding::gas::operator_cost)));
    EngineBuilder::new(compiler).engine().into()
}

/// The `wasm_vs_wasmi` target.
pub(crate) struct WasmVsWasmi {
    reached: u64,
}

impl WasmVsWasmi {
    pub(crate) fn new() -> Self {
        // The binding runs guests on its own stack size; so does this comparison.
        wasmer_vm::set_stack_size(wasm_binding::validate::WASM_STACK_BYTES);
        Self { reached: 0 }
    }
}

/// One argument for a parameter of type `ty`, drawn from `unstructured`.
#[allow(clippy::cast_possible_truncation)] // An i32 argument is the low bits of an i64, on purpose.
fn argument(unstructured: &mut Unstructured<'_>, is_i64: bool) -> i64 {
    let raw: i64 = unstructured.arbitrary().unwrap_or(0);
    if is_i64 { raw } else { i64::from(raw as i32) }
}

impl super::Target for WasmVsWasmi {
    fn name(&self) -> &'static str {
        "wasm_vs_wasmi"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }

    fn reached(&self) -> u64 {
        self.reached
    }

    fn reached_means(&self) -> &'static str {
        "modules instantiated by both"
    }

    fn random_len(&self) -> usize {
        4096
    }

    #[allow(clippy::cast_possible_truncation)] // i32 arguments are the low bits of an i64, on purpose.
    fn run(&mut self, input: &[u8]) -> Result<(), String> {
        let mut unstructured = Unstructured::new(input);
        let bulk: bool = unstructured.arbitrary().unwrap_or(false);
        let mut config = allowed_features(bulk);
        config.max_imports = 0;
        config.export_everything = true;
        config.allow_start_export = true;
        let Ok(mut module) = wasm_smith::Module::new(config, &mut unstructured) else { return Ok(()) };
        if module.ensure_termination(FUEL).is_err() {
            return Ok(());
        }
        let code = module.to_bytes();

        let mut wasmer_store = wasmer::Store::new(binding_like_engine());
        let wasmer_module = wasmer::Module::new(&wasmer_store, &code);
        let wasmi_engine = wasmi::Engine::default();
        let wasmi_module = wasmi::Module::new(&wasmi_engine, &code[..]);
        let (wasmer_module, wasmi_module) = match (wasmer_module, wasmi_module) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(_), Err(_)) => return Ok(()),
            (a, b) => {
                return Err(format!(
                    "one engine refused the module: wasmer {:?}, wasmi {:?}",
                    a.err().map(|e| e.to_string()),
                    b.err().map(|e| e.to_string())
                ));
            }
        };
        let mut wasmi_store = wasmi::Store::new(&wasmi_engine, ());
        let wasmer_instance = wasmer::Instance::new(&mut wasmer_store, &wasmer_module, &wasmer::imports! {});
        let wasmi_instance =
            wasmi::Linker::<()>::new(&wasmi_engine).instantiate_and_start(&mut wasmi_store, &wasmi_module);
        let (wasmer_instance, wasmi_instance) = match (wasmer_instance, wasmi_instance) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(a), Err(b)) => {
                let left = match a {
                    wasmer::InstantiationError::Start(error) => wasmer_trap(error),
                    _ => Ended::Trapped(None),
                };
                let right = wasmi_trap(&b);
                if left == Ended::Exhausted || right == Ended::Exhausted || agree(&left, &right) {
                    return Ok(());
                }
                return Err(format!("instantiation traps differ: wasmer {left:?}, wasmi {right:?}"));
            }
            (a, b) => {
                return Err(format!(
                    "only one engine instantiated: wasmer {:?}, wasmi {:?}",
                    a.err().map(|e| e.to_string()),
                    b.err().map(|e| e.to_string())
                ));
            }
        };

        self.reached += 1;
        let names: Vec<String> = wasmi_module
            .exports()
            .filter(|export| export.ty().func().is_some())
            .map(|export| export.name().to_owned())
            .take(MAX_CALLS)
            .collect();
        for name in &names {
            let (Ok(wasmer_function), Some(wasmi_function)) =
                (wasmer_instance.exports.get_function(name), wasmi_instance.get_func(&wasmi_store, name))
            else {
                return Err(format!("export `{name}` is a function in one engine only"));
            };
            let ty = wasmi_function.ty(&wasmi_store);
            let mut wasmer_args = Vec::new();
            let mut wasmi_args = Vec::new();
            for param in ty.params() {
                let is_i64 = matches!(param, wasmi::ValType::I64);
                let value = argument(&mut unstructured, is_i64);
                if is_i64 {
                    wasmer_args.push(wasmer::Value::I64(value));
                    wasmi_args.push(wasmi::Val::I64(value));
                } else {
                    wasmer_args.push(wasmer::Value::I32(value as i32));
                    wasmi_args.push(wasmi::Val::I32(value as i32));
                }
            }
            let left = match wasmer_function.call(&mut wasmer_store, &wasmer_args) {
                Ok(values) => Ended::Returned(values.iter().filter_map(wasmer_bits).collect()),
                Err(error) => wasmer_trap(error),
            };
            let mut results: Vec<wasmi::Val> = ty.results().iter().map(|ty| wasmi::Val::default(*ty)).collect();
            let right = match wasmi_function.call(&mut wasmi_store, &wasmi_args, &mut results) {
                Ok(()) => Ended::Returned(results.iter().filter_map(wasmi_bits).collect()),
                Err(error) => wasmi_trap(&error),
            };
            if left == Ended::Exhausted || right == Ended::Exhausted {
                return Ok(());
            }
            if !agree(&left, &right) {
                return Err(format!("`{name}` differs: wasmer {left:?}, wasmi {right:?}"));
            }
        }
        // What the calls left behind: exported globals and memories.
        for export in wasmi_module.exports() {
            let name = export.name();
            if export.ty().global().is_some() {
                let left =
                    wasmer_instance.exports.get_global(name).ok().and_then(|g| wasmer_bits(&g.get(&mut wasmer_store)));
                let right =
                    wasmi_instance.get_global(&wasmi_store, name).and_then(|g| wasmi_bits(&g.get(&wasmi_store)));
                if left != right {
                    return Err(format!("global `{name}` differs: wasmer {left:?}, wasmi {right:?}"));
                }
            } else if export.ty().memory().is_some() {
                let left = wasmer_instance.exports.get_memory(name).ok().map(|m| m.view(&wasmer_store).copy_to_vec());
                let right = wasmi_instance.get_memory(&wasmi_store, name).map(|m| m.data(&wasmi_store).to_vec());
                match (left, right) {
                    (Some(Ok(a)), Some(b)) if a == b => {}
                    (a, b) => {
                        return Err(format!(
                            "memory `{name}` differs: wasmer {:?} bytes, wasmi {:?} bytes",
                            a.map(|a| a.map(|a| a.len()).ok()),
                            b.map(|b| b.len())
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
