//! `witness_file`: the block and witness files `xstate verify-block` takes
//! (`StatelessBlock::from_json`, `BlockWitness::from_json`, `verify_block`), random and mutated
//! from block 1's real ones (the first input byte picks which file is mutated). Never a panic;
//! a verified block is the block its header names (hash and state root), and with the real block
//! a mutated witness never verifies anything but the real root.

use alloy_primitives::B256;
use xstate_chain::{BlockWitness, StatelessBlock, verify_block};

/// The `witness_file` target.
pub(crate) struct WitnessFile {
    block: StatelessBlock,
    block_json: String,
    witness_json: String,
    hash: B256,
    state_root: B256,
    reached: u64,
}

impl WitnessFile {
    pub(crate) fn new() -> Self {
        let runtime = super::fixture::chain_with_a_block();
        let (block, witness) = runtime.witness(super::fixture::BLOCK).expect("the fixture block has a witness");
        let stored = runtime.block(super::fixture::BLOCK).ok().flatten().expect("the fixture block is stored");
        let verified = verify_block(&block, &witness).expect("the real witness verifies the real block");
        assert_eq!(verified.state_root, stored.header.state_root);
        Self {
            block_json: serde_json::to_string_pretty(&block.to_json()).unwrap_or_default(),
            witness_json: serde_json::to_string_pretty(&witness.to_json()).unwrap_or_default(),
            hash: verified.hash,
            state_root: stored.header.state_root,
            block,
            reached: 0,
        }
    }
}

impl super::Target for WitnessFile {
    fn name(&self) -> &'static str {
        "witness_file"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let mut block = vec![0];
        block.extend_from_slice(self.block_json.as_bytes());
        let mut witness = vec![1];
        witness.extend_from_slice(self.witness_json.as_bytes());
        vec![block, witness]
    }

    fn reached(&self) -> u64 {
        self.reached
    }

    fn reached_means(&self) -> &'static str {
        "file pairs that parsed and were verified"
    }

    fn random_len(&self) -> usize {
        256
    }

    fn run(&mut self, input: &[u8]) -> Result<(), String> {
        let Some((&selector, text)) = input.split_first() else { return Ok(()) };
        let text = String::from_utf8_lossy(text);
        let (block_text, witness_text) =
            if selector % 2 == 0 { (&*text, self.witness_json.as_str()) } else { (self.block_json.as_str(), &*text) };
        let (Ok(block), Ok(witness)) = (StatelessBlock::from_json(block_text), BlockWitness::from_json(witness_text))
        else {
            return Ok(());
        };
        self.reached += 1;
        let Ok(verified) = verify_block(&block, &witness) else { return Ok(()) };
        if verified.hash != block.header.hash_slow() || verified.state_root != block.header.state_root {
            return Err(format!("verified {verified:?}, which is not the block its header names"));
        }
        if block == self.block && (verified.hash != self.hash || verified.state_root != self.state_root) {
            return Err(format!("a mutated witness verified the real block to another root: {verified:?}"));
        }
        Ok(())
    }
}
