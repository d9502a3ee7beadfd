//! Small helpers for talking to Solidity contracts without an ABI library: selectors, calldata of
//! static arguments, addresses and mapping entries as words, return words, and the bytecode in the
//! artifacts `contracts/build.js` writes (with the `artifacts` feature).

use revm::context::result::ExecutionResult;
use revm::primitives::{Address, Bytes, U256, keccak256};

/// The first four bytes of keccak256 of `signature`: the selector of a function or custom error.
pub fn selector(signature: &str) -> [u8; 4] {
    let hash = keccak256(signature.as_bytes());
    [hash[0], hash[1], hash[2], hash[3]]
}

/// `selector(signature) || words`: calldata for a function whose arguments are all static.
pub fn calldata(signature: &str, words: &[U256]) -> Bytes {
    let mut data = Vec::with_capacity(4 + 32 * words.len());
    data.extend_from_slice(&selector(signature));
    for word in words {
        data.extend_from_slice(&word.to_be_bytes::<32>());
    }
    data.into()
}

/// An address as an ABI word.
pub fn word(address: Address) -> U256 {
    U256::from_be_slice(address.as_slice())
}

/// The storage slot of entry `key` of a Solidity mapping declared at slot `mapping`:
/// keccak256(key || mapping), both as 32-byte words.
pub fn mapping_slot(key: U256, mapping: U256) -> U256 {
    let mut preimage = [0u8; 64];
    preimage[..32].copy_from_slice(&key.to_be_bytes::<32>());
    preimage[32..].copy_from_slice(&mapping.to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(preimage).0)
}

/// Word `index` of a call's return (or revert) data; `None` when the call halted or returned
/// fewer words.
pub fn output_word(result: &ExecutionResult, index: usize) -> Option<U256> {
    let start = index.checked_mul(32)?;
    result.output()?.get(start..start.checked_add(32)?).map(U256::from_be_slice)
}

/// The deployment bytecode of a contract artifact (`contracts/artifacts/*.json`).
#[cfg(feature = "artifacts")]
pub fn artifact_bytecode(artifact: &str) -> Result<Bytes, String> {
    let json: serde_json::Value =
        serde_json::from_str(artifact).map_err(|error| format!("artifact is not JSON: {error}"))?;
    let text = json["bytecode"].as_str().ok_or("artifact has no `bytecode`")?;
    let digits = text.strip_prefix("0x").unwrap_or(text);
    revm::primitives::hex::decode(digits)
        .map(Bytes::from)
        .map_err(|error| format!("artifact bytecode is not hex: {error}"))
}

/// The deployment bytecode of contract `name`, read from `contracts/artifacts/<name>.json` of the
/// source tree this crate was built from. For tests, benchmarks and tools run in the workspace;
/// a binary that ships contracts embeds their artifacts instead.
#[cfg(feature = "artifacts")]
pub fn artifact(name: &str) -> Result<Bytes, String> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/artifacts").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    artifact_bytecode(&text)
}
