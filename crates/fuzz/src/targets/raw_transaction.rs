//! `raw_transaction`: random bytes and mutations of valid signed transactions (every envelope
//! kind the dev keys sign, to each engine) through the chain's decode and recover path,
//! `Runtime::check_transaction` and a block. Bad bytes are a typed `Rejection`; a block always
//! commits (a refused transaction is left out of it, never an abandoned block); a transaction
//! `check_transaction` accepts is included.

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, U256};
use xstate_chain::dev::{DevRequest, DevTarget, FeeKind, anvil_genesis};
use xstate_chain::{BlockInput, ChainConfig, Runtime, SignedTransaction};

const CHAIN_ID: u64 = 31337;
const GENESIS_TIME: u64 = 1_700_000_000;

/// A runtime with anvil's genesis.
pub(crate) fn dev_runtime() -> Runtime {
    let runtime = Runtime::in_memory(ChainConfig::new(CHAIN_ID));
    runtime.init_genesis(&anvil_genesis(GENESIS_TIME)).expect("anvil's genesis initialises an empty store");
    runtime
}

/// Signed transactions of every kind for `runtime`'s next block, each from its own dev key.
pub(crate) fn valid_transactions(runtime: &Runtime) -> Vec<Bytes> {
    let counter = Bytes::from_static(include_bytes!("../../../../guest/counter/counter.wasm"));
    let name = kv_core::ModuleName::new("counter").expect("a valid module name");
    let eip1559 = FeeKind::Eip1559 { max_fee_per_gas: None, max_priority_fee_per_gas: None };
    let requests = [
        (DevTarget::Address(Address::repeat_byte(0x42)), Bytes::new(), U256::from(1_000), eip1559),
        (DevTarget::Create, Bytes::from_static(&[0x60, 0x00, 0x60, 0x00, 0xf3]), U256::ZERO, eip1559),
        (DevTarget::Deploy { name: name.clone(), version: 1, code: counter }, Bytes::new(), U256::ZERO, eip1559),
        (DevTarget::Module(name, 1), Bytes::new(), U256::ZERO, FeeKind::Legacy { gas_price: 10_000_000_000 }),
        (
            DevTarget::Address(cross_read::XSTATE_PRECOMPILE),
            cross_read::abi::encode_module_address("counter", 1).into(),
            U256::ZERO,
            FeeKind::Legacy { gas_price: 10_000_000_000 },
        ),
    ];
    requests
        .into_iter()
        .enumerate()
        .map(|(key, (target, data, value, fee))| {
            let key = u32::try_from(key).unwrap_or(0);
            let request = DevRequest { key, target, data, value, gas: None, nonce: None, fee };
            request.sign(runtime, 0).encoded_2718().into()
        })
        .collect()
}

/// The `raw_transaction` target.
pub(crate) struct RawTransaction {
    runtime: Runtime,
    seeds: Vec<Vec<u8>>,
    reached: u64,
}

impl RawTransaction {
    pub(crate) fn new() -> Self {
        let runtime = dev_runtime();
        let seeds = valid_transactions(&runtime).into_iter().map(|raw| raw.to_vec()).collect();
        Self { runtime, seeds, reached: 0 }
    }
}

impl super::Target for RawTransaction {
    fn name(&self) -> &'static str {
        "raw_transaction"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        self.seeds.clone()
    }

    fn reached(&self) -> u64 {
        self.reached
    }

    fn reached_means(&self) -> &'static str {
        "envelopes decoded and recovered"
    }

    fn random_len(&self) -> usize {
        300
    }

    fn run(&mut self, input: &[u8]) -> Result<(), String> {
        // Undecodable bytes are a typed rejection; nothing more to run.
        let Ok(transaction) = SignedTransaction::decode(input, CHAIN_ID) else { return Ok(()) };
        self.reached += 1;
        let checked = self.runtime.check_transaction(&transaction);
        let block = BlockInput { timestamp: self.runtime.latest_timestamp() + 1, ..Default::default() };
        let raw = [Bytes::copy_from_slice(input)];
        let outcome = self
            .runtime
            .execute_block(&block, &raw, |_| {})
            .map_err(|error| format!("one transaction abandoned the block: {error}"))?;
        let included = outcome.transactions.len() == 1;
        if usize::from(included) + outcome.rejected.len() != 1 {
            return Err(format!("the transaction is neither included nor rejected: {outcome:?}"));
        }
        if checked.is_ok() && !included {
            return Err(format!(
                "check_transaction accepted a transaction the block rejected: {:?}",
                outcome.rejected.first().map(|rejected| rejected.reason.to_string())
            ));
        }
        Ok(())
    }
}
