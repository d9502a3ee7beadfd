//! Deploy-time validation: every kind of bad module is refused with a typed error and leaves the
//! state untouched; good modules get the documented identity and their code in the state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{CHAIN_ID, Harness, module};
use kv_core::{ModuleName, Namespace, StateKey, module_identity};
use wasm_binding::{DeployError, ValidationError};

/// Deploys each module and checks the error it is refused with.
fn check_refused(cases: &[(&str, Vec<u8>, fn(&DeployError) -> bool)]) {
    for (what, code, expected) in cases {
        let mut harness = Harness::new();
        let error = harness.deploy_bytes("bad", code).expect_err(what);
        assert!(expected(&error), "{what}: unexpected error {error:?}");
        assert!(!error.to_string().is_empty());
        assert!(harness.overlay.is_empty(), "{what}: a refused deploy wrote state");
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
    assert_eq!(harness.engine.cached_modules(), 1, "identical code compiles once");
}
