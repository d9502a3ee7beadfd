//! The engine: deploys modules into the shared state and calls them with metered gas.

use crate::depth::{DEPTH_GLOBAL, Instrumentation, MAX_CALL_DEPTH, POINTS_EXHAUSTED_GLOBAL, REMAINING_POINTS_GLOBAL};
use crate::gas;
use crate::host::{CoreHost, GasMeter, HostEnv, HostError, HostExtension};
use crate::validate::{self, ENTRY_POINT, HOST_NAMESPACE, MEMORY_EXPORT, ValidationError};
use alloy_primitives::{B256, keccak256};
use kv_core::key::code_key;
use kv_core::{Identity, ModuleName, ModuleRecord, Namespace, Overlay, RecordError, StateError, module_identity};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmer::sys::{CompilerConfig, EngineBuilder, Singlepass};
use wasmer::{Engine, ExportError, FunctionEnv, FunctionType, Imports, Instance, Module, RuntimeError, Store};
use wasmer_middlewares::Metering;
use wasmer_middlewares::metering::{MeteringPoints, get_remaining_points, set_remaining_points};

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallStatus {
    /// The entry point returned; the call's writes are kept.
    Success,
    /// The module called `revert` with this data; its writes are discarded.
    Revert(Vec<u8>),
    /// The module trapped (or a host function refused its input); its writes are discarded.
    Trap(String),
    /// The gas limit was reached (possibly before the module started: see [`gas::call_base`]);
    /// the call's writes are discarded.
    OutOfGas,
}

/// The result of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// How the call ended.
    pub status: CallStatus,
    /// WASM gas used, instructions and host calls together; the limit when out of gas.
    pub gas_used: u64,
    /// What the module wrote with `output_write` (empty unless the call succeeded).
    pub output: Vec<u8>,
}

impl Receipt {
    /// Whether the call succeeded.
    pub fn is_success(&self) -> bool {
        self.status == CallStatus::Success
    }
}

/// A call to make.
#[derive(Clone, Copy, Debug)]
pub struct CallRequest<'a> {
    /// The module's identity.
    pub module: Identity,
    /// Who calls: a transaction's sender.
    pub caller: Identity,
    /// The input the module reads with `input_read`.
    pub input: &'a [u8],
    /// The most WASM gas the call may use.
    pub gas_limit: u64,
}

/// Why a deploy was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The module failed validation.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// wasmer could not compile the module.
    #[error("module does not compile: {0}")]
    Compile(String),
    /// This (name, version) already has a module.
    #[error("module {name} version {version} is already deployed at {identity}")]
    AlreadyDeployed {
        /// The name.
        name: ModuleName,
        /// The version.
        version: u32,
        /// Its identity.
        identity: Identity,
    },
    /// The state failed underneath.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why a call could not be made at all (as opposed to a call that failed, which is a receipt).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No module has this identity.
    #[error("no module is deployed at {0}")]
    UnknownModule(Identity),
    /// The module's record or code in the state is damaged.
    #[error("corrupt module {identity}: {reason}")]
    Corrupt {
        /// The module.
        identity: Identity,
        /// What is wrong.
        reason: String,
    },
    /// The module, valid at deploy, could not be instantiated: a fault of this machine (resources
    /// exhausted, or a host extension that changed its functions), not of the module, so it is
    /// not a receipt. Nothing was written.
    #[error("module {identity} could not be instantiated: {reason}")]
    Instantiation {
        /// The module.
        identity: Identity,
        /// What wasmer reported.
        reason: String,
    },
    /// The state failed underneath; the call's writes were discarded.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why a started call produced no receipt.
enum Fault {
    State(StateError),
    Instantiation(String),
}

impl From<StateError> for Fault {
    fn from(error: StateError) -> Self {
        Self::State(error)
    }
}

/// A host function name defined twice.
#[derive(Debug, thiserror::Error)]
#[error("host function `{0}` is defined by two extensions")]
pub struct DuplicateHostFunction(pub String);

/// Most compiled modules kept in memory.
pub const MAX_CACHED_MODULES: usize = 1_024;

#[derive(Clone)]
struct Compiled {
    engine: Engine,
    module: Module,
    /// The length of the code, on which every call's base cost depends.
    code_len: usize,
}

/// WASM modules on wasmer (singlepass, metered), with their state in the shared substrate.
pub struct WasmEngine {
    chain_id: u64,
    extensions: Vec<Arc<dyn HostExtension>>,
    signatures: HashMap<String, FunctionType>,
    compiled: RwLock<HashMap<B256, Compiled>>,
    compilations: AtomicU64,
}

/// A fresh singlepass engine with its own metering and instrumentation middlewares. Both can
/// instrument only one module, so every module gets its own engine. Metering comes first, so it
/// prices the module's own instructions and not the depth bookkeeping around calls, and so its
/// globals exist for the bulk memory charge.
fn compiler_engine() -> Engine {
    let mut compiler = Singlepass::new();
    compiler.push_middleware(Arc::new(Metering::new(0, gas::operator_cost)));
    compiler.push_middleware(Arc::new(Instrumentation::default()));
    EngineBuilder::new(compiler).engine().into()
}

impl WasmEngine {
    /// An engine for chain `chain_id` with the core host ABI.
    pub fn new(chain_id: u64) -> Self {
        // Process-wide, and the same for every engine: see `validate::WASM_STACK_BYTES`.
        wasmer_vm::set_stack_size(validate::WASM_STACK_BYTES);
        let mut engine = Self {
            chain_id,
            extensions: Vec::new(),
            signatures: HashMap::new(),
            compiled: RwLock::new(HashMap::new()),
            compilations: AtomicU64::new(0),
        };
        // The core ABI's names are distinct, so adding it cannot fail.
        let _ = engine.add_extension(Arc::new(CoreHost));
        engine
    }

    /// Adds host functions; their names must not collide with existing ones.
    pub fn with_extension(mut self, extension: Arc<dyn HostExtension>) -> Result<Self, DuplicateHostFunction> {
        self.add_extension(extension)?;
        Ok(self)
    }

    fn add_extension(&mut self, extension: Arc<dyn HostExtension>) -> Result<(), DuplicateHostFunction> {
        let mut store = Store::default();
        let scratch = kv_core::Store::in_memory();
        let env = FunctionEnv::new(
            &mut store,
            HostEnv::new(scratch.begin(), Namespace::runtime(), Identity::default(), Vec::new()),
        );
        for (name, function) in extension.functions(&mut store, &env) {
            if self.signatures.insert(name.to_owned(), function.ty(&store)).is_some() {
                return Err(DuplicateHostFunction(name.to_owned()));
            }
        }
        self.extensions.push(extension);
        Ok(())
    }

    /// The chain id identities are derived with.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The identity `(name, version)` has on this chain.
    pub fn identity(&self, name: &ModuleName, version: u32) -> Identity {
        module_identity(self.chain_id, name, version)
    }

    fn cached(&self, code_hash: &B256) -> Option<Compiled> {
        self.compiled.read().get(code_hash).cloned()
    }

    /// Validates and compiles `code`, caching the result by code hash.
    fn compile(&self, code_hash: B256, code: &[u8]) -> Result<Compiled, DeployError> {
        if let Some(compiled) = self.cached(&code_hash) {
            return Ok(compiled);
        }
        validate::check(code, &self.signatures)?;
        let engine = compiler_engine();
        self.compilations.fetch_add(1, Ordering::Relaxed);
        let module = Module::new(&engine, code).map_err(|error| DeployError::Compile(error.to_string()))?;
        let compiled = Compiled { engine, module, code_len: code.len() };
        let mut cache = self.compiled.write();
        if cache.len() >= MAX_CACHED_MODULES {
            // Starting over costs one compilation per module still in use; it keeps the cache
            // bounded however many distinct modules are deployed or merely attempted.
            cache.clear();
        }
        cache.insert(code_hash, compiled.clone());
        Ok(compiled)
    }

    /// Number of compiled modules in the cache.
    pub fn cached_modules(&self) -> usize {
        self.compiled.read().len()
    }

    /// How many modules this engine has compiled: once per code hash while it stays cached, again
    /// after the cache has dropped it.
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// Validates `code` and stores it as module `(name, version)`; returns its identity.
    /// The code blob and the module record are written together or not at all.
    pub fn deploy(
        &self,
        state: &mut Overlay,
        name: &ModuleName,
        version: u32,
        code: &[u8],
    ) -> Result<Identity, DeployError> {
        let identity = self.identity(name, version);
        let record_key = Namespace::wasm(identity).record_key();
        if state.read(&record_key, &mut |_| {})? {
            return Err(DeployError::AlreadyDeployed { name: name.clone(), version, identity });
        }
        let code_hash = keccak256(code);
        self.compile(code_hash, code)?;
        let record = ModuleRecord { code_hash, name: name.clone(), version };
        let checkpoint = state.checkpoint();
        let written = (|| -> Result<(), StateError> {
            let blob_key = code_key(&code_hash);
            if !state.read(&blob_key, &mut |_| {})? {
                state.set(&blob_key, code)?;
            }
            state.set(&record_key, &record.encode())
        })();
        match written {
            Ok(()) => state.release(checkpoint)?,
            Err(error) => {
                state.revert(checkpoint)?;
                return Err(error.into());
            }
        }
        Ok(identity)
    }

    /// The record of the module at `identity`, if any.
    pub fn module_record(&self, state: &Overlay, identity: Identity) -> Result<Option<ModuleRecord>, CallError> {
        let Some(bytes) = state.get(&Namespace::wasm(identity).record_key())? else {
            return Ok(None);
        };
        ModuleRecord::decode(&bytes)
            .map(Some)
            .map_err(|error: RecordError| CallError::Corrupt { identity, reason: error.to_string() })
    }

    /// The length of the stored code blob `code_hash`, read without copying it.
    fn stored_code_len(&self, state: &Overlay, identity: Identity, code_hash: &B256) -> Result<usize, CallError> {
        let mut len = None;
        state.read(&code_key(code_hash), &mut |code| len = Some(code.len()))?;
        len.ok_or_else(|| CallError::Corrupt { identity, reason: "its code blob is missing".into() })
    }

    /// Compiles the stored code blob `code_hash` (a module evicted from the cache, or one deployed
    /// before this engine started).
    fn load(&self, state: &Overlay, identity: Identity, code_hash: B256) -> Result<Compiled, CallError> {
        let corrupt = |reason: String| CallError::Corrupt { identity, reason };
        let code = state.get(&code_key(&code_hash))?.ok_or_else(|| corrupt("its code blob is missing".into()))?;
        self.compile(code_hash, &code).map_err(|error| corrupt(error.to_string()))
    }

    /// Calls the module's entry point. Only a successful call's writes stay in `state`; a revert,
    /// trap or out-of-gas call leaves no trace. `Err` means the call could not run at all (unknown
    /// or corrupt module, a module this machine cannot instantiate) or the state failed underneath,
    /// in which case its writes were discarded too.
    ///
    /// The call's base cost ([`gas::call_base`]) is charged first: a limit below it ends the call
    /// out of gas, using the whole limit, before the module is compiled or instantiated.
    pub fn call(&self, state: &mut Overlay, request: &CallRequest<'_>) -> Result<Receipt, CallError> {
        let identity = request.module;
        let record = self.module_record(state, identity)?.ok_or(CallError::UnknownModule(identity))?;
        let cached = self.cached(&record.code_hash);
        let code_len = match &cached {
            Some(compiled) => compiled.code_len,
            None => self.stored_code_len(state, identity, &record.code_hash)?,
        };
        let base = gas::call_base(code_len);
        let Some(metered) = request.gas_limit.checked_sub(base) else {
            return Ok(Receipt { status: CallStatus::OutOfGas, gas_used: request.gas_limit, output: Vec::new() });
        };
        let compiled = match cached {
            Some(compiled) => compiled,
            None => self.load(state, identity, record.code_hash)?,
        };
        let checkpoint = state.checkpoint();
        let (outcome, returned) = self.execute(&compiled, state.take(), request, metered);
        *state = returned;
        match outcome {
            Ok(mut receipt) => {
                receipt.gas_used += base;
                if receipt.is_success() {
                    state.release(checkpoint)?;
                } else {
                    state.revert(checkpoint)?;
                }
                Ok(receipt)
            }
            Err(fault) => {
                state.revert(checkpoint)?;
                Err(match fault {
                    Fault::State(error) => CallError::State(error),
                    Fault::Instantiation(reason) => CallError::Instantiation { identity, reason },
                })
            }
        }
    }

    /// Runs one call on a fresh store and instance with `gas_limit` for the module itself; always
    /// hands the state back.
    fn execute(
        &self,
        compiled: &Compiled,
        state: Overlay,
        request: &CallRequest<'_>,
        gas_limit: u64,
    ) -> (Result<Receipt, Fault>, Overlay) {
        let mut store = Store::new(compiled.engine.clone());
        let env = FunctionEnv::new(
            &mut store,
            HostEnv::new(state, Namespace::wasm(request.module), request.caller, request.input.to_vec()),
        );
        let mut imports = Imports::new();
        for extension in &self.extensions {
            for (name, function) in extension.functions(&mut store, &env) {
                imports.define(HOST_NAMESPACE, name, function);
            }
        }
        let outcome = run(&mut store, &env, &compiled.module, &imports, gas_limit);
        let data = env.as_mut(&mut store);
        let state = data.take_state();
        let output = std::mem::take(&mut data.output);
        let receipt = outcome.map(|(status, gas_used)| Receipt {
            output: if status == CallStatus::Success { output } else { Vec::new() },
            status,
            gas_used,
        });
        (receipt, state)
    }
}

/// Instantiates and calls the entry point; returns the status and the gas used.
fn run(
    store: &mut Store,
    env: &FunctionEnv<HostEnv>,
    module: &Module,
    imports: &Imports,
    gas_limit: u64,
) -> Result<(CallStatus, u64), Fault> {
    // Validation refuses every module whose segments do not fit, so only this machine (its
    // resources, or an extension that changed its functions since the module was validated) can
    // make instantiation fail, and neither is the module's fault.
    let instance = Instance::new(store, module, imports).map_err(|error| Fault::Instantiation(error.to_string()))?;
    // Validation and the middlewares guarantee these exports; without them the call cannot run.
    let missing = |error: ExportError| Fault::Instantiation(format!("the instance lacks part of the ABI: {error}"));
    let memory = instance.exports.get_memory(MEMORY_EXPORT).map_err(missing)?.clone();
    let remaining = instance.exports.get_global(REMAINING_POINTS_GLOBAL).map_err(missing)?.clone();
    let exhausted = instance.exports.get_global(POINTS_EXHAUSTED_GLOBAL).map_err(missing)?.clone();
    let entry = instance.exports.get_typed_function::<(), ()>(store, ENTRY_POINT).map_err(missing)?;
    let data = env.as_mut(store);
    data.memory = Some(memory);
    data.meter = Some(GasMeter { remaining, exhausted });
    set_remaining_points(store, &instance, gas_limit);
    let result = entry.call(store);
    let remaining = get_remaining_points(store, &instance);
    let depth_exceeded = instance
        .exports
        .get_global(DEPTH_GLOBAL)
        .is_ok_and(|global| global.get(store) == wasmer::Value::I32(MAX_CALL_DEPTH + 1));
    let gas_used = match remaining {
        MeteringPoints::Remaining(left) => gas_limit.saturating_sub(left),
        MeteringPoints::Exhausted => gas_limit,
    };
    let status = match result {
        Ok(()) => CallStatus::Success,
        Err(_) if depth_exceeded => {
            CallStatus::Trap(format!("call depth limit of {MAX_CALL_DEPTH} nested calls exceeded"))
        }
        Err(error) => classify(error, remaining)?,
    };
    Ok((status, gas_used))
}

/// Maps a runtime error to a status, or to the state error that aborts the call.
fn classify(error: RuntimeError, remaining: MeteringPoints) -> Result<CallStatus, StateError> {
    match error.downcast::<HostError>() {
        Ok(HostError::Revert(data)) => Ok(CallStatus::Revert(data)),
        Ok(HostError::OutOfGas) => Ok(CallStatus::OutOfGas),
        Ok(HostError::Trap(reason)) => Ok(CallStatus::Trap(reason)),
        Ok(HostError::State(error)) => Err(error),
        Err(error) => {
            if remaining == MeteringPoints::Exhausted {
                return Ok(CallStatus::OutOfGas);
            }
            let reason = match error.clone().to_trap() {
                Some(code) => trap_reason(code).to_owned(),
                None => error.message(),
            };
            Ok(CallStatus::Trap(reason))
        }
    }
}

/// A readable reason for each trap wasm code can raise.
fn trap_reason(code: wasmer_types::TrapCode) -> &'static str {
    use wasmer_types::TrapCode;
    match code {
        TrapCode::StackOverflow => "native call stack exhausted",
        TrapCode::HeapAccessOutOfBounds => "memory access out of bounds",
        TrapCode::HeapMisaligned => "misaligned memory access",
        TrapCode::TableAccessOutOfBounds => "table access out of bounds",
        TrapCode::IndirectCallToNull => "indirect call to an empty table slot",
        TrapCode::BadSignature => "indirect call with the wrong signature",
        TrapCode::IntegerOverflow => "integer overflow",
        TrapCode::IntegerDivisionByZero => "integer division by zero",
        TrapCode::BadConversionToInteger => "invalid conversion to integer",
        TrapCode::UnreachableCodeReached => "unreachable instruction executed",
        _ => "wasm trap",
    }
}
