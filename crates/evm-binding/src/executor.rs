//! Running transactions on revm over the shared substrate.

use crate::database::{EvmDatabase, EvmDbError};
use kv_core::{Overlay, StateError};
use revm::context::result::{EVMError, ExecutionResult, InvalidHeader, InvalidTransaction};
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::handler::{EthPrecompiles, PrecompileProvider};
use revm::interpreter::InterpreterResult;
use revm::primitives::hardfork::SpecId;
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
}

impl EvmExecutor {
    /// An executor for `chain_id` under `spec`, with mainnet gas parameters.
    pub fn new(chain_id: u64, spec: SpecId) -> Self {
        let mut cfg = CfgEnv::new_with_spec(spec);
        cfg.set_spec_and_mainnet_gas_params(spec);
        cfg.chain_id = chain_id;
        Self { cfg }
    }

    /// An executor with a complete revm configuration (the conformance suite sets blob limits).
    pub fn from_cfg(cfg: CfgEnv) -> Self {
        Self { cfg }
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
    pub fn transact(
        &self,
        overlay: &mut Overlay,
        block: &BlockEnv,
        tx: TxEnv,
    ) -> Result<ExecutionResult, EvmError> {
        self.transact_with(overlay, block, tx, EthPrecompiles::new(self.cfg.spec))
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
        let checkpoint = overlay.checkpoint();
        let outcome = run(self.cfg.clone(), overlay, block, tx, precompiles);
        match outcome {
            Ok(result) => {
                overlay.release(checkpoint)?;
                Ok(result)
            }
            Err(error) => {
                overlay.revert(checkpoint)?;
                Err(error)
            }
        }
    }
}

fn run<P>(
    cfg: CfgEnv,
    overlay: &mut Overlay,
    block: &BlockEnv,
    tx: TxEnv,
    precompiles: P,
) -> Result<ExecutionResult, EvmError>
where
    P: for<'a> PrecompileProvider<EvmContext<'a>, Output = InterpreterResult>,
{
    let context = Context::mainnet()
        .with_cfg(cfg)
        .with_block(block.clone())
        .with_db(EvmDatabase::new(overlay));
    let mut evm = context.build_mainnet().with_precompiles(precompiles);
    let outcome = evm.transact(tx)?;
    evm.ctx.journaled_state.database.apply(outcome.state)?;
    Ok(outcome.result)
}
