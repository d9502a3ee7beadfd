//! Phase B, wasm-binding: the WASM host's `state_get` against its floor, call overhead and a
//! token transfer.
//!
//! The floor of a guest loop of `state_get` calls is the same loop calling an empty host
//! function plus kv-core's prefixed read of the same slots from the host: what is left above it
//! is the binding's own cost per call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Benchmark code: a failed unwrap is a failed run.

use crate::support::Aligned;
use kv_core::{Identity, ModuleName, Namespace, Overlay, Store};
use std::hint::black_box;
use std::sync::Arc;
use wasm_binding::{CallRequest, HostEnv, HostExtension, WasmEngine};
use wasmer::{Function, FunctionEnv, FunctionEnvMut};

/// Host calls per guest loop.
pub const WASM_READS: u64 = 10_000;
const SLOTS: u64 = 4_096;
const CALLER: Identity = Identity([0xa1; 20]);

/// A host function that does nothing: the floor of any host call.
struct Noop;

impl HostExtension for Noop {
    fn functions(&self, store: &mut wasmer::Store, env: &FunctionEnv<HostEnv>) -> Vec<(&'static str, Function)> {
        fn noop(_: FunctionEnvMut<'_, HostEnv>, slot: u64) -> u64 {
            slot
        }
        vec![("bench_noop", Function::new_typed_with_env(store, env, noop))]
    }
}

/// A guest loop of `WASM_READS` calls to `import` (either `state_get` or `bench_noop`), each on
/// slot `i % SLOTS`, summing the results into the output.
fn loop_module(import: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
            (import "xstate" "{import}" (func $read (param i64) (result i64)))
            (import "xstate" "output_write" (func $output (param i32 i32)))
            (memory (export "memory") 1 1)
            (func (export "call")
                (local $i i64) (local $sum i64)
                (loop $again
                    (local.set $sum (i64.add (local.get $sum) (call $read (i64.rem_u (local.get $i) (i64.const {SLOTS})))))
                    (local.set $i (i64.add (local.get $i) (i64.const 1)))
                    (br_if $again (i64.lt_u (local.get $i) (i64.const {WASM_READS}))))
                (i64.store (i32.const 0) (local.get $sum))
                (call $output (i32.const 0) (i32.const 8))))"#
    ))
    .unwrap()
}

fn call(module: Identity, input: &[u8]) -> CallRequest<'_> {
    CallRequest { module, caller: CALLER, input, gas_limit: 1_000_000_000 }
}

/// The WASM fixture: a populated module state, the two loop modules, a trivial module and the
/// example token with a minted balance, committed; calls run on a fresh block overlay.
pub struct WasmHost {
    store: Store,
    engine: WasmEngine,
    overlay: Overlay,
    reader: Identity,
    empty: Identity,
    trivial: Identity,
    token: Identity,
    namespace: Namespace,
    transfer: Vec<u8>,
}

impl Default for WasmHost {
    fn default() -> Self {
        Self::new()
    }
}

impl WasmHost {
    /// Deploys the modules and fills the reader's slots.
    pub fn new() -> Self {
        let store = Store::in_memory();
        let engine = WasmEngine::new(1).with_extension(Arc::new(Noop)).unwrap();
        let mut overlay = store.begin();
        let name = |text: &str| ModuleName::new(text).unwrap();
        let reader = engine.deploy(&mut overlay, &name("reader"), 1, &loop_module("state_get")).unwrap();
        let empty = engine.deploy(&mut overlay, &name("empty"), 1, &loop_module("bench_noop")).unwrap();
        let trivial_code = wat::parse_str(r#"(module (memory (export "memory") 1 1) (func (export "call")))"#).unwrap();
        let trivial = engine.deploy(&mut overlay, &name("trivial"), 1, &trivial_code).unwrap();
        let token = engine.deploy(&mut overlay, &name("token"), 1, xstate_chain::demo::TOKEN_WASM).unwrap();
        let namespace = Namespace::wasm(reader);
        for slot in 0..SLOTS {
            overlay.set_u64(&namespace.slot_key(slot), slot + 1).unwrap();
        }
        assert!(engine.call(&mut overlay, &call(token, &[0x00])).unwrap().is_success());
        let mut mint = vec![0x01];
        mint.extend_from_slice(CALLER.as_bytes());
        mint.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(engine.call(&mut overlay, &call(token, &mint)).unwrap().is_success());
        store.commit(&overlay).unwrap();
        let overlay = store.begin();
        let mut transfer = vec![0x02];
        transfer.extend_from_slice(&[0xb0; 20]);
        transfer.extend_from_slice(&1u64.to_be_bytes());
        Self { store, engine, overlay, reader, empty, trivial, token, namespace, transfer }
    }

    /// One call of the guest loop of 10,000 `state_get`s.
    pub fn state_get_loop(&mut self) -> u64 {
        let receipt = self.engine.call(&mut self.overlay, &call(self.reader, b"")).unwrap();
        let expected: u64 = (0..WASM_READS).map(|i| i % SLOTS + 1).sum();
        assert_eq!(receipt.output, expected.to_le_bytes());
        expected
    }

    /// One call of the same loop over an empty host function.
    pub fn empty_host_call_loop(&mut self) -> u64 {
        let receipt = self.engine.call(&mut self.overlay, &call(self.empty, b"")).unwrap();
        let expected: u64 = (0..WASM_READS).map(|i| i % SLOTS).sum();
        assert_eq!(receipt.output, expected.to_le_bytes());
        expected
    }

    /// kv-core's reads of the same 10,000 slots from the host, through the overlay.
    pub fn kv_core_get(&self) -> u64 {
        let mut sum = 0u64;
        for i in 0..WASM_READS {
            let key = Aligned(self.namespace.slot_key(black_box(i % SLOTS)));
            sum += self.overlay.get_u64(&key.0).unwrap();
        }
        assert_eq!(sum, (0..WASM_READS).map(|i| i % SLOTS + 1).sum::<u64>());
        sum
    }

    /// A whole call of a trivial entry point on a cached module, on a fresh overlay.
    pub fn trivial_call(&self, fresh: &mut Overlay) {
        assert!(self.engine.call(fresh, &call(self.trivial, b"")).unwrap().is_success());
    }

    /// A fresh block overlay over the committed state.
    pub fn fresh_overlay(&self) -> Overlay {
        self.store.begin()
    }

    /// One transfer of the example token.
    pub fn token_transfer(&mut self) {
        assert!(self.engine.call(&mut self.overlay, &call(self.token, &self.transfer)).unwrap().is_success());
    }
}

/// Runs phase B's wall-clock figures into `samples`.
pub fn wall(quick: bool, samples: &mut crate::harness::Samples) {
    use crate::harness::{Budget, pairs, repeats, timed};
    use std::cell::RefCell;
    let budget = Budget::new(quick);
    let fixture = RefCell::new(WasmHost::new());
    let per_read = |ns: f64| ns / WASM_READS as f64;
    let mut host = || timed(|| fixture.borrow_mut().state_get_loop());
    let mut floor = || timed(|| fixture.borrow_mut().empty_host_call_loop()) + timed(|| fixture.borrow().kv_core_get());
    let measured = pairs(budget, &mut host, &mut floor);
    samples.pair_ratios("wasm/state_get_vs_floor", &measured, |a, b| a / b);
    samples.repeated("wasm/state_get_host_ns", measured.iter().map(|&(a, _)| per_read(a)));
    samples.repeated("wasm/state_get_floor_ns", measured.iter().map(|&(_, b)| per_read(b)));
    const CALLS: u32 = 100;
    let mut trivial = || {
        let fixture = fixture.borrow();
        let mut overlays: Vec<Overlay> = (0..CALLS).map(|_| fixture.fresh_overlay()).collect();
        timed(|| overlays.iter_mut().for_each(|fresh| fixture.trivial_call(fresh)))
    };
    let calls = repeats(budget, &mut trivial);
    samples.repeated("wasm/call_overhead_us", calls.iter().map(|ns| ns / f64::from(CALLS) / 1000.0));
    let mut transfers = || timed(|| (0..CALLS).for_each(|_| fixture.borrow_mut().token_transfer()));
    let transferred = repeats(budget, &mut transfers);
    samples.repeated("wasm/token_transfer_ns", transferred.iter().map(|ns| ns / f64::from(CALLS)));
    drop(fixture);

    // The same trivial call to a module that is not in the engine's memory (not called for a
    // long time, or the first call after a restart): its sealed artifact is loaded from a
    // directory store and deserialized, never compiled.
    let cold = ColdModules::new();
    // Each measured call follows a call of the other module, which evicts it; only the measured
    // calls are timed.
    let mut cold_calls = || {
        (0..CALLS)
            .map(|_| {
                let fresh = cold.evicting_overlay();
                timed(|| cold.cold_call(fresh))
            })
            .sum::<std::time::Duration>()
    };
    let loads = cold.engine.artifact_loads();
    let measured = repeats(budget, &mut cold_calls);
    assert!(cold.engine.artifact_loads() - loads >= 2 * u64::from(CALLS), "cold calls found their module in memory");
    assert_eq!(cold.engine.compilations(), 2, "a cold call compiled");
    samples.repeated("wasm/call_cold_module_us", measured.iter().map(|ns| ns / f64::from(CALLS) / 1000.0));
}

/// An engine that keeps one compiled module in memory, with two deployed modules whose sealed
/// artifacts live in a directory store: calling one evicts the other.
pub struct ColdModules {
    _directory: tempfile::TempDir,
    store: Store,
    /// The engine.
    pub engine: WasmEngine,
    trivial: Identity,
    other: Identity,
}

impl ColdModules {
    /// Deploys both modules and commits them.
    pub fn new() -> Self {
        let directory = tempfile::tempdir().unwrap();
        let store = Store::in_memory();
        let artifacts = Arc::new(wasm_binding::DirectoryArtifacts::open(directory.path()).unwrap());
        let engine = WasmEngine::new(1).with_artifacts(artifacts).with_cached_modules(1);
        let mut overlay = store.begin();
        let name = |text: &str| ModuleName::new(text).unwrap();
        let trivial_code = wat::parse_str(r#"(module (memory (export "memory") 1 1) (func (export "call")))"#).unwrap();
        let other_code =
            wat::parse_str(r#"(module (memory (export "memory") 1 1) (func (export "call") nop))"#).unwrap();
        let trivial = engine.deploy(&mut overlay, &name("trivial"), 1, &trivial_code).unwrap();
        let other = engine.deploy(&mut overlay, &name("other"), 1, &other_code).unwrap();
        store.commit(&overlay).unwrap();
        Self { _directory: directory, store, engine, trivial, other }
    }

    fn request(module: Identity) -> CallRequest<'static> {
        CallRequest { module, caller: CALLER, input: b"", gas_limit: u64::MAX / 4 }
    }

    /// A fresh overlay after a call of the other module, which evicts the trivial one.
    pub fn evicting_overlay(&self) -> Overlay {
        let mut fresh = self.store.begin();
        assert!(self.engine.call(&mut fresh, &Self::request(self.other)).unwrap().is_success());
        fresh
    }

    /// The measured call: the trivial module, loaded from its artifact.
    pub fn cold_call(&self, mut fresh: Overlay) {
        assert!(self.engine.call(&mut fresh, &Self::request(self.trivial)).unwrap().is_success());
    }
}

impl Default for ColdModules {
    fn default() -> Self {
        Self::new()
    }
}
