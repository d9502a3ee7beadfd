//! The runtime: one store, both engines, blocks of mixed transactions committed under one root.

use crate::transaction::{Created, Genesis, ModuleRef, Receipt, Status, Transaction};
use alloy_primitives::{Address, B256, Bytes, U256};
use cross_read::XStatePrecompiles;
use evm_binding::revm::context::result::{ExecutionResult, Output};
use evm_binding::revm::context::{BlockEnv, TxEnv};
use evm_binding::revm::primitives::TxKind;
use evm_binding::revm::primitives::hardfork::SpecId;
use evm_binding::{EvmError, EvmExecutor, EvmSession, insert_account};
use kv_core::{CommitInfo, Identity, KeyProof, Namespace, NamespaceProof, Overlay, Store, StoreConfig, StoreError};
use std::path::Path;
use std::time::{Duration, Instant};
use wasm_binding::{CallError, CallRequest, CallStatus, DeployError, WasmEngine};

/// The EVM rules the runtime runs.
pub const SPEC: SpecId = SpecId::PRAGUE;
/// The chain id used when none is given.
pub const DEFAULT_CHAIN_ID: u64 = 31337;
/// The gas limit of a block.
pub const BLOCK_GAS_LIMIT: u64 = 1_000_000_000;
/// The WASM gas a block may spend in all its WASM calls (10 WASM gas per EVM gas).
pub const BLOCK_WASM_GAS_LIMIT: u64 = BLOCK_GAS_LIMIT * wasm_binding::gas::WASM_GAS_PER_EVM_GAS;
const CHAIN_ID_LABEL: &str = "chain_id";

/// Why the runtime could not do what was asked. A block that fails this way commits nothing.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The store failed (including: missing, locked by another process, corrupt).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store was created for another chain.
    #[error("the store belongs to chain {stored}, not chain {requested}")]
    ChainMismatch {
        /// The store's chain id.
        stored: u64,
        /// The requested chain id.
        requested: u64,
    },
    /// A genesis can only be imported into an empty store.
    #[error(
        "genesis can only be imported into an empty store (this one is at height {0}); remove `genesis` from the block file to run it on this store"
    )]
    GenesisNotEmpty(u64),
    /// A genesis entry is invalid.
    #[error("invalid genesis: {0}")]
    Genesis(String),
    /// The state failed underneath a transaction; the block was abandoned.
    #[error("the state failed while executing transaction {index}: {reason}")]
    Execution {
        /// The transaction.
        index: usize,
        /// What failed.
        reason: String,
    },
}

/// The outcome of a committed block.
#[derive(Clone, Debug)]
pub struct BlockOutcome {
    /// One receipt per transaction, in order.
    pub receipts: Vec<Receipt>,
    /// The new height and root.
    pub commit: CommitInfo,
    /// Time spent executing the transactions.
    pub execution_time: Duration,
    /// Time spent committing (values, trie, durable write).
    pub commit_time: Duration,
}

/// Both engines over one store.
pub struct Runtime {
    store: Store,
    chain_id: u64,
    wasm: WasmEngine,
    evm: EvmExecutor,
}

impl Runtime {
    /// A runtime over `store` for chain `chain_id`. A new store remembers the chain id; an
    /// existing one must have been created for the same chain.
    pub fn new(store: Store, chain_id: u64) -> Result<Self, RuntimeError> {
        match Self::stored_chain_id(&store)? {
            Some(stored) if stored != chain_id => {
                return Err(RuntimeError::ChainMismatch { stored, requested: chain_id });
            }
            Some(_) => {}
            None => store.set_label(CHAIN_ID_LABEL, &chain_id.to_be_bytes())?,
        }
        Ok(Self { store, chain_id, wasm: cross_read::wasm_engine(chain_id), evm: EvmExecutor::new(chain_id, SPEC) })
    }

    /// The chain id `store` was created for, or `None` for a store no runtime has opened yet.
    pub fn stored_chain_id(store: &Store) -> Result<Option<u64>, RuntimeError> {
        let Some(bytes) = store.label(CHAIN_ID_LABEL)? else {
            return Ok(None);
        };
        let bytes =
            bytes.as_slice().try_into().map_err(|_| StoreError::Corrupt("chain id label is not 8 bytes".to_owned()))?;
        Ok(Some(u64::from_be_bytes(bytes)))
    }

    /// A runtime on a fresh in-memory store.
    pub fn in_memory(chain_id: u64) -> Self {
        Self::new(Store::in_memory(), chain_id).expect("a fresh in-memory store accepts any chain id")
    }

    /// A runtime on the redb store at `path`, created if absent.
    pub fn open(path: &Path, chain_id: u64) -> Result<Self, RuntimeError> {
        Self::new(Store::open_redb(path, StoreConfig::default())?, chain_id)
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The latest height.
    pub fn height(&self) -> u64 {
        self.store.height()
    }

    /// The latest root.
    pub fn root(&self) -> B256 {
        self.store.root()
    }

    /// The identity of module `(name, version)` on this chain.
    pub fn module_identity(&self, name: &kv_core::ModuleName, version: u32) -> Identity {
        self.wasm.identity(name, version)
    }

    /// The committed value of an encoded state key.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, RuntimeError> {
        Ok(self.store.get(key)?)
    }

    /// A proof of `key` at `height` (the latest when `None`).
    pub fn prove(&self, key: &[u8], height: Option<u64>) -> Result<KeyProof, RuntimeError> {
        Ok(self.store.prove(key, height)?)
    }

    /// A proof of `key` at `height` (the latest when `None`) with the value it had then, read
    /// from the trie (so older heights answer too).
    pub fn prove_value(&self, key: &[u8], height: Option<u64>) -> Result<(KeyProof, Option<Vec<u8>>), RuntimeError> {
        Ok(self.store.prove_value(key, height)?)
    }

    /// The EIP-1186 proof (`eth_getProof`) of an EVM account and storage slots at `height`.
    pub fn eip1186_proof(
        &self,
        address: alloy_primitives::Address,
        slots: &[B256],
        height: Option<u64>,
    ) -> Result<kv_core::AccountProof, RuntimeError> {
        Ok(self.store.eip1186_proof(address, slots, height)?)
    }

    /// A namespace's storage root (`None` when it has no account leaf) and its proof.
    pub fn prove_namespace(
        &self,
        namespace: &Namespace,
        height: Option<u64>,
    ) -> Result<(Option<B256>, NamespaceProof), RuntimeError> {
        Ok(self.store.prove_namespace(namespace, height)?)
    }

    /// Executes `transactions` in order as the next block and commits it, with `genesis` (allowed
    /// only on an empty store) imported first in the same commit. A transaction that fails is a
    /// failed receipt and the block goes on; an invalid genesis or a failure of the store abandons
    /// the whole block, and nothing of it is committed. `progress` is called after each
    /// transaction.
    pub fn execute_block(
        &self,
        genesis: Option<&Genesis>,
        transactions: &[Transaction],
        mut progress: impl FnMut(usize),
    ) -> Result<BlockOutcome, RuntimeError> {
        let started = Instant::now();
        let mut overlay = self.store.begin();
        if let Some(genesis) = genesis {
            self.import_genesis(&mut overlay, genesis)?;
        }
        let height = self.store.height() + 1;
        let block = BlockEnv {
            number: U256::from(height),
            timestamp: U256::from(height),
            gas_limit: BLOCK_GAS_LIMIT,
            ..Default::default()
        };
        let mut receipts = Vec::with_capacity(transactions.len());
        let (mut evm_gas_left, mut wasm_gas_left) = (BLOCK_GAS_LIMIT, BLOCK_WASM_GAS_LIMIT);
        {
            let mut session = self.evm.session(&mut overlay, &block, XStatePrecompiles::new(SPEC));
            for (index, transaction) in transactions.iter().enumerate() {
                // A transaction whose gas limit no longer fits the block's budget is rejected
                // before it runs; the budget shrinks by what each transaction used.
                // A deploy has no gas limit of its own: it needs exactly its cost.
                let (left, gas, what, engine) = match transaction {
                    Transaction::EvmCreate { gas, .. } | Transaction::EvmCall { gas, .. } => {
                        (&mut evm_gas_left, *gas, "gas limit", "EVM")
                    }
                    Transaction::WasmCall { gas, .. } => (&mut wasm_gas_left, *gas, "gas limit", "WASM"),
                    Transaction::WasmDeploy { code, .. } => {
                        (&mut wasm_gas_left, wasm_binding::gas::deploy_cost(code.len()), "deploy cost", "WASM")
                    }
                };
                let receipt = if gas > *left {
                    Receipt::new(
                        index,
                        transaction.kind(),
                        Status::Rejected(format!("{what} {gas} exceeds the {left} {engine} gas left in the block")),
                    )
                } else {
                    let receipt = self.execute(&mut session, index, transaction)?;
                    *left = left.saturating_sub(receipt.gas_used);
                    receipt
                };
                receipts.push(receipt);
                progress(index + 1);
            }
        }
        let execution_time = started.elapsed();
        let committing = Instant::now();
        let commit = self.store.commit(&overlay)?;
        Ok(BlockOutcome { receipts, commit, execution_time, commit_time: committing.elapsed() })
    }

    /// Writes `genesis` into the overlay of the first block.
    fn import_genesis(&self, overlay: &mut Overlay, genesis: &Genesis) -> Result<(), RuntimeError> {
        if self.store.height() != 0 {
            return Err(RuntimeError::GenesisNotEmpty(self.store.height()));
        }
        for (address, account) in &genesis.accounts {
            insert_account(overlay, *address, account)
                .map_err(|error| RuntimeError::Genesis(format!("account {address}: {error}")))?;
        }
        for (name, version, code) in &genesis.modules {
            self.wasm
                .deploy(overlay, name, *version, code)
                .map_err(|error| RuntimeError::Genesis(format!("module {name} v{version}: {error}")))?;
        }
        Ok(())
    }

    fn execute(
        &self,
        session: &mut EvmSession<'_, XStatePrecompiles>,
        index: usize,
        transaction: &Transaction,
    ) -> Result<Receipt, RuntimeError> {
        let new_receipt = |status| Receipt::new(index, transaction.kind(), status);
        let fatal = |reason: String| RuntimeError::Execution { index, reason };
        match transaction {
            Transaction::EvmCreate { from, code, value, gas } => {
                let tx = self.tx(session.state(), *from, TxKind::Create, code.clone(), *value, *gas).map_err(fatal)?;
                evm_receipt(session.transact(tx), new_receipt).map_err(fatal)
            }
            Transaction::EvmCall { from, to, data, value, gas } => {
                let tx =
                    self.tx(session.state(), *from, TxKind::Call(*to), data.clone(), *value, *gas).map_err(fatal)?;
                evm_receipt(session.transact(tx), new_receipt).map_err(fatal)
            }
            Transaction::WasmDeploy { name, version, code } => {
                // The cost is spent whatever the outcome: validating and compiling is the work it
                // prices, and a refused module has had that work done.
                let gas_used = wasm_binding::gas::deploy_cost(code.len());
                match session.with_overlay(|overlay| self.wasm.deploy(overlay, name, *version, code)) {
                    Ok(identity) => Ok(Receipt {
                        gas_used,
                        created: Some(Created::Module(identity)),
                        ..new_receipt(Status::Success)
                    }),
                    Err(DeployError::State(error)) => Err(fatal(error.to_string())),
                    // The node could not keep the compiled module: its failure, like the store's.
                    Err(error @ DeployError::Artifact(_)) => Err(fatal(error.to_string())),
                    // A compile error is a property of the bytes, the same on every node: singlepass
                    // is deterministic, and running out of memory aborts the process rather than
                    // returning an error. So it is the transaction's failure, unlike a module that
                    // compiled but cannot be instantiated here.
                    Err(
                        error @ (DeployError::Invalid(_)
                        | DeployError::Compile(_)
                        | DeployError::AlreadyDeployed { .. }),
                    ) => Ok(Receipt { gas_used, ..new_receipt(Status::Rejected(error.to_string())) }),
                }
            }
            Transaction::WasmCall { from, module, input, gas } => {
                let identity = match module {
                    ModuleRef::Identity(identity) => *identity,
                    ModuleRef::Named(name, version) => self.wasm.identity(name, *version),
                };
                let request = CallRequest { module: identity, caller: Identity::from(*from), input, gas_limit: *gas };
                match session.with_overlay(|overlay| self.wasm.call(overlay, &request)) {
                    Ok(result) => {
                        let status = match result.status {
                            CallStatus::Success => Status::Success,
                            CallStatus::Revert(data) => Status::Revert(data.into()),
                            CallStatus::Trap(reason) => Status::Failed(format!("trap: {reason}")),
                            CallStatus::OutOfGas => Status::Failed("out of gas".to_owned()),
                        };
                        Ok(Receipt { gas_used: result.gas_used, output: result.output.into(), ..new_receipt(status) })
                    }
                    // A damaged store or module record, or a module this machine cannot instantiate, is the
                    // node's failure, not the caller's.
                    Err(
                        error @ (CallError::State(_)
                        | CallError::Corrupt { .. }
                        | CallError::Instantiation { .. }
                        | CallError::Artifact { .. }),
                    ) => Err(fatal(error.to_string())),
                    Err(error @ CallError::UnknownModule(_)) => Ok(new_receipt(Status::Rejected(error.to_string()))),
                }
            }
        }
    }

    fn tx(
        &self,
        overlay: &Overlay,
        from: Address,
        kind: TxKind,
        data: Bytes,
        value: U256,
        gas: u64,
    ) -> Result<TxEnv, String> {
        let nonce = evm_binding::database::account(overlay, from)
            .map_err(|error| error.to_string())?
            .map_or(0, |record| record.nonce);
        Ok(TxEnv {
            caller: from,
            kind,
            data,
            value,
            gas_limit: gas,
            nonce,
            chain_id: Some(self.chain_id),
            ..Default::default()
        })
    }
}

/// Turns revm's outcome into a receipt. A failure of the store underneath, a fatal EVM error and
/// an invalid block environment are the node's failures and abandon the block; an invalid
/// transaction is rejected.
fn evm_receipt(
    outcome: Result<ExecutionResult, EvmError>,
    new_receipt: impl Fn(Status) -> Receipt,
) -> Result<Receipt, String> {
    match outcome {
        Ok(ExecutionResult::Success { gas, logs, output, .. }) => {
            let created = match &output {
                Output::Create(_, Some(address)) => Some(Created::Contract(*address)),
                _ => None,
            };
            let output = match output {
                Output::Call(data) | Output::Create(data, _) => data,
            };
            Ok(Receipt { gas_used: gas.tx_gas_used(), output, logs, created, ..new_receipt(Status::Success) })
        }
        Ok(ExecutionResult::Revert { gas, output, .. }) => {
            Ok(Receipt { gas_used: gas.tx_gas_used(), ..new_receipt(Status::Revert(output)) })
        }
        Ok(ExecutionResult::Halt { reason, gas, .. }) => {
            Ok(Receipt { gas_used: gas.tx_gas_used(), ..new_receipt(Status::Failed(format!("{reason:?}"))) })
        }
        Err(error @ EvmError::Transaction(_)) => Ok(new_receipt(Status::Rejected(error.to_string()))),
        Err(error @ (EvmError::Database(_) | EvmError::Header(_) | EvmError::Custom(_))) => Err(error.to_string()),
    }
}
