//! The engine: deploys modules into the shared state and calls them with metered gas.

use crate::artifacts::{self, ArtifactStore, MemoryArtifacts, SealError};
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
    /// WASM gas used, instructions and host calls together, after the refund; the limit when out
    /// of gas.
    pub gas_used: u64,
    /// The storage refund already taken off `gas_used`: the call's refund counter, at most a fifth
    /// of the gas it used (EIP-3529); 0 unless the call succeeded.
    pub gas_refunded: u64,
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
    /// The compiled module could not be kept in the node's artifact store: a fault of this node,
    /// not of the module. Nothing was written to the state.
    #[error("the compiled module could not be saved: {0}")]
    Artifact(#[source] std::io::Error),
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
    /// The node's artifact store failed (reading or saving a compiled module): a fault of this
    /// node, not of the module. Nothing was written.
    #[error("the artifact store failed for module {identity}: {source}")]
    Artifact {
        /// The module.
        identity: Identity,
        /// What the store reported.
        #[source]
        source: std::io::Error,
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

/// Most compiled modules an engine keeps in memory by default. Which modules are in memory
/// changes only how long a call takes, never its gas or result: a module that is not is loaded
/// from the artifact store, at a cost its base cost covers.
pub const MAX_CACHED_MODULES: usize = 1_024;

#[derive(Clone)]
struct Compiled {
    /// The module's own engine: it owns the module's machine code, which is freed with it when
    /// the module leaves the cache.
    engine: Engine,
    module: Module,
    /// The module's artifact bound (`validate::artifact_bound`), on which every call's base cost
    /// depends.
    bound: u64,
}

/// WASM modules on wasmer (singlepass, metered), with their state in the shared substrate.
pub struct WasmEngine {
    chain_id: u64,
    extensions: Vec<Arc<dyn HostExtension>>,
    signatures: HashMap<String, FunctionType>,
    compiled: RwLock<HashMap<B256, Compiled>>,
    cache_limit: usize,
    artifacts: Arc<dyn ArtifactStore>,
    fingerprint: B256,
    compilations: AtomicU64,
    artifact_loads: AtomicU64,
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

/// Runs the machine code of an artifact this node sealed (see [`crate::artifacts`]).
#[allow(unsafe_code)]
fn deserialize(artifact: &[u8]) -> Result<Compiled, String> {
    // A headless engine (no compiler) per module, so the module's machine code is freed with it.
    let engine: Engine = EngineBuilder::headless().engine().into();
    // SAFETY: wasmer requires the bytes to be an artifact it serialized, since it maps the
    // machine code they contain as executable. The caller passes only what `artifacts::unseal`
    // returned: bytes whose keyed hash under this node's secret seal key, together with this
    // build's fingerprint (wasmer version, target, CPU features, gas schedule) and the module's
    // code hash, matches, which only this node's own `seal` of a module it compiled produces.
    let module = unsafe { Module::deserialize(&engine, artifact.to_vec()) }.map_err(|error| error.to_string())?;
    Ok(Compiled { engine, module, bound: 0 })
}

impl WasmEngine {
    /// An engine for chain `chain_id` with the core host ABI, keeping compiled modules in memory
    /// ([`MemoryArtifacts`]); a node that restarts should use [`WasmEngine::with_artifacts`] with
    /// a [`DirectoryArtifacts`](crate::DirectoryArtifacts) so it keeps them across restarts.
    pub fn new(chain_id: u64) -> Self {
        // Process-wide, and the same for every engine: see `validate::WASM_STACK_BYTES`.
        wasmer_vm::set_stack_size(validate::WASM_STACK_BYTES);
        let mut engine = Self {
            chain_id,
            extensions: Vec::new(),
            signatures: HashMap::new(),
            compiled: RwLock::new(HashMap::new()),
            cache_limit: MAX_CACHED_MODULES,
            artifacts: Arc::new(MemoryArtifacts::new()),
            fingerprint: artifacts::fingerprint(),
            compilations: AtomicU64::new(0),
            artifact_loads: AtomicU64::new(0),
        };
        // The core ABI's names are distinct, so adding it cannot fail.
        let _ = engine.add_extension(Arc::new(CoreHost));
        engine
    }

    /// Keeps compiled modules in `artifacts` (the node's own; see [`crate::artifacts`]).
    pub fn with_artifacts(mut self, artifacts: Arc<dyn ArtifactStore>) -> Self {
        self.artifacts = artifacts;
        self
    }

    /// Keeps at most `limit` (at least 1) compiled modules in memory instead of
    /// [`MAX_CACHED_MODULES`]: less memory, more loads from the artifact store, the same gas.
    pub fn with_cached_modules(mut self, limit: usize) -> Self {
        self.cache_limit = limit.max(1);
        self
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

    fn remember(&self, code_hash: B256, compiled: &Compiled) {
        let mut cache = self.compiled.write();
        if cache.len() >= self.cache_limit {
            // Starting over costs one artifact load per module still in use, paid by each call's
            // base cost; it keeps the memory bounded however many modules are called.
            cache.clear();
        }
        cache.insert(code_hash, compiled.clone());
    }

    /// Compiles `code` (already validated), and seals and saves its artifact.
    fn compile(&self, code_hash: B256, code: &[u8]) -> Result<Compiled, DeployError> {
        let engine = compiler_engine();
        self.compilations.fetch_add(1, Ordering::Relaxed);
        let module = Module::new(&engine, code).map_err(|error| DeployError::Compile(error.to_string()))?;
        let artifact = module.serialize().map_err(|error| DeployError::Compile(error.to_string()))?;
        let bound = validate::artifact_bound(code);
        let sealed = artifacts::seal(self.artifacts.seal_key(), &self.fingerprint, &code_hash, bound, &artifact);
        self.artifacts.save(&code_hash, &sealed).map_err(DeployError::Artifact)?;
        Ok(Compiled { engine, module, bound })
    }

    /// The module `code_hash` from the node's artifact store, if it holds this node's artifact of
    /// it (`Ok(None)` when it holds none, or one that is not this node's or no longer loads).
    fn load_artifact(&self, code_hash: &B256) -> std::io::Result<Option<Compiled>> {
        let Some(sealed) = self.artifacts.load(code_hash)? else { return Ok(None) };
        let (artifact, bound) =
            match artifacts::unseal(self.artifacts.seal_key(), &self.fingerprint, code_hash, &sealed) {
                Ok(unsealed) => unsealed,
                Err(SealError::Malformed | SealError::Fingerprint | SealError::CodeHash | SealError::Tag) => {
                    return Ok(None);
                }
            };
        self.artifact_loads.fetch_add(1, Ordering::Relaxed);
        Ok(deserialize(artifact).ok().map(|compiled| Compiled { bound, ..compiled }))
    }

    /// The artifact bound of module `code_hash` when it is not in memory: from its sealed
    /// artifact's header (a few bytes, read before anything is charged, like the module's record),
    /// or, when the store has lost it or refuses it as not this node's own, computed from the code
    /// in the state (which then has to be compiled again too).
    fn bound_of(&self, state: &Overlay, identity: Identity, code_hash: &B256) -> Result<u64, CallError> {
        let header = self
            .artifacts
            .load_prefix(code_hash, artifacts::HEADER_LEN)
            .map_err(|source| CallError::Artifact { identity, source })?;
        if let Some(header) = header
            && let Ok(bound) =
                artifacts::unseal_header(self.artifacts.seal_key(), &self.fingerprint, code_hash, &header)
        {
            return Ok(bound);
        }
        let code = state
            .get(&code_key(code_hash))?
            .ok_or_else(|| CallError::Corrupt { identity, reason: "its code blob is missing".into() })?;
        Ok(validate::artifact_bound(&code))
    }

    /// Number of compiled modules in memory.
    pub fn cached_modules(&self) -> usize {
        self.compiled.read().len()
    }

    /// How many modules this engine has compiled: once per deployed code hash, and again only
    /// for a module whose artifact its store has lost or refused as not its own.
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// How many compiled modules this engine has loaded from its artifact store (a call to a
    /// module that was not in memory).
    pub fn artifact_loads(&self) -> u64 {
        self.artifact_loads.load(Ordering::Relaxed)
    }

    /// The length of the sealed artifact the store holds for `code_hash`, if any: what a call
    /// to a module that is not in memory reads and loads.
    pub fn artifact_len(&self, code_hash: &B256) -> std::io::Result<Option<usize>> {
        Ok(self.artifacts.load(code_hash)?.map(|sealed| sealed.len()))
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
        // Another module with the same code has its artifact already; the code is validated again
        // all the same, since what is valid depends on this engine's host functions.
        validate::check(code, &self.signatures)?;
        if self.cached(&code_hash).is_none() {
            let loaded = self.load_artifact(&code_hash).map_err(DeployError::Artifact)?;
            let compiled = match loaded {
                Some(compiled) => compiled,
                None => self.compile(code_hash, code)?,
            };
            self.remember(code_hash, &compiled);
        }
        let record = ModuleRecord { code_hash, name: name.clone(), version };
        let checkpoint = state.checkpoint();
        let written = (|| -> Result<(), StateError> {
            // Written without asking whether the blob exists: blobs are content-addressed, so a
            // rewrite changes nothing, and a read would make a block's witness carry the module the
            // block itself deploys (a verifier cannot prove a blob absent; docs/spec/witness.md).
            state.set(&code_key(&code_hash), code)?;
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

    /// The module `code_hash` when it is not in memory: its artifact, loaded from the store, or,
    /// when the store has lost it or refuses it as not this node's own, compiled again from the
    /// code in the state (and saved again).
    fn load(&self, state: &Overlay, identity: Identity, code_hash: B256) -> Result<Compiled, CallError> {
        let artifact_failure = |source| CallError::Artifact { identity, source };
        let compiled = match self.load_artifact(&code_hash).map_err(artifact_failure)? {
            Some(compiled) => compiled,
            None => {
                let corrupt = |reason: String| CallError::Corrupt { identity, reason };
                let code =
                    state.get(&code_key(&code_hash))?.ok_or_else(|| corrupt("its code blob is missing".into()))?;
                validate::check(&code, &self.signatures).map_err(|error| corrupt(error.to_string()))?;
                self.compile(code_hash, &code).map_err(|error| match error {
                    DeployError::Artifact(source) => artifact_failure(source),
                    other => corrupt(other.to_string()),
                })?
            }
        };
        self.remember(code_hash, &compiled);
        Ok(compiled)
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
        // A module in memory is not read from the state, but the call runs its code: a recording
        // overlay (a block's witness) must see it.
        state.note_read(&code_key(&record.code_hash));
        let cached = self.cached(&record.code_hash);
        let bound = match &cached {
            Some(compiled) => compiled.bound,
            None => self.bound_of(state, identity, &record.code_hash)?,
        };
        let base = gas::call_base(bound);
        let Some(metered) = request.gas_limit.checked_sub(base) else {
            return Ok(Receipt {
                status: CallStatus::OutOfGas,
                gas_used: request.gas_limit,
                gas_refunded: 0,
                output: Vec::new(),
            });
        };
        let compiled = match cached {
            Some(compiled) => compiled,
            None => self.load(state, identity, record.code_hash)?,
        };
        let checkpoint = state.checkpoint();
        let (outcome, returned) = self.execute(&compiled, state.take(), request, metered);
        *state = returned;
        match outcome {
            Ok((mut receipt, refund_counter)) => {
                receipt.gas_used += base;
                if receipt.is_success() {
                    receipt.gas_refunded = gas::storage::capped_refund(refund_counter, receipt.gas_used);
                    receipt.gas_used -= receipt.gas_refunded;
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

    /// Runs one call on a fresh store and instance with `gas_limit` for the module itself; returns
    /// its receipt (before any refund) and its refund counter, and always hands the state back.
    fn execute(
        &self,
        compiled: &Compiled,
        state: Overlay,
        request: &CallRequest<'_>,
        gas_limit: u64,
    ) -> (Result<(Receipt, i64), Fault>, Overlay) {
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
        let refund_counter = data.refund_counter();
        let receipt = outcome.map(|(status, gas_used)| {
            let output = if status == CallStatus::Success { output } else { Vec::new() };
            (Receipt { output, status, gas_used, gas_refunded: 0 }, refund_counter)
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
        Ok(HostError::State(failure)) => Err(StateError::Failed(failure)),
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
