//! One harness for cross-engine tests: a store with both engines, the committed guest modules,
//! and helpers to run transactions of either kind in one block (ABI helpers and Solidity
//! artifacts are `evm_binding::abi`'s).
#![allow(dead_code)]

use evm_binding::revm::context::result::ExecutionResult;
use evm_binding::revm::context::{BlockEnv, TxEnv};
use evm_binding::revm::primitives::hardfork::SpecId;
use evm_binding::revm::primitives::{Address, Bytes, TxKind, U256};
use evm_binding::{EvmExecutor, GenesisAccount, insert_account};
use kv_core::{Identity, ModuleName, Overlay, Store};
use wasm_binding::{CallRequest, Receipt, WasmEngine};

pub(crate) const CHAIN_ID: u64 = 31337;
pub(crate) const DEPLOYER: Address = Address::repeat_byte(0xd0);
pub(crate) const ALICE: Address = Address::repeat_byte(0xa1);
pub(crate) const BOB: Address = Address::repeat_byte(0xb0);

pub(crate) fn guest(name: &str) -> Vec<u8> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest").join(name).join(format!("{name}.wasm"));
    std::fs::read(path).unwrap()
}

pub(crate) struct World {
    pub(crate) store: Store,
    pub(crate) overlay: Overlay,
    pub(crate) wasm: WasmEngine,
    pub(crate) evm: EvmExecutor,
    pub(crate) block: BlockEnv,
}

impl World {
    pub(crate) fn new() -> Self {
        Self::on(Store::in_memory())
    }

    pub(crate) fn on(store: Store) -> Self {
        let mut overlay = store.begin();
        for address in [DEPLOYER, ALICE, BOB] {
            let account = GenesisAccount { balance: U256::from(10u128.pow(21)), ..Default::default() };
            insert_account(&mut overlay, address, &account).unwrap();
        }
        let block = BlockEnv { number: U256::from(1), gas_limit: 30_000_000, ..Default::default() };
        Self {
            store,
            overlay,
            wasm: cross_read::wasm_engine(CHAIN_ID),
            evm: EvmExecutor::new(CHAIN_ID, SpecId::PRAGUE),
            block,
        }
    }

    pub(crate) fn deploy_module(&mut self, name: &str, code: &[u8]) -> Identity {
        self.wasm.deploy(&mut self.overlay, &ModuleName::new(name).unwrap(), 1, code).unwrap()
    }

    pub(crate) fn wasm_call(&mut self, caller: Address, module: Identity, input: &[u8]) -> Receipt {
        let request = CallRequest { module, caller: Identity::from(caller), input, gas_limit: 100_000_000 };
        self.wasm.call(&mut self.overlay, &request).unwrap()
    }

    pub(crate) fn tx(&self, caller: Address, kind: TxKind, data: impl Into<Bytes>) -> TxEnv {
        let nonce = evm_binding::database::account(&self.overlay, caller).unwrap().map_or(0, |record| record.nonce);
        TxEnv {
            caller,
            kind,
            data: data.into(),
            gas_limit: 5_000_000,
            nonce,
            chain_id: Some(CHAIN_ID),
            ..Default::default()
        }
    }

    pub(crate) fn send(&mut self, tx: TxEnv) -> ExecutionResult {
        cross_read::evm_transact(&self.evm, &mut self.overlay, &self.block, tx).unwrap()
    }

    pub(crate) fn evm_call(&mut self, caller: Address, to: Address, data: impl Into<Bytes>) -> ExecutionResult {
        let tx = self.tx(caller, TxKind::Call(to), data);
        self.send(tx)
    }

    pub(crate) fn deploy_contract(&mut self, name: &str, constructor: &[U256]) -> Address {
        let mut code = evm_binding::abi::artifact(name).unwrap().to_vec();
        for word in constructor {
            code.extend_from_slice(&word.to_be_bytes::<32>());
        }
        let tx = self.tx(DEPLOYER, TxKind::Create, code);
        let result = self.send(tx);
        assert!(result.is_success(), "{result:?}");
        result.created_address().unwrap()
    }
}

pub(crate) fn token_input(operation: u8, holder: Address, amount: Option<u64>) -> Vec<u8> {
    let mut input = vec![operation];
    input.extend_from_slice(holder.as_slice());
    if let Some(amount) = amount {
        input.extend_from_slice(&amount.to_be_bytes());
    }
    input
}
