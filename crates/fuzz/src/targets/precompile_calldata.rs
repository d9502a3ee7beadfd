//! `precompile_calldata`: random calldata and mutations of valid `readU64` and `moduleAddress`
//! calls, sent in a transaction to the cross-read precompile at `0x…0a00`. Each ends as the
//! strict decoder (`cross_read::abi::decode`) says: a refused call reverts with its documented
//! error and never aborts or halts the transaction; an accepted one returns the right word
//! (the counter's slot 0, or the module's identity); WASM state never changes.

use alloy_primitives::{Address, U256};
use cross_read::XSTATE_PRECOMPILE;
use cross_read::abi::{self, Call};
use evm_binding::revm::context::result::ExecutionResult;
use evm_binding::revm::context::{BlockEnv, TxEnv};
use evm_binding::revm::primitives::TxKind;
use evm_binding::revm::primitives::hardfork::SpecId;
use evm_binding::{EvmExecutor, GenesisAccount, insert_account};
use kv_core::{Engine, Identity, ModuleName, Overlay, Store};
use wasm_binding::{CallRequest, WasmEngine};

const CHAIN_ID: u64 = 31337;
const SENDER: Address = Address::repeat_byte(0xa1);
/// How many times the fixture calls the counter, so its slot 0 holds this.
const COUNTER_CALLS: u64 = 3;

/// The `precompile_calldata` target: one overlay with a funded sender and the counter module.
pub(crate) struct PrecompileCalldata {
    _store: Store,
    overlay: Overlay,
    evm: EvmExecutor,
    wasm: WasmEngine,
    block: BlockEnv,
    counter: Identity,
    reached: u64,
}

impl PrecompileCalldata {
    pub(crate) fn new() -> Self {
        let store = Store::in_memory();
        let mut overlay = store.begin();
        let account = GenesisAccount { balance: U256::from(10u128.pow(24)), ..Default::default() };
        insert_account(&mut overlay, SENDER, &account).expect("an in-memory overlay takes an account");
        let wasm = cross_read::wasm_engine(CHAIN_ID);
        let name = ModuleName::new("counter").expect("a valid module name");
        let code = include_bytes!("../../../../guest/counter/counter.wasm");
        let counter = wasm.deploy(&mut overlay, &name, 1, code).expect("the committed counter deploys");
        for _ in 0..COUNTER_CALLS {
            let request =
                CallRequest { module: counter, caller: Identity::from(SENDER), input: b"", gas_limit: 10_000_000 };
            let receipt = wasm.call(&mut overlay, &request).expect("the counter runs");
            assert!(receipt.is_success(), "the counter failed: {receipt:?}");
        }
        let block = BlockEnv { number: U256::from(1), gas_limit: 30_000_000, ..Default::default() };
        Self {
            _store: store,
            overlay,
            evm: EvmExecutor::new(CHAIN_ID, SpecId::PRAGUE),
            wasm,
            block,
            counter,
            reached: 0,
        }
    }

    fn wasm_state(&self) -> Result<Vec<kv_core::backend::Entry>, String> {
        self.overlay.scan_prefix(&[Engine::Wasm.tag()]).map_err(|error| error.to_string())
    }
}

impl super::Target for PrecompileCalldata {
    fn name(&self) -> &'static str {
        "precompile_calldata"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        vec![
            abi::encode_read_u64(self.counter.to_address(), 0),
            abi::encode_read_u64(self.counter.to_address(), u64::MAX),
            abi::encode_read_u64(Address::repeat_byte(0x77), 1),
            abi::encode_module_address("counter", 1),
            abi::encode_module_address("a-very_long-module-name-0123456789", u32::MAX),
        ]
    }

    fn reached(&self) -> u64 {
        self.reached
    }

    fn reached_means(&self) -> &'static str {
        "calls the precompile answered"
    }

    fn random_len(&self) -> usize {
        200
    }

    fn run(&mut self, input: &[u8]) -> Result<(), String> {
        let nonce = evm_binding::database::account(&self.overlay, SENDER)
            .map_err(|error| error.to_string())?
            .map_or(0, |record| record.nonce);
        let tx = TxEnv {
            caller: SENDER,
            kind: TxKind::Call(XSTATE_PRECOMPILE),
            data: input.to_vec().into(),
            gas_limit: 5_000_000,
            nonce,
            chain_id: Some(CHAIN_ID),
            ..Default::default()
        };
        let before = self.wasm_state()?;
        let result = cross_read::evm_transact(&self.evm, &mut self.overlay, &self.block, tx)
            .map_err(|error| format!("the transaction was aborted: {error}"))?;
        if self.wasm_state()? != before {
            return Err("a precompile call changed WASM state".into());
        }
        match (abi::decode(input), &result) {
            (Err(refusal), ExecutionResult::Revert { output, .. }) => {
                if output[..] != refusal.encode()[..] {
                    return Err(format!("revert data {output} is not the documented {refusal:?}"));
                }
            }
            (Ok(call), ExecutionResult::Success { output, .. }) => {
                self.reached += 1;
                let expected = match call {
                    Call::ReadU64 { module, slot } => {
                        let value = if module == self.counter.to_address() && slot == 0 { COUNTER_CALLS } else { 0 };
                        abi::u64_word(value).to_vec()
                    }
                    Call::ModuleAddress { name, version } => {
                        let identity = self.wasm.identity(&name, version);
                        evm_binding::abi::word(identity.to_address()).to_be_bytes::<32>().to_vec()
                    }
                };
                if output.data()[..] != expected[..] {
                    return Err(format!(
                        "returned {} instead of 0x{}",
                        output.data(),
                        alloy_primitives::hex::encode(expected)
                    ));
                }
            }
            (decoded, other) => return Err(format!("decoding gives {decoded:?} but the transaction ended {other:?}")),
        }
        Ok(())
    }
}
