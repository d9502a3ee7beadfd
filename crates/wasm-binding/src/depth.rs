//! Instrumentation of our own, as one wasmer middleware: a deterministic limit on call depth, and
//! gas for the bytes bulk memory instructions touch.
//!
//! Without the depth limit, unbounded recursion would stop wherever the host's native stack runs
//! out, which depends on the compiler's frame layout and the host thread's stack size: two machines
//! could stop a call at different depths and charge different gas. The middleware counts nested
//! calls in a global: before every `call`/`call_indirect` it traps when the count is at the limit
//! and otherwise increments it, and it decrements after the call returns. A trap discards the
//! instance, so no path needs to restore the count.
//!
//! Without the bulk memory charge, metering would price `memory.fill` and `memory.copy` once
//! whatever their length operand, so a loop of 4 MiB fills would cost a few gas per 4 MiB.
//!
//! The middleware fails closed: a function it is asked to instrument before it has added its
//! globals to the module refuses to compile, rather than being instrumented with made-up indices.

use parking_lot::Mutex;
use wasmer::sys::{FunctionMiddleware, MiddlewareError, MiddlewareReaderState, ModuleMiddleware};
use wasmer::wasmparser::{BlockType, Operator};
use wasmer::{ExportIndex, GlobalInit, GlobalType, LocalFunctionIndex, ModuleInfo, Mutability, Type};

/// How many calls may be nested.
pub const MAX_CALL_DEPTH: i32 = 1_024;
/// The exported global holding the current depth; set to `MAX_CALL_DEPTH + 1` when the limit
/// stops a call, which is how a trap is recognised as a depth trap.
pub(crate) const DEPTH_GLOBAL: &str = "xstate_call_depth";
/// The metering middleware's globals, which the bulk memory charge draws from.
pub(crate) const REMAINING_POINTS_GLOBAL: &str = "wasmer_metering_remaining_points";
pub(crate) const POINTS_EXHAUSTED_GLOBAL: &str = "wasmer_metering_points_exhausted";

const NAME: &str = "xstate instrumentation";

/// The module half of the middleware. Like wasmer's metering, whose globals it uses and after
/// which it must run, one instance serves one module.
#[derive(Debug, Default)]
pub(crate) struct Instrumentation {
    globals: Mutex<Option<Globals>>,
}

/// The indices of the globals the instrumentation uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Globals {
    /// The call depth (ours).
    depth: u32,
    /// The length operand of the bulk instruction being charged (ours).
    length: u32,
    /// Metering's remaining points.
    remaining: u32,
    /// Metering's exhausted flag.
    exhausted: u32,
}

impl Instrumentation {
    /// The globals added by `transform_module_info`; `None` before it has run.
    fn globals(&self) -> Option<Globals> {
        *self.globals.lock()
    }
}

impl ModuleMiddleware for Instrumentation {
    fn generate_function_middleware<'a>(&self, _: LocalFunctionIndex) -> Box<dyn FunctionMiddleware<'a> + 'a> {
        Box::new(FunctionInstrumentation { globals: self.globals() })
    }

    fn transform_module_info(&self, module_info: &mut ModuleInfo) -> Result<(), MiddlewareError> {
        let mut slot = self.globals.lock();
        if slot.is_some() {
            return Err(MiddlewareError::new(NAME, "one middleware instance per module"));
        }
        let exported = |name: &str| match module_info.exports.get(name) {
            Some(ExportIndex::Global(index)) => Ok(index.as_u32()),
            _ => Err(MiddlewareError::new(NAME, "the metering middleware must run first")),
        };
        let remaining = exported(REMAINING_POINTS_GLOBAL)?;
        let exhausted = exported(POINTS_EXHAUSTED_GLOBAL)?;
        let mut new_global = || {
            module_info.global_initializers.push(GlobalInit::I32Const(0));
            module_info.globals.push(GlobalType::new(Type::I32, Mutability::Var))
        };
        let depth = new_global();
        let length = new_global().as_u32();
        module_info.exports.insert(DEPTH_GLOBAL.to_owned(), ExportIndex::Global(depth));
        *slot = Some(Globals { depth: depth.as_u32(), length, remaining, exhausted });
        Ok(())
    }
}

#[derive(Debug)]
struct FunctionInstrumentation {
    globals: Option<Globals>,
}

impl<'a> FunctionMiddleware<'a> for FunctionInstrumentation {
    fn feed(&mut self, operator: Operator<'a>, state: &mut MiddlewareReaderState<'a>) -> Result<(), MiddlewareError> {
        let Some(globals) = self.globals else {
            return Err(MiddlewareError::new(
                NAME,
                "asked to instrument a function of a module it has not transformed",
            ));
        };
        match operator {
            Operator::Call { .. } | Operator::CallIndirect { .. } => limit_depth(globals.depth, operator, state),
            Operator::MemoryFill { .. } | Operator::MemoryCopy { .. } => charge_bulk(globals, operator, state),
            operator => state.push_operator(operator),
        }
        Ok(())
    }
}

/// Wraps a call in the depth check, increment and decrement.
fn limit_depth<'a>(global_index: u32, call: Operator<'a>, state: &mut MiddlewareReaderState<'a>) {
    state.extend(&[
        Operator::GlobalGet { global_index },
        Operator::I32Const { value: MAX_CALL_DEPTH },
        Operator::I32GeU,
        Operator::If { blockty: BlockType::Empty },
        Operator::I32Const { value: MAX_CALL_DEPTH + 1 },
        Operator::GlobalSet { global_index },
        Operator::Unreachable,
        Operator::End,
        Operator::GlobalGet { global_index },
        Operator::I32Const { value: 1 },
        Operator::I32Add,
        Operator::GlobalSet { global_index },
    ]);
    state.push_operator(call);
    state.extend(&[
        Operator::GlobalGet { global_index },
        Operator::I32Const { value: 1 },
        Operator::I32Sub,
        Operator::GlobalSet { global_index },
    ]);
}

/// Charges `memory.fill` or `memory.copy` one point per 2^`BULK_BYTES_SHIFT` bytes of its length
/// operand from metering's counter before it runs, running out of gas like metering does.
fn charge_bulk<'a>(globals: Globals, operator: Operator<'a>, state: &mut MiddlewareReaderState<'a>) {
    let Globals { length, remaining, exhausted, .. } = globals;
    // The length is on top of the operand stack: park it in a global, charge
    // length >> BULK_BYTES_SHIFT, put it back.
    let cost = [
        Operator::GlobalGet { global_index: length },
        Operator::I64ExtendI32U,
        Operator::I64Const { value: crate::gas::BULK_BYTES_SHIFT },
        Operator::I64ShrU,
    ];
    state.extend(&[Operator::GlobalSet { global_index: length }, Operator::GlobalGet { global_index: remaining }]);
    state.extend(&cost);
    state.extend(&[
        Operator::I64LtU,
        Operator::If { blockty: BlockType::Empty },
        Operator::I32Const { value: 1 },
        Operator::GlobalSet { global_index: exhausted },
        Operator::Unreachable,
        Operator::End,
        Operator::GlobalGet { global_index: remaining },
    ]);
    state.extend(&cost);
    state.extend(&[
        Operator::I64Sub,
        Operator::GlobalSet { global_index: remaining },
        Operator::GlobalGet { global_index: length },
    ]);
    state.push_operator(operator);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

    use super::*;
    use wasmer_types::GlobalIndex;

    fn metered_module() -> ModuleInfo {
        let mut info = ModuleInfo::new();
        for name in [REMAINING_POINTS_GLOBAL, POINTS_EXHAUSTED_GLOBAL] {
            let index = info.globals.push(GlobalType::new(Type::I64, Mutability::Var));
            info.global_initializers.push(GlobalInit::I64Const(0));
            info.exports.insert(name.to_owned(), ExportIndex::Global(index));
        }
        info
    }

    /// Before the module is transformed there are no globals to hand out, so the function half
    /// refuses to compile instead of falling back to index 0 (the module's own first global).
    #[test]
    fn an_untransformed_middleware_has_no_globals() {
        assert_eq!(Instrumentation::default().globals(), None);
    }

    #[test]
    fn transforming_adds_the_globals_after_meterings() {
        let middleware = Instrumentation::default();
        let mut info = metered_module();
        middleware.transform_module_info(&mut info).unwrap();
        assert_eq!(middleware.globals(), Some(Globals { depth: 2, length: 3, remaining: 0, exhausted: 1 }));
        assert_eq!(info.exports.get(DEPTH_GLOBAL), Some(&ExportIndex::Global(GlobalIndex::from_u32(2))));
        assert_eq!(info.global_initializers.len(), 4);
    }

    #[test]
    fn transforming_fails_without_metering_or_for_a_second_module() {
        let middleware = Instrumentation::default();
        let error = middleware.transform_module_info(&mut ModuleInfo::new()).unwrap_err();
        assert!(error.to_string().contains("metering middleware must run first"), "{error}");
        assert_eq!(middleware.globals(), None, "a failed transform leaves nothing behind");
        middleware.transform_module_info(&mut metered_module()).unwrap();
        let error = middleware.transform_module_info(&mut metered_module()).unwrap_err();
        assert!(error.to_string().contains("one middleware instance per module"), "{error}");
    }
}
