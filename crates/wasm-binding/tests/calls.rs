//! Calls: the host ABI's behaviour, gas, and every kind of bad input a running module can produce.
//! Each failing call must end as a receipt (never a host panic) and leave no trace in the state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ALICE, GAS, Harness, assert_trap, module};
use kv_core::Namespace;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use wasm_binding::{CallError, CallRequest, CallStatus, HostEnv, HostExtension, WasmEngine, gas};
use wasmer::{Function, FunctionEnv, FunctionEnvMut};

const IMPORTS: &str = r#"
    (import "xstate" "state_get" (func $state_get (param i64) (result i64)))
    (import "xstate" "state_set" (func $state_set (param i64 i64)))
    (import "xstate" "storage_read" (func $storage_read (param i32 i32 i32 i32) (result i32)))
    (import "xstate" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
    (import "xstate" "storage_remove" (func $storage_remove (param i32 i32)))
    (import "xstate" "input_len" (func $input_len (result i32)))
    (import "xstate" "input_read" (func $input_read (param i32)))
    (import "xstate" "output_write" (func $output_write (param i32 i32)))
    (import "xstate" "revert" (func $revert (param i32 i32)))
    (import "xstate" "caller" (func $caller (param i32)))
    (import "xstate" "self_identity" (func $self_identity (param i32)))
"#;

fn deploy(harness: &mut Harness, body: &str) -> kv_core::Identity {
    harness.deploy_wat("probe", &module(IMPORTS, body)).unwrap()
}

/// Runs `body` as a fresh module's entry point after a write to slot 1, and checks that the
/// call traps with `needle` in its reason and that the write did not survive.
fn check_traps(cases: &[(&str, &str)]) {
    for (body, needle) in cases {
        let mut harness = Harness::new();
        let module = deploy(&mut harness, &format!("(call $state_set (i64.const 1) (i64.const 42)) {body}"));
        let receipt = harness.call(module, b"input");
        assert_trap(&receipt, needle);
        assert!(receipt.output.is_empty());
        assert_eq!(harness.overlay.get_u64(&Namespace::wasm(module).slot_key(1)).unwrap(), 0, "{body}: write survived");
    }
}

#[test]
fn out_of_bounds_pointers_and_huge_lengths_trap_in_every_host_function() {
    // The memory is one page (65,536 bytes).
    check_traps(&[
        (
            "(drop (call $storage_read (i32.const 65530) (i32.const 8) (i32.const 0) (i32.const 0)))",
            "storage_read: key at 0x0000fffa",
        ),
        (
            "(drop (call $storage_read (i32.const 0) (i32.const -1) (i32.const 0) (i32.const 0)))",
            "storage_read: key of 4294967295 bytes",
        ),
        (
            "(call $storage_write (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 4)) (drop (call $storage_read (i32.const 0) (i32.const 4) (i32.const 65535) (i32.const 100)))",
            "storage_read: output buffer",
        ),
        (
            "(call $storage_write (i32.const -4) (i32.const 4) (i32.const 0) (i32.const 1))",
            "storage_write: key at 0xfffffffc",
        ),
        (
            "(call $storage_write (i32.const 0) (i32.const 4) (i32.const 65000) (i32.const 1000))",
            "storage_write: value at 0x0000fde8",
        ),
        (
            "(call $storage_write (i32.const 0) (i32.const 4) (i32.const 0) (i32.const -1))",
            "storage_write: value of 4294967295 bytes",
        ),
        ("(call $storage_remove (i32.const 65535) (i32.const 2))", "storage_remove: key at 0x0000ffff"),
        ("(call $input_read (i32.const 65534))", "input_read: output buffer"),
        ("(call $output_write (i32.const 0) (i32.const 65537))", "output_write: output of 65537 bytes"),
        ("(call $output_write (i32.const 65000) (i32.const 1000))", "output_write: output at 0x0000fde8"),
        ("(call $revert (i32.const 70000) (i32.const 1))", "revert: revert data at 0x00011170"),
        ("(call $caller (i32.const 65530))", "caller: output buffer"),
        ("(call $self_identity (i32.const -1))", "self_identity: output buffer"),
    ]);
}

#[test]
fn oversized_and_empty_keys_and_values_trap() {
    check_traps(&[
        (
            "(call $storage_write (i32.const 0) (i32.const 129) (i32.const 0) (i32.const 1))",
            "key of 129 bytes exceeds the limit of 128",
        ),
        ("(call $storage_write (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1))", "user key of 0 bytes"),
        (
            "(call $storage_write (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 16385))",
            "value of 16385 bytes exceeds the limit of 16384",
        ),
        ("(call $storage_write (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 0))", "empty value"),
        ("(drop (call $storage_read (i32.const 0) (i32.const 200) (i32.const 0) (i32.const 0)))", "key of 200 bytes"),
    ]);
}

#[test]
fn traps_of_the_module_itself_leave_no_trace() {
    check_traps(&[
        ("unreachable", "unreachable"),
        ("(drop (i32.div_u (i32.const 1) (i32.const 0)))", "divi"),
        ("(drop (i32.load (i32.const 70000)))", "out of bounds"),
        // memory.grow past the declared maximum returns -1; the module traps on it.
        ("(if (i32.eq (memory.grow (i32.const 5)) (i32.const -1)) (then unreachable))", "unreachable"),
    ]);
}

#[test]
fn unbounded_recursion_traps_cleanly() {
    let mut harness = Harness::new();
    let wat = r#"(module
        (import "xstate" "state_set" (func $state_set (param i64 i64)))
        (memory (export "memory") 1 2)
        (func $down (param i64) (result i64) (call $down (i64.add (local.get 0) (i64.const 1))))
        (func (export "call") (call $state_set (i64.const 1) (i64.const 9)) (drop (call $down (i64.const 0)))))"#;
    let module = harness.deploy_wat("recursion", wat).unwrap();
    // The depth limit stops it at the same depth and the same gas on every machine.
    let first = harness.call_as(ALICE, module, b"", u64::MAX / 2);
    assert_trap(&first, "call depth limit of 1024 nested calls exceeded");
    let second = harness.call_as(ALICE, module, b"", u64::MAX / 2);
    assert_eq!(first, second);
    assert_eq!(harness.overlay.get_u64(&Namespace::wasm(module).slot_key(1)).unwrap(), 0);
    // With a small limit the same module runs out of gas first: calls are priced.
    let receipt = harness.call_as(ALICE, module, b"", harness.call_base(module) + 5_000);
    assert_eq!(receipt.status, CallStatus::OutOfGas);
}

/// Recursion through the largest frames validation allows still stops at the call-depth limit,
/// not at the machine's stack: 1,024 frames of 2,000 slots fit in the WASM stack.
#[test]
fn recursion_with_the_largest_frames_stops_at_the_depth_limit() {
    let mut harness = Harness::new();
    let locals = "(local i64) ".repeat(1_990);
    let wat = format!(
        r#"(module
            (memory (export "memory") 1 2)
            (func $down (param i64) (result i64) {locals}
                (local.set 1990 (local.get 0))
                (call $down (i64.add (local.get 1990) (i64.const 1))))
            (func (export "call") (drop (call $down (i64.const 0)))))"#
    );
    let module = harness.deploy_wat("deep", &wat).unwrap();
    let receipt = harness.call_as(ALICE, module, b"", u64::MAX / 2);
    assert_trap(&receipt, "call depth limit of 1024 nested calls exceeded");
}

/// `memory.fill` and `memory.copy` pay for every 16 bytes they touch, from the same counter.
#[test]
fn bulk_memory_is_charged_by_length() {
    let mut harness = Harness::new();
    let gas = |harness: &mut Harness, name: &str, body: &str| {
        let module = harness.deploy_wat(name, &module(IMPORTS, body)).unwrap();
        let receipt = harness.call(module, b"");
        assert_eq!(receipt.status, CallStatus::Success, "{body}");
        // What the module itself used: a longer length operand is a longer module.
        receipt.gas_used - harness.call_base(module)
    };
    let small = gas(&mut harness, "small", "(memory.fill (i32.const 0) (i32.const 7) (i32.const 16))");
    let large = gas(&mut harness, "large", "(memory.fill (i32.const 0) (i32.const 7) (i32.const 65536))");
    assert_eq!(large - small, (65_536 - 16) / 16);
    let copy = gas(&mut harness, "copy", "(memory.copy (i32.const 0) (i32.const 32768) (i32.const 32768))");
    assert!(copy >= 32_768 / 16, "{copy}");
    // Too little gas for the bytes: out of gas, and the write before it is discarded.
    let module = harness
        .deploy_wat("starved", &module(IMPORTS, "(call $state_set (i64.const 1) (i64.const 1)) (memory.fill (i32.const 0) (i32.const 7) (i32.const 65536))"))
        .unwrap();
    let receipt =
        harness.call_as(ALICE, module, b"", harness.call_base(module) + gas::COLD_ACCESS + gas::STORE_SET + 1_000);
    assert_eq!(receipt.status, CallStatus::OutOfGas);
    assert_eq!(harness.overlay.get_u64(&Namespace::wasm(module).slot_key(1)).unwrap(), 0);
}

#[test]
fn an_infinite_loop_runs_out_of_gas_and_uses_the_whole_limit() {
    let mut harness = Harness::new();
    let module = deploy(&mut harness, "(call $state_set (i64.const 1) (i64.const 7)) (loop $forever (br $forever))");
    let receipt = harness.call_as(ALICE, module, b"", 500_000);
    assert_eq!(receipt.status, CallStatus::OutOfGas);
    assert_eq!(receipt.gas_used, 500_000);
    assert_eq!(harness.overlay.get_u64(&Namespace::wasm(module).slot_key(1)).unwrap(), 0);
}

#[test]
fn running_out_of_gas_inside_a_host_function() {
    let mut harness = Harness::new();
    let module = deploy(&mut harness, "(drop (call $state_get (i64.const 1)))");
    let base = harness.call_base(module);
    // Enough for the few instructions, not for the host call's price (a cold read).
    let receipt = harness.call_as(ALICE, module, b"", base + gas::COLD_ACCESS / 2);
    assert_eq!(receipt.status, CallStatus::OutOfGas);
    assert_eq!(receipt.gas_used, base + gas::COLD_ACCESS / 2);
    let receipt = harness.call_as(ALICE, module, b"", base + gas::COLD_ACCESS + 100);
    assert_eq!(receipt.status, CallStatus::Success);
    let used = receipt.gas_used - base;
    assert!(used > gas::COLD_ACCESS && used < gas::COLD_ACCESS + 100, "{used}");
}

#[test]
fn revert_returns_its_data_and_discards_writes() {
    let mut harness = Harness::new();
    let body = r#"(call $state_set (i64.const 1) (i64.const 5))
        (call $storage_write (i32.const 0) (i32.const 3) (i32.const 0) (i32.const 3))
        (call $output_write (i32.const 0) (i32.const 3))
        (call $revert (i32.const 16) (i32.const 4))"#;
    let wat = module(IMPORTS, body).replace(
        "(func (export \"call\")",
        "(data (i32.const 0) \"key\") (data (i32.const 16) \"nope\") (func (export \"call\")",
    );
    let module = harness.deploy_wat("reverts", &wat).unwrap();
    let receipt = harness.call(module, b"");
    assert_eq!(receipt.status, CallStatus::Revert(b"nope".to_vec()));
    assert!(receipt.output.is_empty(), "output of a reverted call is dropped");
    assert_eq!(
        harness.overlay.scan_prefix(Namespace::wasm(module).prefix()).unwrap().len(),
        1,
        "only the module record remains"
    );
}

#[test]
fn state_slots_bytes_input_output_and_identities() {
    let mut harness = Harness::new();
    // Reads the input, echoes it reversed via storage, returns caller ++ self ++ slot 3 + 1 ++
    // storage_read's length for a missing key.
    let body = r#"
        (local $len i32)
        (local.set $len (call $input_len))
        (call $input_read (i32.const 100))
        (call $storage_write (i32.const 100) (local.get $len) (i32.const 100) (local.get $len))
        (call $state_set (i64.const 3) (i64.add (call $state_get (i64.const 3)) (i64.const 1)))
        (call $caller (i32.const 0))
        (call $self_identity (i32.const 20))
        (i64.store (i32.const 40) (call $state_get (i64.const 3)))
        (i32.store (i32.const 48) (call $storage_read (i32.const 200) (i32.const 3) (i32.const 0) (i32.const 0)))
        (drop (call $storage_read (i32.const 100) (local.get $len) (i32.const 52) (i32.const 2)))
        (call $output_write (i32.const 0) (i32.const 54))"#;
    let wat = module(IMPORTS, body)
        .replace("(func (export \"call\")", "(data (i32.const 200) \"zzz\") (func (export \"call\")");
    let module = harness.deploy_wat("echo", &wat).unwrap();
    for round in 1..=2u64 {
        let receipt = harness.call(module, b"hello");
        assert_eq!(receipt.status, CallStatus::Success);
        let output = receipt.output;
        assert_eq!(&output[..20], ALICE.as_bytes());
        assert_eq!(&output[20..40], module.as_bytes());
        assert_eq!(u64::from_le_bytes(output[40..48].try_into().unwrap()), round);
        assert_eq!(i32::from_le_bytes(output[48..52].try_into().unwrap()), -1);
        assert_eq!(&output[52..54], b"he", "storage_read copies at most the buffer's capacity");
    }
    let mut buffer = [0u8; kv_core::key::MAX_KEY_LEN];
    let key = Namespace::wasm(module).user_key(b"hello", &mut buffer).unwrap();
    assert_eq!(harness.overlay.get(key).unwrap().as_deref(), Some(&b"hello"[..]));
    // Slot 3 was incremented once per call.
    assert_eq!(harness.overlay.get_u64(&Namespace::wasm(module).slot_key(3)).unwrap(), 2);
}

#[test]
fn gas_is_deterministic_and_includes_host_calls() {
    let mut harness = Harness::new();
    let body = "(local $i i32) (loop $again (drop (call $state_get (i64.const 1))) (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $again (i32.lt_u (local.get $i) (i32.const 100))))";
    let module = deploy(&mut harness, body);
    let first = harness.call(module, b"");
    let second = harness.call(module, b"");
    assert_eq!(first.status, CallStatus::Success);
    assert_eq!(first.gas_used, second.gas_used);
    // One cold read of slot 1, then 99 warm ones, and a few instructions per iteration.
    let reads = gas::COLD_ACCESS + 99 * gas::WARM_ACCESS;
    let used = first.gas_used - harness.call_base(module);
    assert!(used >= reads, "{used}");
    assert!(used < reads + 100 * 30, "{used}");
}

#[test]
fn memory_does_not_grow_across_calls() {
    let mut harness = Harness::new();
    let body = "(drop (memory.grow (i32.const 1))) (i32.store (i32.const 0) (memory.size)) (call $output_write (i32.const 0) (i32.const 4))";
    let module = deploy(&mut harness, body);
    for _ in 0..3 {
        let receipt = harness.call(module, b"");
        assert_eq!(receipt.output, 2u32.to_le_bytes(), "every call starts from the declared memory");
    }
}

#[test]
fn a_module_cannot_write_outside_its_namespace() {
    let mut harness = Harness::new();
    // A user key shaped like a whole EVM storage key still lands under the module's own prefix.
    let mut evm_key = Namespace::evm(alloy_primitives::Address::repeat_byte(0xee)).word_key(&[1; 32]).to_vec();
    evm_key.truncate(kv_core::key::MAX_USER_KEY_LEN);
    let data: String = evm_key.iter().map(|byte| format!("\\{byte:02x}")).collect();
    let body =
        format!("(call $storage_write (i32.const 0) (i32.const {}) (i32.const 0) (i32.const 32))", evm_key.len());
    let wat = module(IMPORTS, &body)
        .replace("(func (export \"call\")", &format!("(data (i32.const 0) \"{data}\") (func (export \"call\")"));
    let module = harness.deploy_wat("escape", &wat).unwrap();
    assert!(harness.call(module, b"").is_success());
    let evm = harness.overlay.scan_prefix(&[kv_core::Engine::Evm.tag()]).unwrap();
    assert!(evm.is_empty(), "a WASM host function wrote EVM state: {evm:?}");
    assert_eq!(harness.overlay.scan_prefix(Namespace::wasm(module).prefix()).unwrap().len(), 2);
}

#[test]
fn calling_an_unknown_module_is_an_error() {
    let mut harness = Harness::new();
    let missing = kv_core::Identity([9; 20]);
    let error = harness
        .engine
        .call(
            &mut harness.overlay,
            &wasm_binding::CallRequest { module: missing, caller: ALICE, input: b"", gas_limit: GAS },
        )
        .unwrap_err();
    assert!(matches!(error, wasm_binding::CallError::UnknownModule(id) if id == missing), "{error}");
}

/// Every call pays `CALL_BASE` plus one unit per 16 bytes of code before its first instruction;
/// a limit below that ends the call out of gas without compiling or instantiating the module.
#[test]
fn the_call_base_is_charged_before_the_module_starts() {
    assert_eq!((gas::CALL_BASE, gas::CALL_GAS_PER_ARTIFACT_BYTE), (10_000, 1));
    for (bound, base) in [(0, 10_000), (1, 10_001), (65_536, 75_536), (u64::MAX, u64::MAX)] {
        assert_eq!(gas::call_base(bound), base, "a bound of {bound} bytes");
    }
    let mut harness = Harness::new();
    let module = deploy(&mut harness, "(call $state_set (i64.const 1) (i64.const 1))");
    harness.commit();
    let base = harness.call_base(module);
    let work = harness.call(module, b"").gas_used - base;
    harness.overlay = harness.store.begin();
    // Exactly enough succeeds; one unit less runs out of gas in the module, using the whole limit.
    let exact = harness.call_as(ALICE, module, b"", base + work);
    assert_eq!((exact.status, exact.gas_used), (CallStatus::Success, base + work));
    harness.overlay = harness.store.begin();
    let short = harness.call_as(ALICE, module, b"", base + work - 1);
    assert_eq!((short.status, short.gas_used), (CallStatus::OutOfGas, base + work - 1));
    assert_eq!(harness.overlay.get_u64(&Namespace::wasm(module).slot_key(1)).unwrap(), 0);
    // Below the base nothing runs, and on an engine that has not compiled the module yet (a
    // restarted node) nothing is compiled either.
    harness.commit();
    harness.engine = WasmEngine::new(common::CHAIN_ID);
    for limit in [0, 1, base - 1] {
        let receipt = harness.call_as(ALICE, module, b"", limit);
        assert_eq!((receipt.status, receipt.gas_used), (CallStatus::OutOfGas, limit));
    }
    assert_eq!((harness.engine.compilations(), harness.engine.cached_modules()), (0, 0));
    assert!(harness.call(module, b"").is_success());
    assert_eq!(harness.engine.compilations(), 1);
}

/// The code-size part of the base: the same entry point with a 1,600-byte data segment costs
/// exactly the extra code's bytes more (the artifact bound counts every byte of the code), though
/// the segment runs no instruction.
#[test]
fn the_call_base_grows_with_the_code() {
    let mut harness = Harness::new();
    let with_data = |bytes: usize| {
        module(IMPORTS, "").replace(
            "(func (export \"call\")",
            &format!("(data (i32.const 0) \"{}\") (func (export \"call\")", "x".repeat(bytes)),
        )
    };
    let (small, large) = (with_data(16), with_data(1_616));
    let (small_len, large_len) = (wat::parse_str(&small).unwrap().len(), wat::parse_str(&large).unwrap().len());
    let small = harness.deploy_wat("small", &small).unwrap();
    let large = harness.deploy_wat("large", &large).unwrap();
    let extra = harness.call(large, b"").gas_used - harness.call(small, b"").gas_used;
    assert_eq!(extra, (large_len - small_len) as u64);
    assert!(extra >= 1_600, "{extra}");
}

/// A module whose entry point reads a 4-byte little-endian length `$n` from its input, then runs
/// `body`, over a one-page memory whose first bytes are "key-and-value".
fn length_probe(harness: &mut Harness, name: &str, body: &str) -> kv_core::Identity {
    let body =
        format!("(local $n i32) (call $input_read (i32.const 0)) (local.set $n (i32.load (i32.const 0))) {body}");
    let wat = module(IMPORTS, &body)
        .replace("(func (export \"call\")", "(data (i32.const 100) \"key-and-value\") (func (export \"call\")");
    harness.deploy_wat(name, &wat).unwrap()
}

/// Per-byte prices are exact: 100 more bytes cost exactly 100 times the byte's price more, for
/// every length a host function is given. A new entry also pays growth for every byte beyond an
/// EVM slot's shape (32 key and 32 value bytes): 69 of the 101 here.
#[test]
fn per_byte_prices_are_exact() {
    let written = 100 * gas::PER_BYTE_WRITTEN + 69 * gas::GROWTH_PER_BYTE;
    let cases: &[(&str, &str, u64)] = &[
        (
            "value written",
            "(call $storage_write (i32.const 100) (i32.const 4) (i32.const 200) (local.get $n))",
            written,
        ),
        ("key written", "(call $storage_write (i32.const 100) (local.get $n) (i32.const 200) (i32.const 1))", written),
        ("key read", "(drop (call $storage_read (i32.const 100) (local.get $n) (i32.const 400) (i32.const 0)))", 100),
        (
            "bytes copied out",
            "(call $storage_write (i32.const 100) (i32.const 3) (i32.const 1000) (i32.const 500)) (drop (call $storage_read (i32.const 100) (i32.const 3) (i32.const 2000) (local.get $n)))",
            100,
        ),
        ("key removed", "(call $storage_remove (i32.const 100) (local.get $n))", 100),
        ("output", "(call $output_write (i32.const 100) (local.get $n))", 100),
        ("revert data", "(call $revert (i32.const 100) (local.get $n))", 100),
    ];
    for (what, body, expected) in cases {
        // Each call on a fresh state, so both make the same first writes.
        let call = |n: u32| {
            let mut harness = Harness::new();
            let module = length_probe(&mut harness, "probe", body);
            harness.call(module, &n.to_le_bytes())
        };
        let (one, hundred_one) = (call(1), call(101));
        assert_eq!(std::mem::discriminant(&one.status), std::mem::discriminant(&hundred_one.status), "{what}");
        assert!(matches!(one.status, CallStatus::Success | CallStatus::Revert(_)), "{what}: {:?}", one.status);
        assert_eq!(hundred_one.gas_used - one.gas_used, *expected, "{what}");
    }
    // `input_read` copies the whole input: 100 more input bytes cost 100 more.
    let mut harness = Harness::new();
    let module = deploy(&mut harness, "(call $input_read (i32.const 0))");
    assert_eq!(harness.call(module, &[7; 101]).gas_used - harness.call(module, &[7; 1]).gas_used, 100);
}

/// A host function charges for what it is given before doing the work: one unit short of the
/// whole price, the call ends out of gas even where the work itself would have trapped (the range
/// lies outside memory); with enough gas the trap comes after the whole price was paid.
#[test]
fn lengths_are_paid_before_the_work() {
    // What `storage_write` charges before copying anything: its bytes; the access and the write
    // are charged once the key and the value are known.
    let bytes = |key: u64, value: u64| gas::PER_BYTE_WRITTEN * (key + value);
    let new_entry = |key: u64, value: u64| {
        bytes(key, value) + gas::COLD_ACCESS + gas::STORE_SET + gas::GROWTH_PER_BYTE * (value.saturating_sub(32))
    };
    // (what, body, $n, the price of the host calls, the trap with enough gas)
    let cases: &[(&str, &str, u32, u64, &str)] = &[
        (
            "storage_write",
            "(call $storage_write (i32.const 100) (i32.const 4) (i32.const 60000) (local.get $n))",
            16_384,
            bytes(4, 16_384),
            "storage_write: value at 0x0000ea60",
        ),
        (
            "storage_read key",
            "(drop (call $storage_read (i32.const 65500) (local.get $n) (i32.const 0) (i32.const 0)))",
            128,
            gas::WARM_ACCESS + 128,
            "storage_read: key at 0x0000ffdc",
        ),
        (
            "storage_read copy",
            "(call $storage_write (i32.const 100) (i32.const 3) (i32.const 0) (i32.const 500)) (drop (call $storage_read (i32.const 100) (i32.const 3) (i32.const 65500) (local.get $n)))",
            500,
            new_entry(3, 500) + gas::WARM_ACCESS + 3 + 500,
            "storage_read: output buffer at 0x0000ffdc",
        ),
        (
            "storage_remove",
            "(call $storage_remove (i32.const 65500) (local.get $n))",
            128,
            128,
            "storage_remove: key at 0x0000ffdc",
        ),
        (
            "output_write",
            "(call $output_write (i32.const 60000) (local.get $n))",
            16_384,
            gas::CONTEXT + 16_384,
            "output_write: output at 0x0000ea60",
        ),
        (
            "revert",
            "(call $revert (i32.const 60000) (local.get $n))",
            16_384,
            gas::CONTEXT + 16_384,
            "revert: revert data at 0x0000ea60",
        ),
    ];
    for (what, body, n, price, trap) in cases {
        let mut harness = Harness::new();
        let module = length_probe(&mut harness, "long", body);
        // The probe's own `input_read` and instructions come on top of `price`.
        let limit = harness.call_base(module) + price - 1;
        let short = harness.call_as(ALICE, module, &n.to_le_bytes(), limit);
        assert_eq!((short.status, short.gas_used), (CallStatus::OutOfGas, limit), "{what}");
        let trapped = harness.call(module, &n.to_le_bytes());
        assert_trap(&trapped, trap);
        assert!(trapped.gas_used > limit, "{what}: the trap came before paying ({})", trapped.gas_used);
    }
    // In bounds too: a 16 KiB write short of gas ends out of gas and writes nothing.
    let mut harness = Harness::new();
    let module = length_probe(
        &mut harness,
        "write",
        "(call $storage_write (i32.const 100) (i32.const 4) (i32.const 0) (local.get $n))",
    );
    let receipt = harness.call_as(ALICE, module, &16_384u32.to_le_bytes(), harness.call_base(module) + 100_000);
    assert_eq!(receipt.status, CallStatus::OutOfGas);
    assert_eq!(harness.overlay.scan_prefix(Namespace::wasm(module).prefix()).unwrap().len(), 1);
}

/// `state_set(slot, 0)` removes the entry (it does not store eight zero bytes).
#[test]
fn setting_a_slot_to_zero_removes_it() {
    let mut harness = Harness::new();
    let module =
        length_probe(&mut harness, "zero", "(call $state_set (i64.const 5) (i64.extend_i32_u (local.get $n)))");
    let key = Namespace::wasm(module).slot_key(5);
    assert!(harness.call(module, &7u32.to_le_bytes()).is_success());
    harness.commit();
    assert_eq!(harness.overlay.get(&key).unwrap().as_deref(), Some(&7u64.to_be_bytes()[..]));
    assert!(harness.call(module, &0u32.to_le_bytes()).is_success());
    assert_eq!(harness.overlay.get(&key).unwrap(), None);
    harness.commit();
    assert_eq!(harness.overlay.get(&key).unwrap(), None);
    assert_eq!(harness.overlay.scan_prefix(Namespace::wasm(module).prefix()).unwrap().len(), 1, "only the record");
}

/// Slot `n` is the 8-byte user key `n`, so bytes written there through `storage_write` are seen
/// by `state_get`, which traps unless they are exactly 8 bytes.
#[test]
fn state_get_traps_on_a_slot_holding_other_than_eight_bytes() {
    let mut harness = Harness::new();
    // Input 0 writes the 3 bytes "abc" under the user key 00..09 (slot 9); any other input reads
    // slot 9.
    let body = "(if (i32.eqz (local.get $n)) \
        (then (call $storage_write (i32.const 16) (i32.const 8) (i32.const 32) (i32.const 3))) \
        (else (i64.store (i32.const 48) (call $state_get (i64.const 9))) (call $output_write (i32.const 48) (i32.const 8))))";
    let wat = module(
        IMPORTS,
        &format!("(local $n i32) (call $input_read (i32.const 0)) (local.set $n (i32.load (i32.const 0))) {body}"),
    )
    .replace(
        "(func (export \"call\")",
        r#"(data (i32.const 16) "\00\00\00\00\00\00\00\09") (data (i32.const 32) "abc") (func (export "call")"#,
    );
    let module = harness.deploy_wat("alias", &wat).unwrap();
    assert!(harness.call(module, &0u32.to_le_bytes()).is_success());
    assert_eq!(harness.overlay.get(&Namespace::wasm(module).slot_key(9)).unwrap().as_deref(), Some(&b"abc"[..]));
    let receipt = harness.call(module, &1u32.to_le_bytes());
    assert_trap(&receipt, "state_get: slot 9 holds a 3-byte value, not a u64");
    // Eight bytes are a u64, read big-endian.
    let mut buffer = [0u8; kv_core::key::MAX_KEY_LEN];
    let key = Namespace::wasm(module).user_key(&9u64.to_be_bytes(), &mut buffer).unwrap().to_vec();
    harness.overlay.set(&key, &[0, 0, 0, 0, 0, 0, 1, 2]).unwrap();
    assert_eq!(harness.call(module, &1u32.to_le_bytes()).output, 0x0102u64.to_le_bytes());
}

#[test]
fn storage_remove_removes_and_absent_keys_are_fine() {
    let mut harness = Harness::new();
    // Input 1 writes "key" = "and"; input 2 removes "key"; input 3 removes "kez", never written.
    let body = r#"
        (if (i32.eq (local.get $n) (i32.const 1)) (then (call $storage_write (i32.const 100) (i32.const 3) (i32.const 104) (i32.const 3))))
        (if (i32.eq (local.get $n) (i32.const 2)) (then (call $storage_remove (i32.const 100) (i32.const 3))))
        (if (i32.eq (local.get $n) (i32.const 3)) (then (i32.store8 (i32.const 102) (i32.const 0x7a)) (call $storage_remove (i32.const 100) (i32.const 3))))"#;
    let module = length_probe(&mut harness, "remove", body);
    let mut buffer = [0u8; kv_core::key::MAX_KEY_LEN];
    let key = Namespace::wasm(module).user_key(b"key", &mut buffer).unwrap().to_vec();
    assert!(harness.call(module, &1u32.to_le_bytes()).is_success());
    harness.commit();
    assert_eq!(harness.overlay.get(&key).unwrap().as_deref(), Some(&b"and"[..]));
    assert!(harness.call(module, &3u32.to_le_bytes()).is_success(), "removing an absent key is fine");
    assert_eq!(harness.overlay.get(&key).unwrap().as_deref(), Some(&b"and"[..]), "and removes nothing else");
    assert!(harness.call(module, &2u32.to_le_bytes()).is_success());
    assert_eq!(harness.overlay.get(&key).unwrap(), None);
    harness.commit();
    assert_eq!(harness.overlay.scan_prefix(Namespace::wasm(module).prefix()).unwrap().len(), 1, "only the record");
}

#[test]
fn output_write_replaces_earlier_output() {
    let mut harness = Harness::new();
    let body = "(call $output_write (i32.const 100) (i32.const 3)) (call $output_write (i32.const 108) (i32.const 5))";
    let module = length_probe(&mut harness, "output", body);
    assert_eq!(harness.call(module, &0u32.to_le_bytes()).output, b"value");
}

/// Host functions that define an existing name are refused, whether the name is the core ABI's or
/// another extension's.
#[test]
fn duplicate_host_functions_are_refused() {
    struct Named(&'static str);
    impl HostExtension for Named {
        fn functions(&self, store: &mut wasmer::Store, env: &FunctionEnv<HostEnv>) -> Vec<(&'static str, Function)> {
            fn nothing(_: FunctionEnvMut<'_, HostEnv>) {}
            vec![(self.0, Function::new_typed_with_env(store, env, nothing))]
        }
    }
    let error = WasmEngine::new(1).with_extension(Arc::new(Named("state_get"))).err().unwrap();
    assert_eq!(error.0, "state_get");
    let engine = WasmEngine::new(1).with_extension(Arc::new(Named("extra"))).unwrap();
    let error = engine.with_extension(Arc::new(Named("extra"))).err().unwrap();
    assert_eq!(error.0, "extra");
    assert!(error.to_string().contains("`extra`"), "{error}");
}

/// A module that passed validation but cannot be instantiated here is an error of the call (a
/// fault of this machine), not a receipt: an extension that changes a function's signature after
/// modules were validated against it makes linking fail.
#[test]
fn instantiation_failures_are_errors_of_the_call() {
    struct Fickle(AtomicBool);
    impl HostExtension for Fickle {
        fn functions(&self, store: &mut wasmer::Store, env: &FunctionEnv<HostEnv>) -> Vec<(&'static str, Function)> {
            fn narrow(_: FunctionEnvMut<'_, HostEnv>, _: u32) {}
            fn wide(_: FunctionEnvMut<'_, HostEnv>, _: u64) {}
            let function = if self.0.swap(true, AtomicOrdering::Relaxed) {
                Function::new_typed_with_env(store, env, wide)
            } else {
                Function::new_typed_with_env(store, env, narrow)
            };
            vec![("fickle", function)]
        }
    }
    let mut harness = Harness::new();
    harness.engine =
        WasmEngine::new(common::CHAIN_ID).with_extension(Arc::new(Fickle(AtomicBool::new(false)))).unwrap();
    let wat = module(
        r#"(import "xstate" "fickle" (func $fickle (param i32))) (import "xstate" "state_set" (func $state_set (param i64 i64)))"#,
        "(call $state_set (i64.const 1) (i64.const 1)) (call $fickle (i32.const 0))",
    );
    let module = harness.deploy_wat("fickle", &wat).unwrap();
    let error = harness
        .engine
        .call(&mut harness.overlay, &CallRequest { module, caller: ALICE, input: b"", gas_limit: GAS })
        .unwrap_err();
    match error {
        CallError::Instantiation { identity, reason } => {
            assert_eq!(identity, module);
            assert!(!reason.is_empty());
        }
        other => panic!("expected an instantiation error, got {other:?}"),
    }
    assert_eq!(harness.overlay.get_u64(&Namespace::wasm(module).slot_key(1)).unwrap(), 0);
    assert!(!harness.overlay.has_open_checkpoint());
}

/// A host function that meets a state error hands it to `state_failure`, which decides by type: a
/// refused request is the guest's doing and traps it (the call is a receipt, its writes undone, the
/// block goes on); a failure of the store aborts the call with `CallError::State`, so the runtime
/// abandons the block. No message is inspected.
#[test]
fn refusals_trap_the_guest_and_failures_abort_the_call() {
    use kv_core::{BackendError, Refusal, StateError, StateFailure};
    use wasm_binding::state_failure;
    struct Erring;
    impl HostExtension for Erring {
        fn functions(&self, store: &mut wasmer::Store, env: &FunctionEnv<HostEnv>) -> Vec<(&'static str, Function)> {
            fn refuse(_: FunctionEnvMut<'_, HostEnv>) -> Result<(), wasmer::RuntimeError> {
                Err(state_failure("refuse", StateError::Refused(Refusal::CodeRemoval)))
            }
            fn break_store(_: FunctionEnvMut<'_, HostEnv>) -> Result<(), wasmer::RuntimeError> {
                Err(state_failure("break_store", StateError::from(BackendError::Corrupt("a torn page".into()))))
            }
            vec![
                ("refuse", Function::new_typed_with_env(store, env, refuse)),
                ("break_store", Function::new_typed_with_env(store, env, break_store)),
            ]
        }
    }
    for (function, refused) in [("refuse", true), ("break_store", false)] {
        let mut harness = Harness::new();
        harness.engine = WasmEngine::new(common::CHAIN_ID).with_extension(Arc::new(Erring)).unwrap();
        let wat = module(
            &format!(
                r#"(import "xstate" "{function}" (func $erring)) (import "xstate" "state_set" (func $state_set (param i64 i64)))"#
            ),
            "(call $state_set (i64.const 1) (i64.const 1)) (call $erring)",
        );
        let module = harness.deploy_wat(function, &wat).unwrap();
        let result = harness
            .engine
            .call(&mut harness.overlay, &CallRequest { module, caller: ALICE, input: b"", gas_limit: GAS });
        if refused {
            assert_trap(&result.unwrap(), "refuse: code blobs are never deleted");
        } else {
            match result {
                Err(CallError::State(StateError::Failed(StateFailure::Backend(BackendError::Corrupt(reason))))) => {
                    assert_eq!(reason, "a torn page");
                }
                other => panic!("expected the call to fail with the store's error, got {other:?}"),
            }
        }
        assert_eq!(harness.overlay.get_u64(&Namespace::wasm(module).slot_key(1)).unwrap(), 0, "{function}");
        assert!(!harness.overlay.has_open_checkpoint());
    }
}

/// A panic inside a host function unwinds out of `WasmEngine::call` as a panic of the caller's
/// thread (wasmer carries it across the guest's frames), where the runtime's boundary catches it;
/// it never aborts the process, leaves no checkpoint open and the engine serves the next call.
#[test]
fn a_panicking_host_function_unwinds_to_the_caller_and_the_engine_goes_on() {
    struct Panicking;
    impl HostExtension for Panicking {
        fn functions(&self, store: &mut wasmer::Store, env: &FunctionEnv<HostEnv>) -> Vec<(&'static str, Function)> {
            fn explode(_: FunctionEnvMut<'_, HostEnv>) {
                panic!("host function bug");
            }
            vec![("explode", Function::new_typed_with_env(store, env, explode))]
        }
    }
    let mut harness = Harness::new();
    harness.engine = WasmEngine::new(common::CHAIN_ID).with_extension(Arc::new(Panicking)).unwrap();
    let wat = module(
        r#"(import "xstate" "explode" (func $explode)) (import "xstate" "state_set" (func $state_set (param i64 i64)))"#,
        "(call $state_set (i64.const 1) (i64.const 1)) (call $explode)",
    );
    let exploding = harness.deploy_wat("exploding", &wat).unwrap();
    let engine = &harness.engine;
    let overlay = &mut harness.overlay;
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        engine.call(overlay, &CallRequest { module: exploding, caller: ALICE, input: b"", gas_limit: GAS })
    }))
    .unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>().copied(), Some("host function bug"));

    // The engine still works; the overlay that saw the panic is the caller's to drop, as the
    // runtime does with a block's overlay.
    harness.overlay = harness.store.begin();
    let calm = harness.deploy_wat("calm", &module(IMPORTS, "(call $state_set (i64.const 1) (i64.const 7))")).unwrap();
    assert!(matches!(harness.call(calm, b"").status, CallStatus::Success));
    assert_eq!(harness.overlay.get_u64(&Namespace::wasm(calm).slot_key(1)).unwrap(), 7);
}
