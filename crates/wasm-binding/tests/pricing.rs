//! Storage prices through real calls, pinned to the unit: warm and cold access per call, EIP-2200
//! writes with EIP-3529 refunds (EIP-3529's own test cases), growth per byte beyond an EVM slot's
//! shape, and the refund cap.
//!
//! Every case runs its operations twice: in a module calling the real host functions and in a
//! module calling free twins with the same signatures (a test extension that does nothing and
//! charges nothing). Both modules have the same imports and run the same instructions, so the
//! difference in gas is exactly what the real functions charged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ALICE, Harness};
use kv_core::{Identity, Namespace};
use std::sync::Arc;
use wasm_binding::gas::{
    CLEAR_REFUND, COLD_ACCESS, GROWTH_PER_BYTE, PER_BYTE_READ, PER_BYTE_WRITTEN, STORE_RESET, STORE_SET, WARM_ACCESS,
    WASM_GAS_PER_EVM_GAS,
};
use wasm_binding::{CallStatus, HostEnv, HostExtension, WasmEngine};
use wasmer::{Function, FunctionEnv, FunctionEnvMut};

include!("data/eip_3529.rs");

/// Twins of the storage functions that do nothing and cost nothing.
struct Free;

impl HostExtension for Free {
    fn functions(&self, store: &mut wasmer::Store, env: &FunctionEnv<HostEnv>) -> Vec<(&'static str, Function)> {
        fn get(_: FunctionEnvMut<'_, HostEnv>, _: u64) -> u64 {
            0
        }
        fn set(_: FunctionEnvMut<'_, HostEnv>, _: u64, _: u64) {}
        fn read(_: FunctionEnvMut<'_, HostEnv>, _: u32, _: u32, _: u32, _: u32) -> i32 {
            -1
        }
        fn write(_: FunctionEnvMut<'_, HostEnv>, _: u32, _: u32, _: u32, _: u32) {}
        fn remove(_: FunctionEnvMut<'_, HostEnv>, _: u32, _: u32) {}
        vec![
            ("free_state_get", Function::new_typed_with_env(store, env, get)),
            ("free_state_set", Function::new_typed_with_env(store, env, set)),
            ("free_storage_read", Function::new_typed_with_env(store, env, read)),
            ("free_storage_write", Function::new_typed_with_env(store, env, write)),
            ("free_storage_remove", Function::new_typed_with_env(store, env, remove)),
        ]
    }
}

/// One host call of a case.
#[derive(Clone, Copy, Debug)]
enum Op<'a> {
    /// `state_get(slot)`.
    Get(u64),
    /// `state_set(slot, value)`.
    Set(u64, u64),
    /// `storage_read(key)` copying at most this many bytes out.
    Read(&'a [u8], u32),
    /// `storage_write(key, value)` of a value of this many bytes, all equal to the byte given.
    Write(&'a [u8], usize, u8),
    /// `storage_remove(key)`.
    Remove(&'a [u8]),
    /// A loop of this many iterations and no host call: raises the gas used, and so the refund
    /// cap, without costing the real module more than the free one.
    Burn(u32),
}

const IMPORTS: &str = r#"
    (import "xstate" "state_get" (func $state_get (param i64) (result i64)))
    (import "xstate" "state_set" (func $state_set (param i64 i64)))
    (import "xstate" "storage_read" (func $storage_read (param i32 i32 i32 i32) (result i32)))
    (import "xstate" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
    (import "xstate" "storage_remove" (func $storage_remove (param i32 i32)))
    (import "xstate" "input_read" (func $input_read (param i32)))
    (import "xstate" "free_state_get" (func $free_state_get (param i64) (result i64)))
    (import "xstate" "free_state_set" (func $free_state_set (param i64 i64)))
    (import "xstate" "free_storage_read" (func $free_storage_read (param i32 i32 i32 i32) (result i32)))
    (import "xstate" "free_storage_write" (func $free_storage_write (param i32 i32 i32 i32)))
    (import "xstate" "free_storage_remove" (func $free_storage_remove (param i32 i32)))
"#;

/// Where `storage_read` copies to.
const OUT: usize = 0;
/// Where the data segments start (after the output buffer).
const DATA: usize = 16_384;

/// A module whose call `i` (its input is the single byte `i`) runs `calls[i]` against the real
/// host functions (`prefix` "") or their free twins (`prefix` "free_"). Both have the same size
/// and run the same instructions.
fn module_wat(calls: &[&[Op<'_>]], prefix: &str) -> String {
    let mut data = String::new();
    let mut offset = DATA;
    let mut segment = |bytes: &[u8], data: &mut String| {
        let escaped: String = bytes.iter().map(|byte| format!("\\{byte:02x}")).collect();
        data.push_str(&format!("(data (i32.const {offset}) \"{escaped}\")"));
        let at = offset;
        offset += bytes.len();
        at
    };
    let mut call_op = |op: &Op<'_>, data: &mut String| match *op {
        Op::Get(slot) => format!("(drop (call ${prefix}state_get (i64.const {slot})))"),
        Op::Set(slot, value) => format!("(call ${prefix}state_set (i64.const {slot}) (i64.const {value}))"),
        Op::Read(key, capacity) => {
            let at = segment(key, data);
            format!(
                "(drop (call ${prefix}storage_read (i32.const {at}) (i32.const {}) (i32.const {OUT}) (i32.const {capacity})))",
                key.len()
            )
        }
        Op::Write(key, len, fill) => {
            let key_at = segment(key, data);
            let value_at = segment(&vec![fill; len], data);
            format!(
                "(call ${prefix}storage_write (i32.const {key_at}) (i32.const {}) (i32.const {value_at}) (i32.const {len}))",
                key.len()
            )
        }
        Op::Remove(key) => {
            let at = segment(key, data);
            format!("(call ${prefix}storage_remove (i32.const {at}) (i32.const {}))", key.len())
        }
        Op::Burn(iterations) => format!(
            "(local.set $i (i32.const {iterations})) (loop $burn (br_if $burn (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))"
        ),
    };
    // A dispatch on the input byte: the innermost block is call 0's, so the code after its end
    // runs call 0's operations, and so on outwards.
    let mut body = String::from("(local $i i32) (call $input_read (i32.const 0)) (block $end ");
    for index in (0..calls.len()).rev() {
        body.push_str(&format!("(block $c{index} "));
    }
    let targets: String = (0..calls.len()).map(|index| format!("$c{index} ")).collect();
    body.push_str(&format!("(br_table {targets}$end (i32.load8_u (i32.const 0)))"));
    for ops in calls {
        body.push(')');
        for op in *ops {
            let code = call_op(op, &mut data);
            body.push_str(&code);
        }
        body.push_str("(br $end)");
    }
    body.push(')');
    let pages = offset.div_ceil(65_536).max(1);
    format!(r#"(module {IMPORTS} (memory (export "memory") {pages} {pages}) {data} (func (export "call") {body}))"#)
}

/// A harness whose engine has the free twins.
fn harness() -> Harness {
    let mut harness = Harness::new();
    harness.engine = WasmEngine::new(common::CHAIN_ID).with_extension(Arc::new(Free)).unwrap();
    harness
}

/// What one call of a case charged for storage, before its refund, and the refund it got.
#[derive(Debug, PartialEq, Eq)]
struct Priced {
    charged: u64,
    refunded: u64,
    /// The whole call's gas before the refund (for checking the cap).
    total: u64,
}

/// Runs each call of `calls` in turn on one module, after writing `setup` (user key, value) into
/// its namespace, and returns what each call charged for storage.
fn price(setup: &[(&[u8], &[u8])], calls: &[&[Op<'_>]]) -> Vec<Priced> {
    let mut harness = harness();
    let real = harness.deploy_wat("real", &module_wat(calls, "")).unwrap();
    let free = harness.deploy_wat("free", &module_wat(calls, "free_")).unwrap();
    assert_eq!(harness.call_base(real), harness.call_base(free), "the two modules differ in size");
    for (key, value) in setup {
        harness.overlay.set(&user_key(real, key), value).unwrap();
    }
    harness.commit();
    (0..calls.len())
        .map(|index| {
            let input = [u8::try_from(index).unwrap()];
            let free_receipt = harness.call_as(ALICE, free, &input, u64::MAX / 4);
            let receipt = harness.call_as(ALICE, real, &input, u64::MAX / 4);
            assert_eq!(free_receipt.status, CallStatus::Success, "{free_receipt:?}");
            assert_eq!(receipt.status, CallStatus::Success, "{receipt:?}");
            assert_eq!(free_receipt.gas_refunded, 0);
            let total = receipt.gas_used + receipt.gas_refunded;
            Priced { charged: total - free_receipt.gas_used, refunded: receipt.gas_refunded, total }
        })
        .collect()
}

fn user_key(module: Identity, key: &[u8]) -> Vec<u8> {
    let mut buffer = [0u8; kv_core::key::MAX_KEY_LEN];
    Namespace::wasm(module).user_key(key, &mut buffer).unwrap().to_vec()
}

/// One call's storage charge, with no refund expected.
fn charged(setup: &[(&[u8], &[u8])], ops: &[Op<'_>]) -> u64 {
    let priced = price(setup, &[ops]).remove(0);
    assert_eq!(priced.refunded, 0, "{ops:?}");
    priced.charged
}

const SLOT_1: &[u8] = &1u64.to_be_bytes();
const KEY_32: &[u8] = &[0x33; 32];

#[test]
fn reads_are_cold_once_per_key_and_call_then_warm() {
    let five = 5u64.to_be_bytes();
    let cases: &[(&str, &[(&[u8], &[u8])], &[Op<'_>], u64)] = &[
        ("one cold read", &[], &[Op::Get(1)], COLD_ACCESS),
        ("cold, then warm", &[], &[Op::Get(1), Op::Get(1), Op::Get(1)], COLD_ACCESS + 2 * WARM_ACCESS),
        ("two keys, both cold", &[], &[Op::Get(1), Op::Get(2)], 2 * COLD_ACCESS),
        ("a present value costs the same", &[(SLOT_1, &five)], &[Op::Get(1), Op::Get(1)], COLD_ACCESS + WARM_ACCESS),
        ("storage_read pays its key bytes", &[], &[Op::Read(b"key", 64)], COLD_ACCESS + 3 * PER_BYTE_READ),
        (
            "and the bytes it copies out",
            &[(b"key", &[7; 100])],
            &[Op::Read(b"key", 64), Op::Read(b"key", 1_000)],
            COLD_ACCESS + WARM_ACCESS + (3 + 64 + 3 + 100) * PER_BYTE_READ,
        ),
        // Slot 1 is the 8-byte user key 1: both functions reach the same entry, warm after either.
        ("slots and byte keys share the set", &[], &[Op::Get(1), Op::Read(SLOT_1, 0)], COLD_ACCESS + WARM_ACCESS + 8),
        ("a byte key warms its slot", &[], &[Op::Read(SLOT_1, 0), Op::Get(1)], COLD_ACCESS + 8 + WARM_ACCESS),
        (
            "a longer key is another entry",
            &[],
            &[Op::Get(1), Op::Read(&[0, 0, 0, 0, 0, 0, 0, 1, 0], 0)],
            2 * COLD_ACCESS + 9,
        ),
        ("a write warms the key for reads", &[], &[Op::Set(1, 5), Op::Get(1)], COLD_ACCESS + STORE_SET + WARM_ACCESS),
        ("a read warms the key for writes", &[], &[Op::Get(1), Op::Set(1, 5)], COLD_ACCESS + STORE_SET),
    ];
    for (what, setup, ops, expected) in cases {
        assert_eq!(charged(setup, ops), *expected, "{what}");
    }
}

/// The access set belongs to one call: the next call starts cold again.
#[test]
fn every_call_starts_with_an_empty_access_set() {
    let priced = price(&[], &[&[Op::Get(1), Op::Get(1)], &[Op::Get(1)]]);
    assert_eq!(priced[0].charged, COLD_ACCESS + WARM_ACCESS);
    assert_eq!(priced[1].charged, COLD_ACCESS);
}

/// EIP-3529's test cases through `state_set`, on a slot a `state_get` warmed first: the same gas
/// and the same refund counter as Ethereum's, in WASM gas. A burn loop raises the gas used so the
/// cap does not hide the counter.
#[test]
fn writes_follow_eip_3529s_test_cases() {
    for &(code, used, refund, original) in EIP_3529_CASES {
        let values = eip_3529_stored_values(code);
        let pushes = 3 * 2 * values.len() as u64;
        let mut ops = vec![Op::Burn(400_000), Op::Get(0)];
        ops.extend(values.iter().map(|&value| Op::Set(0, value)));
        let original_bytes = original.to_be_bytes();
        let zero: &[u8] = &0u64.to_be_bytes();
        let setup: Vec<(&[u8], &[u8])> = if original == 0 { vec![] } else { vec![(zero, &original_bytes[..])] };
        let priced = price(&setup, &[&ops]).remove(0);
        let what = format!("{code} on original {original}");
        assert_eq!(priced.charged, COLD_ACCESS + (used - pushes) * WASM_GAS_PER_EVM_GAS, "{what}");
        assert!(priced.total / 5 >= refund.unsigned_abs() * WASM_GAS_PER_EVM_GAS, "{what}: the cap binds");
        assert_eq!(priced.refunded, refund.unsigned_abs() * WASM_GAS_PER_EVM_GAS, "{what}");
    }
}

/// A removal's refund is capped at a fifth of the call's gas, as EIP-3529 caps it.
#[test]
fn refunds_are_capped_at_a_fifth_of_the_gas_used() {
    let one = 1u64.to_be_bytes();
    let priced = price(&[(SLOT_1, &one)], &[&[Op::Set(1, 0)]]).remove(0);
    assert_eq!(priced.charged, COLD_ACCESS + STORE_RESET);
    assert!(priced.total / 5 < CLEAR_REFUND, "this call is too small for the whole refund");
    assert_eq!(priced.refunded, priced.total / 5);
    // A failed call gets no refund, and its writes are discarded.
    let mut harness = harness();
    let wat = module_wat(&[&[Op::Set(1, 0)]], "").replace("(br $end))", "unreachable)");
    let module = harness.deploy_wat("fails", &wat).unwrap();
    harness.overlay.set(&user_key(module, SLOT_1), &one).unwrap();
    let receipt = harness.call(module, &[0]);
    assert!(matches!(receipt.status, CallStatus::Trap(_)), "{receipt:?}");
    assert_eq!(receipt.gas_refunded, 0);
}

/// The same prices through the byte-keyed functions, which also pay for the bytes they copy.
#[test]
fn byte_keyed_writes_are_priced_like_slots_plus_their_bytes() {
    let written = |key: u64, value: u64| (key + value) * PER_BYTE_WRITTEN;
    let present: &[(&[u8], &[u8])] = &[(b"key", &[1; 32])];
    let cases: &[(&str, &[(&[u8], &[u8])], &[Op<'_>], u64, i64)] = &[
        ("a new entry", &[], &[Op::Write(b"key", 32, 1)], COLD_ACCESS + STORE_SET + written(3, 32), 0),
        (
            "rewriting the same value",
            present,
            &[Op::Write(b"key", 32, 1)],
            COLD_ACCESS + WARM_ACCESS + written(3, 32),
            0,
        ),
        (
            "changing a present entry",
            present,
            &[Op::Write(b"key", 32, 2)],
            COLD_ACCESS + STORE_RESET + written(3, 32),
            0,
        ),
        (
            "a second change",
            present,
            &[Op::Write(b"key", 32, 2), Op::Write(b"key", 32, 3)],
            COLD_ACCESS + STORE_RESET + WARM_ACCESS + 2 * written(3, 32),
            0,
        ),
        (
            "restoring the original",
            present,
            &[Op::Write(b"key", 32, 2), Op::Write(b"key", 32, 1)],
            COLD_ACCESS + STORE_RESET + WARM_ACCESS + 2 * written(3, 32),
            (STORE_RESET - WARM_ACCESS) as i64,
        ),
        (
            "a value of another length is not the original",
            present,
            &[Op::Write(b"key", 31, 1), Op::Write(b"key", 30, 1)],
            COLD_ACCESS + STORE_RESET + WARM_ACCESS + written(3, 31) + written(3, 30),
            0,
        ),
        (
            "removing a present entry",
            present,
            &[Op::Remove(b"key")],
            COLD_ACCESS + STORE_RESET + 3,
            CLEAR_REFUND as i64,
        ),
        ("removing an absent key", &[], &[Op::Remove(b"key")], COLD_ACCESS + WARM_ACCESS + 3, 0),
        (
            "creating and removing in one call",
            &[],
            &[Op::Write(b"key", 32, 1), Op::Remove(b"key")],
            COLD_ACCESS + STORE_SET + WARM_ACCESS + written(3, 32) + 3,
            (STORE_SET - WARM_ACCESS) as i64,
        ),
        (
            "removing and re-creating the original",
            present,
            &[Op::Remove(b"key"), Op::Write(b"key", 32, 1)],
            COLD_ACCESS + STORE_RESET + WARM_ACCESS + 3 + written(3, 32),
            (STORE_RESET - WARM_ACCESS) as i64,
        ),
    ];
    for (what, setup, ops, expected, refund) in cases {
        let mut ops = ops.to_vec();
        ops.insert(0, Op::Burn(400_000));
        let priced = price(setup, &[&ops]).remove(0);
        assert_eq!(priced.charged, *expected, "{what}");
        assert_eq!(priced.refunded, refund.unsigned_abs(), "{what}");
    }
}

/// Growth is charged per byte beyond an EVM slot's shape (a 32-byte key, a 32-byte value), and
/// per byte beyond what the call has paid for: the entry's size when the call started, or the
/// largest the call has made it. It is never refunded.
#[test]
fn growth_is_charged_per_byte_beyond_the_slot_shape() {
    let written = |key: usize, value: usize| (key + value) as u64 * PER_BYTE_WRITTEN;
    let new = |key: &[u8], len: usize| charged(&[], &[Op::Write(key, len, 1)]);
    // One byte more than the slot's shape costs exactly one byte's growth, in the key or the value.
    assert_eq!(new(KEY_32, 33) - new(KEY_32, 32), GROWTH_PER_BYTE + PER_BYTE_WRITTEN);
    assert_eq!(new(&[0x33; 33], 32) - new(KEY_32, 32), GROWTH_PER_BYTE + PER_BYTE_WRITTEN);
    assert_eq!(new(KEY_32, 1_032) - new(KEY_32, 32), 1_000 * (GROWTH_PER_BYTE + PER_BYTE_WRITTEN));
    // Below the shape nothing is charged for growth.
    assert_eq!(new(b"k", 1), COLD_ACCESS + STORE_SET + written(1, 1));
    // The largest entry: a 128-byte key and a 16 KiB value.
    assert_eq!(
        new(&[0x44; 128], 16_384),
        COLD_ACCESS + STORE_SET + (96 + 16_352) * GROWTH_PER_BYTE + written(128, 16_384)
    );
    // Growing a present entry pays for the bytes beyond its size when the call started.
    let present: &[(&[u8], &[u8])] = &[(KEY_32, &[1; 100])];
    assert_eq!(
        charged(present, &[Op::Write(KEY_32, 150, 2)]),
        COLD_ACCESS + STORE_RESET + 50 * GROWTH_PER_BYTE + written(32, 150)
    );
    // Shrinking is free of growth, and growing back within the call's paid size too.
    assert_eq!(
        charged(present, &[Op::Write(KEY_32, 10, 2), Op::Write(KEY_32, 100, 3)]),
        COLD_ACCESS + STORE_RESET + WARM_ACCESS + written(32, 10) + written(32, 100)
    );
    // Growing, shrinking and growing again in one call pays for the largest size once.
    assert_eq!(
        charged(&[], &[Op::Write(KEY_32, 200, 1), Op::Write(KEY_32, 1, 2), Op::Write(KEY_32, 200, 3)]),
        COLD_ACCESS + STORE_SET + 2 * WARM_ACCESS + 168 * GROWTH_PER_BYTE + written(32, 200) * 2 + written(32, 1)
    );
    // Each call pays for its own growth: the next call finds the entry at its new size.
    let priced = price(&[], &[&[Op::Write(KEY_32, 64, 1)], &[Op::Write(KEY_32, 96, 2)]]);
    assert_eq!(priced[0].charged, COLD_ACCESS + STORE_SET + 32 * GROWTH_PER_BYTE + written(32, 64));
    assert_eq!(priced[1].charged, COLD_ACCESS + STORE_RESET + 32 * GROWTH_PER_BYTE + written(32, 96));
}

/// A new 16 KiB value costs at least what its bytes cost as fresh EVM storage: 512 slots, each a
/// cold `SSTORE` of a new word (22,100 gas).
#[test]
fn a_new_16_kib_value_costs_at_least_512_fresh_evm_slots() {
    for key in [&b"k"[..], KEY_32] {
        let price = charged(&[], &[Op::Write(key, 16_384, 7)]);
        let evm = 512 * (2_100 + 20_000) * WASM_GAS_PER_EVM_GAS;
        assert!(price >= evm, "{price} < {evm} with a {}-byte key", key.len());
    }
}

/// Every path that ends a call early still charged before it worked: a write whose limit covers
/// the bytes and the cold surcharge but not the set runs out of gas and writes nothing.
#[test]
fn a_write_short_of_its_price_writes_nothing() {
    let mut harness = harness();
    let ops: &[&[Op<'_>]] = &[&[Op::Write(KEY_32, 1_000, 1)]];
    let module = harness.deploy_wat("short", &module_wat(ops, "")).unwrap();
    let free = harness.deploy_wat("free", &module_wat(ops, "free_")).unwrap();
    let instructions = harness.call(free, &[0]).gas_used;
    let price = COLD_ACCESS + STORE_SET + 968 * GROWTH_PER_BYTE + 1_032 * PER_BYTE_WRITTEN;
    let receipt = harness.call_as(ALICE, module, &[0], instructions + price - 1);
    assert_eq!((receipt.status, receipt.gas_used), (CallStatus::OutOfGas, instructions + price - 1));
    assert_eq!(harness.overlay.get(&user_key(module, KEY_32)).unwrap(), None);
    let receipt = harness.call_as(ALICE, module, &[0], instructions + price);
    assert_eq!((receipt.status, receipt.gas_used), (CallStatus::Success, instructions + price));
    assert_eq!(harness.overlay.get(&user_key(module, KEY_32)).unwrap(), Some(vec![1; 1_000]));
}
