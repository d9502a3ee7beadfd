//! Small helpers for talking to Solidity contracts without an ABI library: calldata of static
//! arguments, addresses as words, and the bytecode in the artifacts `contracts/build.js` writes.

use revm::primitives::{Address, Bytes, U256, hex, keccak256};

/// `selector(signature) || words`: calldata for a function whose arguments are all static.
pub fn calldata(signature: &str, words: &[U256]) -> Bytes {
    let mut data = keccak256(signature.as_bytes())[..4].to_vec();
    for word in words {
        data.extend_from_slice(&word.to_be_bytes::<32>());
    }
    data.into()
}

/// An address as an ABI word.
pub fn word(address: Address) -> U256 {
    U256::from_be_slice(address.as_slice())
}

/// The deployment bytecode of a contract artifact (`contracts/artifacts/*.json`).
pub fn artifact_bytecode(artifact: &str) -> Result<Bytes, String> {
    let json: serde_json::Value =
        serde_json::from_str(artifact).map_err(|error| format!("artifact is not JSON: {error}"))?;
    let text = json["bytecode"].as_str().ok_or("artifact has no `bytecode`")?;
    let digits = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(digits).map(Bytes::from).map_err(|error| format!("artifact bytecode is not hex: {error}"))
}
