//! The ABI helpers: selectors and calldata as Solidity encodes them, mapping slots where Solidity
//! puts them, return words read only where they exist, and artifacts found by name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use evm_binding::abi::{artifact, calldata, mapping_slot, output_word, selector, word};
use evm_binding::revm::context::result::{ExecutionResult, HaltReason, OutOfGasError, ResultGas};
use evm_binding::revm::primitives::{Address, Bytes, U256, hex};

#[test]
fn selectors_calldata_and_mapping_slots() {
    assert_eq!(hex::encode(selector("transfer(address,uint256)")), "a9059cbb");
    let data = calldata("transfer(address,uint256)", &[word(Address::repeat_byte(0x11)), U256::from(5)]);
    assert_eq!(
        hex::encode(&data),
        concat!(
            "a9059cbb",
            "0000000000000000000000001111111111111111111111111111111111111111",
            "0000000000000000000000000000000000000000000000000000000000000005"
        )
    );
    // keccak256(pad32(0) || pad32(0)): entry 0 of a mapping in slot 0, a well-known constant.
    let slot = "ad3228b676f7d3cd4284a5443f17f1962b36e491b30a40b2405849e597ba5fb5";
    assert_eq!(hex::encode(mapping_slot(U256::ZERO, U256::ZERO).to_be_bytes::<32>()), slot);
    assert_ne!(mapping_slot(U256::ONE, U256::ZERO), mapping_slot(U256::ZERO, U256::ONE));
}

#[test]
fn output_words_exist_only_where_the_data_does() {
    let mut output = vec![0u8; 40];
    output[31] = 9;
    let reverted = ExecutionResult::Revert { gas: ResultGas::default(), logs: Vec::new(), output: Bytes::from(output) };
    assert_eq!(output_word(&reverted, 0), Some(U256::from(9)));
    assert_eq!(output_word(&reverted, 1), None, "8 bytes are no word");
    assert_eq!(output_word(&reverted, usize::MAX), None);
    let halted: ExecutionResult = ExecutionResult::Halt {
        reason: HaltReason::OutOfGas(OutOfGasError::Basic),
        gas: ResultGas::default(),
        logs: Vec::new(),
    };
    assert_eq!(output_word(&halted, 0), None);
}

#[test]
fn artifacts_are_found_by_name() {
    assert!(!artifact("Storage").unwrap().is_empty());
    let missing = artifact("NoSuchContract").unwrap_err();
    assert!(missing.contains("NoSuchContract.json"), "{missing}");
    assert!(evm_binding::abi::artifact_bytecode(r#"{"bytecode": "0xzz"}"#).unwrap_err().contains("not hex"));
}
