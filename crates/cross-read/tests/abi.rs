//! The precompile's ABI, frozen by the vectors printed in `docs/spec/abi/state.md` (section 6):
//! selectors, a full calldata example with its return data, and strict decoding.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use cross_read::abi::{self, Call, CallError};
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
        assert_eq!(hex::encode(abi::selector(signature)), expected, "{signature}");
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
        ("invalid name", abi::encode_module_address("Token", 1), CallError::InvalidModuleName),
        ("empty name", abi::encode_module_address("", 1), CallError::InvalidModuleName),
    ];
    for (what, input, expected) in cases {
        assert_eq!(abi::decode(&input), Err(expected), "{what}");
    }
}
