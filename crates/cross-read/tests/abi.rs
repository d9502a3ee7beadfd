//! The precompile's ABI, frozen by the vectors printed in `docs/spec/abi/state.md` (section 6):
//! selectors, a full calldata example with its return data, and strict decoding.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use cross_read::abi::{self, Call, CallError};
use evm_binding::abi::selector;
use evm_binding::revm::primitives::{Address, hex};
use kv_core::ModuleName;

#[test]
fn selectors_and_error_selectors() {
    // Cross-checked with an independent keccak256 (js-sha3).
    let cases = [
        ("readU64(address,uint64)", "f5c716ee"),
        ("moduleAddress(string,uint32)", "77ef6996"),
        ("UnknownSelector(bytes4)", "c2a825f5"),
        ("MalformedCalldata()", "59170bf0"),
        ("ValueNotAccepted()", "0d7b65ad"),
        ("InvalidModuleName()", "65fb67e4"),
        ("SlotNotU64(address,uint64)", "96349f03"),
    ];
    for (signature, expected) in cases {
        assert_eq!(hex::encode(selector(signature)), expected, "{signature}");
    }
}

/// The precompile matches constant selectors; each is the hash of its signature.
#[test]
fn constant_selectors_are_the_hashes_of_their_signatures() {
    assert_eq!(abi::READ_U64_SELECTOR, selector(abi::READ_U64_SIGNATURE));
    assert_eq!(abi::MODULE_ADDRESS_SELECTOR, selector(abi::MODULE_ADDRESS_SIGNATURE));
    let errors = [
        CallError::UnknownSelector([1, 2, 3, 4]),
        CallError::MalformedCalldata,
        CallError::ValueNotAccepted,
        CallError::InvalidModuleName,
        CallError::SlotNotU64 { module: Address::ZERO, slot: 0 },
    ];
    for error in errors {
        assert_eq!(error.selector(), selector(error.signature()), "{error:?}");
        assert_eq!(error.encode()[..4], selector(error.signature()), "{error:?}");
    }
}

#[test]
fn full_calldata_examples() {
    let module: Address = "0x070bb85a32384b55212bcde0a7e05536cf66887d".parse().unwrap();
    let read = abi::encode_read_u64(module, 7);
    assert_eq!(
        hex::encode(&read),
        "f5c716ee000000000000000000000000070bb85a32384b55212bcde0a7e05536cf66887d0000000000000000000000000000000000000000000000000000000000000007"
    );
    assert_eq!(abi::decode(&read).unwrap(), Call::ReadU64 { module, slot: 7 });
    // readU64 returns the value as one ABI word: 1000 is
    assert_eq!(hex::encode(abi::u64_word(1000)), "00000000000000000000000000000000000000000000000000000000000003e8");

    let derive = abi::encode_module_address("token", 1);
    assert_eq!(
        hex::encode(&derive),
        concat!(
            "77ef6996",
            "0000000000000000000000000000000000000000000000000000000000000040",
            "0000000000000000000000000000000000000000000000000000000000000001",
            "0000000000000000000000000000000000000000000000000000000000000005",
            "746f6b656e000000000000000000000000000000000000000000000000000000"
        )
    );
    assert_eq!(
        abi::decode(&derive).unwrap(),
        Call::ModuleAddress { name: ModuleName::new("token").unwrap(), version: 1 }
    );
}

/// `moduleAddress` calldata carrying `name` as raw bytes, canonically encoded.
fn encode_name_bytes(name: &[u8]) -> Vec<u8> {
    let mut out = abi::encode_module_address(&"x".repeat(name.len()), 1);
    out[100..100 + name.len()].copy_from_slice(name);
    out
}

#[test]
fn non_canonical_calldata_is_refused() {
    let module: Address = Address::repeat_byte(0x11);
    let good = abi::encode_read_u64(module, 7);
    let mut dirty_address = good.clone();
    dirty_address[4] = 1;
    let mut dirty_slot = good.clone();
    dirty_slot[36 + 23] = 1;
    let mut longer = good.clone();
    longer.push(0);
    let mut bad_offset = abi::encode_module_address("token", 1);
    bad_offset[35] = 0x60;
    let mut dirty_padding = abi::encode_module_address("token", 1);
    *dirty_padding.last_mut().unwrap() = 1;
    let mut huge_version = abi::encode_module_address("token", 1);
    huge_version[40] = 1;
    // The length word says 33 bytes, but one padded word follows.
    let mut long_length = abi::encode_module_address("token", 1);
    long_length[99] = 33;
    let mut short_length = abi::encode_module_address("token", 1);
    short_length[99] = 4;
    // A length of 2^64 + 5: never followed by its bytes.
    let mut huge_length = abi::encode_module_address("token", 1);
    huge_length[91] = 1;
    let mut missing_padding = abi::encode_module_address("token", 1);
    missing_padding.truncate(missing_padding.len() - 1);
    let cases: Vec<(&str, Vec<u8>, CallError)> = vec![
        ("empty", vec![], CallError::MalformedCalldata),
        ("three bytes", vec![0xf5, 0xc7, 0x16], CallError::MalformedCalldata),
        ("unknown selector", vec![1, 2, 3, 4], CallError::UnknownSelector([1, 2, 3, 4])),
        ("no arguments", good[..4].to_vec(), CallError::MalformedCalldata),
        ("short arguments", good[..60].to_vec(), CallError::MalformedCalldata),
        ("trailing byte", longer, CallError::MalformedCalldata),
        ("dirty address padding", dirty_address, CallError::MalformedCalldata),
        ("slot above u64", dirty_slot, CallError::MalformedCalldata),
        ("string offset not 0x40", bad_offset, CallError::MalformedCalldata),
        ("dirty string padding", dirty_padding, CallError::MalformedCalldata),
        ("version above u32", huge_version, CallError::MalformedCalldata),
        ("length beyond the name", long_length, CallError::MalformedCalldata),
        ("length short of the name", short_length, CallError::MalformedCalldata),
        ("length above u64", huge_length, CallError::MalformedCalldata),
        ("name without its padding", missing_padding, CallError::MalformedCalldata),
        ("invalid name", abi::encode_module_address("Token", 1), CallError::InvalidModuleName),
        ("empty name", abi::encode_module_address("", 1), CallError::InvalidModuleName),
        // Any canonically encoded name outside 1-64 bytes is an invalid name, whatever its length.
        ("65-byte name", abi::encode_module_address(&"a".repeat(65), 1), CallError::InvalidModuleName),
        ("255-byte name", abi::encode_module_address(&"a".repeat(255), 1), CallError::InvalidModuleName),
        ("256-byte name", abi::encode_module_address(&"a".repeat(256), 1), CallError::InvalidModuleName),
        ("1000-byte name", abi::encode_module_address(&"a".repeat(1000), 1), CallError::InvalidModuleName),
        ("name that is not UTF-8", encode_name_bytes(&[0x74, 0xff]), CallError::InvalidModuleName),
    ];
    for (what, input, expected) in cases {
        assert_eq!(abi::decode(&input), Err(expected), "{what}");
    }
    let longest = "a".repeat(64);
    assert_eq!(
        abi::decode(&abi::encode_module_address(&longest, 7)).unwrap(),
        Call::ModuleAddress { name: ModuleName::new(&longest).unwrap(), version: 7 }
    );
}
