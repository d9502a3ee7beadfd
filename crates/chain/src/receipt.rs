//! Receipts: what a transaction included in a block did, in the runtime's terms and as
//! Ethereum's receipt envelope (status, cumulative gas, logs, bloom) that the receipts root
//! commits to.

use alloy_consensus::{Eip658Value, ReceiptEnvelope, ReceiptWithBloom, TxType};
use alloy_primitives::{Address, B256, Bytes, Log, U256};
use kv_core::Identity;

/// What kind of transaction it was, by where it went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No `to`: an EVM contract creation.
    EvmCreate,
    /// To an EVM account.
    EvmCall,
    /// To the WASM deploy address.
    WasmDeploy,
    /// To a deployed module's identity.
    WasmCall,
}

impl Kind {
    /// The name reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EvmCreate => "evm_create",
            Self::EvmCall => "evm_call",
            Self::WasmDeploy => "wasm_deploy",
            Self::WasmCall => "wasm_call",
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Self::EvmCreate => 0,
            Self::EvmCall => 1,
            Self::WasmDeploy => 2,
            Self::WasmCall => 3,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::EvmCreate,
            1 => Self::EvmCall,
            2 => Self::WasmDeploy,
            3 => Self::WasmCall,
            _ => return None,
        })
    }
}

/// How an included transaction ended. Every one of them used its nonce and paid for its gas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// It ran and its effects are in the block.
    Success,
    /// It reverted with this data: its state changes were undone.
    Revert(Bytes),
    /// The EVM halted (out of gas, invalid opcode, ...), the WASM module trapped or ran out of
    /// gas, or a WASM deploy was refused (bad calldata, invalid or already deployed module): its
    /// state changes were undone.
    Failed(String),
}

impl Status {
    /// Whether the transaction succeeded (Ethereum's receipt status 1).
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success)
    }
}

/// What a transaction created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// An EVM contract.
    Contract(Address),
    /// A WASM module.
    Module(Identity),
}

impl Created {
    /// The address of what was created (a module's identity is an address too).
    pub fn address(self) -> Address {
        match self {
            Self::Contract(address) => address,
            Self::Module(identity) => identity.to_address(),
        }
    }
}

/// The receipt of one included transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Position in the block.
    pub index: usize,
    /// The transaction hash.
    pub hash: B256,
    /// The EIP-2718 type (0 legacy, 1 EIP-2930, 2 EIP-1559, 4 EIP-7702).
    pub tx_type: u8,
    /// The recovered sender.
    pub sender: Address,
    /// The nonce it used.
    pub nonce: u64,
    /// The recipient (`None` for an EVM creation).
    pub to: Option<Address>,
    /// Where it went.
    pub kind: Kind,
    /// How it ended.
    pub status: Status,
    /// EVM gas used, after refunds (WASM gas converted, see [`crate::evm_gas_for_wasm_gas`]).
    pub gas_used: u64,
    /// Gas used by this and every earlier transaction of the block.
    pub cumulative_gas_used: u64,
    /// What the sender paid per gas: `min(max fee, base fee + priority fee)`, or the gas price of
    /// a legacy or EIP-2930 transaction.
    pub effective_gas_price: u128,
    /// Return data (revert data is in [`Status::Revert`]).
    pub output: Bytes,
    /// EVM logs.
    pub logs: Vec<Log>,
    /// The contract or module created, if any.
    pub created: Option<Created>,
}

impl Receipt {
    /// What the sender paid: gas used times the effective gas price.
    pub fn fee(&self) -> U256 {
        U256::from(self.gas_used) * U256::from(self.effective_gas_price)
    }

    /// Ethereum's receipt envelope, bloom included: what the receipts root commits to.
    pub fn envelope(&self) -> ReceiptEnvelope {
        let receipt = alloy_consensus::Receipt {
            status: Eip658Value::Eip658(self.status.is_success()),
            cumulative_gas_used: self.cumulative_gas_used,
            logs: self.logs.clone(),
        };
        let tx_type = TxType::try_from(self.tx_type).unwrap_or(TxType::Legacy);
        ReceiptEnvelope::from_typed(tx_type, ReceiptWithBloom::from(receipt))
    }
}
