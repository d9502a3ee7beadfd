//! Golden vectors that freeze the byte layouts. The same vectors are printed in
//! `docs/spec/abi/state.md`; a change here is a change of the spec and of every stored state.
//! The identities were cross-checked with an independent keccak256 (js-sha3).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use alloy_primitives::{Address, B256, U256, hex, keccak256};
use kv_core::{AccountRecord, ModuleName, ModuleRecord, Namespace, StateKey, Store, module_identity};

fn name(text: &str) -> ModuleName {
    ModuleName::new(text).unwrap()
}

#[test]
fn module_identities() {
    let cases: &[(u64, &str, u32, &str)] = &[
        (1, "counter", 1, "0xb09f253a7a9210ffa2d029c1b5fe676420f1072a"),
        (1, "token", 1, "0x070bb85a32384b55212bcde0a7e05536cf66887d"),
        (31337, "token", 2, "0xeb2b3baa27ae51635d6b82b2a25445fbfe880caa"),
        (0, "a", 0, "0xf190caa5174fae55254cf8afe1db07c8a73629f5"),
        (
            u64::MAX,
            "abcdefghijklmnopqrstuvwxyz0123456789_-abcdefghijklmnopqrstuvwxyz",
            u32::MAX,
            "0xb678bcea4a3dc22a15d993138469a2e254a13242",
        ),
    ];
    for &(chain_id, module, version, expected) in cases {
        let identity = module_identity(chain_id, &name(module), version);
        assert_eq!(identity.to_string(), expected, "({chain_id}, {module}, {version})");
    }
}

fn token() -> kv_core::Identity {
    module_identity(1, &name("token"), 1)
}

fn contract() -> Address {
    "0x00000000000000000000000000000000000000aa".parse().unwrap()
}

#[test]
fn encoded_keys() {
    let cases: Vec<(StateKey, &str)> = vec![
        (StateKey::WasmModule(token()), "01070bb85a32384b55212bcde0a7e05536cf66887d00"),
        (StateKey::wasm_slot(token(), 7), "01070bb85a32384b55212bcde0a7e05536cf66887d010000000000000007"),
        (
            StateKey::WasmStorage(token(), b"balance/alice".to_vec()),
            "01070bb85a32384b55212bcde0a7e05536cf66887d0162616c616e63652f616c696365",
        ),
        (StateKey::EvmAccount(contract()), "0200000000000000000000000000000000000000aa00"),
        (
            StateKey::EvmStorage(contract(), B256::with_last_byte(1)),
            "0200000000000000000000000000000000000000aa010000000000000000000000000000000000000000000000000000000000000001",
        ),
        (
            StateKey::Code(keccak256([0x60, 0x00])),
            "0000000000000000000000000000000000000000000107ad118d6cc8642c86c03827f276d8b791a65e5c99a3845faf186be720a1455d",
        ),
    ];
    for (key, expected) in cases {
        let encoded = key.encode().unwrap();
        assert_eq!(hex::encode(&encoded), expected, "{key:?}");
        assert_eq!(StateKey::decode(&encoded).unwrap(), key);
    }
    // The prefix-cached handle builds the same bytes on the stack.
    assert_eq!(Namespace::wasm(token()).slot_key(7).to_vec(), StateKey::wasm_slot(token(), 7).encode().unwrap());
}

#[test]
fn records() {
    let account = AccountRecord { nonce: 1, balance: U256::from(1000u64), code_hash: keccak256([0x60, 0x00]) };
    assert_eq!(
        hex::encode(account.encode()),
        "000000000000000100000000000000000000000000000000000000000000000000000000000003e807ad118d6cc8642c86c03827f276d8b791a65e5c99a3845faf186be720a1455d"
    );
    assert_eq!(AccountRecord::decode(&account.encode()).unwrap(), account);
    let module = ModuleRecord { code_hash: keccak256(b"\0asm"), name: name("token"), version: 1 };
    assert_eq!(
        hex::encode(module.encode()),
        "014983c8c2a5a99f8fa55858b33be5d4dc96d8e17dfc787249d3ddd01080d00d1a0000000105746f6b656e"
    );
    assert_eq!(ModuleRecord::decode(&module.encode()).unwrap(), module);
}

/// The root of a small fixed state: two WASM modules (one with its record), one EVM account with
/// two storage words, and its code blob. `xtask/verifiers/golden_root.py` recomputes the same root
/// with py-trie from the spec's words alone; `cargo xtask ci` runs it.
#[test]
fn golden_root() {
    let store = Store::in_memory();
    let mut overlay = store.begin();
    let counter = Namespace::wasm(module_identity(1, &name("counter"), 1));
    let token = Namespace::wasm(token());
    let code = [0x60, 0x00];
    let account = AccountRecord { nonce: 1, balance: U256::from(1000u64), code_hash: keccak256(code) };
    let module = ModuleRecord { code_hash: keccak256(b"\0asm"), name: name("token"), version: 1 };
    overlay.set_u64(&counter.slot_key(0), 42).unwrap();
    overlay.set(&token.record_key(), &module.encode()).unwrap();
    overlay.set_u64(&token.slot_key(1), 1000).unwrap();
    overlay.set_u64(&token.slot_key(2), 7).unwrap();
    overlay.set(&StateKey::EvmAccount(contract()).encode().unwrap(), &account.encode()).unwrap();
    overlay.set(&StateKey::Code(keccak256(code)).encode().unwrap(), &code).unwrap();
    let word = |slot: u8| StateKey::EvmStorage(contract(), B256::with_last_byte(slot)).encode().unwrap();
    overlay.set(&word(0), B256::with_last_byte(5).as_slice()).unwrap();
    overlay.set(&word(1), B256::with_last_byte(9).as_slice()).unwrap();
    let info = store.commit(&overlay).unwrap();
    assert_eq!(info.root.to_string(), GOLDEN_ROOT);
    let storage_roots = [
        (counter, "0x17f0837737af2641989780895c91d72e32450bbb882b513a425a5f3080cf2dcf"),
        (token, "0xdecdbb00ebc73129a9c8d490adf64f00509d2c8cd24a33256ff2504d8654e74e"),
        (Namespace::evm(contract()), "0x4caa1c7e92fd125f4a02546e741eaa3f00429831598202c208ed68b6f417c777"),
    ];
    for (namespace, expected) in storage_roots {
        let (storage_root, proof) = store.prove_namespace(&namespace, None).unwrap();
        assert_eq!(storage_root.unwrap().to_string(), expected, "{namespace:?}");
        kv_core::verify_namespace(info.root, &namespace, storage_root, &proof).unwrap();
    }
    // The spec prints the same root.
    let spec = include_str!("../../../docs/spec/abi/state.md");
    assert!(spec.contains(GOLDEN_ROOT), "docs/spec/abi/state.md does not print the golden root");
}

/// The golden root, also printed in `docs/spec/abi/state.md` section 5.4 and recomputed by
/// `xtask/verifiers/golden_root.py`.
const GOLDEN_ROOT: &str = "0xecda3e0a2666d3fb5b59e9f8634bbf50de7ccf3b112855b19a2a2619346210b5";
