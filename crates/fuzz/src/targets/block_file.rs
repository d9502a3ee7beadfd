//! `block_file`: the block files `xstate run` takes (`BlockFile::parse`, then genesis, dev
//! signing and the block on a fresh in-memory chain, as the command runs them), from random and
//! mutated valid files (the committed `examples/block.json` and small ones). Every outcome is a
//! typed error or a committed block, never a panic.

use xstate_chain::dev::{anvil_genesis, raw_transactions};
use xstate_chain::{BlockFile, BlockInput, ChainConfig, DEFAULT_CHAIN_ID, Runtime};

const GENESIS_TIME: u64 = 1_700_000_000;

/// The `block_file` target.
pub(crate) struct BlockFileTarget {
    reached: u64,
}

impl BlockFileTarget {
    pub(crate) fn new() -> Self {
        Self { reached: 0 }
    }
}

impl super::Target for BlockFileTarget {
    fn name(&self) -> &'static str {
        "block_file"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        vec![
            include_bytes!("../../../../examples/block.json").to_vec(),
            br#"{"transactions":[{"from":"dev:0","to":"0x00000000000000000000000000000000000000aa","value":"1"}]}"#.to_vec(),
            br#"{"chain_id":31337,"block":{"timestamp":1700000001,"extra_data":"0x01"},"transactions":[{"from":"dev:3","data":"0x600060005260206000f3"},{"raw":"0x00"}]}"#.to_vec(),
        ]
    }

    fn reached(&self) -> u64 {
        self.reached
    }

    fn reached_means(&self) -> &'static str {
        "files that parsed and ran a block"
    }

    fn random_len(&self) -> usize {
        256
    }

    fn run(&mut self, input: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(input);
        let Ok(file) = BlockFile::parse(&text) else { return Ok(()) };
        let runtime = Runtime::in_memory(ChainConfig::new(file.chain_id.unwrap_or(DEFAULT_CHAIN_ID)));
        let genesis = file.genesis.clone().unwrap_or_else(|| anvil_genesis(GENESIS_TIME));
        if runtime.init_genesis(&genesis).is_err() {
            return Ok(());
        }
        let Ok(raws) = raw_transactions(&runtime, &file.transactions) else { return Ok(()) };
        let input = BlockInput {
            timestamp: file.block.timestamp.unwrap_or(runtime.latest_timestamp() + 1),
            beneficiary: file.block.beneficiary.unwrap_or_default(),
            extra_data: file.block.extra_data.clone().unwrap_or_default(),
            ..Default::default()
        };
        // A typed error (a bad timestamp, oversized extra data) is what the command reports; a
        // committed block must have a receipt per included transaction.
        self.reached += 1;
        if let Ok(outcome) = runtime.execute_block(&input, &raws, |_| {})
            && (outcome.receipts.len() != outcome.transactions.len()
                || outcome.transactions.len() + outcome.rejected.len() != raws.len())
        {
            return Err(format!(
                "{} raw transactions gave {} included, {} receipts and {} rejected",
                raws.len(),
                outcome.transactions.len(),
                outcome.receipts.len(),
                outcome.rejected.len()
            ));
        }
        Ok(())
    }
}
