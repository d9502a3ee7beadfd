//! The built-in demo: both engines, both directions of cross reads, one block, one root.

use crate::runtime::{BlockOutcome, Runtime, RuntimeError};
use crate::transaction::{Genesis, ModuleRef, Status, Transaction};
use alloy_primitives::{Address, Bytes, U256, keccak256};
use evm_binding::GenesisAccount;
use kv_core::{Identity, ModuleName, Namespace};

/// The deployer of every contract, and the ERC-20's owner.
pub const DEPLOYER: Address = Address::repeat_byte(0xd0);
/// A holder.
pub const ALICE: Address = Address::repeat_byte(0xa1);
/// Another holder.
pub const BOB: Address = Address::repeat_byte(0xb0);

const XTOKEN: &str = include_str!("../../../contracts/artifacts/XToken.json");
const WASM_READER: &str = include_str!("../../../contracts/artifacts/WasmReader.json");
/// The example WASM token (guest/token).
pub const TOKEN_WASM: &[u8] = include_bytes!("../../../guest/token/token.wasm");
/// The example ERC-20 reader module (guest/erc20-reader).
pub const ERC20_READER_WASM: &[u8] = include_bytes!("../../../guest/erc20-reader/erc20-reader.wasm");

/// The deployment bytecode in a committed contract artifact.
pub fn artifact_bytecode(artifact: &str) -> Bytes {
    evm_binding::abi::artifact_bytecode(artifact).expect("committed artifacts carry valid bytecode")
}

/// The ERC-20's deployment bytecode.
pub fn xtoken_bytecode() -> Bytes {
    artifact_bytecode(XTOKEN)
}

/// The WasmReader contract's deployment bytecode.
pub fn wasm_reader_bytecode() -> Bytes {
    artifact_bytecode(WASM_READER)
}

pub use evm_binding::abi::{calldata, word};

/// Input of the example token: operation, holder, optional amount.
pub fn token_input(operation: u8, holder: Address, amount: Option<u64>) -> Bytes {
    let mut input = vec![operation];
    input.extend_from_slice(holder.as_slice());
    if let Some(amount) = amount {
        input.extend_from_slice(&amount.to_be_bytes());
    }
    input.into()
}

/// The genesis of the demo: three funded accounts.
pub fn genesis() -> Genesis {
    let funded = GenesisAccount { balance: U256::from(10u128.pow(21)), ..Default::default() };
    Genesis { accounts: vec![(DEPLOYER, funded.clone()), (ALICE, funded.clone()), (BOB, funded)], modules: Vec::new() }
}

/// The slot of `holder`'s balance in the example WASM token (`guest/token`): the first 8 bytes of
/// keccak256(holder), big-endian.
pub fn token_balance_slot(holder: Address) -> u64 {
    let hash = keccak256(holder.as_slice());
    u64::from_be_bytes([hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7]])
}

/// The storage slot of `holder`'s balance in an OpenZeppelin 5 ERC-20, whose `_balances` mapping
/// is the contract's first variable: keccak256(holder as a word || 0).
pub fn erc20_balance_slot(holder: Address) -> U256 {
    let mut preimage = [0u8; 64];
    preimage[12..32].copy_from_slice(holder.as_slice());
    U256::from_be_bytes(keccak256(preimage).0)
}

/// Everything the demo did, for the report.
pub struct DemoRun {
    /// The block's outcome.
    pub outcome: BlockOutcome,
    /// The ERC-20 contract.
    pub erc20: Address,
    /// The WasmReader contract.
    pub reader: Address,
    /// The WASM token module.
    pub token: Identity,
    /// The ERC-20 reader module.
    pub erc20_reader: Identity,
    /// Bob's WASM token balance as the EVM read it through the precompile.
    pub evm_read: U256,
    /// Bob's ERC-20 balance as the WASM module read it through `evm_storage_read`.
    pub wasm_read: U256,
}

/// The demo's block: the transactions and what they will create.
pub struct DemoBlock {
    /// The transactions, in order.
    pub transactions: Vec<Transaction>,
    erc20: Address,
    reader: Address,
    token: Identity,
    erc20_reader: Identity,
    evm_read_index: usize,
    wasm_read_index: usize,
}

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A transaction of the demo did not succeed.
    #[error("demo transaction {index} did not succeed: {status:?}")]
    Transaction {
        /// Its position in the block.
        index: usize,
        /// How it ended.
        status: Status,
    },
    /// A cross read returned something other than what the other engine holds.
    #[error("the {direction} read returned {read}, but the state holds {held}")]
    CrossRead {
        /// `EVM -> WASM` or `WASM -> EVM`.
        direction: &'static str,
        /// What the read returned.
        read: U256,
        /// What the other engine's state holds.
        held: U256,
    },
}

/// The demo's block for `runtime`: the ERC-20 and the WASM token are deployed, minted and
/// transferred, a Solidity contract reads a WASM balance through the precompile, and a WASM module
/// reads an ERC-20 balance through `evm_storage_read`.
pub fn block(runtime: &Runtime) -> DemoBlock {
    let erc20 = DEPLOYER.create(0);
    // The deployer's transactions are the ERC-20's creation (nonce 0), the mint (1) and the
    // reader's creation (2).
    let reader = DEPLOYER.create(2);
    let name = |text: &str| ModuleName::new(text).expect("the demo's module names are valid");
    let token = runtime.module_identity(&name("token"), 1);
    let erc20_reader = runtime.module_identity(&name("erc20-reader"), 1);
    let mut xtoken = xtoken_bytecode().to_vec();
    xtoken.extend_from_slice(&word(DEPLOYER).to_be_bytes::<32>());
    let mut reader_input = erc20.to_vec();
    reader_input.extend_from_slice(BOB.as_slice());
    let evm_call = |from, to, data| Transaction::EvmCall { from, to, data, value: U256::ZERO, gas: 1_000_000 };
    let wasm_call = |from, input| Transaction::WasmCall {
        from,
        module: ModuleRef::Named(name("token"), 1),
        input,
        gas: 10_000_000,
    };
    let mut transactions = vec![
        Transaction::EvmCreate { from: DEPLOYER, code: xtoken.into(), value: U256::ZERO, gas: 3_000_000 },
        evm_call(DEPLOYER, erc20, calldata("mint(address,uint256)", &[word(ALICE), U256::from(1_000)])),
        evm_call(ALICE, erc20, calldata("transfer(address,uint256)", &[word(BOB), U256::from(250)])),
        Transaction::WasmDeploy { name: name("token"), version: 1, code: TOKEN_WASM.into() },
        wasm_call(ALICE, token_input(0x00, ALICE, None).slice(..1)),
        wasm_call(ALICE, token_input(0x01, ALICE, Some(900))),
        wasm_call(ALICE, token_input(0x02, BOB, Some(400))),
        Transaction::EvmCreate { from: DEPLOYER, code: wasm_reader_bytecode(), value: U256::ZERO, gas: 3_000_000 },
    ];
    let evm_read_index = transactions.len();
    transactions.push(evm_call(
        ALICE,
        reader,
        calldata("readTokenBalance(address,address)", &[word(token.to_address()), word(BOB)]),
    ));
    transactions.push(Transaction::WasmDeploy {
        name: name("erc20-reader"),
        version: 1,
        code: ERC20_READER_WASM.into(),
    });
    let wasm_read_index = transactions.len();
    transactions.push(Transaction::WasmCall {
        from: ALICE,
        module: ModuleRef::Named(name("erc20-reader"), 1),
        input: reader_input.into(),
        gas: 10_000_000,
    });
    DemoBlock { transactions, erc20, reader, token, erc20_reader, evm_read_index, wasm_read_index }
}

impl DemoBlock {
    /// Runs the block on `runtime` (which must be empty) with the demo's genesis, and checks that
    /// every transaction succeeded and that each cross read returned what the other engine holds.
    pub fn run(self, runtime: &Runtime, progress: impl FnMut(usize)) -> Result<DemoRun, DemoError> {
        let outcome = runtime.execute_block(Some(&genesis()), &self.transactions, progress)?;
        if let Some(receipt) = outcome.receipts.iter().find(|receipt| !receipt.status.is_success()) {
            return Err(DemoError::Transaction { index: receipt.index, status: receipt.status.clone() });
        }
        let output = |index: usize| U256::from_be_slice(&outcome.receipts[index].output);
        let (evm_read, wasm_read) = (output(self.evm_read_index), output(self.wasm_read_index));
        let stored = |key: &[u8]| -> Result<U256, RuntimeError> {
            Ok(runtime.get(key)?.map_or(U256::ZERO, |value| U256::from_be_slice(&value)))
        };
        let wasm_held = stored(&Namespace::wasm(self.token).slot_key(token_balance_slot(BOB)))?;
        let evm_held = stored(&Namespace::evm(self.erc20).word_key(&erc20_balance_slot(BOB).to_be_bytes::<32>()))?;
        if evm_read != wasm_held {
            return Err(DemoError::CrossRead { direction: "EVM -> WASM", read: evm_read, held: wasm_held });
        }
        if wasm_read != evm_held {
            return Err(DemoError::CrossRead { direction: "WASM -> EVM", read: wasm_read, held: evm_held });
        }
        let Self { erc20, reader, token, erc20_reader, .. } = self;
        Ok(DemoRun { outcome, erc20, reader, token, erc20_reader, evm_read, wasm_read })
    }
}
