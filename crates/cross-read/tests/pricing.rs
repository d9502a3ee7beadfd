//! One state, one price list: WASM storage costs what the EVM charges for the same effect, checked
//! against revm itself (EIP-3529's cases, cold first access included), cross reads share the
//! call's access set, and a block filled with the cheapest state growth WASM allows adds no more
//! bytes than a block filled with `SSTORE`s under the same gas.
//!
//! Prices are measured as in `wasm-binding`'s pricing tests: a module calling the real host
//! functions against one calling free twins with the same signatures, whose difference in gas is
//! exactly what the real functions charged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ALICE, World};
use cross_read::{EVM_STORAGE_READ_GAS, EVM_STORAGE_READ_WARM_GAS};
use evm_binding::revm::context::result::ExecutionResult;
use evm_binding::revm::primitives::{Address, TxKind, U256};
use evm_binding::{GenesisAccount, insert_account};
use kv_core::{Identity, ModuleName, Namespace};
use std::sync::Arc;
use wasm_binding::gas::{BlockGas, COLD_ACCESS, WARM_ACCESS, WASM_GAS_PER_EVM_GAS};
use wasm_binding::{CallRequest, CallStatus, HostEnv, HostExtension, Receipt, WasmEngine};
use wasmer::{Function, FunctionEnv, FunctionEnvMut};

include!("../../wasm-binding/tests/data/eip_3529.rs");

/// Free twins of the host functions these tests price.
struct Free;

impl HostExtension for Free {
    fn functions(&self, store: &mut wasmer::Store, env: &FunctionEnv<HostEnv>) -> Vec<(&'static str, Function)> {
        fn set(_: FunctionEnvMut<'_, HostEnv>, _: u64, _: u64) {}
        fn read(_: FunctionEnvMut<'_, HostEnv>, _: u32, _: u32, _: u32) {}
        fn get(_: FunctionEnvMut<'_, HostEnv>, _: u64) -> u64 {
            0
        }
        vec![
            ("free_state_set", Function::new_typed_with_env(store, env, set)),
            ("free_state_get", Function::new_typed_with_env(store, env, get)),
            ("free_evm_storage_read", Function::new_typed_with_env(store, env, read)),
        ]
    }
}

const IMPORTS: &str = r#"
    (import "xstate" "state_set" (func $state_set (param i64 i64)))
    (import "xstate" "state_get" (func $state_get (param i64) (result i64)))
    (import "xstate" "evm_storage_read" (func $evm_storage_read (param i32 i32 i32)))
    (import "xstate" "free_state_set" (func $free_state_set (param i64 i64)))
    (import "xstate" "free_state_get" (func $free_state_get (param i64) (result i64)))
    (import "xstate" "free_evm_storage_read" (func $free_evm_storage_read (param i32 i32 i32)))
"#;

const CONTRACT: Address = Address::repeat_byte(0xcc);

/// A module whose entry point runs `body` with `$P` standing for "" or "free_", over a memory
/// holding `CONTRACT`'s address at 0 and the storage keys 7 at 32 and 8 at 64.
fn twin_wat(body: &str, prefix: &str) -> String {
    let address: String = CONTRACT.iter().map(|byte| format!("\\{byte:02x}")).collect();
    format!(
        r#"(module {IMPORTS}
            (memory (export "memory") 1 1)
            (data (i32.const 0) "{address}") (data (i32.const 63) "\07") (data (i32.const 95) "\08")
            (func (export "call") (local $i i32) {}))"#,
        body.replace("$P", &format!("${prefix}"))
    )
}

fn engine() -> WasmEngine {
    cross_read::wasm_engine(common::CHAIN_ID).with_extension(Arc::new(Free)).unwrap()
}

fn call(world: &mut World, module: Identity, gas_limit: u64) -> Receipt {
    let request = CallRequest { module, caller: Identity::from(ALICE), input: b"", gas_limit };
    world.wasm.call(&mut world.overlay, &request).unwrap()
}

/// What `body` charged in host calls (before the refund), and the refund it got.
fn wasm_price(world: &mut World, name: &str, body: &str, setup: &[(u64, u64)]) -> (u64, u64) {
    let deploy = |world: &mut World, name: &str, prefix: &str| {
        let code = wat::parse_str(twin_wat(body, prefix)).unwrap();
        world.wasm.deploy(&mut world.overlay, &ModuleName::new(name).unwrap(), 1, &code).unwrap()
    };
    let real = deploy(world, name, "");
    let free = deploy(world, &format!("{name}-free"), "free_");
    for &(slot, value) in setup {
        world.overlay.set_u64(&Namespace::wasm(real).slot_key(slot), value).unwrap();
    }
    let free = call(world, free, u64::MAX / 4);
    let real = call(world, real, u64::MAX / 4);
    assert_eq!((free.status, &real.status), (CallStatus::Success, &CallStatus::Success), "{body}");
    (real.gas_used + real.gas_refunded - free.gas_used, real.gas_refunded)
}

fn world() -> World {
    let mut world = World::new();
    world.wasm = engine();
    let account = GenesisAccount { storage: vec![(U256::from(7), U256::from(0xbeef))], ..Default::default() };
    insert_account(&mut world.overlay, CONTRACT, &account).unwrap();
    world
}

/// `evm_storage_read` is cold on the call's first access to a word and warm after, and the
/// words it reads share the call's access set; a new call starts cold again.
#[test]
fn cross_reads_are_cold_then_warm_in_the_calls_access_set() {
    assert_eq!((EVM_STORAGE_READ_GAS, EVM_STORAGE_READ_WARM_GAS), (COLD_ACCESS, WARM_ACCESS));
    let read = |key: usize| format!("(call $Pevm_storage_read (i32.const 0) (i32.const {key}) (i32.const 200))");
    let cases = [
        ("one", read(32), COLD_ACCESS),
        ("same", format!("{} {}", read(32), read(32)), COLD_ACCESS + WARM_ACCESS),
        ("thrice", format!("{} {} {}", read(32), read(32), read(32)), COLD_ACCESS + 2 * WARM_ACCESS),
        ("other", format!("{} {}", read(32), read(64)), 2 * COLD_ACCESS),
        // The module's own slot and an EVM word are different keys, each cold once.
        (
            "mixed",
            format!("{} (drop (call $Pstate_get (i64.const 7))) {}", read(32), read(32)),
            2 * COLD_ACCESS + WARM_ACCESS,
        ),
    ];
    let mut world = world();
    for (name, body, expected) in cases {
        assert_eq!(wasm_price(&mut world, name, &body, &[]), (expected, 0), "{name}");
    }
    // Cold again in the next call.
    let code = wat::parse_str(twin_wat(&read(32), "")).unwrap();
    let module = world.wasm.deploy(&mut world.overlay, &ModuleName::new("again").unwrap(), 1, &code).unwrap();
    let first = call(&mut world, module, 10_000_000);
    let second = call(&mut world, module, 10_000_000);
    assert_eq!(first.gas_used, second.gas_used);
}

/// A contract running `code` after a loop that burns gas (so EIP-3529's cap does not hide the
/// refund), for revm.
fn burning(code: &[u8]) -> Vec<u8> {
    // PUSH3 20_000; loop: JUMPDEST PUSH1 1 SWAP1 SUB DUP1 PUSH1 4 JUMPI; POP; code
    let mut contract = vec![0x62, 0x00, 0x4e, 0x20, 0x5b, 0x60, 0x01, 0x90, 0x03, 0x80, 0x60, 0x04, 0x57, 0x50];
    contract.extend_from_slice(code);
    contract
}

fn spent(result: &ExecutionResult) -> (u64, u64) {
    assert!(result.is_success(), "{result:?}");
    let gas = result.gas();
    (gas.total_gas_spent(), gas.final_refunded())
}

/// EIP-3529's cases run by revm and by WASM from the same original value, the slot cold at the
/// first write in both: WASM charges ten times the gas revm charges for the `SSTORE`s, and gives
/// back ten times its refund.
#[test]
fn writes_cost_what_revm_charges_for_the_same_sstores() {
    let mut world = world();
    for (index, &(code, _, _, original)) in EIP_3529_CASES.iter().enumerate() {
        let bytecode: Vec<u8> =
            (2..code.len()).step_by(2).map(|i| u8::from_str_radix(&code[i..i + 2], 16).unwrap()).collect();
        let values = eip_3529_stored_values(code);
        // revm: the same burn with and without the stores; the difference less the PUSH1s.
        let evm_storage_gas = {
            let run = |world: &mut World, address: Address, code: Vec<u8>| {
                let storage = if original == 0 { vec![] } else { vec![(U256::ZERO, U256::from(original))] };
                insert_account(&mut world.overlay, address, &GenesisAccount { code, storage, ..Default::default() })
                    .unwrap();
                let mut tx = world.tx(ALICE, TxKind::Call(address), Vec::new());
                tx.gas_limit = 10_000_000;
                spent(&world.send(tx))
            };
            // Addresses far from the precompiles' (0x…01 is ecrecover).
            let address = |last: usize| {
                let mut bytes = [0xc0; 20];
                bytes[19] = u8::try_from(last).unwrap();
                Address::from(bytes)
            };
            let (with, refund) = run(&mut world, address(2 * index), burning(&bytecode));
            let (without, no_refund) = run(&mut world, address(2 * index + 1), burning(&[]));
            assert_eq!(no_refund, 0);
            (with - without - 3 * 2 * values.len() as u64, refund)
        };
        let body = format!(
            "(local.set $i (i32.const 200000)) (loop $burn (br_if $burn (local.tee $i (i32.sub (local.get $i) (i32.const 1))))) {}",
            values
                .iter()
                .map(|value| format!("(call $Pstate_set (i64.const 0) (i64.const {value}))"))
                .collect::<String>()
        );
        let setup = if original == 0 { vec![] } else { vec![(0, original)] };
        let (charged, refunded) = wasm_price(&mut world, &format!("case{index}"), &body, &setup);
        let what = format!("{code} on original {original}");
        assert_eq!(charged, evm_storage_gas.0 * WASM_GAS_PER_EVM_GAS, "{what}: charged");
        assert_eq!(refunded, evm_storage_gas.1 * WASM_GAS_PER_EVM_GAS, "{what}: refunded");
    }
}

/// The bytes of state under `prefix`: every entry's key and value.
fn state_bytes(world: &World, prefix: &[u8]) -> usize {
    world.overlay.scan_prefix(prefix).unwrap().iter().map(|(key, value)| key.len() + value.len()).sum()
}

/// The gas of the block these tests fill: 30 million EVM gas.
const BLOCK_GAS: u64 = 30_000_000;

/// An EVM contract of `stores` unrolled `SSTORE`s of 1 into fresh slots 0, 1, ...: the cheapest
/// way the EVM has to add storage words (6 gas beyond each `SSTORE`).
fn sstore_contract(stores: u16) -> Vec<u8> {
    let mut code = Vec::new();
    for slot in 0..stores {
        let [high, low] = slot.to_be_bytes();
        code.extend_from_slice(&[0x60, 0x01, 0x61, high, low, 0x55]);
    }
    code
}

/// Fills a block of `BLOCK_GAS` with EVM transactions calling unrolled `SSTORE` contracts, each
/// as large as what is left allows, and returns the bytes of state they added.
fn evm_block(world: &mut World) -> usize {
    let per_store = 22_100 + 6;
    let mut block = BlockGas::new(BLOCK_GAS);
    let mut contract = 0u8;
    let mut added = 0;
    while block.remaining() > 21_000 + per_store {
        let stores = u16::try_from(((block.remaining() - 21_000) / per_store).min(4_000)).unwrap();
        contract += 1;
        let mut address = [0xe0; 20];
        address[19] = contract;
        let address = Address::from(address);
        insert_account(
            &mut world.overlay,
            address,
            &GenesisAccount { code: sstore_contract(stores), ..Default::default() },
        )
        .unwrap();
        let before = state_bytes(world, Namespace::evm(address).prefix());
        let mut tx = world.tx(ALICE, TxKind::Call(address), Vec::new());
        tx.gas_limit = block.remaining();
        let result = world.send(tx);
        assert!(result.is_success(), "{result:?}");
        block.spend_evm(result.tx_gas_used());
        added += state_bytes(world, Namespace::evm(address).prefix()) - before;
    }
    added
}

/// A module writing entries of `key_len`-byte keys and `value_len`-byte values (`state_set` of new
/// slots when `key_len` is 0), as many as its input's count, at fresh keys from its input's start.
fn growth_module(key_len: usize, value_len: usize) -> Vec<u8> {
    let write = if key_len == 0 {
        "(call $state_set (i64.extend_i32_u (local.get $k)) (i64.const 1))".to_owned()
    } else {
        format!(
            "(i32.store (i32.const 0) (local.get $k)) (call $write (i32.const 0) (i32.const {key_len}) (i32.const 256) (i32.const {value_len}))"
        )
    };
    let pages = (256 + value_len).div_ceil(65_536);
    wat::parse_str(format!(
        r#"(module
            (import "xstate" "state_set" (func $state_set (param i64 i64)))
            (import "xstate" "storage_write" (func $write (param i32 i32 i32 i32)))
            (import "xstate" "input_read" (func $input_read (param i32)))
            (memory (export "memory") {pages} {pages})
            (data (i32.const 256) "\01")
            (func (export "call") (local $k i32) (local $end i32)
                (call $input_read (i32.const 128))
                (local.set $k (i32.load (i32.const 128)))
                (local.set $end (i32.add (local.get $k) (i32.load (i32.const 132))))
                (block $done (loop $next
                    (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
                    {write}
                    (local.set $k (i32.add (local.get $k) (i32.const 1)))
                    (br $next)))))"#
    ))
    .unwrap()
}

/// Fills a block of `BLOCK_GAS` (converted to WASM gas) with calls of `growth_module(key_len,
/// value_len)`, each writing as many entries as what is left allows, and returns the bytes of state
/// they added.
fn wasm_block(world: &mut World, key_len: usize, value_len: usize) -> usize {
    let name = ModuleName::new(&format!("growth-{key_len}-{value_len}")).unwrap();
    let module = world.wasm.deploy(&mut world.overlay, &name, 1, &growth_module(key_len, value_len)).unwrap();
    let prefix = Namespace::wasm(module).prefix().to_vec();
    let before = state_bytes(world, &prefix);
    let mut block = BlockGas::new(BLOCK_GAS);
    let mut start = 0u32;
    // What one call of `count` entries costs, measured on a copy of the block (gas is
    // deterministic); the largest count that fits what is left is found by bisection.
    let cost = |world: &mut World, start: u32, count: u32| {
        let mut input = start.to_le_bytes().to_vec();
        input.extend_from_slice(&count.to_le_bytes());
        let checkpoint = world.overlay.checkpoint();
        let request = CallRequest { module, caller: Identity::from(ALICE), input: &input, gas_limit: u64::MAX / 4 };
        let receipt = world.wasm.call(&mut world.overlay, &request).unwrap();
        world.overlay.revert(checkpoint).unwrap();
        assert!(receipt.is_success(), "{receipt:?}");
        receipt.gas_used
    };
    loop {
        let left = block.remaining_wasm();
        if cost(world, start, 1) > left {
            break;
        }
        let (mut fits, mut too_many) = (1u32, 2u32);
        while cost(world, start, too_many) <= left {
            (fits, too_many) = (too_many, too_many * 2);
        }
        while too_many - fits > 1 {
            let middle = fits + (too_many - fits) / 2;
            if cost(world, start, middle) <= left { fits = middle } else { too_many = middle }
        }
        let mut input = start.to_le_bytes().to_vec();
        input.extend_from_slice(&fits.to_le_bytes());
        let request = CallRequest { module, caller: Identity::from(ALICE), input: &input, gas_limit: left };
        let receipt = world.wasm.call(&mut world.overlay, &request).unwrap();
        assert!(receipt.is_success(), "{receipt:?}");
        block.spend_wasm(receipt.gas_used);
        start += fits;
    }
    state_bytes(world, &prefix) - before
}

/// The shapes of state growth WASM allows: `state_set` of new slots (key length 0 here), and
/// `storage_write` with keys and values at and around an EVM slot's shape, up to the largest.
const SHAPES: &[(usize, usize)] = &[
    (0, 8),
    (1, 1),
    (4, 32),
    (32, 32),
    (33, 32),
    (32, 33),
    (32, 64),
    (64, 64),
    (128, 128),
    (32, 1_024),
    (128, 16_384),
];

/// A block filled with the cheapest state growth WASM allows (the best of every shape) adds no
/// more bytes of state than a block of the same gas filled with `SSTORE`s by revm, and a value
/// of an EVM slot's shape is the cheapest.
#[test]
fn a_block_of_the_cheapest_wasm_growth_adds_no_more_state_than_sstores() {
    let mut world = world();
    let evm = evm_block(&mut world);
    let mut best = (0, (0, 0));
    for &(key_len, value_len) in SHAPES {
        let bytes = wasm_block(&mut world, key_len, value_len);
        println!("{key_len:>3}-byte keys, {value_len:>5}-byte values: {bytes} bytes (EVM: {evm})");
        assert!(bytes <= evm, "{key_len}-byte keys and {value_len}-byte values add {bytes} bytes, SSTOREs {evm}");
        best = best.max((bytes, (key_len, value_len)));
    }
    assert_eq!(best.1, (32, 32), "the slot's shape is the cheapest");
    // Close to parity: within 1 % of the EVM's bytes.
    assert!(best.0 * 100 >= evm * 99, "{} vs {evm}", best.0);
}
