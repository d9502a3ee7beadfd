//! Stateful precompiles that read the block state and cannot write it.
//!
//! revm hands a precompile provider its whole context, through which the binding's database (and
//! its `apply`) is reachable. A precompile written against [`StatePrecompile`] never sees that
//! context: [`WithStatePrecompile`] keeps it, and gives the precompile a [`PrecompileState`], which
//! offers the block state read-only, the chain id, and revm's access journal for marking what it
//! read (EIP-2929), and no method that writes. The read-only rule is a type, not a convention.

use crate::database::EvmDbError;
use crate::executor::EvmContext;
use kv_core::Overlay;
use revm::context::{Cfg, JournalTr};
use revm::handler::{EthPrecompiles, PrecompileProvider, precompile_output_to_interpreter_result};
use revm::interpreter::{CallInputs, InterpreterResult};
use revm::precompile::{PrecompileHalt, PrecompileOutput};
use revm::primitives::hardfork::SpecId;
use revm::primitives::{Address, AddressSet, Bytes, U256};

/// What a stateful precompile may reach while it answers a call: the block state to read, the
/// chain id, and the transaction's access set. Nothing here writes state; a precompile that tries
/// does not compile:
///
/// ```compile_fail
/// fn write(handle: &mut evm_binding::PrecompileState<'_, '_>) {
///     // `state` lends the overlay shared, and writes need it exclusively.
///     handle.state().set(&[0u8; 53], &[1]).unwrap();
/// }
/// ```
///
/// while reading does:
///
/// ```
/// fn read(handle: &mut evm_binding::PrecompileState<'_, '_>) -> Option<Vec<u8>> {
///     handle.state().get(&[0u8; 53]).unwrap()
/// }
/// ```
pub struct PrecompileState<'c, 'a> {
    context: &'c mut EvmContext<'a>,
}

impl PrecompileState<'_, '_> {
    /// The block state, as earlier transactions of the block (of either engine) left it.
    pub fn state(&self) -> &Overlay {
        self.context.journaled_state.database.overlay()
    }

    /// The chain id of the transaction.
    pub fn chain_id(&self) -> u64 {
        self.context.cfg.chain_id
    }

    /// Marks storage slot `slot` of `account` as accessed in revm's journal (EIP-2929) and says
    /// whether it was accessed before in this transaction. A precompile that keeps its own access
    /// set as slots of its own code-less account gets warm and cold reads with revm's rules: the
    /// mark lasts for the transaction and is dropped when the frame that made it reverts.
    pub fn mark_accessed(&mut self, account: Address, slot: U256) -> Result<bool, EvmDbError> {
        let load = self.context.journaled_state.sload(account, slot)?;
        Ok(!load.is_cold)
    }
}

/// What a stateful precompile answered.
#[derive(Debug)]
pub enum PrecompileAnswer {
    /// The call returned `output` and costs `gas`.
    Return {
        /// Gas the call costs.
        gas: u64,
        /// Its return data.
        output: Bytes,
    },
    /// The call reverted with `output` (a documented error) and costs `gas`.
    Revert {
        /// Gas the call costs.
        gas: u64,
        /// Its revert data.
        output: Bytes,
    },
    /// The call costs more than its gas limit.
    OutOfGas,
    /// The store underneath failed: the node's failure, not the contract's. The transaction is
    /// aborted and the session reports the error as [`crate::EvmError::Database`].
    Failed(EvmDbError),
}

/// A precompile at one address that reads the block state. It is called in two steps so that the
/// calldata can be read in place from the caller's memory: [`decode`](Self::decode) sees only the
/// input, [`answer`](Self::answer) only the decoded call and the read-only [`PrecompileState`].
pub trait StatePrecompile {
    /// A decoded call (or the reason it is invalid), with whatever it needs to be priced.
    type Call;

    /// The address the precompile answers at.
    fn address(&self) -> Address;

    /// Decodes `input`. `transfers_value` says whether the call moves ether.
    fn decode(&self, input: &[u8], transfers_value: bool) -> Self::Call;

    /// Answers a decoded call within `gas_limit`.
    fn answer(&self, call: Self::Call, gas_limit: u64, state: &mut PrecompileState<'_, '_>) -> PrecompileAnswer;
}

/// Ethereum's precompiles of a hardfork plus one [`StatePrecompile`]: the precompile provider a
/// session takes (see [`crate::EvmExecutor::session`]).
#[derive(Clone, Debug)]
pub struct WithStatePrecompile<S> {
    ethereum: EthPrecompiles,
    stateful: S,
    warm: AddressSet,
}

impl<S: StatePrecompile + Default> WithStatePrecompile<S> {
    /// The precompiles of `spec`, plus `S::default()`.
    pub fn new(spec: SpecId) -> Self {
        Self::with(spec, S::default())
    }
}

impl<S: StatePrecompile> WithStatePrecompile<S> {
    /// The precompiles of `spec`, plus `stateful`.
    pub fn with(spec: SpecId, stateful: S) -> Self {
        let ethereum = EthPrecompiles::new(spec);
        let warm = Self::warm_set(&ethereum, &stateful);
        Self { ethereum, stateful, warm }
    }

    /// The stateful precompile.
    pub fn stateful(&self) -> &S {
        &self.stateful
    }

    fn warm_set(ethereum: &EthPrecompiles, stateful: &S) -> AddressSet {
        // Like every precompile, the address is warm from the start of a transaction (EIP-2929).
        let mut warm = ethereum.warm_addresses().clone();
        warm.insert(stateful.address());
        warm
    }
}

impl<'a, S: StatePrecompile> PrecompileProvider<EvmContext<'a>> for WithStatePrecompile<S> {
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: <<EvmContext<'a> as revm::context_interface::ContextTr>::Cfg as Cfg>::Spec) -> bool {
        let changed = <EthPrecompiles as PrecompileProvider<EvmContext<'a>>>::set_spec(&mut self.ethereum, spec);
        if changed {
            self.warm = Self::warm_set(&self.ethereum, &self.stateful);
        }
        changed
    }

    fn run(&mut self, context: &mut EvmContext<'a>, inputs: &CallInputs) -> Result<Option<InterpreterResult>, String> {
        if inputs.bytecode_address != self.stateful.address() {
            return <EthPrecompiles as PrecompileProvider<EvmContext<'a>>>::run(&mut self.ethereum, context, inputs);
        }
        // Borrowed, not copied: the calldata may live in the caller's shared memory. The borrow
        // ends with decoding, before the context is needed mutably.
        let call = {
            let input = inputs.input.as_bytes(context);
            self.stateful.decode(&input, inputs.transfers_value())
        };
        let reservoir = inputs.reservoir;
        let answer = self.stateful.answer(call, inputs.gas_limit, &mut PrecompileState { context: &mut *context });
        let output = match answer {
            PrecompileAnswer::Return { gas, output } => PrecompileOutput::new(gas, output, reservoir),
            PrecompileAnswer::Revert { gas, output } => PrecompileOutput::revert(gas, output, reservoir),
            PrecompileAnswer::OutOfGas => PrecompileOutput::halt(PrecompileHalt::OutOfGas, reservoir),
            PrecompileAnswer::Failed(error) => {
                let message = format!("precompile {}: {error}", self.stateful.address());
                context.journaled_state.database.record_failure(error);
                return Err(message);
            }
        };
        Ok(Some(precompile_output_to_interpreter_result(output, inputs.gas_limit)))
    }

    fn warm_addresses(&self) -> &AddressSet {
        &self.warm
    }

    fn contains(&self, address: &Address) -> bool {
        self.warm.contains(address)
    }
}
