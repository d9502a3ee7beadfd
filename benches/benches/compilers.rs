//! Singlepass against Cranelift, for the compiler decision (docs/adr/0003-wasm-engine.md):
//! compile time of the example token, of two pathological modules (a function with 20,000 locals
//! in one long dependency chain, and 5,000 nested blocks), and execution time of a compute loop.
//! Each comparison runs the two compilers side by side (see `xstate_benches::harness`) and
//! prints the median time of each and the median of the per-pair ratios with their interquartile
//! range. Run with `cargo bench -p xstate-benches --features cranelift --bench compilers`; it is
//! not one of `cargo xtask bench`'s figures, as the decision it informed is made.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Benchmark code: a failed unwrap is a failed run.

use std::fmt::Write;
use std::sync::Arc;
use wasmer::sys::{CompilerConfig, Cranelift, EngineBuilder, Singlepass};
use wasmer::{Engine, Instance, Module, Store, imports};
use wasmer_middlewares::Metering;
use xstate_benches::harness::{Budget, pairs, timed};

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

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Prints one side-by-side comparison: singlepass's time, Cranelift's, and their ratio.
fn report(name: &str, measured: &[(f64, f64)]) {
    let mut ratios: Vec<f64> = measured.iter().map(|&(a, b)| a / b).collect();
    ratios.sort_by(f64::total_cmp);
    let (low, high) = (ratios[ratios.len() / 4], ratios[ratios.len() * 3 / 4]);
    let mut singlepass: Vec<f64> = measured.iter().map(|&(a, _)| a).collect();
    let mut cranelift: Vec<f64> = measured.iter().map(|&(_, b)| b).collect();
    println!(
        "{name:<24} singlepass {:>12.0} ns  cranelift {:>12.0} ns  singlepass/cranelift {:.3} (IQR {low:.3}..{high:.3})",
        median(&mut singlepass),
        median(&mut cranelift),
        median(&mut ratios),
    );
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let budget = Budget::heavy(quick);
    let token = xstate_chain::demo::TOKEN_WASM.to_vec();
    let modules =
        [("compile_token", token), ("compile_many_locals", many_locals()), ("compile_nested_blocks", nested_blocks())];
    let (singlepass, cranelift) = (engine(false), engine(true));
    for (name, code) in &modules {
        let mut with_singlepass = || timed(|| Module::new(&singlepass, code).unwrap());
        let mut with_cranelift = || timed(|| Module::new(&cranelift, code).unwrap());
        report(name, &pairs(budget, &mut with_singlepass, &mut with_cranelift));
    }
    let run = |engine: &Engine, module: &Module| {
        let mut store = Store::new(engine.clone());
        let instance = Instance::new(&mut store, module, &imports! {}).unwrap();
        instance.exports.get_typed_function::<(), ()>(&store, "call").unwrap().call(&mut store).unwrap();
    };
    let singlepass_loop = Module::new(&singlepass, compute_loop()).unwrap();
    let cranelift_loop = Module::new(&cranelift, compute_loop()).unwrap();
    let mut on_singlepass = || timed(|| run(&singlepass, &singlepass_loop));
    let mut on_cranelift = || timed(|| run(&cranelift, &cranelift_loop));
    report("run_compute_loop", &pairs(budget, &mut on_singlepass, &mut on_cranelift));
}
