//! Phase C, evm-binding: revm on the shared substrate against revm's own in-memory `CacheDB`,
//! and SLOAD costs on a populated store.
//!
//! Both sides run the same ERC-20 transfer (the OpenZeppelin token compiled with the pinned solc)
//! with one EVM kept across transactions, after warm-up transfers, so a figure compares steady
//! state with steady state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Benchmark code: a failed unwrap is a failed run.

use evm_binding::abi::{artifact, calldata, mapping_slot, output_word, word};
use evm_binding::revm::context::result::ExecutionResult;
use evm_binding::revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use evm_binding::revm::database::{CacheDB, EmptyDB};
use evm_binding::revm::handler::{EthPrecompiles, MainnetContext, MainnetEvm};
use evm_binding::revm::primitives::hardfork::SpecId;
use evm_binding::revm::primitives::{Address, Bytes, TxKind, U256};
use evm_binding::revm::state::AccountInfo;
use evm_binding::revm::{ExecuteCommitEvm, MainBuilder, MainContext};
use evm_binding::{EvmExecutor, EvmSession, GenesisAccount, insert_account};
use kv_core::{Overlay, Store};

const CHAIN_ID: u64 = 1;
const SPEC: SpecId = SpecId::PRAGUE;
const OWNER: Address = Address::repeat_byte(0xd0);
const BOB: Address = Address::repeat_byte(0xb0);
/// SLOADs per measured call.
pub const SLOADS: u64 = 1_000;
/// Transfers run before anything is measured, on both sides.
const WARM_UP_TRANSFERS: u64 = 3;

fn tx(kind: TxKind, data: Bytes, nonce: u64) -> TxEnv {
    TxEnv { caller: OWNER, kind, data, nonce, gas_limit: 30_000_000, chain_id: Some(CHAIN_ID), ..Default::default() }
}

fn block() -> BlockEnv {
    BlockEnv { gas_limit: 1_000_000_000, ..Default::default() }
}

fn created(result: ExecutionResult) -> Address {
    assert!(result.is_success(), "{result:?}");
    result.created_address().unwrap()
}

fn token_code() -> Vec<u8> {
    let mut code = artifact("XToken").unwrap().to_vec();
    code.extend_from_slice(&word(OWNER).to_be_bytes::<32>());
    code
}

fn mint() -> Bytes {
    calldata("mint(address,uint256)", &[word(OWNER), U256::MAX >> 1])
}

fn transfer_calldata() -> Bytes {
    calldata("transfer(address,uint256)", &[word(BOB), U256::from(1)])
}

/// A new in-memory store, an executor and a block overlay in which the owner is funded.
fn funded_chain() -> (Store, EvmExecutor, kv_core::Overlay) {
    let store = Store::in_memory();
    let mut overlay = store.begin();
    let funds = GenesisAccount { balance: U256::from(10u128.pow(24)), ..Default::default() };
    insert_account(&mut overlay, OWNER, &funds).unwrap();
    (store, EvmExecutor::new(CHAIN_ID, SPEC), overlay)
}

/// The token on the shared store, with one EVM session kept for the block.
pub struct SharedTransfer {
    session: EvmSession<'static, EthPrecompiles>,
    token: Address,
    transfer: Bytes,
    nonce: u64,
}

impl Default for SharedTransfer {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedTransfer {
    /// Deploys and mints the token, commits, and opens a session on a new block overlay.
    pub fn new() -> Self {
        let (store, executor, mut overlay) = funded_chain();
        let token =
            created(executor.transact(&mut overlay, &block(), tx(TxKind::Create, token_code().into(), 0)).unwrap());
        assert!(executor.transact(&mut overlay, &block(), tx(TxKind::Call(token), mint(), 1)).unwrap().is_success());
        store.commit(&overlay).unwrap();
        // A session borrows its overlay for the block; a benchmark fixture lives as long as its
        // process, so the store and overlay are leaked to give the session that lifetime.
        let store: &'static Store = Box::leak(Box::new(store));
        let overlay: &'static mut Overlay = Box::leak(Box::new(store.begin()));
        let session = executor.session(overlay, &block(), EthPrecompiles::new(SPEC));
        let mut fixture = Self { session, token, transfer: transfer_calldata(), nonce: 2 };
        for _ in 0..WARM_UP_TRANSFERS {
            fixture.transfer();
        }
        fixture
    }

    /// One ERC-20 transfer.
    pub fn transfer(&mut self) {
        let result = self.session.transact(tx(TxKind::Call(self.token), self.transfer.clone(), self.nonce)).unwrap();
        assert!(result.is_success(), "{result:?}");
        self.nonce += 1;
    }
}

type CacheEvm = MainnetEvm<MainnetContext<CacheDB<EmptyDB>>>;

/// The same token on revm's `CacheDB`, with one EVM.
pub struct CacheDbTransfer {
    evm: CacheEvm,
    token: Address,
    transfer: Bytes,
    nonce: u64,
}

impl Default for CacheDbTransfer {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheDbTransfer {
    /// Deploys and mints the token on a `CacheDB`.
    pub fn new() -> Self {
        let mut cfg = CfgEnv::new_with_spec(SPEC);
        cfg.set_spec_and_mainnet_gas_params(SPEC);
        cfg.chain_id = CHAIN_ID;
        let mut cache = CacheDB::new(EmptyDB::default());
        cache.insert_account_info(OWNER, AccountInfo { balance: U256::from(10u128.pow(24)), ..Default::default() });
        let mut evm = Context::mainnet().with_cfg(cfg).with_block(block()).with_db(cache).build_mainnet();
        let token = created(evm.transact_commit(tx(TxKind::Create, token_code().into(), 0)).unwrap());
        assert!(evm.transact_commit(tx(TxKind::Call(token), mint(), 1)).unwrap().is_success());
        let mut fixture = Self { evm, token, transfer: transfer_calldata(), nonce: 2 };
        for _ in 0..WARM_UP_TRANSFERS {
            fixture.transfer();
        }
        fixture
    }

    /// One ERC-20 transfer.
    pub fn transfer(&mut self) {
        let result = self.evm.transact_commit(tx(TxKind::Call(self.token), self.transfer.clone(), self.nonce)).unwrap();
        assert!(result.is_success(), "{result:?}");
        self.nonce += 1;
    }
}

/// A contract with 10,000 populated slots and a contract that SLOADs one slot in a loop.
pub struct Sloads {
    store: Store,
    executor: EvmExecutor,
    storage: Address,
    loop_contract: Address,
}

impl Default for Sloads {
    fn default() -> Self {
        Self::new()
    }
}

impl Sloads {
    /// Deploys the two contracts and fills the storage contract's slots.
    pub fn new() -> Self {
        let (store, executor, mut overlay) = funded_chain();
        let storage = created(
            executor.transact(&mut overlay, &block(), tx(TxKind::Create, artifact("Storage").unwrap(), 0)).unwrap(),
        );
        let loop_contract = created(
            executor.transact(&mut overlay, &block(), tx(TxKind::Create, artifact("CrossBench").unwrap(), 1)).unwrap(),
        );
        for key in 0..10_000u64 {
            let slot = mapping_slot(U256::from(key), U256::ZERO);
            let key = kv_core::Namespace::evm(storage).word_key(&slot.to_be_bytes::<32>());
            overlay.set(&key, &U256::from(3).to_be_bytes::<32>()).unwrap();
        }
        store.commit(&overlay).unwrap();
        Self { store, executor, storage, loop_contract }
    }

    /// The sender's next nonce in `overlay`, which may be a fresh block over the committed store
    /// or one that earlier calls advanced.
    fn nonce(overlay: &Overlay) -> u64 {
        evm_binding::database::account(overlay, OWNER).unwrap().map_or(0, |account| account.nonce)
    }

    /// One transaction summing 1,000 distinct slots, each SLOAD cold and read from the store, on
    /// `overlay` (a fresh one per block).
    pub fn sload_cold(&self, overlay: &mut Overlay) {
        let sum = calldata("sum(uint256,uint256)", &[U256::ZERO, U256::from(SLOADS)]);
        let nonce = Self::nonce(overlay);
        let result = self.executor.transact(overlay, &block(), tx(TxKind::Call(self.storage), sum, nonce)).unwrap();
        assert_eq!(output_word(&result, 0), Some(U256::from(3 * SLOADS)));
    }

    /// One transaction loading one slot 1,000 times.
    pub fn sload_warm(&self, overlay: &mut Overlay) {
        let warm = calldata("sloadLoop(uint256)", &[U256::from(SLOADS)]);
        let nonce = Self::nonce(overlay);
        let result =
            self.executor.transact(overlay, &block(), tx(TxKind::Call(self.loop_contract), warm, nonce)).unwrap();
        assert_eq!(output_word(&result, 0), Some(U256::from(SLOADS)));
    }
}

/// Runs phase C's wall-clock figures into `samples`.
pub fn wall(quick: bool, samples: &mut crate::harness::Samples) {
    use crate::harness::{Budget, pairs, repeats, timed};
    let budget = Budget::new(quick);
    const TRANSFERS: u32 = 20;
    let mut shared = SharedTransfer::new();
    let mut cache = CacheDbTransfer::new();
    let mut on_shared = || timed(|| (0..TRANSFERS).for_each(|_| shared.transfer()));
    let mut on_cache = || timed(|| (0..TRANSFERS).for_each(|_| cache.transfer()));
    let measured = pairs(budget, &mut on_shared, &mut on_cache);
    samples.pair_ratios("evm/erc20_transfer_vs_cachedb", &measured, |a, b| a / b);
    samples.repeated("evm/erc20_transfers_per_s", measured.iter().map(|&(a, _)| f64::from(TRANSFERS) * 1e9 / a));
    let sloads = Sloads::new();
    let per_sload = |ns: &f64| ns / SLOADS as f64;
    // Each block starts from a fresh overlay over the committed store, so every SLOAD is cold.
    let mut cold = || {
        let mut overlay = sloads.store.begin();
        timed(|| sloads.sload_cold(&mut overlay))
    };
    samples.repeated("evm/sload_cold_ns", repeats(budget, &mut cold).iter().map(per_sload));
    let mut overlay = sloads.store.begin();
    let mut warm = || timed(|| sloads.sload_warm(&mut overlay));
    samples.repeated("evm/sload_warm_ns", repeats(budget, &mut warm).iter().map(per_sload));
}
