//! Singlepass against Cranelift, for the compiler decision (docs/adr/0003-wasm-engine.md):
//! compile time of the example token, of two pathological modules (a function with 20,000 locals
//! in one long dependency chain, and 5,000 nested blocks), and execution time of a compute loop.
//! Run with `cargo bench -p wasm-binding --features cranelift --bench compilers`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use criterion::{Criterion, criterion_group, criterion_main};
use std::fmt::Write;
use std::sync::Arc;
use wasmer::sys::{CompilerConfig, Cranelift, EngineBuilder, Singlepass};
use wasmer::{Engine, Instance, Module, Store, imports};
use wasmer_middlewares::Metering;

fn engine(cranelift: bool) -> Engine {
    let metering = Arc::new(Metering::new(u64::MAX, wasm_binding::gas::operator_cost));
    if cranelift {
        let mut config = Cranelift::new();
        config.push_middleware(metering);
        EngineBuilder::new(config).engine().into()
    } else {
        let mut config = Singlepass::new();
        config.push_middleware(metering);
        EngineBuilder::new(config).engine().into()
    }
}

fn many_locals() -> Vec<u8> {
    let mut body = String::from("(local.set 0 (i64.const 1)) (local.set 1 (i64.const 2))");
    for index in 2..20_000 {
        write!(body, "(local.set {index} (i64.add (local.get {}) (local.get {})))", index - 1, index - 2).unwrap();
    }
    wat::parse_str(format!(
        r#"(module (memory (export "memory") 1 1) (func (export "call") (local {}) {body}))"#,
        "i64 ".repeat(20_000)
    ))
    .unwrap()
}

fn nested_blocks() -> Vec<u8> {
    let depth = 5_000;
    let body = format!("{}(br_table 0 1 2 (i32.const 1)){}", "(block ".repeat(depth), ")".repeat(depth));
    wat::parse_str(format!(r#"(module (memory (export "memory") 1 1) (func (export "call") {body}))"#)).unwrap()
}

fn compute_loop() -> Vec<u8> {
    wat::parse_str(
        r#"(module (memory (export "memory") 1 1)
            (func (export "call") (local $x i64) (local $i i32)
                (local.set $x (i64.const 88172645463325252))
                (loop $again
                    (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
                    (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
                    (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
                    (local.set $i (i32.add (local.get $i) (i32.const 1)))
                    (br_if $again (i32.lt_u (local.get $i) (i32.const 1000000))))
                (i64.store (i32.const 0) (local.get $x))))"#,
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let token = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../guest/token/token.wasm")).unwrap();
    let modules = [("token", token), ("many_locals", many_locals()), ("nested_blocks", nested_blocks())];
    let mut group = c.benchmark_group("compilers");
    group.sample_size(10);
    for (compiler, cranelift) in [("singlepass", false), ("cranelift", true)] {
        for (name, code) in &modules {
            group.bench_function(format!("compile_{name}_{compiler}"), |b| {
                b.iter(|| Module::new(&engine(cranelift), code).unwrap());
            });
        }
        let engine = engine(cranelift);
        let module = Module::new(&engine, compute_loop()).unwrap();
        group.bench_function(format!("run_compute_loop_{compiler}"), |b| {
            b.iter(|| {
                let mut store = Store::new(engine.clone());
                let instance = Instance::new(&mut store, &module, &imports! {}).unwrap();
                instance.exports.get_typed_function::<(), ()>(&store, "call").unwrap().call(&mut store).unwrap();
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
