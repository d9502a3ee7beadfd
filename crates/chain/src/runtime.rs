//! The runtime: one store, both engines, a chain of blocks with Ethereum headers whose state
//! root is the one root, and signed transactions of both engines paid for as Ethereum pays.

use crate::chain_store::{ChainStore, StoredBlock};
use crate::receipt::{Created, Kind, Receipt, Status};
use crate::rejection::Rejection;
use crate::signed::{SignedTransaction, recover_all};
use crate::transaction::Genesis;
use alloy_consensus::constants::EMPTY_OMMER_ROOT_HASH;
use alloy_consensus::proofs::{calculate_receipt_root, calculate_transaction_root};
use alloy_consensus::{EMPTY_ROOT_HASH, Header, Transaction as _};
use alloy_eips::Typed2718;
use alloy_eips::eip1559::BaseFeeParams;
use alloy_eips::eip2935::HISTORY_STORAGE_ADDRESS;
use alloy_eips::eip4788::BEACON_ROOTS_ADDRESS;
use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
use alloy_primitives::{Address, B64, B256, Bloom, Bytes, U256, address};
use cross_read::XStatePrecompiles;
use evm_binding::revm::context::result::{ExecutionResult, Output};
use evm_binding::revm::context::{BlockEnv, TxEnv};
use evm_binding::revm::context_interface::block::BlobExcessGasAndPrice;
use evm_binding::revm::context_interface::cfg::gas::calculate_initial_tx_gas_for_tx;
use evm_binding::revm::context_interface::either::Either;
use evm_binding::revm::primitives::eip4844::BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE;
use evm_binding::revm::primitives::hardfork::SpecId;
use evm_binding::revm::primitives::{KECCAK_EMPTY, TxKind};
use evm_binding::{BlockHashes, EvmError, EvmExecutor, EvmSession, insert_account};
use kv_core::{
    AccountRecord, CommitInfo, Identity, KeyProof, Namespace, NamespaceProof, Overlay, Store, StoreConfig, StoreError,
};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasm_binding::{CallError, CallRequest, CallStatus, DeployError, WasmEngine};

/// The EVM rules the runtime runs.
pub const SPEC: SpecId = SpecId::PRAGUE;
/// The chain id used when none is given (anvil's and Hardhat's).
pub const DEFAULT_CHAIN_ID: u64 = 31337;
/// The gas limit of every block when none is configured: anvil's default, 30 million. It covers
/// the transactions of both engines, counted in EVM gas.
pub const DEFAULT_BLOCK_GAS_LIMIT: u64 = 30_000_000;
/// The base fee of the genesis block when none is configured: 1 gwei, as anvil's and Ethereum's
/// London block. Block 1 has it too (as on anvil); every later block's follows EIP-1559's formula.
pub const DEFAULT_GENESIS_BASE_FEE: u64 = 1_000_000_000;
/// The reserved address beside the cross-read precompile (`0x…0a00`) that a WASM deploy is sent
/// to, with calldata `deploy(string name, uint32 version, bytes code)`.
pub const WASM_DEPLOY_ADDRESS: Address = address!("0x0000000000000000000000000000000000000a01");
/// How many past block hashes `BLOCKHASH` can see.
const BLOCKHASH_WINDOW: usize = 256;
const CHAIN_ID_LABEL: &str = "chain_id";

mod deploy_abi {
    #![allow(missing_docs)] // The ABI types are generated; the function is documented below.
    alloy_sol_types::sol! {
        /// The WASM deploy call: the ABI of the calldata sent to `0x…0a01`.
        function deploy(string name, uint32 version, bytes code);
    }
}
pub use deploy_abi::deployCall;

/// The EVM gas a WASM transaction is charged for `wasm_gas` units of WASM gas:
/// `ceil(wasm_gas / WASM_GAS_PER_EVM_GAS)`, the documented rate of `wasm_binding::gas`. Every
/// conversion between the engines' gas goes through this function and that one constant.
pub fn evm_gas_for_wasm_gas(wasm_gas: u64) -> u64 {
    wasm_gas.div_ceil(wasm_binding::gas::WASM_GAS_PER_EVM_GAS)
}

/// The WASM gas `evm_gas` units of a transaction's EVM gas buy.
pub fn wasm_gas_for_evm_gas(evm_gas: u64) -> u64 {
    evm_gas.saturating_mul(wasm_binding::gas::WASM_GAS_PER_EVM_GAS)
}

/// The parameters of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainConfig {
    /// The chain id every transaction must be signed for.
    pub chain_id: u64,
    /// The gas limit of every block, in EVM gas, over both engines.
    pub block_gas_limit: u64,
    /// The base fee of the genesis block.
    pub genesis_base_fee: u64,
    /// Whether every block records its witness while it executes and keeps it with the block's
    /// records (`Runtime::witness` then reads it back; without, it re-executes the block over
    /// its retained parent state). On by default: the recording costs a few per cent of a block.
    pub record_witnesses: bool,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self::new(DEFAULT_CHAIN_ID)
    }
}

impl ChainConfig {
    /// Chain `chain_id` with the default block gas limit and genesis base fee.
    pub fn new(chain_id: u64) -> Self {
        Self {
            chain_id,
            block_gas_limit: DEFAULT_BLOCK_GAS_LIMIT,
            genesis_base_fee: DEFAULT_GENESIS_BASE_FEE,
            record_witnesses: true,
        }
    }
}

/// What the producer of a block chooses (everything else in its header follows from the chain).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockInput {
    /// Seconds since the epoch; must be above the parent's.
    pub timestamp: u64,
    /// Who receives the priority fees.
    pub beneficiary: Address,
    /// At most 32 bytes.
    pub extra_data: Bytes,
    /// The header's `mixHash`, which `PREVRANDAO` returns.
    pub prevrandao: B256,
    /// The root EIP-4788's contract records (the chain has no beacon chain: zero by default).
    pub parent_beacon_block_root: B256,
}

/// A call that executes against the latest committed state and commits nothing: what
/// `eth_call` and `eth_estimateGas` run. It pays nothing (its gas price is 0 and the block's base
/// fee is taken as 0, as geth does for a call without a gas price) and uses the sender's current
/// nonce, so only `value` must be covered by the sender's balance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallInput {
    /// The sender (the zero address when the request names none).
    pub from: Address,
    /// The recipient: an EVM account, a module identity, or `None` for a creation.
    pub to: Option<Address>,
    /// Calldata (or init code).
    pub data: Bytes,
    /// Wei sent along.
    pub value: U256,
    /// The gas limit (default: the block gas limit).
    pub gas: Option<u64>,
}

/// What a read-only call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutcome {
    /// How it ended (a revert carries its data).
    pub status: Status,
    /// The gas it used, as a transaction's receipt would count it (intrinsic gas included).
    pub gas_used: u64,
    /// Its return data.
    pub output: Bytes,
    /// The logs it would have emitted.
    pub logs: Vec<alloy_primitives::Log>,
}

/// Why a read-only call could not run at all (a call that runs and reverts is an outcome).
#[derive(Debug, thiserror::Error)]
pub enum CallFailure {
    /// The call is invalid as a transaction (too little gas for its intrinsic cost, a value the
    /// sender cannot cover, ...), worded as geth words it.
    #[error("{0}")]
    Invalid(String),
    /// The runtime failed underneath it.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// Why the runtime could not do what was asked. A block that fails this way commits nothing.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The store failed (including: missing, locked by another process, corrupt).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The EVM view of the store failed (a backend error, or a corrupt account record).
    #[error(transparent)]
    EvmState(#[from] evm_binding::EvmDbError),
    /// The directory of compiled WASM modules beside the store cannot be opened.
    #[error("cannot open the compiled-module directory {path}: {source}")]
    Artifacts {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
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
        "genesis can only be imported into an empty store (this one has {0} blocks after its genesis); remove `genesis` from the block file to run it on this store"
    )]
    GenesisNotEmpty(u64),
    /// Blocks need a genesis block first.
    #[error("the chain has no genesis block yet")]
    NoGenesis,
    /// A query named a block after the latest.
    #[error("block {number} does not exist yet (the latest is {latest})")]
    UnknownBlock {
        /// The block asked for.
        number: u64,
        /// The latest block.
        latest: u64,
    },
    /// The store holds state without blocks (written before the chain kept headers).
    #[error("the store holds state at height {0} but no block headers; it was written by an older xstate")]
    NoHeaders(u64),
    /// A genesis entry is invalid.
    #[error("invalid genesis: {0}")]
    Genesis(String),
    /// The block's own fields are invalid.
    #[error("invalid block: {0}")]
    Block(String),
    /// A block-level system call (EIP-2935, EIP-4788) failed.
    #[error("the system call to {contract} failed: {reason}")]
    SystemCall {
        /// The system contract.
        contract: Address,
        /// What happened.
        reason: String,
    },
    /// An engine (wasmer, revm) or the runtime itself panicked while executing a block or a
    /// call. The panic was caught at the runtime's boundary: the block was abandoned (nothing of
    /// it is committed) and the runtime goes on serving. It is a bug to report, never an input's
    /// fault.
    #[error("the runtime panicked while executing {during}: {message}; nothing of it was committed")]
    Panic {
        /// What was being executed ("block 12", "a call").
        during: String,
        /// The panic's message.
        message: String,
    },
    /// The state failed underneath a transaction; the block was abandoned.
    #[error("the state failed while executing transaction {index}: {reason}")]
    Execution {
        /// The transaction's position in what was submitted.
        index: usize,
        /// What failed.
        reason: String,
    },
}

/// A transaction that was refused: it is not in the block and changed nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedTransaction {
    /// Its position in what was submitted.
    pub position: usize,
    /// Its hash, when it decoded.
    pub hash: Option<B256>,
    /// Its sender, when it recovered.
    pub sender: Option<Address>,
    /// Why.
    pub reason: Rejection,
}

/// The outcome of a committed block.
#[derive(Clone, Debug)]
pub struct BlockOutcome {
    /// The header, its state root the one root.
    pub header: Header,
    /// The block hash (keccak256 of the RLP header).
    pub hash: B256,
    /// The included transactions, in block order.
    pub transactions: Vec<SignedTransaction>,
    /// One receipt per included transaction.
    pub receipts: Vec<Receipt>,
    /// The transactions that were refused.
    pub rejected: Vec<RejectedTransaction>,
    /// The new store height and root.
    pub commit: CommitInfo,
    /// Time spent decoding envelopes and recovering senders.
    pub recovery_time: Duration,
    /// Time spent executing the transactions.
    pub execution_time: Duration,
    /// Time spent committing (values, trie, durable write, chain records).
    pub commit_time: Duration,
}

#[derive(Clone)]
struct Head {
    header: Header,
    hash: B256,
    /// The hashes of the latest blocks (at most [`BLOCKHASH_WINDOW`]), oldest first.
    recent: VecDeque<(u64, B256)>,
}

/// The latest block of the chain in `store`, with the hashes of the blocks before it, as a new
/// runtime or a rewind finds it; `None` before the genesis block.
fn load_head(store: &Store) -> Result<Option<Head>, RuntimeError> {
    let chain = ChainStore::new(store);
    let Some(number) = chain.head()? else {
        return if store.height() == 0 { Ok(None) } else { Err(RuntimeError::NoHeaders(store.height())) };
    };
    if store.height() != number + 1 {
        return Err(StoreError::Corrupt(format!(
            "the latest block is {number} but the state is at height {}",
            store.height()
        ))
        .into());
    }
    let missing = || StoreError::Corrupt(format!("block {number} has no header"));
    let header = chain.header(number)?.ok_or_else(missing)?;
    let hash = chain.hash(number)?.ok_or_else(missing)?;
    let mut recent = VecDeque::with_capacity(BLOCKHASH_WINDOW);
    for past in number.saturating_sub(BLOCKHASH_WINDOW as u64 - 1)..=number {
        let hash = chain.hash(past)?.ok_or_else(|| StoreError::Corrupt(format!("block {past} has no hash record")))?;
        recent.push_back((past, hash));
    }
    Ok(Some(Head { header, hash, recent }))
}

/// Both engines over one store, as a chain.
pub struct Runtime {
    store: Store,
    config: ChainConfig,
    engines: Engines,
    /// The latest block; held for the whole of a block's execution, so blocks are serial.
    head: Mutex<Option<Head>>,
    /// The latest committed block as readers see it, published once a block is committed: the
    /// queries read it and never wait for the block being executed.
    published: RwLock<Option<Arc<Head>>>,
}

/// Both engines of a chain, without a store: what executes a block over any overlay.
pub(crate) struct Engines {
    /// Shared with the witness recorder, which runs the runtime's own compiled modules.
    pub(crate) wasm: Arc<WasmEngine>,
    pub(crate) evm: EvmExecutor,
}

impl Engines {
    /// The engines of chain `chain_id`.
    pub(crate) fn new(chain_id: u64) -> Self {
        Self { wasm: Arc::new(cross_read::wasm_engine(chain_id)), evm: EvmExecutor::new(chain_id, SPEC) }
    }

    /// The runtime's WASM engine with a fresh EVM executor, whose empty code cache makes every
    /// contract's code a read of the state (see `Runtime::witness`).
    pub(crate) fn with_fresh_evm(&self, chain_id: u64) -> Self {
        Self { wasm: Arc::clone(&self.wasm), evm: EvmExecutor::new(chain_id, SPEC) }
    }
}

/// A block executed by the runtime, for its commit.
struct Executed {
    header: Header,
    transactions: Vec<SignedTransaction>,
    receipts: Vec<Receipt>,
    rejected: Vec<RejectedTransaction>,
}

/// A block executed on an overlay, not committed yet.
pub(crate) struct ExecutedBlock {
    /// The header; its state root is left for the commit.
    pub(crate) header: Header,
    pub(crate) included: Vec<SignedTransaction>,
    pub(crate) receipts: Vec<Receipt>,
    pub(crate) rejected: Vec<RejectedTransaction>,
}

/// Why one transaction did not make it into the block.
enum TxFailure {
    Rejected(Rejection),
    Fatal(String),
}

impl From<Rejection> for TxFailure {
    fn from(rejection: Rejection) -> Self {
        Self::Rejected(rejection)
    }
}

/// What the block's transactions share.
struct BlockContext {
    number: u64,
    base_fee: u64,
    gas_limit: u64,
    beneficiary: Address,
}

/// Where a transaction goes.
enum Route {
    Evm,
    WasmDeploy,
    WasmCall(Identity),
}

impl Runtime {
    /// A runtime over `store` for the chain `config` describes. A new store remembers the chain
    /// id; an existing one must have been created for the same chain.
    pub fn new(store: Store, config: ChainConfig) -> Result<Self, RuntimeError> {
        match Self::stored_chain_id(&store)? {
            Some(stored) if stored != config.chain_id => {
                return Err(RuntimeError::ChainMismatch { stored, requested: config.chain_id });
            }
            Some(_) => {}
            None => store.set_label(CHAIN_ID_LABEL, &config.chain_id.to_be_bytes())?,
        }
        let head = load_head(&store)?;
        Ok(Self {
            store,
            config,
            engines: Engines::new(config.chain_id),
            published: RwLock::new(head.clone().map(Arc::new)),
            head: Mutex::new(head),
        })
    }

    /// Goes back to block `number`, as if the blocks after it had never been mined: the state,
    /// the headers, bodies, receipts and indexes of the later blocks go in one atomic batch (a
    /// crash leaves all of them or none), and `number` is the latest block again. Waits for the
    /// block being executed. Refused with a typed error for a block after the latest, or before
    /// the oldest whose state is retained. Returns the latest block before the rewind.
    pub fn rewind_to(&self, number: u64) -> Result<u64, RuntimeError> {
        let mut head = self.head.lock();
        let latest = head.as_ref().ok_or(RuntimeError::NoGenesis)?.header.number;
        if number > latest {
            return Err(RuntimeError::UnknownBlock { number, latest });
        }
        let labels = self.chain().rewind_records(number, latest)?;
        self.store.rewind_with_labels(latest + 1, number + 1, &labels)?;
        let rewound = load_head(&self.store)?;
        *self.published.write() = rewound.clone().map(Arc::new);
        *head = rewound;
        Ok(latest)
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

    /// The store settings of [`Runtime::in_memory`] and [`Runtime::open`]: kv-core's defaults,
    /// rewindable, so that [`Runtime::rewind_to`] (a node's `evm_revert`) can go back to any
    /// retained block.
    pub fn store_config() -> StoreConfig {
        StoreConfig { rewindable: true, ..StoreConfig::default() }
    }

    /// A runtime on a fresh in-memory store.
    pub fn in_memory(config: ChainConfig) -> Self {
        Self::new(Store::in_memory_with(Self::store_config()), config)
            .expect("a fresh in-memory store accepts any chain")
    }

    /// A runtime on the redb store at `path`, created if absent.
    ///
    /// Compiled WASM modules are kept beside the store file, in the directory of the same name with
    /// the extension `artifacts`, so that a new process loads them instead of compiling them
    /// (gas never depends on it; ADR 0009).
    pub fn open(path: &Path, config: ChainConfig) -> Result<Self, RuntimeError> {
        let mut runtime = Self::new(Store::open_redb(path, Self::store_config())?, config)?;
        let directory = path.with_extension("artifacts");
        let artifacts = wasm_binding::DirectoryArtifacts::open(&directory)
            .map_err(|source| RuntimeError::Artifacts { path: directory, source })?;
        runtime.engines.wasm = Arc::new(cross_read::wasm_engine(config.chain_id).with_artifacts(Arc::new(artifacts)));
        Ok(runtime)
    }

    /// Both engines, to execute a block over an overlay of any state.
    pub(crate) fn engines(&self) -> &Engines {
        &self.engines
    }

    /// The chain's parameters.
    pub fn config(&self) -> ChainConfig {
        self.config
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.config.chain_id
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The chain's records (headers, transactions, receipts).
    pub fn chain(&self) -> ChainStore<'_> {
        ChainStore::new(&self.store)
    }

    /// The store's height (the genesis block is height 1, block `n` height `n + 1`).
    pub fn height(&self) -> u64 {
        self.store.height()
    }

    /// The latest root.
    pub fn root(&self) -> B256 {
        self.store.root()
    }

    /// The latest block's header and hash, `None` before the genesis block.
    pub fn latest(&self) -> Option<(Header, B256)> {
        self.published.read().as_ref().map(|head| (head.header.clone(), head.hash))
    }

    /// The base fee the next block will have.
    pub fn next_base_fee(&self) -> u64 {
        match &*self.published.read() {
            Some(head) => next_base_fee(&head.header),
            None => self.config.genesis_base_fee,
        }
    }

    /// The timestamp of the latest block (0 before the genesis block).
    pub fn latest_timestamp(&self) -> u64 {
        self.published.read().as_ref().map_or(0, |head| head.header.timestamp)
    }

    /// Block `number` with its transactions and receipts.
    pub fn block(&self, number: u64) -> Result<Option<StoredBlock>, RuntimeError> {
        Ok(self.chain().block(number)?)
    }

    /// The block holding transaction `hash` and the transaction's receipt.
    pub fn receipt(&self, hash: &B256) -> Result<Option<(StoredBlock, Receipt)>, RuntimeError> {
        let Some((number, index)) = self.chain().transaction_location(hash)? else {
            return Ok(None);
        };
        let block = self
            .block(number)?
            .ok_or_else(|| StoreError::Corrupt(format!("transaction {hash} points at missing block {number}")))?;
        let receipt = block
            .receipts
            .get(index)
            .filter(|receipt| receipt.hash == *hash)
            .cloned()
            .ok_or_else(|| StoreError::Corrupt(format!("transaction {hash} is not at {number}:{index}")))?;
        Ok(Some((block, receipt)))
    }

    /// The committed account record of `address`.
    pub fn account(&self, address: Address) -> Result<Option<AccountRecord>, RuntimeError> {
        let overlay = self.store.begin();
        Ok(evm_binding::database::account(&overlay, address)?)
    }

    /// The identity of module `(name, version)` on this chain.
    pub fn module_identity(&self, name: &kv_core::ModuleName, version: u32) -> Identity {
        self.engines.wasm.identity(name, version)
    }

    /// The committed value of an encoded state key.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, RuntimeError> {
        Ok(self.store.get(key)?)
    }

    /// The store height that holds the state after block `number` (the latest block when
    /// `None`). Block `n` is store height `n + 1`: height 0 is the empty store before genesis.
    /// Every query by block goes through here, so blocks and roots never disagree by one.
    pub fn state_height(&self, number: Option<u64>) -> Result<u64, RuntimeError> {
        let latest = self.published.read().as_ref().map(|head| head.header.number).ok_or(RuntimeError::NoGenesis)?;
        match number {
            None => Ok(latest + 1),
            Some(number) if number <= latest => Ok(number + 1),
            Some(number) => Err(RuntimeError::UnknownBlock { number, latest }),
        }
    }

    /// The state root after block `number` (the latest when `None`), as its header records it.
    pub fn root_at(&self, number: Option<u64>) -> Result<B256, RuntimeError> {
        Ok(self.store.root_at(self.state_height(number)?)?)
    }

    /// A proof of `key` after block `number` (the latest when `None`).
    pub fn prove(&self, key: &[u8], number: Option<u64>) -> Result<KeyProof, RuntimeError> {
        Ok(self.store.prove(key, Some(self.state_height(number)?))?)
    }

    /// A proof of `key` after block `number` (the latest when `None`) with the value it had
    /// then, read from the trie (so older blocks answer too).
    pub fn prove_value(&self, key: &[u8], number: Option<u64>) -> Result<(KeyProof, Option<Vec<u8>>), RuntimeError> {
        Ok(self.store.prove_value(key, Some(self.state_height(number)?))?)
    }

    /// The EIP-1186 proof (`eth_getProof`) of an EVM account and storage slots after block
    /// `number` (the latest when `None`), against that block header's state root.
    pub fn eip1186_proof(
        &self,
        address: Address,
        slots: &[B256],
        number: Option<u64>,
    ) -> Result<kv_core::AccountProof, RuntimeError> {
        Ok(self.store.eip1186_proof(address, slots, Some(self.state_height(number)?))?)
    }

    /// A namespace's storage root (`None` when it has no account leaf) and its proof after block
    /// `number` (the latest when `None`).
    pub fn prove_namespace(
        &self,
        namespace: &Namespace,
        number: Option<u64>,
    ) -> Result<(Option<B256>, NamespaceProof), RuntimeError> {
        Ok(self.store.prove_namespace(namespace, Some(self.state_height(number)?))?)
    }

    /// Checks `transaction` against the latest state as the first transaction of the next block
    /// would be checked (nonce, fees, gas, balance, value to a module), without executing it: what
    /// a node answers `eth_sendRawTransaction` with before it mines anything.
    pub fn check_transaction(&self, transaction: &SignedTransaction) -> Result<(), Rejection> {
        let (number, base_fee) = match &*self.published.read() {
            Some(head) => (head.header.number + 1, next_base_fee(&head.header)),
            None => (0, self.config.genesis_base_fee),
        };
        let context =
            BlockContext { number, base_fee, gas_limit: self.config.block_gas_limit, beneficiary: Address::ZERO };
        let overlay = self.store.begin();
        let env = tx_env(transaction);
        match validate(&overlay, &context, transaction, &env, 0) {
            Ok(_) => {}
            Err(TxFailure::Rejected(rejection)) => return Err(rejection),
            Err(TxFailure::Fatal(reason)) => return Err(Rejection::Other(reason)),
        }
        if let TxKind::Call(to) = env.kind
            && !env.value.is_zero()
        {
            let is_module = to == WASM_DEPLOY_ADDRESS
                || overlay
                    .read(&Namespace::wasm(Identity::from(to)).record_key(), &mut |_| {})
                    .map_err(|error| Rejection::Other(error.to_string()))?;
            if is_module {
                return Err(Rejection::ValueToModule { to, value: env.value });
            }
        }
        Ok(())
    }

    /// Executes `input` against the latest block's state, on either engine (a call to a module
    /// identity runs the module), and keeps nothing: the overlay is dropped. The block context is
    /// the latest header's, with a base fee of 0.
    pub fn call(&self, input: &CallInput) -> Result<CallOutcome, CallFailure> {
        self.call_at(input, None)
    }

    /// Executes `input` like [`Runtime::call`], against the state after block `number` (the
    /// latest when `None`) and with that block's header as its context: an older block's state
    /// is read through its retained trie root, so later blocks change nothing the call sees.
    /// A block whose state is no longer retained is a typed error.
    /// A panic inside either engine is caught and becomes [`RuntimeError::Panic`].
    pub fn call_at(&self, input: &CallInput, number: Option<u64>) -> Result<CallOutcome, CallFailure> {
        catch_panic("a call", || self.call_at_unguarded(input, number)).map_err(CallFailure::Runtime)?
    }

    /// [`Runtime::call_at`] without the panic guard.
    fn call_at_unguarded(&self, input: &CallInput, number: Option<u64>) -> Result<CallOutcome, CallFailure> {
        let head = self.published.read().clone();
        let head = head.as_ref().ok_or(RuntimeError::NoGenesis)?;
        let (header, recent, mut overlay) = match number {
            Some(number) if number < head.header.number => {
                let chain = self.chain();
                let missing = || RuntimeError::from(StoreError::Corrupt(format!("block {number} has no header")));
                let header = chain.header(number).map_err(RuntimeError::from)?.ok_or_else(missing)?;
                // Open the state first: a block whose state is pruned is refused before any of
                // its hashes are read.
                let view = self.store.view_at(number + 1).map_err(RuntimeError::from)?;
                let mut recent = HashMap::with_capacity(BLOCKHASH_WINDOW);
                for past in number.saturating_sub(BLOCKHASH_WINDOW as u64 - 1)..=number {
                    if let Some(hash) = chain.hash(past).map_err(RuntimeError::from)? {
                        recent.insert(past, hash);
                    }
                }
                (header, recent, view.overlay())
            }
            Some(number) if number > head.header.number => {
                return Err(RuntimeError::UnknownBlock { number, latest: head.header.number }.into());
            }
            _ => (head.header.clone(), head.recent.iter().copied().collect(), self.store.begin()),
        };
        let gas_limit = input.gas.unwrap_or(self.config.block_gas_limit).min(self.config.block_gas_limit);
        let runtime_failure = |error: &dyn std::fmt::Display| {
            CallFailure::Runtime(RuntimeError::Execution { index: 0, reason: error.to_string() })
        };
        let sender = evm_binding::database::account(&overlay, input.from).map_err(RuntimeError::from)?;
        let nonce = sender.map_or(0, |record| record.nonce);
        if let Some(to) = input.to
            && to != WASM_DEPLOY_ADDRESS
        {
            let identity = Identity::from(to);
            let is_module = overlay
                .read(&Namespace::wasm(identity).record_key(), &mut |_| {})
                .map_err(|error| runtime_failure(&error))?;
            if is_module {
                if !input.value.is_zero() {
                    return Err(CallFailure::Invalid(Rejection::ValueToModule { to, value: input.value }.to_string()));
                }
                let intrinsic = 21_000 + calldata_gas(&input.data);
                if gas_limit < intrinsic {
                    return Err(CallFailure::Invalid(
                        Rejection::IntrinsicGasTooLow { have: gas_limit, want: intrinsic }.to_string(),
                    ));
                }
                let available = gas_limit - intrinsic;
                let request = CallRequest {
                    module: identity,
                    caller: Identity::from(input.from),
                    input: &input.data,
                    gas_limit: wasm_gas_for_evm_gas(available),
                };
                return match self.engines.wasm.call(&mut overlay, &request) {
                    Ok(result) => {
                        let status = match result.status {
                            CallStatus::Success => Status::Success,
                            CallStatus::Revert(data) => Status::Revert(data.into()),
                            CallStatus::Trap(reason) => Status::Failed(format!("trap: {reason}")),
                            CallStatus::OutOfGas => Status::Failed("out of gas".to_owned()),
                        };
                        let used = intrinsic + evm_gas_for_wasm_gas(result.gas_used).min(available);
                        Ok(CallOutcome { status, gas_used: used, output: result.output.into(), logs: Vec::new() })
                    }
                    Err(error @ CallError::UnknownModule(_)) => Ok(CallOutcome {
                        status: Status::Failed(error.to_string()),
                        gas_used: intrinsic,
                        output: Bytes::new(),
                        logs: Vec::new(),
                    }),
                    Err(error) => Err(runtime_failure(&error)),
                };
            }
        }
        let block_env = BlockEnv {
            number: U256::from(header.number),
            beneficiary: header.beneficiary,
            timestamp: U256::from(header.timestamp),
            gas_limit: self.config.block_gas_limit,
            basefee: 0,
            difficulty: U256::ZERO,
            prevrandao: Some(header.mix_hash),
            blob_excess_gas_and_price: Some(BlobExcessGasAndPrice::new(0, BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE)),
            ..Default::default()
        };
        let block_hashes: BlockHashes = Arc::new(move |number| recent.get(&number).copied());
        let env = TxEnv {
            tx_type: 2,
            caller: input.from,
            gas_limit,
            gas_price: 0,
            gas_priority_fee: Some(0),
            kind: input.to.map_or(TxKind::Create, TxKind::Call),
            value: input.value,
            data: input.data.clone(),
            nonce,
            chain_id: Some(self.config.chain_id),
            ..Default::default()
        };
        if input.to == Some(WASM_DEPLOY_ADDRESS) {
            // A deploy is not simulated: it would compile the module, and its gas is known from its
            // size alone. The call answers what the transaction would use.
            let intrinsic = calculate_initial_tx_gas_for_tx(&env, SPEC, None);
            let deploy = match <deployCall as alloy_sol_types::SolCall>::abi_decode(&input.data) {
                Ok(call) => evm_gas_for_wasm_gas(wasm_binding::gas::deploy_cost(call.code.len())),
                Err(error) => {
                    return Ok(CallOutcome {
                        status: Status::Failed(format!("calldata is not deploy(string,uint32,bytes): {error}")),
                        gas_used: intrinsic.initial_regular_gas,
                        output: Bytes::new(),
                        logs: Vec::new(),
                    });
                }
            };
            let used = (intrinsic.initial_regular_gas + intrinsic.initial_state_gas + deploy).max(intrinsic.floor_gas);
            return Ok(CallOutcome { status: Status::Success, gas_used: used, output: Bytes::new(), logs: Vec::new() });
        }
        let mut session = self.engines.evm.session_with_block_hashes(
            &mut overlay,
            &block_env,
            XStatePrecompiles::new(SPEC),
            block_hashes,
        );
        match session.transact(env) {
            Ok(ExecutionResult::Success { gas, logs, output, .. }) => {
                let output = match output {
                    Output::Call(data) | Output::Create(data, _) => data,
                };
                Ok(CallOutcome { status: Status::Success, gas_used: gas.tx_gas_used(), output, logs })
            }
            Ok(ExecutionResult::Revert { gas, output, .. }) => Ok(CallOutcome {
                status: Status::Revert(output),
                gas_used: gas.tx_gas_used(),
                output: Bytes::new(),
                logs: Vec::new(),
            }),
            Ok(ExecutionResult::Halt { reason, gas, .. }) => Ok(CallOutcome {
                status: Status::Failed(format!("{reason:?}")),
                gas_used: gas.tx_gas_used(),
                output: Bytes::new(),
                logs: Vec::new(),
            }),
            Err(EvmError::Transaction(error)) => Err(CallFailure::Invalid(error.to_string())),
            Err(error) => Err(runtime_failure(&error)),
        }
    }

    /// Imports `genesis` into the empty store and commits it as block 0.
    pub fn init_genesis(&self, genesis: &Genesis) -> Result<BlockOutcome, RuntimeError> {
        let started = Instant::now();
        let mut head = self.head.lock();
        if let Some(head) = &*head {
            return Err(RuntimeError::GenesisNotEmpty(head.header.number));
        }
        if self.store.height() != 0 {
            return Err(RuntimeError::NoHeaders(self.store.height()));
        }
        let mut overlay = self.store.begin();
        for (address, account) in &genesis.accounts {
            insert_account(&mut overlay, *address, account)
                .map_err(|error| RuntimeError::Genesis(format!("account {address}: {error}")))?;
        }
        for (name, version, code) in &genesis.modules {
            self.engines
                .wasm
                .deploy(&mut overlay, name, *version, code)
                .map_err(|error| RuntimeError::Genesis(format!("module {name} v{version}: {error}")))?;
        }
        let header = Header {
            gas_limit: self.config.block_gas_limit,
            timestamp: genesis.timestamp,
            base_fee_per_gas: Some(self.config.genesis_base_fee),
            ..empty_header()
        };
        let execution_time = started.elapsed();
        let executed = Executed { header, transactions: Vec::new(), receipts: Vec::new(), rejected: Vec::new() };
        self.commit_block(&mut head, overlay, executed, None, Duration::ZERO, execution_time)
    }

    /// Decodes, recovers and executes `raw` transactions (EIP-2718 encodings) in order as the next
    /// block and commits it. A refused transaction is left out of the block and changes nothing;
    /// an included one that fails still uses its nonce and pays for its gas. An invalid block or
    /// a failure of the store abandons the whole block, and nothing of it is committed.
    /// `progress` is called after each transaction.
    pub fn execute_block(
        &self,
        block: &BlockInput,
        raw: &[Bytes],
        progress: impl FnMut(usize),
    ) -> Result<BlockOutcome, RuntimeError> {
        let started = Instant::now();
        let recovered = recover_all(raw, self.config.chain_id);
        self.execute_recovered(block, recovered, started.elapsed(), progress)
    }

    /// As [`Runtime::execute_block`], for transactions already decoded and recovered.
    pub fn execute_recovered(
        &self,
        block: &BlockInput,
        transactions: Vec<Result<SignedTransaction, Rejection>>,
        recovery_time: Duration,
        progress: impl FnMut(usize),
    ) -> Result<BlockOutcome, RuntimeError> {
        let started = Instant::now();
        let mut head = self.head.lock();
        let parent = head.as_ref().ok_or(RuntimeError::NoGenesis)?;
        let recent: HashMap<u64, B256> = parent.recent.iter().copied().collect();
        // The oldest block whose hash `BLOCKHASH` read: the witness carries the headers from it
        // up to the parent.
        let oldest_hash_read = Arc::new(AtomicU64::new(parent.header.number));
        let block_hashes: BlockHashes = {
            let oldest = Arc::clone(&oldest_hash_read);
            Arc::new(move |number| {
                let hash = recent.get(&number).copied();
                if hash.is_some() {
                    oldest.fetch_min(number, Ordering::Relaxed);
                }
                hash
            })
        };
        let mut overlay = if self.config.record_witnesses { self.store.begin_recording() } else { self.store.begin() };
        let executed = self.engines.run_block(
            &mut overlay,
            &parent.header,
            parent.hash,
            self.config.block_gas_limit,
            block,
            transactions,
            block_hashes,
            progress,
        )?;
        let execution_time = started.elapsed();
        let ExecutedBlock { header, included, receipts, rejected } = executed;
        let executed = Executed { header, transactions: included, receipts, rejected };
        let witness = self.config.record_witnesses.then(|| oldest_hash_read.load(Ordering::Relaxed));
        self.commit_block(&mut head, overlay, executed, witness, recovery_time, execution_time)
    }

    /// Commits an executed block with its records, and, when `witness` names the oldest block
    /// whose hash it read, the witness its recording overlay gathered.
    fn commit_block(
        &self,
        head: &mut Option<Head>,
        overlay: Overlay,
        executed: Executed,
        witness: Option<u64>,
        recovery_time: Duration,
        execution_time: Duration,
    ) -> Result<BlockOutcome, RuntimeError> {
        let Executed { mut header, transactions, receipts, rejected } = executed;
        let number = header.number;
        let committing = Instant::now();
        // The block's records name the state root, so they are made inside the commit, which
        // writes them in its own batch: the block's state and records land together or not at all.
        let mut hash = B256::ZERO;
        let mut records = |commit: &CommitInfo| {
            header.state_root = commit.root;
            let (block_hash, labels) = ChainStore::block_records(&header, &transactions, &receipts);
            hash = block_hash;
            labels
        };
        let commit = match witness {
            None => self.store.commit_with_labels(&overlay, records)?,
            Some(oldest_hash_read) => {
                let (commit, _) = self.store.commit_witnessed(&overlay, |commit, witness| {
                    let mut labels = records(commit);
                    labels.push(ChainStore::witness_record(number, witness, oldest_hash_read));
                    labels
                })?;
                commit
            }
        };
        let mut recent = head.take().map(|head| head.recent).unwrap_or_default();
        if recent.len() == BLOCKHASH_WINDOW {
            recent.pop_front();
        }
        recent.push_back((header.number, hash));
        let committed = Head { header: header.clone(), hash, recent };
        *self.published.write() = Some(Arc::new(committed.clone()));
        *head = Some(committed);
        Ok(BlockOutcome {
            header,
            hash,
            transactions,
            receipts,
            rejected,
            commit,
            recovery_time,
            execution_time,
            commit_time: committing.elapsed(),
        })
    }
}

/// Runs `work`, turning a panic inside it into [`RuntimeError::Panic`] naming `during`.
///
/// Unwind safety: the state `work` writes is a block's overlay, which every caller drops on
/// error, so no half-executed block can be committed. The engines' shared caches (compiled
/// modules, decoded code) are only changed by whole insertions under their locks, which
/// (parking_lot's) do not poison, so they stay usable after the panic.
fn catch_panic<T>(during: &str, work: impl FnOnce() -> T) -> Result<T, RuntimeError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|message| (*message).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        RuntimeError::Panic { during: during.to_owned(), message }
    })
}

impl Engines {
    /// Executes `transactions` as the block after `parent` (whose hash is `parent_hash`) on
    /// `overlay`, and returns its header (all but the state root, which the caller's commit
    /// gives), its included transactions, receipts and rejections. The one execution path of
    /// every block: committed to the store, recorded into a witness, or verified from one.
    ///
    /// A panic inside either engine is caught here and becomes [`RuntimeError::Panic`]: the
    /// caller drops `overlay`, so the block commits nothing, and the node goes on.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_block(
        &self,
        overlay: &mut Overlay,
        parent: &Header,
        parent_hash: B256,
        gas_limit: u64,
        block: &BlockInput,
        transactions: Vec<Result<SignedTransaction, Rejection>>,
        block_hashes: BlockHashes,
        progress: impl FnMut(usize),
    ) -> Result<ExecutedBlock, RuntimeError> {
        let during = format!("block {}", parent.number + 1);
        catch_panic(&during, || {
            self.run_block_unguarded(
                overlay,
                parent,
                parent_hash,
                gas_limit,
                block,
                transactions,
                block_hashes,
                progress,
            )
        })?
    }

    /// [`Engines::run_block`] without the panic guard.
    #[allow(clippy::too_many_arguments)]
    fn run_block_unguarded(
        &self,
        overlay: &mut Overlay,
        parent: &Header,
        parent_hash: B256,
        gas_limit: u64,
        block: &BlockInput,
        transactions: Vec<Result<SignedTransaction, Rejection>>,
        block_hashes: BlockHashes,
        mut progress: impl FnMut(usize),
    ) -> Result<ExecutedBlock, RuntimeError> {
        if block.timestamp <= parent.timestamp {
            return Err(RuntimeError::Block(format!(
                "timestamp {} is not after the parent's {}",
                block.timestamp, parent.timestamp
            )));
        }
        if block.extra_data.len() > 32 {
            return Err(RuntimeError::Block(format!("extra data is {} bytes, at most 32", block.extra_data.len())));
        }
        let context = BlockContext {
            number: parent.number + 1,
            base_fee: next_base_fee(parent),
            gas_limit,
            beneficiary: block.beneficiary,
        };
        let block_env = BlockEnv {
            number: U256::from(context.number),
            beneficiary: block.beneficiary,
            timestamp: U256::from(block.timestamp),
            gas_limit: context.gas_limit,
            basefee: context.base_fee,
            difficulty: U256::ZERO,
            prevrandao: Some(block.prevrandao),
            blob_excess_gas_and_price: Some(BlobExcessGasAndPrice::new(0, BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE)),
            ..Default::default()
        };

        let mut included = Vec::new();
        let mut receipts: Vec<Receipt> = Vec::new();
        let mut rejected = Vec::new();
        let mut gas_used = 0u64;
        {
            let mut session =
                self.evm.session_with_block_hashes(overlay, &block_env, XStatePrecompiles::new(SPEC), block_hashes);
            system_call(&mut session, HISTORY_STORAGE_ADDRESS, Bytes::copy_from_slice(parent_hash.as_slice()))?;
            system_call(
                &mut session,
                BEACON_ROOTS_ADDRESS,
                Bytes::copy_from_slice(block.parent_beacon_block_root.as_slice()),
            )?;
            for (position, transaction) in transactions.into_iter().enumerate() {
                let (failure, hash, sender) = match transaction {
                    Err(reason) => (TxFailure::Rejected(reason), None, None),
                    Ok(transaction) => match self.execute_transaction(&mut session, &context, &transaction, gas_used) {
                        Ok(mut receipt) => {
                            gas_used += receipt.gas_used;
                            receipt.index = receipts.len();
                            receipt.cumulative_gas_used = gas_used;
                            receipts.push(receipt);
                            included.push(transaction);
                            progress(position + 1);
                            continue;
                        }
                        Err(failure) => (failure, Some(transaction.hash()), Some(transaction.sender)),
                    },
                };
                match failure {
                    TxFailure::Rejected(reason) => {
                        rejected.push(RejectedTransaction { position, hash, sender, reason })
                    }
                    TxFailure::Fatal(reason) => return Err(RuntimeError::Execution { index: position, reason }),
                }
                progress(position + 1);
            }
        }
        let envelopes: Vec<_> = receipts.iter().map(Receipt::envelope).collect();
        let mut logs_bloom = Bloom::ZERO;
        for receipt in &envelopes {
            logs_bloom.accrue_bloom(receipt.logs_bloom());
        }
        let header = Header {
            parent_hash,
            beneficiary: block.beneficiary,
            transactions_root: calculate_transaction_root(
                &included.iter().map(|transaction| transaction.envelope.clone()).collect::<Vec<_>>(),
            ),
            receipts_root: calculate_receipt_root(&envelopes),
            logs_bloom,
            number: context.number,
            gas_limit: context.gas_limit,
            gas_used,
            timestamp: block.timestamp,
            extra_data: block.extra_data.clone(),
            mix_hash: block.prevrandao,
            base_fee_per_gas: Some(context.base_fee),
            parent_beacon_block_root: Some(block.parent_beacon_block_root),
            ..empty_header()
        };
        Ok(ExecutedBlock { header, included, receipts, rejected })
    }

    /// Validates, routes and executes one transaction. `Ok` is an included transaction;
    /// its receipt's index and cumulative gas are filled in by the caller.
    fn execute_transaction(
        &self,
        session: &mut EvmSession<'_, XStatePrecompiles>,
        context: &BlockContext,
        transaction: &SignedTransaction,
        block_gas_used: u64,
    ) -> Result<Receipt, TxFailure> {
        let env = tx_env(transaction);
        let state = session.state();
        let route = match env.kind {
            TxKind::Create => Route::Evm,
            TxKind::Call(to) if to == WASM_DEPLOY_ADDRESS => Route::WasmDeploy,
            TxKind::Call(to) => {
                let identity = Identity::from(to);
                let is_module = state
                    .read(&Namespace::wasm(identity).record_key(), &mut |_| {})
                    .map_err(|error| TxFailure::Fatal(error.to_string()))?;
                if is_module { Route::WasmCall(identity) } else { Route::Evm }
            }
        };
        let intrinsic = validate(state, context, transaction, &env, block_gas_used)?;
        if let (Route::WasmDeploy | Route::WasmCall(_), TxKind::Call(to)) = (&route, env.kind)
            && !env.value.is_zero()
        {
            return Err(Rejection::ValueToModule { to, value: env.value }.into());
        }
        let effective_gas_price = transaction.envelope.effective_gas_price(Some(context.base_fee));
        let envelope = &transaction.envelope;
        let receipt = |kind, status, gas_used, output, logs, created| Receipt {
            index: 0,
            hash: transaction.hash(),
            tx_type: envelope.ty(),
            sender: transaction.sender,
            nonce: envelope.nonce(),
            to: envelope.to(),
            kind,
            status,
            gas_used,
            cumulative_gas_used: 0,
            effective_gas_price,
            output,
            logs,
            created,
        };
        match route {
            Route::Evm => {
                let kind = if env.kind.is_create() { Kind::EvmCreate } else { Kind::EvmCall };
                match session.transact(env) {
                    Ok(ExecutionResult::Success { gas, logs, output, .. }) => {
                        let created = match &output {
                            Output::Create(_, Some(address)) => Some(Created::Contract(*address)),
                            _ => None,
                        };
                        let output = match output {
                            Output::Call(data) | Output::Create(data, _) => data,
                        };
                        Ok(receipt(kind, Status::Success, gas.tx_gas_used(), output, logs, created))
                    }
                    Ok(ExecutionResult::Revert { gas, output, .. }) => {
                        Ok(receipt(kind, Status::Revert(output), gas.tx_gas_used(), Bytes::new(), Vec::new(), None))
                    }
                    Ok(ExecutionResult::Halt { reason, gas, .. }) => Ok(receipt(
                        kind,
                        Status::Failed(format!("{reason:?}")),
                        gas.tx_gas_used(),
                        Bytes::new(),
                        Vec::new(),
                        None,
                    )),
                    Err(EvmError::Transaction(error)) => Err(Rejection::Other(error.to_string()).into()),
                    Err(error @ (EvmError::Database(_) | EvmError::Header(_) | EvmError::Custom(_))) => {
                        Err(TxFailure::Fatal(error.to_string()))
                    }
                }
            }
            Route::WasmDeploy | Route::WasmCall(_) => {
                let kind = if matches!(route, Route::WasmDeploy) { Kind::WasmDeploy } else { Kind::WasmCall };
                let outcome = session.with_overlay(|overlay| {
                    self.execute_wasm(overlay, context, transaction, &route, intrinsic, effective_gas_price)
                })?;
                Ok(receipt(kind, outcome.status, outcome.gas_used, outcome.output, Vec::new(), outcome.created))
            }
        }
    }

    /// Runs a WASM deploy or call and charges its sender exactly as revm charges an EVM
    /// transaction: the nonce increments, `gas used * effective gas price` leaves the sender, the
    /// priority fee part of it goes to the beneficiary and the base fee part is burned (credited
    /// to no one). A failed deploy or call keeps none of its WASM writes but still pays.
    fn execute_wasm(
        &self,
        overlay: &mut Overlay,
        context: &BlockContext,
        transaction: &SignedTransaction,
        route: &Route,
        intrinsic: Intrinsic,
        effective_gas_price: u128,
    ) -> Result<WasmOutcome, TxFailure> {
        let fatal = |error: &dyn std::fmt::Display| TxFailure::Fatal(error.to_string());
        let envelope = &transaction.envelope;
        let gas_limit = envelope.gas_limit();
        let available = gas_limit - intrinsic.initial;
        let mut outcome = match route {
            Route::WasmDeploy => {
                self.deploy_wasm(overlay, envelope.input(), available).map_err(|error| fatal(&error))?
            }
            Route::WasmCall(identity) => {
                let request = CallRequest {
                    module: *identity,
                    caller: Identity::from(transaction.sender),
                    input: envelope.input(),
                    gas_limit: wasm_gas_for_evm_gas(available),
                };
                match self.wasm.call(overlay, &request) {
                    Ok(result) => {
                        let status = match result.status {
                            CallStatus::Success => Status::Success,
                            CallStatus::Revert(data) => Status::Revert(data.into()),
                            CallStatus::Trap(reason) => Status::Failed(format!("trap: {reason}")),
                            CallStatus::OutOfGas => Status::Failed("out of gas".to_owned()),
                        };
                        let used = evm_gas_for_wasm_gas(result.gas_used).min(available);
                        WasmOutcome { status, gas_used: used, output: result.output.into(), created: None }
                    }
                    // A damaged store or module record, or a module this machine cannot
                    // instantiate, is the node's failure, not the sender's.
                    Err(
                        error @ (CallError::State(_)
                        | CallError::Corrupt { .. }
                        | CallError::Instantiation { .. }
                        | CallError::Artifact { .. }),
                    ) => {
                        return Err(fatal(&error));
                    }
                    Err(error @ CallError::UnknownModule(_)) => WasmOutcome {
                        status: Status::Failed(error.to_string()),
                        gas_used: 0,
                        output: Bytes::new(),
                        created: None,
                    },
                }
            }
            Route::Evm => unreachable_route(),
        };
        outcome.gas_used = (intrinsic.initial + outcome.gas_used).max(intrinsic.floor).min(gas_limit);
        let fee = U256::from(outcome.gas_used) * U256::from(effective_gas_price);
        let tip =
            U256::from(outcome.gas_used) * U256::from(effective_gas_price.saturating_sub(u128::from(context.base_fee)));
        let sender = transaction.sender;
        let mut record = evm_binding::database::account(overlay, sender)
            .map_err(|error| fatal(&error))?
            .unwrap_or(AccountRecord { nonce: 0, balance: U256::ZERO, code_hash: KECCAK_EMPTY });
        record.nonce += 1;
        // `validate` checked the balance covers `gas limit * max fee`, which is at least the fee.
        record.balance = record.balance.saturating_sub(fee);
        overlay.set(&Namespace::evm(sender).record_key(), &record.encode()).map_err(|error| fatal(&error))?;
        if !tip.is_zero() {
            let beneficiary = context.beneficiary;
            let mut record = evm_binding::database::account(overlay, beneficiary)
                .map_err(|error| fatal(&error))?
                .unwrap_or(AccountRecord { nonce: 0, balance: U256::ZERO, code_hash: KECCAK_EMPTY });
            record.balance = record.balance.saturating_add(tip);
            overlay.set(&Namespace::evm(beneficiary).record_key(), &record.encode()).map_err(|error| fatal(&error))?;
        }
        Ok(outcome)
    }

    /// A WASM deploy from its calldata; `available` is the EVM gas left after the intrinsic gas.
    /// The returned gas excludes the intrinsic gas.
    fn deploy_wasm(&self, overlay: &mut Overlay, calldata: &[u8], available: u64) -> Result<WasmOutcome, String> {
        let failed = |reason: String, gas_used| WasmOutcome {
            status: Status::Failed(reason),
            gas_used,
            output: Bytes::new(),
            created: None,
        };
        use alloy_sol_types::SolCall;
        let call = match deployCall::abi_decode(calldata) {
            Ok(call) => call,
            Err(error) => {
                return Ok(failed(format!("calldata is not deploy(string,uint32,bytes): {error}"), 0));
            }
        };
        let name = match kv_core::ModuleName::new(&call.name) {
            Ok(name) => name,
            Err(error) => return Ok(failed(format!("invalid module name: {error}"), 0)),
        };
        // The deploy cost is WASM gas (validating and compiling is the work it prices), spent
        // whatever the outcome once the gas covers it.
        let cost = evm_gas_for_wasm_gas(wasm_binding::gas::deploy_cost(call.code.len()));
        if cost > available {
            return Ok(failed(format!("out of gas: deploying {} bytes costs {cost} gas", call.code.len()), available));
        }
        match self.wasm.deploy(overlay, &name, call.version, &call.code) {
            Ok(identity) => Ok(WasmOutcome {
                status: Status::Success,
                gas_used: cost,
                output: Bytes::copy_from_slice(identity.to_address().as_slice()),
                created: Some(Created::Module(identity)),
            }),
            Err(DeployError::State(error)) => Err(error.to_string()),
            // The node could not keep the compiled module: its failure, like the store's.
            Err(error @ DeployError::Artifact(_)) => Err(error.to_string()),
            // A compile error is a property of the bytes, the same on every node (singlepass is
            // deterministic), so it is the transaction's failure.
            Err(error @ (DeployError::Invalid(_) | DeployError::Compile(_) | DeployError::AlreadyDeployed { .. })) => {
                Ok(failed(error.to_string(), cost))
            }
        }
    }
}

/// The result of a WASM transaction before its fee is charged.
struct WasmOutcome {
    status: Status,
    /// EVM gas.
    gas_used: u64,
    output: Bytes,
    created: Option<Created>,
}

/// The EVM routes never reach the WASM executor.
fn unreachable_route() -> WasmOutcome {
    WasmOutcome {
        status: Status::Failed("not a WASM transaction".to_owned()),
        gas_used: 0,
        output: Bytes::new(),
        created: None,
    }
}

/// The intrinsic gas of a transaction and its EIP-7623 floor.
#[derive(Clone, Copy)]
struct Intrinsic {
    initial: u64,
    floor: u64,
}

/// Checks one transaction against the state and the block with the rules of geth's transaction
/// pool and state transition (nonce first, intrinsic gas last, as geth), for both engines alike.
fn validate(
    state: &Overlay,
    context: &BlockContext,
    transaction: &SignedTransaction,
    env: &TxEnv,
    block_gas_used: u64,
) -> Result<Intrinsic, TxFailure> {
    let fatal = |error: &dyn std::fmt::Display| TxFailure::Fatal(error.to_string());
    let address = transaction.sender;
    let envelope = &transaction.envelope;
    let account = evm_binding::database::account(state, address).map_err(|error| fatal(&error))?;
    let (state_nonce, balance, code_hash) =
        account.map_or((0, U256::ZERO, KECCAK_EMPTY), |record| (record.nonce, record.balance, record.code_hash));
    if env.nonce < state_nonce {
        return Err(Rejection::NonceTooLow { address, tx: env.nonce, state: state_nonce }.into());
    }
    if env.nonce > state_nonce {
        return Err(Rejection::NonceTooHigh { address, tx: env.nonce, state: state_nonce }.into());
    }
    if code_hash != KECCAK_EMPTY {
        let code = evm_binding::database::code(state, code_hash).map_err(|error| fatal(&error))?;
        if !code.is_eip7702() {
            return Err(Rejection::SenderNotEoa { address, code_hash }.into());
        }
    }
    let max_fee = envelope.max_fee_per_gas();
    if let Some(tip) = envelope.max_priority_fee_per_gas()
        && tip > max_fee
    {
        return Err(Rejection::TipAboveFeeCap { address, tip, max_fee }.into());
    }
    if max_fee < u128::from(context.base_fee) {
        return Err(Rejection::FeeCapTooLow { address, max_fee, base_fee: context.base_fee }.into());
    }
    if envelope.is_eip7702() && envelope.authorization_list().is_none_or(<[_]>::is_empty) {
        return Err(Rejection::EmptyAuthorizationList { address }.into());
    }
    let gas = env.gas_limit;
    if gas > context.gas_limit {
        return Err(Rejection::ExceedsBlockGasLimit { gas, limit: context.gas_limit }.into());
    }
    let left = context.gas_limit - block_gas_used;
    if gas > left {
        return Err(Rejection::BlockGasLimitReached { gas, left }.into());
    }
    let want = U256::from(gas) * U256::from(max_fee) + env.value;
    if balance < want {
        return Err(Rejection::InsufficientFunds { address, have: balance, want }.into());
    }
    let initial = calculate_initial_tx_gas_for_tx(env, SPEC, None);
    let intrinsic = initial.initial_regular_gas + initial.initial_state_gas;
    if gas < intrinsic {
        return Err(Rejection::IntrinsicGasTooLow { have: gas, want: intrinsic }.into());
    }
    if gas < initial.floor_gas {
        return Err(Rejection::FloorDataGas { have: gas, want: initial.floor_gas }.into());
    }
    let limit = evm_binding::revm::primitives::eip3860::MAX_INITCODE_SIZE;
    if env.kind.is_create() && env.data.len() > limit {
        return Err(Rejection::InitCodeTooLarge { size: env.data.len(), limit }.into());
    }
    Ok(Intrinsic { initial: intrinsic, floor: initial.floor_gas })
}

/// revm's view of a signed transaction.
fn tx_env(transaction: &SignedTransaction) -> TxEnv {
    let envelope = &transaction.envelope;
    TxEnv {
        tx_type: envelope.ty(),
        caller: transaction.sender,
        gas_limit: envelope.gas_limit(),
        gas_price: envelope.max_fee_per_gas(),
        kind: envelope.kind(),
        value: envelope.value(),
        data: envelope.input().clone(),
        nonce: envelope.nonce(),
        chain_id: envelope.chain_id(),
        access_list: envelope.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: envelope.max_priority_fee_per_gas(),
        authorization_list: envelope
            .authorization_list()
            .map(|list| list.iter().cloned().map(Either::Left).collect())
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// A Prague block-level system call, made when `contract` has code (a chain whose genesis has no
/// such contract has nothing to call, as on a chain that never deployed it).
fn system_call(
    session: &mut EvmSession<'_, XStatePrecompiles>,
    contract: Address,
    data: Bytes,
) -> Result<(), RuntimeError> {
    let failed = |reason: String| RuntimeError::SystemCall { contract, reason };
    let record =
        evm_binding::database::account(session.state(), contract).map_err(|error| failed(error.to_string()))?;
    if record.is_none_or(|record| record.code_hash == KECCAK_EMPTY) {
        return Ok(());
    }
    match session.system_call(contract, data) {
        Ok(ExecutionResult::Success { .. }) => Ok(()),
        Ok(other) => Err(failed(format!("{other:?}"))),
        Err(error) => Err(failed(error.to_string())),
    }
}

/// The base fee of the block after `parent`, by EIP-1559's formula with Ethereum's parameters
/// (elasticity 2, change denominator 8), except after the genesis block: the configured starting
/// base fee is the first block's too, as anvil has it (its block 1 pays the genesis base fee, not
/// seven eighths of it), so that the same transactions pay the same fees and leave the same state
/// root on both chains.
fn next_base_fee(parent: &Header) -> u64 {
    if parent.number == 0 {
        return parent.base_fee_per_gas.unwrap_or_default();
    }
    parent.next_block_base_fee(BaseFeeParams::ethereum()).unwrap_or_default()
}

/// A header with Prague's constant fields and the roots of an empty block.
fn empty_header() -> Header {
    Header {
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        difficulty: U256::ZERO,
        nonce: B64::ZERO,
        withdrawals_root: Some(EMPTY_ROOT_HASH),
        blob_gas_used: Some(0),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(B256::ZERO),
        requests_hash: Some(EMPTY_REQUESTS_HASH),
        ..Default::default()
    }
}

/// The calldata gas of EIP-2028 (4 per zero byte, 16 per other byte).
fn calldata_gas(data: &[u8]) -> u64 {
    data.iter().map(|&byte| if byte == 0 { 4 } else { 16 }).sum()
}
