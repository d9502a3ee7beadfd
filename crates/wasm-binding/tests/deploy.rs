//! Deploy-time validation: every kind of bad module is refused with a typed error and leaves the
//! state untouched; good modules get the documented identity and their code in the state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{CHAIN_ID, Harness, module};
use kv_core::{ModuleName, Namespace, StateKey, module_identity};
use wasm_binding::validate::{MAX_FRAME_SLOTS, MAX_MEMORY_PAGES, MAX_MODULE_BYTES, MAX_TABLE_ELEMENTS};
use wasm_binding::{DeployError, MAX_CACHED_MODULES, ValidationError};

/// Deploys each module and checks the error it is refused with, and that it was refused before
/// being compiled and without writing anything.
fn check_refused(cases: &[(&str, Vec<u8>, fn(&DeployError) -> bool)]) {
    for (what, code, expected) in cases {
        let mut harness = Harness::new();
        let error = harness.deploy_bytes("bad", code).expect_err(what);
        assert!(expected(&error), "{what}: unexpected error {error:?}");
        assert!(!error.to_string().is_empty());
        assert!(harness.overlay.is_empty(), "{what}: a refused deploy wrote state");
        assert_eq!(harness.engine.compilations(), 0, "{what}: refused only after compiling");
    }
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

#[test]
fn bad_modules_are_refused() {
    use DeployError::Invalid;
    use ValidationError as V;
    let cases: Vec<(&str, Vec<u8>, fn(&DeployError) -> bool)> = vec![
        ("malformed bytes", b"definitely not wasm".to_vec(), |e| matches!(e, Invalid(V::Malformed(_)))),
        ("truncated module", wat(&module("", ""))[..20].to_vec(), |e| matches!(e, Invalid(V::Malformed(_)))),
        (
            "unknown host function",
            wat(&module(r#"(import "xstate" "launch_missiles" (func))"#, "")),
            |e| matches!(e, Invalid(V::UnknownImport { name, .. }) if name == "launch_missiles"),
        ),
        (
            "foreign namespace",
            wat(&module(r#"(import "env" "state_get" (func (param i64) (result i64)))"#, "")),
            |e| matches!(e, Invalid(V::UnknownImport { module, .. }) if module == "env"),
        ),
        (
            "wrong signature",
            wat(&module(r#"(import "xstate" "state_get" (func (param i32) (result i32)))"#, "")),
            |e| matches!(e, Invalid(V::ImportSignature { name, .. }) if name == "state_get"),
        ),
        ("imported memory", wat(r#"(module (import "xstate" "memory" (memory 1 2)) (func (export "call")))"#), |e| {
            matches!(e, Invalid(V::NonFunctionImport(_)))
        }),
        ("no memory", wat(r#"(module (func (export "call")))"#), |e| matches!(e, Invalid(V::NoMemory))),
        ("memory without maximum", wat(r#"(module (memory (export "memory") 1) (func (export "call")))"#), |e| {
            matches!(e, Invalid(V::MemoryLimit(_)))
        }),
        (
            "memory maximum above 64 pages",
            wat(r#"(module (memory (export "memory") 1 65) (func (export "call")))"#),
            |e| matches!(e, Invalid(V::MemoryLimit(_))),
        ),
        ("no entry point", wat(r#"(module (memory (export "memory") 1 2))"#), |e| {
            matches!(e, Invalid(V::NoEntryPoint))
        }),
        (
            "entry point with parameters",
            wat(r#"(module (memory (export "memory") 1 2) (func (export "call") (param i32)))"#),
            |e| matches!(e, Invalid(V::NoEntryPoint)),
        ),
        (
            "floating point",
            wat(&module("", "(drop (f32.add (f32.const 1) (f32.const 2)))")),
            |e| matches!(e, Invalid(V::Malformed(reason)) if reason.contains("float")),
        ),
        ("SIMD", wat(&module("", "(drop (i32x4.splat (i32.const 1)))")), |e| matches!(e, Invalid(V::Malformed(_)))),
        (
            "a frame of 3,000 locals",
            wat(&module("", "(local i64) (local i64)")
                .replace("(local i64) (local i64)", &"(local i64) ".repeat(3_000))),
            |e| matches!(e, Invalid(V::FrameTooLarge { slots: 3_000, .. })),
        ),
        (
            "a table of 5,000 elements",
            wat(r#"(module (memory (export "memory") 1 2) (table 5000 funcref) (func (export "call")))"#),
            |e| matches!(e, Invalid(V::TableLimit(5_000))),
        ),
        (
            "start function",
            wat(r#"(module (memory (export "memory") 1 2) (func $s) (start $s) (func (export "call")))"#),
            |e| matches!(e, Invalid(V::StartFunction)),
        ),
        (
            "larger than 512 KiB",
            {
                let mut code = wat(&module("", ""));
                // A custom section pads the module past the limit without changing its meaning.
                let padding = vec![0u8; 512 * 1024];
                code.push(0);
                code.extend_from_slice(&leb128(padding.len() as u64 + 2));
                code.extend_from_slice(&[1, b'x']);
                code.extend_from_slice(&padding);
                code
            },
            |e| matches!(e, Invalid(V::TooLarge(_))),
        ),
    ];
    check_refused(&cases);
}

fn leb128(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[test]
fn deploy_stores_code_and_record_and_refuses_a_second_deploy() {
    let mut harness = Harness::new();
    let code = wat::parse_str(module("", "")).unwrap();
    let identity = harness.deploy_bytes("plain", &code).unwrap();
    assert_eq!(identity, module_identity(CHAIN_ID, &ModuleName::new("plain").unwrap(), 1));
    let record = harness.engine.module_record(&harness.overlay, identity).unwrap().unwrap();
    assert_eq!(record.code_hash, alloy_primitives::keccak256(&code));
    assert_eq!(record.version, 1);
    let blob = harness.overlay.get(&StateKey::Code(record.code_hash).encode().unwrap()).unwrap();
    assert_eq!(blob.as_deref(), Some(code.as_slice()));

    let again = harness.deploy_bytes("plain", &code).unwrap_err();
    assert!(matches!(again, DeployError::AlreadyDeployed { version: 1, .. }), "{again:?}");

    // A new version is a new identity with fresh state, sharing the code blob.
    let name = ModuleName::new("plain").unwrap();
    let second = harness.engine.deploy(&mut harness.overlay, &name, 2, &code).unwrap();
    assert_ne!(second, identity);
    assert_eq!(harness.overlay.scan_prefix(Namespace::wasm(second).prefix()).unwrap().len(), 1);
    harness.commit();
    assert_eq!(harness.engine.compilations(), 1, "identical code compiles once");
    assert_eq!(harness.engine.cached_modules(), 1);
}

/// Post-MVP proposals outside the deterministic feature set are refused at deploy, each by the
/// validator for the feature it needs.
#[test]
fn proposals_outside_the_feature_set_are_refused() {
    let memory = r#"(memory (export "memory") 1 2)"#;
    let cases: &[(&str, String, &str)] = &[
        ("reference types", module("", "(drop (ref.null extern))"), "reference types"),
        (
            "an externref table",
            format!(r#"(module {memory} (table 1 externref) (func (export "call")))"#),
            "reference types",
        ),
        ("a passive data segment", format!(r#"(module {memory} (data "abc") (func (export "call")))"#), "bulk-memory"),
        (
            "memory.init",
            format!(
                r#"(module {memory} (data "abc") (func (export "call") (memory.init 0 (i32.const 0) (i32.const 0) (i32.const 1))))"#
            ),
            "bulk memory",
        ),
        (
            "a shared memory",
            r#"(module (memory (export "memory") 1 2 shared) (func (export "call")))"#.to_owned(),
            "threads",
        ),
        ("atomics", module("", "(drop (i32.atomic.load (i32.const 0)))"), "threads"),
        ("tail calls", module("", "(return_call 0)"), "tail calls"),
        ("memory64", r#"(module (memory (export "memory") i64 1 2) (func (export "call")))"#.to_owned(), "memory64"),
        ("two memories", format!(r#"(module {memory} (memory 1 2) (func (export "call")))"#), "multiple memories"),
        ("exceptions", format!(r#"(module {memory} (tag) (func (export "call")))"#), "exceptions"),
        (
            "extended constants",
            format!(r#"(module {memory} (global i32 (i32.add (i32.const 1) (i32.const 2))) (func (export "call")))"#),
            "constant expression",
        ),
    ];
    for (what, wat, needle) in cases {
        let mut harness = Harness::new();
        let code = wat::parse_str(wat).unwrap_or_else(|error| panic!("{what}: {error}"));
        match harness.deploy_bytes("bad", &code) {
            Err(DeployError::Invalid(ValidationError::Malformed(reason))) => {
                assert!(reason.contains(needle), "{what}: `{reason}` should mention `{needle}`");
            }
            other => panic!("{what}: expected a malformed module, got {other:?}"),
        }
        assert_eq!(harness.engine.compilations(), 0, "{what}");
    }
}

/// Segments are checked against the memory and table as instantiated, so a module that deploys
/// can always be instantiated: one that does not fit is refused, one that just fits runs.
#[test]
fn segments_must_fit_their_memory_and_table() {
    let with = |segments: &str| {
        wat::parse_str(format!(
            r#"(module (memory (export "memory") 1 2) (table 2 funcref) (func $f) {segments} (func (export "call")))"#
        ))
        .unwrap()
    };
    let cases: &[(&str, &str, Option<ValidationError>)] = &[
        ("data up to the end of memory", r#"(data (i32.const 65534) "ab")"#, None),
        (
            "data one byte past the initial memory",
            r#"(data (i32.const 1) "ok") (data (i32.const 65535) "ab")"#,
            Some(ValidationError::DataSegmentOutOfBounds { segment: 1, offset: 65_535, len: 2, memory_bytes: 65_536 }),
        ),
        (
            "data at a negative offset",
            r#"(data (i32.const -1) "a")"#,
            Some(ValidationError::DataSegmentOutOfBounds {
                segment: 0,
                offset: 4_294_967_295,
                len: 1,
                memory_bytes: 65_536,
            }),
        ),
        ("elements up to the end of the table", "(elem (i32.const 0) $f $f)", None),
        (
            "elements past the table",
            "(elem (i32.const 1) $f $f)",
            Some(ValidationError::ElementSegmentOutOfBounds { segment: 0, offset: 1, len: 2, table_elements: 2 }),
        ),
    ];
    for (what, segments, expected) in cases {
        let mut harness = Harness::new();
        match (harness.deploy_bytes("segments", &with(segments)), expected) {
            (Ok(module), None) => assert!(harness.call(module, b"").is_success(), "{what}"),
            (Err(DeployError::Invalid(error)), Some(expected)) => {
                assert_eq!(&error, expected, "{what}");
                assert_eq!(harness.engine.compilations(), 0, "{what}");
            }
            (other, _) => panic!("{what}: unexpected {other:?}"),
        }
    }
}

/// Error messages print the limits from their constants.
#[test]
fn validation_messages_name_the_limits() {
    let cases = [
        (ValidationError::TooLarge(1), MAX_MODULE_BYTES.to_string()),
        (ValidationError::MemoryLimit("no maximum".into()), format!("{MAX_MEMORY_PAGES} pages")),
        (ValidationError::FrameTooLarge { function: 0, slots: 1 }, MAX_FRAME_SLOTS.to_string()),
        (ValidationError::TableLimit(1), MAX_TABLE_ELEMENTS.to_string()),
    ];
    for (error, limit) in cases {
        assert!(error.to_string().contains(&limit), "`{error}` should mention {limit}");
    }
}

/// The cache holds at most `MAX_CACHED_MODULES` compiled modules; one more starts it over, and an
/// evicted module is loaded from its artifact on its next call, not compiled again.
#[test]
fn the_module_cache_is_bounded() {
    let mut harness = Harness::new();
    let code = |index: usize| wat::parse_str(module("", &format!("(drop (i32.const {index}))"))).unwrap();
    let first = harness.deploy_bytes("m0", &code(0)).unwrap();
    for index in 1..MAX_CACHED_MODULES {
        harness.deploy_bytes(&format!("m{index}"), &code(index)).unwrap();
    }
    assert_eq!(harness.engine.cached_modules(), MAX_CACHED_MODULES);
    assert_eq!(harness.engine.compilations(), MAX_CACHED_MODULES as u64);
    harness.deploy_bytes("one-more", &code(MAX_CACHED_MODULES)).unwrap();
    assert_eq!(harness.engine.cached_modules(), 1);
    assert!(harness.call(first, b"").is_success());
    assert!(harness.call(first, b"").is_success());
    assert_eq!(harness.engine.compilations(), MAX_CACHED_MODULES as u64 + 1, "a call compiled");
    assert_eq!(harness.engine.artifact_loads(), 1, "evicted, loaded once");
    assert_eq!(harness.engine.cached_modules(), 2);
}

/// The same code deployed under two names is compiled once: the second deploy finds it in memory,
/// or, once it has left memory, its artifact.
#[test]
fn the_same_code_is_compiled_once() {
    let mut harness = Harness::new();
    harness.engine = wasm_binding::WasmEngine::new(common::CHAIN_ID).with_cached_modules(1);
    let code = wat::parse_str(module("", "")).unwrap();
    let other = wat::parse_str(module("", "nop")).unwrap();
    harness.deploy_bytes("one", &code).unwrap();
    harness.deploy_bytes("two", &code).unwrap();
    assert_eq!((harness.engine.compilations(), harness.engine.artifact_loads()), (1, 0));
    harness.deploy_bytes("other", &other).unwrap();
    harness.deploy_bytes("three", &code).unwrap();
    assert_eq!((harness.engine.compilations(), harness.engine.artifact_loads()), (2, 1));
}

/// The deploy price the runtime charges: 320,000 plus 2,000 per byte of code, saturating rather
/// than wrapping for lengths no deploy can reach.
#[test]
fn the_deploy_cost_is_the_documented_price() {
    use wasm_binding::gas::{DEPLOY_BASE, DEPLOY_PER_CODE_BYTE, deploy_cost};
    assert_eq!((DEPLOY_BASE, DEPLOY_PER_CODE_BYTE), (320_000, 2_000));
    for (code_len, cost) in [(0, 320_000), (1, 322_000), (5_468, 11_256_000), (MAX_MODULE_BYTES, 1_048_896_000)] {
        assert_eq!(deploy_cost(code_len), cost, "{code_len} bytes");
    }
    assert_eq!(deploy_cost(usize::MAX), u64::MAX);
}
