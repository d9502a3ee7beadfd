//! Key and name validation: data-driven tables for bad input, property tests for round trips and
//! prefix-freedom.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use alloy_primitives::{Address, B256, hex};
use kv_core::key::{KeyError, MAX_USER_KEY_LEN};
use kv_core::{Engine, Identity, ModuleName, ModuleRecord, Namespace, RecordError, StateKey};
use proptest::prelude::*;

/// Decodes each hex input and compares the outcome with the expected one.
fn check_decode(cases: &[(&str, Result<&str, KeyError>)]) {
    for (input, expected) in cases {
        let bytes = hex::decode(input).unwrap();
        let result = StateKey::decode(&bytes);
        match expected {
            Ok(debug) => assert_eq!(format!("{:?}", result.as_ref().unwrap()), *debug, "{input}"),
            Err(error) => assert_eq!(result.as_ref().unwrap_err(), error, "{input}"),
        }
    }
}

const ID: &str = "0101010101010101010101010101010101010101";

#[test]
fn decoding_rejects_bad_keys() {
    let wasm = format!("01{ID}");
    let evm = format!("02{ID}");
    let cases: Vec<(String, Result<&str, KeyError>)> = vec![
        (String::new(), Err(KeyError::Truncated { len: 0, expected: 21 })),
        (format!("01{}", &ID[..38]), Err(KeyError::Truncated { len: 20, expected: 21 })),
        (wasm.clone(), Err(KeyError::Truncated { len: 21, expected: 22 })),
        (format!("03{ID}00"), Err(KeyError::UnknownEngine(0x03))),
        (format!("ff{ID}00"), Err(KeyError::UnknownEngine(0xff))),
        (format!("00{ID}01{}", "00".repeat(32)), Err(KeyError::UnknownRuntimeIdentity)),
        (format!("{wasm}02"), Err(KeyError::UnknownLayout { engine: Engine::Wasm, tag: 0x02 })),
        (format!("{evm}07"), Err(KeyError::UnknownLayout { engine: Engine::Evm, tag: 0x07 })),
        (format!("{wasm}0000"), Err(KeyError::Oversized { len: 23, max: 22 })),
        (format!("{wasm}01"), Err(KeyError::UserKeyLength(0))),
        (format!("{wasm}01{}", "aa".repeat(MAX_USER_KEY_LEN + 1)), Err(KeyError::Oversized { len: 151, max: 150 })),
        (format!("{evm}01{}", "00".repeat(31)), Err(KeyError::Truncated { len: 53, expected: 54 })),
        (format!("{evm}01{}", "00".repeat(33)), Err(KeyError::Oversized { len: 55, max: 54 })),
        (format!("{evm}0000"), Err(KeyError::Oversized { len: 23, max: 22 })),
        (format!("{wasm}00"), Ok("WasmModule(Identity(0x0101010101010101010101010101010101010101))")),
        (format!("{wasm}01aabb"), Ok("WasmStorage(Identity(0x0101010101010101010101010101010101010101), [170, 187])")),
    ];
    let cases: Vec<(&str, Result<&str, KeyError>)> = cases.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    check_decode(&cases);
    let longest = hex::decode(format!("{wasm}01{}", "aa".repeat(MAX_USER_KEY_LEN))).unwrap();
    assert!(StateKey::decode(&longest).is_ok());
}

#[test]
fn module_names_are_validated_never_mapped() {
    let cases: &[(&str, Result<(), KeyError>)] = &[
        ("counter", Ok(())),
        ("a", Ok(())),
        ("token-v2_final", Ok(())),
        (&"x".repeat(64), Ok(())),
        ("", Err(KeyError::ModuleNameLength(0))),
        (&"x".repeat(65), Err(KeyError::ModuleNameLength(65))),
        ("Counter", Err(KeyError::ModuleNameByte { position: 0, byte: b'C' })),
        ("my token", Err(KeyError::ModuleNameByte { position: 2, byte: b' ' })),
        ("tok.en", Err(KeyError::ModuleNameByte { position: 3, byte: b'.' })),
        ("caf\u{e9}", Err(KeyError::ModuleNameByte { position: 3, byte: 0xc3 })),
        ("a/b", Err(KeyError::ModuleNameByte { position: 1, byte: b'/' })),
    ];
    for (name, expected) in cases {
        assert_eq!(ModuleName::new(name).map(|_| ()), *expected, "{name:?}");
        assert_eq!(ModuleName::from_bytes(name.as_bytes()).map(|_| ()), *expected, "{name:?} as bytes");
    }
    assert_eq!(ModuleName::from_bytes(b"token").unwrap(), ModuleName::new("token").unwrap());
    // Every error has a message a user can act on.
    let message = ModuleName::new("Counter").unwrap_err().to_string();
    assert!(message.contains("[a-z0-9_-]"), "{message}");
}

/// A stored module record whose name is not UTF-8 is reported with the real offending byte and
/// its position, not a placeholder.
#[test]
fn module_records_name_the_bad_byte_of_a_non_utf8_name() {
    let record = |name: &[u8]| {
        let mut bytes = vec![kv_core::record::MODULE_RECORD_FORMAT];
        bytes.extend_from_slice(&[7; 32]);
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.push(u8::try_from(name.len()).unwrap());
        bytes.extend_from_slice(name);
        bytes
    };
    let cases: &[(&[u8], KeyError)] = &[
        (b"ab\xffc", KeyError::ModuleNameByte { position: 2, byte: 0xff }),
        (b"\x80", KeyError::ModuleNameByte { position: 0, byte: 0x80 }),
        (b"tok\xc3", KeyError::ModuleNameByte { position: 3, byte: 0xc3 }),
        (b"", KeyError::ModuleNameLength(0)),
    ];
    for (name, expected) in cases {
        assert_eq!(ModuleRecord::decode(&record(name)), Err(RecordError::Name(expected.clone())), "{name:02x?}");
    }
    assert_eq!(ModuleRecord::decode(&record(b"token")).unwrap().name.as_str(), "token");
}

#[test]
fn identities_parse_from_text() {
    let identity: Identity = "0x070bb85a32384b55212bcde0a7e05536cf66887d".parse().unwrap();
    assert_eq!(identity.to_string(), "0x070bb85a32384b55212bcde0a7e05536cf66887d");
    assert_eq!("0x0102".parse::<Identity>(), Err(KeyError::IdentityLength(2)));
    assert_eq!("0xzz".parse::<Identity>(), Err(KeyError::InvalidHex));
}

fn identity_strategy() -> impl Strategy<Value = Identity> {
    prop_oneof![any::<[u8; 20]>().prop_map(Identity), (0u8..3).prop_map(|b| Identity([b; 20]))]
}

fn key_strategy() -> impl Strategy<Value = StateKey> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|h| StateKey::Code(B256::from(h))),
        identity_strategy().prop_map(StateKey::WasmModule),
        (identity_strategy(), prop::collection::vec(any::<u8>(), 1..=MAX_USER_KEY_LEN))
            .prop_map(|(id, key)| StateKey::WasmStorage(id, key)),
        identity_strategy().prop_map(|id| StateKey::EvmAccount(Address::from(id.0))),
        (identity_strategy(), any::<[u8; 32]>())
            .prop_map(|(id, slot)| StateKey::EvmStorage(Address::from(id.0), B256::from(slot))),
    ]
}

proptest! {
    #[test]
    fn encode_decode_round_trip(key in key_strategy()) {
        let bytes = key.encode().unwrap();
        prop_assert_eq!(StateKey::decode(&bytes).unwrap(), key);
    }

    /// Arbitrary bytes never panic the decoder, and whatever decodes re-encodes to the same bytes
    /// (the encoding is canonical).
    #[test]
    fn decoding_arbitrary_bytes_is_total_and_canonical(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(key) = StateKey::decode(&bytes) {
            prop_assert_eq!(key.encode().unwrap(), bytes);
        }
    }

    /// No valid key of one namespace is a prefix of a valid key of another, and every key starts
    /// with exactly its own namespace's prefix.
    #[test]
    fn keys_are_prefix_free_across_namespaces(a in key_strategy(), b in key_strategy()) {
        let (ea, eb) = (a.encode().unwrap(), b.encode().unwrap());
        prop_assert!(ea.starts_with(a.namespace().prefix()));
        if a.namespace() != b.namespace() {
            prop_assert!(!eb.starts_with(&ea));
            prop_assert!(!ea.starts_with(&eb));
            prop_assert!(!eb.starts_with(a.namespace().prefix()));
        }
    }

    /// Slot keys built on the stack equal the typed encoding.
    #[test]
    fn slot_keys_match_typed_keys(id in identity_strategy(), slot in any::<u64>()) {
        prop_assert_eq!(Namespace::wasm(id).slot_key(slot).to_vec(), StateKey::wasm_slot(id, slot).encode().unwrap());
    }
}
