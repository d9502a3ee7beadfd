//! The WASM engine's hot path and call overhead.
//!
//! `wasm/state_get_loop` is a guest loop of `state_get` calls over a populated state; its floor is
//! the same loop calling an empty host function (`wasm/empty_host_call_loop`) plus kv-core's
//! prefixed read of the same slots from the host (`wasm/kv_core_get`). `cargo xtask bench`
//! reports `wasm/state_get_vs_floor` from the three. `wasm/trivial_call` is a whole call of a
//! trivial entry point on a cached module (instantiate, run, commit to the overlay), and
//! `wasm/token_transfer` a transfer of the example token.
//!
//! `wasm/call_cold_module` is the same trivial call to a module that is not in the engine's
//! memory (a module not called for a long time, or the first call after a restart): the engine
//! loads its sealed artifact from a directory store and deserializes it; `cargo xtask bench`
//! reports it as `wasm/call_cold_module_us` beside `wasm/call_overhead_us`.
//! `wasm/call_cold_large_module` does the same for the largest module with the largest artifact
//! per code byte measured (many small functions), whose base cost must cover that load; the bench
//! prints the load's nanoseconds per unit of base cost.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kv_core::{Identity, ModuleName, Namespace, Store};
use std::hint::black_box;
use std::sync::Arc;
use wasm_binding::{CallRequest, DirectoryArtifacts, HostEnv, HostExtension, WasmEngine, gas};
use wasmer::{Function, FunctionEnv, FunctionEnvMut};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const READS: u64 = 10_000;
const SLOTS: u64 = 4_096;

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

/// A guest loop of `READS` calls to `import` (either `state_get` or `bench_noop`), each on slot
/// `i % SLOTS`, summing the results into the output.
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
                    (br_if $again (i64.lt_u (local.get $i) (i64.const {READS}))))
                (i64.store (i32.const 0) (local.get $sum))
                (call $output (i32.const 0) (i32.const 8))))"#
    ))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let store = Store::in_memory();
    let engine = WasmEngine::new(1).with_extension(Arc::new(Noop)).unwrap();
    let mut overlay = store.begin();
    let name = |text: &str| ModuleName::new(text).unwrap();
    let reader = engine.deploy(&mut overlay, &name("reader"), 1, &loop_module("state_get")).unwrap();
    let empty = engine.deploy(&mut overlay, &name("empty"), 1, &loop_module("bench_noop")).unwrap();
    let trivial_code = wat::parse_str(r#"(module (memory (export "memory") 1 1) (func (export "call")))"#).unwrap();
    let trivial = engine.deploy(&mut overlay, &name("trivial"), 1, &trivial_code).unwrap();
    let token_code = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../guest/token/token.wasm")).unwrap();
    let token = engine.deploy(&mut overlay, &name("token"), 1, &token_code).unwrap();
    let namespace = Namespace::wasm(reader);
    for slot in 0..SLOTS {
        overlay.set_u64(&namespace.slot_key(slot), slot + 1).unwrap();
    }
    let alice = Identity([0xa1; 20]);
    fn call(module: Identity, input: &[u8]) -> CallRequest<'_> {
        CallRequest { module, caller: Identity([0xa1; 20]), input, gas_limit: 1_000_000_000 }
    }
    assert!(engine.call(&mut overlay, &call(token, &[0x00])).unwrap().is_success());
    let mut mint = vec![0x01];
    mint.extend_from_slice(alice.as_bytes());
    mint.extend_from_slice(&u64::MAX.to_be_bytes());
    assert!(engine.call(&mut overlay, &call(token, &mint)).unwrap().is_success());
    store.commit(&overlay).unwrap();
    let mut overlay = store.begin();

    let expected_sum: u64 = (0..READS).map(|i| i % SLOTS + 1).sum();
    let mut group = c.benchmark_group("wasm");
    group.throughput(Throughput::Elements(READS));
    group.bench_function("state_get_loop", |b| {
        b.iter(|| {
            let receipt = engine.call(&mut overlay, &call(reader, b"")).unwrap();
            assert_eq!(receipt.output, expected_sum.to_le_bytes());
        });
    });
    let empty_sum: u64 = (0..READS).map(|i| i % SLOTS).sum();
    group.bench_function("empty_host_call_loop", |b| {
        b.iter(|| {
            let receipt = engine.call(&mut overlay, &call(empty, b"")).unwrap();
            assert_eq!(receipt.output, empty_sum.to_le_bytes());
        });
    });
    group.bench_function("kv_core_get", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for i in 0..READS {
                sum += overlay.get_u64(&namespace.slot_key(black_box(i % SLOTS))).unwrap();
            }
            assert_eq!(sum, expected_sum);
        });
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("trivial_call", |b| {
        b.iter_batched(
            || store.begin(),
            |mut fresh| {
                assert!(engine.call(&mut fresh, &call(trivial, b"")).unwrap().is_success());
                fresh
            },
            BatchSize::SmallInput,
        );
    });
    let mut transfer = vec![0x02];
    transfer.extend_from_slice(&[0xb0; 20]);
    transfer.extend_from_slice(&1u64.to_be_bytes());
    group.bench_function("token_transfer", |b| {
        b.iter(|| assert!(engine.call(&mut overlay, &call(token, &transfer)).unwrap().is_success()));
    });
    group.finish();
    cold_calls(c);
}

/// A module of nearly 512 KiB made of empty functions: the largest artifact per code byte among
/// the shapes measured (see `tests/artifacts.rs`).
fn large_module() -> Vec<u8> {
    let functions = "(func)".repeat(125_000);
    wat::parse_str(format!(r#"(module (memory (export "memory") 1 1) {functions} (func (export "call")))"#)).unwrap()
}

/// Calls to modules that are not in memory: an engine that keeps one module in memory, and a
/// setup step that calls another module first, so every measured call loads its artifact.
fn cold_calls(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::in_memory();
    let engine = WasmEngine::new(1)
        .with_artifacts(Arc::new(DirectoryArtifacts::open(dir.path()).unwrap()))
        .with_cached_modules(1);
    let mut overlay = store.begin();
    let name = |text: &str| ModuleName::new(text).unwrap();
    let trivial_code = wat::parse_str(r#"(module (memory (export "memory") 1 1) (func (export "call")))"#).unwrap();
    let other_code = wat::parse_str(r#"(module (memory (export "memory") 1 1) (func (export "call") nop))"#).unwrap();
    let large_code = large_module();
    let trivial = engine.deploy(&mut overlay, &name("trivial"), 1, &trivial_code).unwrap();
    let other = engine.deploy(&mut overlay, &name("other"), 1, &other_code).unwrap();
    let large = engine.deploy(&mut overlay, &name("large"), 1, &large_code).unwrap();
    store.commit(&overlay).unwrap();
    let call =
        |module: Identity| CallRequest { module, caller: Identity([0xa1; 20]), input: b"", gas_limit: u64::MAX / 4 };
    let mut group = c.benchmark_group("wasm");
    group.throughput(Throughput::Elements(1));
    for (id, module) in [("call_cold_module", trivial), ("call_cold_large_module", large)] {
        let loads = engine.artifact_loads();
        let mut iterations = 0u64;
        group.bench_function(id, |b| {
            b.iter_batched(
                || {
                    let mut fresh = store.begin();
                    assert!(engine.call(&mut fresh, &call(other)).unwrap().is_success());
                    iterations += 1;
                    fresh
                },
                |mut fresh| {
                    assert!(engine.call(&mut fresh, &call(module)).unwrap().is_success());
                    fresh
                },
                // A setup before every measured call, so every measured call finds its module
                // evicted by the setup's.
                BatchSize::PerIteration,
            );
        });
        // Every measured call loaded its module (and every setup call its own), and none compiled.
        assert!(engine.artifact_loads() - loads >= 2 * iterations, "calls found their module in memory");
        assert_eq!(engine.compilations(), 3, "a call compiled");
    }
    group.finish();
    let base = gas::call_base(wasm_binding::validate::artifact_bound(&large_code));
    println!("wasm/call_cold_large_module: {} code bytes, a base cost of {base} gas", large_code.len());
}

criterion_group!(benches, bench);
criterion_main!(benches);
