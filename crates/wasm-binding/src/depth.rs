//! Instrumentation of our own, as wasmer middlewares: a deterministic limit on call depth, and gas
//! for the bytes bulk memory instructions touch.
//!
//! Without it, unbounded recursion would stop wherever the host's native stack runs out, which
//! depends on the compiler's frame layout and the host thread's stack size: two machines could
//! stop a call at different depths and charge different gas. The middleware counts nested calls in
//! a global: before every `call`/`call_indirect` it traps when the count is at the limit and
//! otherwise increments it, and it decrements after the call returns. A trap discards the instance,
//! so no path needs to restore the count.

use std::sync::Mutex;
use wasmer::sys::{FunctionMiddleware, MiddlewareError, MiddlewareReaderState, ModuleMiddleware};
use wasmer::wasmparser::{BlockType, Operator};
use wasmer::{ExportIndex, GlobalInit, GlobalType, LocalFunctionIndex, ModuleInfo, Mutability, Type};
use wasmer_types::GlobalIndex;

/// How many calls may be nested.
pub const MAX_CALL_DEPTH: i32 = 1_024;
/// The exported global holding the current depth; set to `MAX_CALL_DEPTH + 1` when the limit
/// stops a call, which is how a trap is recognised as a depth trap.
pub(crate) const DEPTH_GLOBAL: &str = "xstate_call_depth";

/// The module half of the middleware. Like wasmer's metering, one instance serves one module.
#[derive(Debug, Default)]
pub(crate) struct CallDepth {
    global: Mutex<Option<GlobalIndex>>,
}

impl ModuleMiddleware for CallDepth {
    fn generate_function_middleware<'a>(&self, _: LocalFunctionIndex) -> Box<dyn FunctionMiddleware<'a> + 'a> {
        let global = self.global.lock().ok().and_then(|guard| *guard).map_or(0, |index| index.as_u32());
        Box::new(FunctionCallDepth { global })
    }

    fn transform_module_info(&self, module_info: &mut ModuleInfo) -> Result<(), MiddlewareError> {
        let mut slot =
            self.global.lock().map_err(|_| MiddlewareError::new("call depth", "poisoned middleware state"))?;
        if slot.is_some() {
            return Err(MiddlewareError::new("call depth", "one middleware instance per module"));
        }
        let index = module_info.globals.push(GlobalType::new(Type::I32, Mutability::Var));
        module_info.global_initializers.push(GlobalInit::I32Const(0));
        module_info.exports.insert(DEPTH_GLOBAL.to_owned(), ExportIndex::Global(index));
        *slot = Some(index);
        Ok(())
    }
}

#[derive(Debug)]
struct FunctionCallDepth {
    global: u32,
}

impl<'a> FunctionMiddleware<'a> for FunctionCallDepth {
    fn feed(&mut self, operator: Operator<'a>, state: &mut MiddlewareReaderState<'a>) -> Result<(), MiddlewareError> {
        if !matches!(operator, Operator::Call { .. } | Operator::CallIndirect { .. }) {
            state.push_operator(operator);
            return Ok(());
        }
        let global_index = self.global;
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
        state.push_operator(operator);
        state.extend(&[
            Operator::GlobalGet { global_index },
            Operator::I32Const { value: 1 },
            Operator::I32Sub,
            Operator::GlobalSet { global_index },
        ]);
        Ok(())
    }
}

/// Charges `memory.fill` and `memory.copy` for the bytes they touch, from wasmer's metering
/// counter: metering prices each instruction once, whatever its length operand, so without this a
/// loop of 4 MiB fills would cost a few gas per 4 MiB. Must run after the metering middleware,
/// whose globals it uses.
#[derive(Debug, Default)]
pub(crate) struct BulkMemoryGas {
    globals: Mutex<Option<BulkGlobals>>,
}

#[derive(Clone, Copy, Debug)]
struct BulkGlobals {
    remaining: u32,
    exhausted: u32,
    length: u32,
}

impl ModuleMiddleware for BulkMemoryGas {
    fn generate_function_middleware<'a>(&self, _: LocalFunctionIndex) -> Box<dyn FunctionMiddleware<'a> + 'a> {
        let globals = self.globals.lock().ok().and_then(|guard| *guard);
        Box::new(FunctionBulkMemoryGas { globals })
    }

    fn transform_module_info(&self, module_info: &mut ModuleInfo) -> Result<(), MiddlewareError> {
        let exported = |name: &str| match module_info.exports.get(name) {
            Some(ExportIndex::Global(index)) => Ok(index.as_u32()),
            _ => Err(MiddlewareError::new("bulk memory gas", "the metering middleware must run first")),
        };
        let remaining = exported("wasmer_metering_remaining_points")?;
        let exhausted = exported("wasmer_metering_points_exhausted")?;
        let length = module_info.globals.push(GlobalType::new(Type::I32, Mutability::Var)).as_u32();
        module_info.global_initializers.push(GlobalInit::I32Const(0));
        let mut slot =
            self.globals.lock().map_err(|_| MiddlewareError::new("bulk memory gas", "poisoned middleware state"))?;
        if slot.is_some() {
            return Err(MiddlewareError::new("bulk memory gas", "one middleware instance per module"));
        }
        *slot = Some(BulkGlobals { remaining, exhausted, length });
        Ok(())
    }
}

#[derive(Debug)]
struct FunctionBulkMemoryGas {
    globals: Option<BulkGlobals>,
}

impl<'a> FunctionMiddleware<'a> for FunctionBulkMemoryGas {
    fn feed(&mut self, operator: Operator<'a>, state: &mut MiddlewareReaderState<'a>) -> Result<(), MiddlewareError> {
        let (Some(globals), Operator::MemoryFill { .. } | Operator::MemoryCopy { .. }) = (self.globals, &operator)
        else {
            state.push_operator(operator);
            return Ok(());
        };
        let BulkGlobals { remaining, exhausted, length } = globals;
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
        Ok(())
    }
}
