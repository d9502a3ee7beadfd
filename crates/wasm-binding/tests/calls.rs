//! Calls: the host ABI's behaviour, gas, and every kind of bad input a running module can produce.
//! Each failing call must end as a receipt (never a host panic) and leave no trace in the state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ALICE, GAS, Harness, assert_trap, module};
use kv_core::Namespace;
use wasm_binding::{CallStatus, gas};

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
    let receipt = harness.call_as(ALICE, module, b"", 5_000);
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
        receipt.gas_used
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
    let receipt = harness.call_as(ALICE, module, b"", gas::STATE_SET + 1_000);
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
    // Enough for the few instructions, not for the host call's price.
    let receipt = harness.call_as(ALICE, module, b"", gas::STATE_GET / 2);
    assert_eq!(receipt.status, CallStatus::OutOfGas);
    assert_eq!(receipt.gas_used, gas::STATE_GET / 2);
    let receipt = harness.call_as(ALICE, module, b"", gas::STATE_GET + 100);
    assert_eq!(receipt.status, CallStatus::Success);
    assert!(receipt.gas_used > gas::STATE_GET && receipt.gas_used < gas::STATE_GET + 100, "{}", receipt.gas_used);
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
    // Writing 0 to a slot removes it, as the spec says.
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
    assert!(first.gas_used >= 100 * gas::STATE_GET, "{}", first.gas_used);
    assert!(first.gas_used < 100 * (gas::STATE_GET + 30), "{}", first.gas_used);
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
