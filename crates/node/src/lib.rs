//! xstate-node serves a chain of both engines over Ethereum JSON-RPC: the node a Solidity or
//! Rust-WASM developer starts the way they start anvil.
//!
//! It sits above `xstate-chain` (and so above the four phase crates): it takes a
//! [`xstate_chain::Runtime`], serves JSON-RPC 2.0 over HTTP with batches on `jsonrpsee`, answers
//! with alloy's RPC types, and mines blocks, at once for every transaction (instant mining, the
//! default) or every `--block-time` seconds. It adds no execution rules of its own: validation,
//! fees, routing to an engine and commitment are the runtime's. It has no command line (the
//! `xstate node` subcommand parses one and calls [`Node::start`]).

mod convert;
mod errors;
mod ids;
mod pool;
mod rpc;

pub use convert::account_proof_response;
pub use rpc::MODULE_CODE;

use alloy_primitives::{Address, B256, Bytes};
use jsonrpsee::server::{BatchRequestConfig, Server, ServerConfig, ServerHandle};
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use xstate_chain::{BlockInput, BlockOutcome, Runtime, RuntimeError, SignedTransaction};

/// The largest request body the node reads: 5 MiB (geth's limit for HTTP).
pub const MAX_REQUEST_BYTES: u32 = 5 * 1024 * 1024;
/// The largest response body the node writes: 100 MiB.
pub const MAX_RESPONSE_BYTES: u32 = 100 * 1024 * 1024;
/// The most calls one batch may hold (geth's default `BatchRequestLimit`, 1000).
pub const MAX_BATCH: u32 = 1000;
/// The most blocks one `eth_getLogs` may span (the range cap of common providers).
pub const MAX_LOG_BLOCK_RANGE: u64 = 10_000;
/// The most logs one `eth_getLogs` may answer (geth's and common providers' cap).
pub const MAX_LOGS: usize = 10_000;
/// The most transactions the pool holds.
pub const MAX_QUEUED: usize = 10_000;
/// What `web3_clientVersion` answers.
pub const CLIENT_VERSION: &str = concat!("xstate/v", env!("CARGO_PKG_VERSION"));

/// How a node runs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where it listens (port 0: a free port the system chooses).
    pub http: SocketAddr,
    /// `None`: a block as soon as a transaction arrives; `Some`: a block every interval.
    pub block_time: Option<Duration>,
    /// Who receives the priority fees (anvil's default: the zero address).
    pub beneficiary: Address,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self { http: SocketAddr::from(([127, 0, 0, 1], 8545)), block_time: None, beneficiary: Address::ZERO }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The chain has no genesis block.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// What every request handler shares: the runtime and the mining state.
pub(crate) struct NodeState {
    pub(crate) runtime: Runtime,
    pub(crate) config: NodeConfig,
    /// Held for the whole of producing a block, so that blocks are made one at a time and a
    /// shutdown waits for the block in progress.
    pub(crate) mining: Mutex<()>,
    /// Transactions waiting for a block: with instant mining, only those whose nonce is ahead of
    /// their sender's next one.
    pub(crate) pool: Mutex<pool::Pool>,
    /// The clock the dev methods move.
    pub(crate) clock: Mutex<Clock>,
    /// The snapshots `evm_snapshot` took and `evm_revert` goes back to.
    pub(crate) snapshots: Mutex<Snapshots>,
}

/// The snapshots of `evm_snapshot`, as anvil keeps them: ids count up from 0 and are never
/// reused; a revert consumes its snapshot and every later one.
#[derive(Debug, Default)]
pub(crate) struct Snapshots {
    /// The id the next snapshot gets.
    pub(crate) next_id: u64,
    /// Each live snapshot's block and the clock offset `evm_increaseTime` had then.
    pub(crate) taken: std::collections::BTreeMap<u64, Snapshot>,
}

/// What a snapshot goes back to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Snapshot {
    /// The latest block when it was taken.
    pub(crate) block: u64,
    /// The clock offset then.
    pub(crate) clock_offset: u64,
}

/// The node's clock: the wall clock moved by `evm_increaseTime`, and the timestamp
/// `evm_setNextBlockTimestamp` fixed for the next block.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    /// Seconds added to the wall clock.
    pub(crate) offset: u64,
    /// The next block's timestamp, used once.
    pub(crate) next: Option<u64>,
}

impl NodeState {
    /// The timestamp of the next block: the one `evm_setNextBlockTimestamp` fixed, else the
    /// wall clock plus the offset `evm_increaseTime` added, and always after the parent.
    fn next_timestamp(&self) -> u64 {
        let mut clock = self.clock.lock();
        let parent = self.runtime.latest_timestamp();
        if let Some(next) = clock.next.take() {
            return next.max(parent + 1);
        }
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
        (now + clock.offset).max(parent + 1)
    }

    /// Mines `transactions` as the next block. The caller holds [`NodeState::mining`].
    pub(crate) fn mine(&self, transactions: Vec<SignedTransaction>) -> Result<BlockOutcome, RuntimeError> {
        let block = BlockInput {
            timestamp: self.next_timestamp(),
            beneficiary: self.config.beneficiary,
            extra_data: Bytes::new(),
            prevrandao: B256::ZERO,
            parent_beacon_block_root: B256::ZERO,
        };
        self.runtime.execute_recovered(&block, transactions.into_iter().map(Ok).collect(), Duration::ZERO, |_| {})
    }

    /// Takes the pool's transactions that can run now and mines them as one block. With
    /// `even_empty`, a block is mined when there are none (interval mining and `evm_mine`, as
    /// anvil does); otherwise nothing happens then. The caller holds [`NodeState::mining`].
    pub(crate) fn mine_ready(&self, even_empty: bool) -> Result<Option<BlockOutcome>, RuntimeError> {
        let nonce = |sender| self.runtime.account(sender).ok().flatten().map_or(0, |record| record.nonce);
        let transactions = self.pool.lock().take_ready(nonce);
        if transactions.is_empty() && !even_empty {
            return Ok(None);
        }
        self.mine(transactions).map(Some)
    }

    /// Mines the next interval block.
    fn mine_interval_block(&self) -> Result<Option<BlockOutcome>, RuntimeError> {
        let _mining = self.mining.lock();
        self.mine_ready(true)
    }
}

/// A running node.
pub struct Node {
    state: Arc<NodeState>,
    handle: ServerHandle,
    address: SocketAddr,
    miner: Option<tokio::task::JoinHandle<()>>,
}

impl Node {
    /// Serves `runtime` (which must have its genesis block) on `config.http`. Must be called
    /// inside a tokio runtime.
    pub async fn start(runtime: Runtime, config: NodeConfig) -> Result<Self, NodeError> {
        if runtime.latest().is_none() {
            return Err(RuntimeError::NoGenesis.into());
        }
        let server_config = ServerConfig::builder()
            .max_request_body_size(MAX_REQUEST_BYTES)
            .max_response_body_size(MAX_RESPONSE_BYTES)
            .set_batch_request_config(BatchRequestConfig::Limit(MAX_BATCH))
            .http_only()
            .build();
        let server = Server::builder()
            .set_config(server_config)
            .set_http_middleware(tower::ServiceBuilder::new().layer(ids::RequestIdsLayer))
            .build(config.http)
            .await
            .map_err(|source| NodeError::Bind { address: config.http, source })?;
        let address = server.local_addr().map_err(|source| NodeError::Bind { address: config.http, source })?;
        let state = Arc::new(NodeState {
            runtime,
            config: config.clone(),
            mining: Mutex::new(()),
            pool: Mutex::new(pool::Pool::new(MAX_QUEUED)),
            clock: Mutex::new(Clock::default()),
            snapshots: Mutex::new(Snapshots::default()),
        });
        let handle = server.start(rpc::module(Arc::clone(&state)));
        let miner = config.block_time.map(|interval| {
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(interval);
                ticks.tick().await;
                loop {
                    ticks.tick().await;
                    let state = Arc::clone(&state);
                    match tokio::task::spawn_blocking(move || state.mine_interval_block()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => eprintln!("xstate node: the interval block failed: {error}"),
                        Err(error) => eprintln!("xstate node: the miner stopped: {error}"),
                    }
                }
            })
        });
        Ok(Self { state, handle, address, miner })
    }

    /// The address the node listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The runtime the node serves.
    pub fn runtime(&self) -> &Runtime {
        &self.state.runtime
    }

    /// Stops serving, waits for the block in progress to be committed, and hands back the
    /// runtime (dropping it closes the store). `None` when a request still held the node after
    /// 30 s: the block in progress was committed all the same, and the store closes on exit.
    pub async fn stop(mut self) -> Option<Runtime> {
        if let Some(miner) = self.miner.take() {
            miner.abort();
            // An aborted task reports its cancellation here; nothing else can come of it.
            let _ = miner.await;
        }
        // `stop` only fails when the server already stopped, which is what is asked.
        let _ = self.handle.stop();
        self.handle.stopped().await;
        // Requests still running hold the state; wait for them, and for the block in progress.
        // A request still running holds the state; it is given up to 30 s to finish. The block
        // in progress, if any, holds the mining lock, which is waited for in any case.
        let mut state = self.state;
        for _ in 0..3000 {
            match Arc::try_unwrap(state) {
                Ok(state) => {
                    let NodeState { runtime, mining, .. } = state;
                    drop(mining.lock());
                    return Some(runtime);
                }
                Err(shared) => {
                    state = shared;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        drop(state.mining.lock());
        None
    }
}
