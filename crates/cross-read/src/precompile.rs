//! The precompile at `0x0000000000000000000000000000000000000a00`: EVM contracts read WASM
//! module slots (`readU64`) and derive module identities (`moduleAddress`), read-only.

use crate::abi::{self, Call, CallError};
use evm_binding::abi::word;
use evm_binding::revm::primitives::{Address, Bytes, U256, address};
use evm_binding::{EvmDbError, PrecompileAnswer, PrecompileState, StatePrecompile, WithStatePrecompile};
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

/// The cross-engine read precompile at [`XSTATE_PRECOMPILE`], written against evm-binding's
/// [`StatePrecompile`]: it receives the block state read-only and can mark what it read in revm's
/// access set, and has no way to write.
#[derive(Clone, Copy, Debug, Default)]
pub struct CrossReadPrecompile;

/// A call decoded from its calldata, with the price of a cold read.
pub struct DecodedCall {
    cold_cost: u64,
    call: Result<Call, CallError>,
}

impl StatePrecompile for CrossReadPrecompile {
    type Call = DecodedCall;

    fn address(&self) -> Address {
        XSTATE_PRECOMPILE
    }

    fn decode(&self, input: &[u8], transfers_value: bool) -> DecodedCall {
        // Only ether that would move is refused: a DELEGATECALL passes its caller's msg.value
        // along as an apparent value, but carries none.
        let call = if transfers_value { Err(CallError::ValueNotAccepted) } else { abi::decode(input) };
        DecodedCall { cold_cost: gas_cost(input), call }
    }

    fn answer(&self, decoded: DecodedCall, gas_limit: u64, state: &mut PrecompileState<'_, '_>) -> PrecompileAnswer {
        let DecodedCall { cold_cost, call } = decoded;
        // A slot the transaction has read before is a warm read. A call that then runs out of
        // gas leaves no mark: its frame reverts, and the journal with it.
        let cost = match &call {
            Ok(Call::ReadU64 { module, slot }) => {
                match state.mark_accessed(XSTATE_PRECOMPILE, access_marker(*module, *slot)) {
                    Ok(true) => cold_cost - (BASE_GAS - WARM_READ_GAS),
                    Ok(false) => cold_cost,
                    Err(error) => return PrecompileAnswer::Failed(error),
                }
            }
            _ => cold_cost,
        };
        if cost > gas_limit {
            return PrecompileAnswer::OutOfGas;
        }
        match call.map_err(Ok).and_then(|call| answer(state.state(), state.chain_id(), call)) {
            Ok(output) => PrecompileAnswer::Return { gas: cost, output },
            Err(Ok(error)) => PrecompileAnswer::Revert { gas: cost, output: error.encode() },
            // A failing store is the node's failure, not the contract's: it aborts the transaction,
            // and the session reports it as a database error so the block is abandoned.
            Err(Err(error)) => PrecompileAnswer::Failed(EvmDbError::State(error)),
        }
    }
}

/// Ethereum's precompiles plus the cross-engine read precompile.
pub type XStatePrecompiles = WithStatePrecompile<CrossReadPrecompile>;
