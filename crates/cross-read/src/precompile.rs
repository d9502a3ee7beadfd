//! The precompile at `0x0000000000000000000000000000000000000a00`: EVM contracts read WASM
//! module slots (`readU64`) and derive module identities (`moduleAddress`), read-only.

use crate::abi::{self, Call, CallError};
use evm_binding::abi::word;
use evm_binding::revm::context::{Cfg, JournalTr};
use evm_binding::revm::handler::{EthPrecompiles, PrecompileProvider, precompile_output_to_interpreter_result};
use evm_binding::revm::interpreter::{CallInputs, InterpreterResult};
use evm_binding::revm::precompile::{PrecompileHalt, PrecompileOutput};
use evm_binding::revm::primitives::hardfork::SpecId;
use evm_binding::revm::primitives::{Address, AddressSet, Bytes, U256, address};
use evm_binding::{EvmContext, EvmDbError};
use kv_core::{Identity, Namespace, Overlay, Refusal, StateError, module_identity};

/// The reserved address of the precompile.
pub const XSTATE_PRECOMPILE: Address = address!("0x0000000000000000000000000000000000000a00");

/// Base gas of every call: an EVM cold `SLOAD`.
pub const BASE_GAS: u64 = 2_100;
/// Base gas of a `readU64` of a slot the transaction has read before: an EVM warm `SLOAD`.
pub const WARM_READ_GAS: u64 = 100;
/// Gas per 32-byte word of calldata (rounded up), as for the identity precompile.
pub const GAS_PER_WORD: u64 = 3;
/// Extra gas of `moduleAddress`, for its keccak256 (the `KECCAK256` opcode's 30 + 6 per word).
pub const MODULE_ADDRESS_GAS: u64 = 36;

/// The gas a call with `input` costs when it reads nothing the transaction has read before.
pub fn gas_cost(input: &[u8]) -> u64 {
    let words = (input.len() as u64).div_ceil(32);
    let hashing = if input.starts_with(&abi::MODULE_ADDRESS_SELECTOR) { MODULE_ADDRESS_GAS } else { 0 };
    BASE_GAS + GAS_PER_WORD * words + hashing
}

/// The storage slot of the precompile's own account that stands for WASM slot `slot` of
/// `module` in revm's access journal: `module (20) | slot (8) | 0 (4)`, one word per WASM slot.
fn access_marker(module: Address, slot: u64) -> U256 {
    let mut word = [0u8; 32];
    word[..20].copy_from_slice(module.as_slice());
    word[20..28].copy_from_slice(&slot.to_be_bytes());
    U256::from_be_bytes(word)
}

/// Whether the transaction has read WASM slot `slot` of `module` before, marking it read.
///
/// The access set is revm's own (EIP-2929): the slot is warmed as a storage slot of the
/// precompile's account, which has no code and no storage, so the mark is only ever read. The
/// journal keeps the mark per transaction and drops it when the frame that made it reverts, as it
/// does for `SLOAD`.
fn warm_before(context: &mut EvmContext<'_>, module: Address, slot: u64) -> Result<bool, EvmDbError> {
    let load = context.journaled_state.sload(XSTATE_PRECOMPILE, access_marker(module, slot))?;
    Ok(!load.is_cold)
}

/// Answers a decoded, paid-for call from the block state. `Err(Ok(..))` is a revert with a
/// documented error, `Err(Err(..))` a failure of the store underneath.
fn answer(state: &Overlay, chain_id: u64, call: Call) -> Result<Bytes, Result<CallError, StateError>> {
    match call {
        Call::ReadU64 { module, slot } => {
            let key = Namespace::wasm(Identity::from(module)).slot_key(slot);
            match state.get_u64(&key) {
                Ok(value) => Ok(Bytes::copy_from_slice(&abi::u64_word(value))),
                Err(StateError::Refused(Refusal::SlotValueLength(_))) => {
                    Err(Ok(CallError::SlotNotU64 { module, slot }))
                }
                Err(error) => Err(Err(error)),
            }
        }
        Call::ModuleAddress { name, version } => {
            let identity = module_identity(chain_id, &name, version);
            Ok(Bytes::copy_from_slice(&word(identity.to_address()).to_be_bytes::<32>()))
        }
    }
}

/// Ethereum's precompiles plus the cross-engine read precompile.
#[derive(Clone, Debug)]
pub struct XStatePrecompiles {
    ethereum: EthPrecompiles,
    warm: AddressSet,
}

impl XStatePrecompiles {
    /// The precompiles of `spec`, plus `0x…0a00`.
    pub fn new(spec: SpecId) -> Self {
        let ethereum = EthPrecompiles::new(spec);
        let warm = Self::warm_set(&ethereum);
        Self { ethereum, warm }
    }

    fn warm_set(ethereum: &EthPrecompiles) -> AddressSet {
        // Like every precompile, the address is warm from the start of a transaction (EIP-2929).
        let mut warm = ethereum.warm_addresses().clone();
        warm.insert(XSTATE_PRECOMPILE);
        warm
    }
}

impl<'a> PrecompileProvider<EvmContext<'a>> for XStatePrecompiles {
    type Output = InterpreterResult;

    fn set_spec(
        &mut self,
        spec: <<EvmContext<'a> as evm_binding::revm::context_interface::ContextTr>::Cfg as Cfg>::Spec,
    ) -> bool {
        let changed = <EthPrecompiles as PrecompileProvider<EvmContext<'a>>>::set_spec(&mut self.ethereum, spec);
        if changed {
            self.warm = Self::warm_set(&self.ethereum);
        }
        changed
    }

    fn run(&mut self, context: &mut EvmContext<'a>, inputs: &CallInputs) -> Result<Option<InterpreterResult>, String> {
        if inputs.bytecode_address != XSTATE_PRECOMPILE {
            return <EthPrecompiles as PrecompileProvider<EvmContext<'a>>>::run(&mut self.ethereum, context, inputs);
        }
        // Borrowed, not copied: the calldata may live in the caller's shared memory.
        let input = inputs.input.as_bytes(context);
        let cold_cost = gas_cost(&input);
        let reservoir = inputs.reservoir;
        // Only ether that would move is refused: a DELEGATECALL passes its caller's msg.value
        // along as an apparent value, but carries none.
        let decoded = if inputs.transfers_value() { Err(CallError::ValueNotAccepted) } else { abi::decode(&input) };
        // The borrow of the caller's memory ends here, before the context is needed mutably.
        drop(input);
        // A slot the transaction has read before is a warm read. A call that then runs out of
        // gas leaves no mark: its frame reverts, and the journal with it.
        let cost = match &decoded {
            Ok(Call::ReadU64 { module, slot }) => match warm_before(context, *module, *slot) {
                Ok(true) => cold_cost - (BASE_GAS - WARM_READ_GAS),
                Ok(false) => cold_cost,
                Err(error) => {
                    let message = format!("cross-read precompile: {error}");
                    context.journaled_state.database.record_failure(error);
                    return Err(message);
                }
            },
            _ => cold_cost,
        };
        if cost > inputs.gas_limit {
            let output = PrecompileOutput::halt(PrecompileHalt::OutOfGas, reservoir);
            return Ok(Some(precompile_output_to_interpreter_result(output, inputs.gas_limit)));
        }
        let state = context.journaled_state.database.overlay();
        let answered = decoded.map_err(Ok).and_then(|call| answer(state, context.cfg.chain_id, call));
        let output = match answered {
            Ok(bytes) => PrecompileOutput::new(cost, bytes, reservoir),
            Err(Ok(error)) => PrecompileOutput::revert(cost, error.encode(), reservoir),
            // A failing store is the node's failure, not the contract's: it aborts the transaction,
            // and the session reports it as a database error so the block is abandoned.
            Err(Err(error)) => {
                let message = format!("cross-read precompile: {error}");
                context.journaled_state.database.record_failure(EvmDbError::State(error));
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
