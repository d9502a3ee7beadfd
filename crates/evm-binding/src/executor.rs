//! Running transactions on revm over the shared substrate.

use crate::database::{BlockHashes, CodeCache, EvmDatabase, EvmDbError};
use kv_core::{Overlay, StateError};
use revm::context::result::{EVMError, ExecutionResult, InvalidHeader, InvalidTransaction};
use revm::context::{BlockEnv, CfgEnv, Context, Evm, TxEnv};
use revm::handler::SYSTEM_ADDRESS;
use revm::handler::SystemCallEvm;
use revm::handler::instructions::EthInstructions;
use revm::handler::{EthFrame, EthPrecompiles, PrecompileProvider};
use revm::interpreter::InterpreterResult;
use revm::interpreter::interpreter::EthInterpreter;
use revm::primitives::hardfork::SpecId;
use revm::primitives::{Address, Bytes};
use revm::{ExecuteEvm, MainBuilder, MainContext};

/// The revm context type of this binding: mainnet environment types over [`EvmDatabase`].
pub type EvmContext<'a> = Context<BlockEnv, TxEnv, CfgEnv, EvmDatabase<'a>>;

/// Why a transaction was not executed. Nothing of it reached the state.
#[derive(Debug, thiserror::Error)]
pub enum EvmError {
    /// revm refused the transaction (bad nonce, unaffordable gas, unknown sender's zero balance).
    #[error("invalid transaction: {0}")]
    Transaction(InvalidTransaction),
    /// The block environment is invalid for the spec.
    #[error("invalid block environment: {0}")]
    Header(InvalidHeader),
    /// The store failed underneath, or holds a corrupt record.
    #[error(transparent)]
    Database(#[from] EvmDbError),
    /// A precompile or handler failed fatally.
    #[error("fatal EVM error: {0}")]
    Custom(String),
}

impl From<EVMError<EvmDbError>> for EvmError {
    fn from(error: EVMError<EvmDbError>) -> Self {
        match error {
            EVMError::Transaction(error) => Self::Transaction(error),
            EVMError::Header(error) => Self::Header(error),
            EVMError::Database(error) => Self::Database(error),
            EVMError::Custom(message) => Self::Custom(message),
            EVMError::CustomAny(error) => Self::Custom(error.to_string()),
        }
    }
}

impl From<StateError> for EvmError {
    fn from(error: StateError) -> Self {
        Self::Database(EvmDbError::State(error))
    }
}

/// Runs transactions against an overlay: one fork, one chain id.
#[derive(Clone, Debug)]
pub struct EvmExecutor {
    cfg: CfgEnv,
    codes: CodeCache,
}

impl EvmExecutor {
    /// An executor for `chain_id` under `spec`, with mainnet gas parameters.
    pub fn new(chain_id: u64, spec: SpecId) -> Self {
        let mut cfg = CfgEnv::new_with_spec(spec);
        cfg.set_spec_and_mainnet_gas_params(spec);
        cfg.chain_id = chain_id;
        Self { cfg, codes: CodeCache::default() }
    }

    /// An executor with a complete revm configuration (the conformance suite sets blob limits).
    pub fn from_cfg(cfg: CfgEnv) -> Self {
        Self { cfg, codes: CodeCache::default() }
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.cfg.chain_id
    }

    /// The fork rules.
    pub fn spec(&self) -> SpecId {
        self.cfg.spec
    }

    /// Executes `tx` with Ethereum's precompiles and applies its state changes to `overlay`.
    /// A reverted or halted transaction is still applied (it pays gas and bumps the nonce); an
    /// invalid one is an error and changes nothing.
    pub fn transact(&self, overlay: &mut Overlay, block: &BlockEnv, tx: TxEnv) -> Result<ExecutionResult, EvmError> {
        self.session(overlay, block, EthPrecompiles::new(self.cfg.spec)).transact(tx)
    }

    /// As [`EvmExecutor::transact`], with a custom precompile set (cross-read adds its own).
    pub fn transact_with<P>(
        &self,
        overlay: &mut Overlay,
        block: &BlockEnv,
        tx: TxEnv,
        precompiles: P,
    ) -> Result<ExecutionResult, EvmError>
    where
        P: for<'a> PrecompileProvider<EvmContext<'a>, Output = InterpreterResult>,
    {
        self.session(overlay, block, precompiles).transact(tx)
    }

    /// An EVM for one block over `overlay`: building revm's instruction tables, journal and
    /// precompile set once per block instead of once per transaction.
    pub fn session<'a, P>(&self, overlay: &'a mut Overlay, block: &BlockEnv, precompiles: P) -> EvmSession<'a, P>
    where
        P: PrecompileProvider<EvmContext<'a>, Output = InterpreterResult>,
    {
        let database = EvmDatabase::with_code_cache(overlay, self.codes.clone());
        Self::session_over(database, &self.cfg, block, precompiles)
    }

    /// As [`EvmExecutor::session`], with `BLOCKHASH` answered by `block_hashes` (a chain's real
    /// header hashes) instead of the state-test convention.
    pub fn session_with_block_hashes<'a, P>(
        &self,
        overlay: &'a mut Overlay,
        block: &BlockEnv,
        precompiles: P,
        block_hashes: BlockHashes,
    ) -> EvmSession<'a, P>
    where
        P: PrecompileProvider<EvmContext<'a>, Output = InterpreterResult>,
    {
        let database = EvmDatabase::with_code_cache(overlay, self.codes.clone()).with_block_hashes(block_hashes);
        Self::session_over(database, &self.cfg, block, precompiles)
    }

    fn session_over<'a, P>(
        database: EvmDatabase<'a>,
        cfg: &CfgEnv,
        block: &BlockEnv,
        precompiles: P,
    ) -> EvmSession<'a, P>
    where
        P: PrecompileProvider<EvmContext<'a>, Output = InterpreterResult>,
    {
        let context = Context::mainnet().with_cfg(cfg.clone()).with_block(block.clone()).with_db(database);
        EvmSession { evm: context.build_mainnet().with_precompiles(precompiles) }
    }
}

/// revm's EVM over this binding, with precompile set `P`.
pub type BindingEvm<'a, P> =
    Evm<EvmContext<'a>, (), EthInstructions<EthInterpreter, EvmContext<'a>>, P, EthFrame<EthInterpreter>>;

/// One EVM kept for the transactions of a block. Each transaction is applied to the overlay as
/// soon as it ends, so the next one (and any other engine between them) sees its effects.
pub struct EvmSession<'a, P> {
    evm: BindingEvm<'a, P>,
}

impl<'a, P> EvmSession<'a, P>
where
    P: PrecompileProvider<EvmContext<'a>, Output = InterpreterResult>,
{
    /// Executes `tx` and applies its state changes. An error changes nothing: revm writes
    /// nothing before its result is applied, and [`EvmDatabase::apply`] is all or nothing.
    pub fn transact(&mut self, tx: TxEnv) -> Result<ExecutionResult, EvmError> {
        let outcome = self.evm.transact(tx);
        let database = &mut self.evm.ctx.journaled_state.database;
        // A store failure met by a precompile outranks whatever revm made of it.
        if let Some(failure) = database.take_failure() {
            return Err(EvmError::Database(failure));
        }
        let outcome = outcome?;
        database.apply(outcome.state)?;
        Ok(outcome.result)
    }

    /// Runs a block-level system call (EIP-2935's history contract, EIP-4788's beacon roots) as
    /// Ethereum clients do: from the system address, with revm's system-call gas, unpaid, and
    /// with its state changes applied except those of the system address and the beneficiary,
    /// which a system call must not touch (alloy-evm drops the same two accounts).
    pub fn system_call(&mut self, contract: Address, data: Bytes) -> Result<ExecutionResult, EvmError> {
        let beneficiary = self.evm.ctx.block.beneficiary;
        let outcome = self.evm.system_call_with_caller(SYSTEM_ADDRESS, contract, data);
        let database = &mut self.evm.ctx.journaled_state.database;
        if let Some(failure) = database.take_failure() {
            return Err(EvmError::Database(failure));
        }
        let mut outcome = outcome?;
        outcome.state.remove(&SYSTEM_ADDRESS);
        outcome.state.remove(&beneficiary);
        database.apply(outcome.state)?;
        Ok(outcome.result)
    }

    /// The block overlay, read-only.
    pub fn state(&self) -> &Overlay {
        self.evm.ctx.journaled_state.database.overlay()
    }

    /// Runs `f` on the block overlay, for the WASM engine's deploys and calls between EVM
    /// transactions. The session keeps its decoded accounts and storage words across `f` when it
    /// changed nothing of the EVM namespace (WASM never does), so the next transaction starts
    /// warm, and drops them when it did, so no transaction ever reads a stale account or word.
    pub fn with_overlay<R>(&mut self, f: impl FnOnce(&mut Overlay) -> R) -> R {
        self.evm.ctx.journaled_state.database.with_overlay(f)
    }
}
