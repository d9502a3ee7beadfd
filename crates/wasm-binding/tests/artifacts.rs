//! Compilation is paid by the deploy and never by a call: each module is compiled once, its
//! sealed artifact kept by code hash, and a call to a module that is not in memory loads it at a
//! cost its base cost covers. Gas never depends on what a node has in memory, across evictions,
//! restarts and artifacts that are not the node's own (which are never run).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ALICE, CHAIN_ID, Harness};
use kv_core::{Identity, Store};
use std::sync::Arc;
use wasm_binding::gas;
use wasm_binding::validate::artifact_bound;
use wasm_binding::{ArtifactStore, CallStatus, DirectoryArtifacts, MAX_CACHED_MODULES, WasmEngine};

/// Code shapes chosen to make the compiler write the most machine code per byte of WASM: many
/// empty functions (each with its prologue, epilogue and trampolines), calls (each wrapped in the
/// depth check), host calls, indirect calls, branches and blocks (each a metering point), bulk
/// memory (each wrapped in the bulk charge), loads (each bounds-checked) and `br_table`s. Each is
/// repeated `count` times.
fn shapes(count: usize) -> Vec<(&'static str, String)> {
    let head = r#"(type $t (func)) (import "xstate" "state_get" (func $g (param i64) (result i64)))
        (memory (export "memory") 1 2) (table 1 funcref) (elem (i32.const 0) $e) (func $e)"#;
    let entry = |body: String| format!("(module {head} (func (export \"call\") (local i32) {body}))");
    let repeat = |item: &str, times: usize| item.repeat(times);
    vec![
        ("functions", format!("(module {head} {} (func (export \"call\")))", repeat("(func)", count))),
        (
            "functions with locals",
            format!("(module {head} {} (func (export \"call\")))", repeat("(func (local i64 i64 i64 i64))", count / 2)),
        ),
        ("calls", entry(repeat("(call $e)", count))),
        ("host calls", entry(repeat("(drop (call $g (i64.const 0)))", count / 2))),
        ("indirect calls", entry(repeat("(call_indirect (type $t) (i32.const 0))", count / 2))),
        ("branches", entry(repeat("(br_if 0 (local.get 0))", count))),
        ("blocks", entry(repeat("(block (br 0))", count))),
        ("bulk memory", entry(repeat("(memory.fill (i32.const 0) (i32.const 0) (i32.const 0))", count / 4))),
        ("loads", entry(repeat("(drop (i32.load (local.get 0)))", count / 2))),
        ("br_table", entry(repeat("(block (br_table 0 0 0 0 (local.get 0)))", count / 4))),
        ("arithmetic", entry(repeat("(local.set 0 (i32.add (local.get 0) (i32.const 1)))", count / 2))),
        ("division", entry(repeat("(local.set 0 (i32.div_s (local.get 0) (i32.const 3)))", count / 2))),
        ("bit counting", entry(repeat("(local.set 0 (i32.popcnt (i32.clz (i32.ctz (local.get 0)))))", count / 2))),
    ]
}

/// For every adversarial shape and the example guests, the artifact a deploy keeps is within the
/// module's artifact bound, which every call's base cost pays for at one gas per byte (the bench
/// `wasm/call_cold_large_module` measures the load's time against it), and by a margin: the bound
/// is at least 1.8 times the artifact.
#[test]
fn artifacts_stay_within_the_bound_the_call_base_pays_for() {
    let mut harness = Harness::new();
    let mut codes: Vec<(String, Vec<u8>)> =
        shapes(20_000).into_iter().map(|(name, wat)| (name.replace(' ', "-"), wat::parse_str(&wat).unwrap())).collect();
    codes.push(("token".into(), common::guest("token")));
    codes.push(("counter".into(), common::guest("counter")));
    for (name, code) in codes {
        let module = harness.deploy_bytes(&name, &code).unwrap();
        let artifact = artifact_len(&harness, module);
        let bound = artifact_bound(&code);
        println!(
            "{name}: {} code bytes, {artifact} artifact bytes, bound {bound} ({:.2} times)",
            code.len(),
            bound as f64 / artifact as f64
        );
        assert!(bound * 10 >= artifact * 18, "{name}: a bound of {bound} for an artifact of {artifact} bytes");
        assert_eq!(harness.call_base(module), gas::call_base(bound), "{name}");
        assert!(gas::call_base(bound) >= gas::CALL_BASE + artifact, "{name}");
        let receipt = harness.call_as(ALICE, module, b"", u64::MAX / 4);
        assert!(matches!(receipt.status, CallStatus::Success | CallStatus::Revert(_)), "{name}: {receipt:?}");
    }
}

fn artifact_len(harness: &Harness, module: Identity) -> u64 {
    let record = harness.engine.module_record(&harness.overlay, module).unwrap().unwrap();
    harness.engine.artifact_len(&record.code_hash).unwrap().unwrap() as u64
}

/// The adversary of issue 13: calls rotating over more modules than the engine keeps in memory.
/// Every call after the first round finds its module evicted and loads its artifact; none
/// compiles, and every call costs exactly what the same call cost when the module was in memory.
#[test]
fn rotating_over_more_modules_than_memory_holds_never_compiles_and_costs_the_same() {
    let mut harness = Harness::new();
    harness.engine = WasmEngine::new(CHAIN_ID).with_cached_modules(3);
    let modules: Vec<(Identity, u64)> = shapes(8_000)
        .into_iter()
        .map(|(name, wat)| {
            let code = wat::parse_str(&wat).unwrap();
            (harness.deploy_bytes(&name.replace(' ', "-"), &code).unwrap(), artifact_bound(&code))
        })
        .collect();
    let compiled = harness.engine.compilations();
    assert_eq!(compiled, modules.len() as u64, "one compilation per deploy");
    // The last module deployed is in memory: its first call is warm.
    let (last, _) = *modules.last().unwrap();
    let warm = harness.call_as(ALICE, last, b"", u64::MAX / 4);
    let mut gas_of = std::collections::HashMap::new();
    for round in 0..3 {
        for &(module, bound) in &modules {
            let loads = harness.engine.artifact_loads();
            let receipt = harness.call_as(ALICE, module, b"", u64::MAX / 4);
            assert!(receipt.is_success(), "{receipt:?}");
            // Each call paid for loading the largest artifact its module can have.
            assert!(receipt.gas_used >= gas::call_base(bound), "the call paid less than its base");
            assert!(gas::call_base(bound) >= artifact_len(&harness, module), "the base is below the artifact");
            if round > 0 {
                assert_eq!(harness.engine.artifact_loads(), loads + 1, "round {round}: the module was still in memory");
            }
            let first = *gas_of.entry(module).or_insert(receipt.gas_used);
            assert_eq!(receipt.gas_used, first, "round {round}: the gas changed with the cache");
        }
    }
    assert_eq!(gas_of[&last], warm.gas_used, "a load costs what a call to a module in memory costs");
    assert_eq!(harness.engine.compilations(), compiled, "a call compiled");
    assert!(harness.engine.cached_modules() <= 3);
}

/// The same adversary against the default engine: one module more than `MAX_CACHED_MODULES`.
#[test]
fn one_module_more_than_the_default_cache_holds_is_loaded_not_compiled() {
    let mut harness = Harness::new();
    let code = |index: usize| wat::parse_str(common::module("", &format!("(drop (i32.const {index}))"))).unwrap();
    let modules: Vec<Identity> = (0..=MAX_CACHED_MODULES)
        .map(|index| harness.deploy_bytes(&format!("m{index}"), &code(index)).unwrap())
        .collect();
    let compiled = harness.engine.compilations();
    assert_eq!(compiled, MAX_CACHED_MODULES as u64 + 1);
    let gas: Vec<u64> = modules.iter().map(|&module| harness.call(module, b"").gas_used).collect();
    let again: Vec<u64> = modules.iter().map(|&module| harness.call(module, b"").gas_used).collect();
    assert_eq!(gas, again);
    assert_eq!(harness.engine.compilations(), compiled);
    assert!(harness.engine.artifact_loads() > 0);
    assert!(harness.engine.cached_modules() <= MAX_CACHED_MODULES);
}

/// A restarted node (a new engine over the same state and artifact directory) loads what it
/// compiled before and compiles nothing; the gas is the same.
#[test]
fn a_restarted_node_loads_its_artifacts_and_compiles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = || {
        WasmEngine::new(CHAIN_ID)
            .with_artifacts(Arc::new(DirectoryArtifacts::open(dir.path().join("artifacts")).unwrap()))
    };
    let store = Store::open_redb(dir.path().join("state.redb"), kv_core::StoreConfig::default()).unwrap();
    let mut harness = Harness::on(store);
    harness.engine = engine();
    let counter = harness.deploy_bytes("counter", &common::guest("counter")).unwrap();
    let before = harness.call(counter, b"");
    harness.commit();
    harness.engine = engine();
    let after = harness.call(counter, &[1]);
    assert_eq!((harness.engine.compilations(), harness.engine.artifact_loads()), (0, 1));
    assert!(before.is_success() && after.is_success());
    // Input 1 reads without incrementing: the same instructions as the increment but its write.
    let fresh = harness.call(counter, &[1]);
    assert_eq!(after.gas_used, fresh.gas_used);
}

/// An artifact that is not the node's own (copied from another node's directory, damaged, or the
/// artifact of another module under this one's name) is never run: the engine compiles the module
/// again from its code in the state, saves its own artifact, and charges the same gas.
#[test]
fn artifacts_that_are_not_the_nodes_own_are_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let node_a = Arc::new(DirectoryArtifacts::open(dir.path().join("a")).unwrap());
    let node_b = Arc::new(DirectoryArtifacts::open(dir.path().join("b")).unwrap());
    let mut harness = Harness::new();
    harness.engine = WasmEngine::new(CHAIN_ID).with_artifacts(node_a.clone());
    let counter = harness.deploy_bytes("counter", &common::guest("counter")).unwrap();
    let token = harness.deploy_bytes("token", &common::guest("token")).unwrap();
    let expected = harness.call(counter, &[1]).gas_used;
    let hash = |module| harness.engine.module_record(&harness.overlay, module).unwrap().unwrap().code_hash;
    let (counter_hash, token_hash) = (hash(counter), hash(token));
    let sealed = |store: &DirectoryArtifacts, code_hash| store.load(&code_hash).unwrap().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("another node's artifact", sealed(&node_a, counter_hash)),
        ("a damaged artifact", {
            let mut bytes = sealed(&node_a, counter_hash);
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
            bytes
        }),
        ("another module's artifact", sealed(&node_a, token_hash)),
        ("a truncated artifact", sealed(&node_a, counter_hash)[..50].to_vec()),
    ];
    for (what, bytes) in cases {
        node_b.save(&counter_hash, &bytes).unwrap();
        harness.engine = WasmEngine::new(CHAIN_ID).with_artifacts(node_b.clone());
        let receipt = harness.call(counter, &[1]);
        assert_eq!(receipt.gas_used, expected, "{what}");
        assert_eq!((harness.engine.compilations(), harness.engine.artifact_loads()), (1, 0), "{what}");
        // The engine replaced it with its own, which the next restart loads.
        harness.engine = WasmEngine::new(CHAIN_ID).with_artifacts(node_b.clone());
        assert_eq!(harness.call(counter, &[1]).gas_used, expected, "{what}");
        assert_eq!((harness.engine.compilations(), harness.engine.artifact_loads()), (0, 1), "{what}");
    }
}
