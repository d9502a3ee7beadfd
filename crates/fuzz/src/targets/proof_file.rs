//! `proof_file`: the proof files `xstate verify --root ROOT` checks, random and mutated from
//! real ones (of every key block 1 touched), through the same steps as the command: JSON, the
//! format tag, the hex fields `key`, `value` and `proof` (`xstate_chain::transaction::parse_hex`),
//! `KeyProof::decode` and `kv_core::verify`. The command's own function is private to the
//! binary, so this target repeats its steps over the library calls it makes. Never a panic; and
//! against the trusted root, a file verifies only if its value is the key's real value there.
//! The path without `--root` (the root written in the file) runs too, for panics only.

use alloy_primitives::B256;
use kv_core::KeyProof;
use serde_json::{Value, json};
use xstate_chain::Runtime;
use xstate_chain::transaction::parse_hex;

/// The format tag of proof files (`crates/xstate/src/cli.rs`).
const PROOF_FORMAT: &str = "xstate-proof/2";

/// A hex field as the command reads it: absent or null is `None`, anything else must be hex.
fn hex_field(file: &Value, field: &str) -> Result<Option<Vec<u8>>, ()> {
    match file.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => parse_hex(text).map(|bytes| Some(bytes.to_vec())).map_err(|_| ()),
        Some(_) => Err(()),
    }
}

/// The `proof_file` target.
pub(crate) struct ProofFile {
    runtime: Runtime,
    root: B256,
    seeds: Vec<Vec<u8>>,
    reached: u64,
}

impl ProofFile {
    pub(crate) fn new() -> Self {
        let runtime = super::fixture::chain_with_a_block();
        let root = runtime.root_at(Some(super::fixture::BLOCK)).expect("the fixture block has a root");
        let (_, witness) = runtime.witness(super::fixture::BLOCK).expect("the fixture block has a witness");
        let mut seeds = Vec::new();
        for key in witness.keys.iter().take(12) {
            let Ok((proof, value)) = runtime.prove_value(key, Some(super::fixture::BLOCK)) else { continue };
            let file = json!({
                "format": PROOF_FORMAT,
                "root": root.to_string(),
                "key": alloy_primitives::hex::encode_prefixed(key),
                "value": value.as_ref().map(alloy_primitives::hex::encode_prefixed),
                "proof": alloy_primitives::hex::encode_prefixed(proof.encode()),
            });
            seeds.push(serde_json::to_vec_pretty(&file).unwrap_or_default());
        }
        Self { runtime, root, seeds, reached: 0 }
    }
}

impl super::Target for ProofFile {
    fn name(&self) -> &'static str {
        "proof_file"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        self.seeds.clone()
    }

    fn reached(&self) -> u64 {
        self.reached
    }

    fn reached_means(&self) -> &'static str {
        "proofs that decoded and were verified"
    }

    fn random_len(&self) -> usize {
        256
    }

    fn run(&mut self, input: &[u8]) -> Result<(), String> {
        let Ok(file) = serde_json::from_slice::<Value>(input) else { return Ok(()) };
        if file.get("format").and_then(Value::as_str) != Some(PROOF_FORMAT) {
            return Ok(());
        }
        let (Ok(Some(key)), Ok(value), Ok(Some(proof_bytes))) =
            (hex_field(&file, "key"), hex_field(&file, "value"), hex_field(&file, "proof"))
        else {
            return Ok(());
        };
        let Ok(proof) = KeyProof::decode(&proof_bytes) else { return Ok(()) };
        self.reached += 1;
        // Without --root: the root written in the file (checked for panics only).
        if let Some(written) = file.get("root").and_then(Value::as_str).and_then(|text| text.parse::<B256>().ok()) {
            let _ = kv_core::verify(written, &key, value.as_deref(), &proof);
        }
        if kv_core::verify(self.root, &key, value.as_deref(), &proof).is_ok() {
            let truth = self
                .runtime
                .prove_value(&key, Some(super::fixture::BLOCK))
                .map_err(|error| format!("a proof verified for a key the store cannot prove ({error})"))?
                .1;
            if truth != value {
                return Err(format!(
                    "a proof verified value {:?} for key 0x{}, whose value is {:?}",
                    value.map(alloy_primitives::hex::encode),
                    alloy_primitives::hex::encode(&key),
                    truth.map(alloy_primitives::hex::encode)
                ));
            }
        }
        Ok(())
    }
}
