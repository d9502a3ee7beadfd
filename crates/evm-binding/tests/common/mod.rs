//! One harness for the EVM binding's tests: a store, an executor, genesis accounts and compiled
//! contracts from `contracts/artifacts` (ABI helpers are `evm_binding::abi`'s).
#![allow(dead_code)]

use evm_binding::revm::context::result::ExecutionResult;
use evm_binding::revm::context::{BlockEnv, TxEnv};
use evm_binding::revm::primitives::hardfork::SpecId;
use evm_binding::revm::primitives::{Address, Bytes, TxKind, U256};
use evm_binding::{EvmError, EvmExecutor, GenesisAccount, insert_account};
use kv_core::{Overlay, Store};

pub(crate) const CHAIN_ID: u64 = 31337;
pub(crate) const DEPLOYER: Address = Address::repeat_byte(0xd0);
pub(crate) const ALICE: Address = Address::repeat_byte(0xa1);
pub(crate) const BOB: Address = Address::repeat_byte(0xb0);

pub(crate) struct Chain {
    pub(crate) store: Store,
    pub(crate) overlay: Overlay,
    pub(crate) executor: EvmExecutor,
    pub(crate) block: BlockEnv,
}

impl Chain {
    pub(crate) fn new() -> Self {
        Self::on(Store::in_memory())
    }

    /// A chain on `store`; funds the well-known accounts when the store is new.
    pub(crate) fn on(store: Store) -> Self {
        let mut overlay = store.begin();
        if store.height() == 0 {
            for address in [DEPLOYER, ALICE, BOB] {
                let account = GenesisAccount { balance: U256::from(10u128.pow(21)), ..Default::default() };
                insert_account(&mut overlay, address, &account).unwrap();
            }
        }
        let block = BlockEnv { number: U256::from(1), gas_limit: 30_000_000, ..Default::default() };
        Self { store, overlay, executor: EvmExecutor::new(CHAIN_ID, SpecId::PRAGUE), block }
    }

    pub(crate) fn nonce(&self, address: Address) -> u64 {
        evm_binding::database::account(&self.overlay, address).unwrap().map_or(0, |record| record.nonce)
    }

    pub(crate) fn tx(&self, caller: Address, kind: TxKind, data: impl Into<Bytes>) -> TxEnv {
        TxEnv {
            caller,
            kind,
            data: data.into(),
            gas_limit: 5_000_000,
            gas_price: 0,
            nonce: self.nonce(caller),
            chain_id: Some(CHAIN_ID),
            ..Default::default()
        }
    }

    pub(crate) fn send(&mut self, tx: TxEnv) -> Result<ExecutionResult, EvmError> {
        self.executor.transact(&mut self.overlay, &self.block, tx)
    }

    pub(crate) fn deploy(&mut self, name: &str, constructor: &[U256]) -> Address {
        let mut code = evm_binding::abi::artifact(name).unwrap().to_vec();
        for word in constructor {
            code.extend_from_slice(&word.to_be_bytes::<32>());
        }
        let tx = self.tx(DEPLOYER, TxKind::Create, code);
        let result = self.send(tx).unwrap();
        assert!(result.is_success(), "{result:?}");
        result.created_address().unwrap()
    }

    pub(crate) fn call(&mut self, caller: Address, to: Address, data: impl Into<Bytes>) -> ExecutionResult {
        let tx = self.tx(caller, TxKind::Call(to), data);
        self.send(tx).unwrap()
    }

    pub(crate) fn storage(&self, address: Address, slot: U256) -> U256 {
        evm_binding::database::storage_word(&self.overlay, address, slot).unwrap()
    }

    pub(crate) fn commit(&mut self) {
        self.store.commit(&self.overlay).unwrap();
        self.overlay = self.store.begin();
    }
}
