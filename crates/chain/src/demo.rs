//! The built-in demo: both engines, both directions of cross reads, signed transactions from
//! the dev accounts paying their fees, one block on anvil's genesis, one root.

use crate::dev::{DevRequest, DevTarget, FeeKind, dev_address};
use crate::receipt::Status;
use crate::runtime::{BlockInput, BlockOutcome, Runtime, RuntimeError};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, U256, keccak256};
use kv_core::{Identity, ModuleName, Namespace};

/// The dev key of the deployer of every contract and module, and the ERC-20's owner.
pub const DEPLOYER_KEY: u32 = 0;
/// The dev key of a holder.
pub const ALICE_KEY: u32 = 1;
/// The dev key of another holder.
pub const BOB_KEY: u32 = 2;

/// The deployer's address (dev account 0).
pub fn deployer() -> Address {
    dev_address(DEPLOYER_KEY)
}

/// Alice's address (dev account 1).
pub fn alice() -> Address {
    dev_address(ALICE_KEY)
}

/// Bob's address (dev account 2).
pub fn bob() -> Address {
    dev_address(BOB_KEY)
}

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
    /// The transactions, in order, for the dev keys to sign.
    pub requests: Vec<DevRequest>,
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
    /// A transaction of the demo was refused.
    #[error("demo transaction {index} was refused: {reason}")]
    Rejected {
        /// Its position in the block.
        index: usize,
        /// Why.
        reason: crate::Rejection,
    },
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
/// reads an ERC-20 balance through `evm_storage_read`. Every transaction is signed by a dev key
/// and pays EIP-1559 fees.
pub fn block(runtime: &Runtime) -> DemoBlock {
    let (deployer, alice, bob) = (deployer(), alice(), bob());
    // The deployer's transactions are the ERC-20's creation (nonce 0), the mint (1), the token's
    // deploy (2), the reader's creation (3) and the erc20-reader's deploy (4).
    let erc20 = deployer.create(0);
    let reader = deployer.create(3);
    let name = |text: &str| ModuleName::new(text).expect("the demo's module names are valid");
    let token = runtime.module_identity(&name("token"), 1);
    let erc20_reader = runtime.module_identity(&name("erc20-reader"), 1);
    let mut xtoken = xtoken_bytecode().to_vec();
    xtoken.extend_from_slice(&word(deployer).to_be_bytes::<32>());
    let mut reader_input = erc20.to_vec();
    reader_input.extend_from_slice(bob.as_slice());
    let request = |key, target, data: Bytes, gas| DevRequest {
        key,
        target,
        data,
        value: U256::ZERO,
        gas: Some(gas),
        nonce: None,
        fee: FeeKind::Eip1559 { max_fee_per_gas: None, max_priority_fee_per_gas: None },
    };
    let evm_call = |key, to, data| request(key, DevTarget::Address(to), data, 1_000_000);
    let module = |module: &str| DevTarget::Module(name(module), 1);
    let wasm_call = |key, input| request(key, module("token"), input, 1_000_000);
    let deploy = |module: &str, code: &[u8]| {
        request(
            DEPLOYER_KEY,
            DevTarget::Deploy { name: name(module), version: 1, code: Bytes::copy_from_slice(code) },
            Bytes::new(),
            3_000_000,
        )
    };
    let mut requests = vec![
        request(DEPLOYER_KEY, DevTarget::Create, xtoken.into(), 3_000_000),
        evm_call(DEPLOYER_KEY, erc20, calldata("mint(address,uint256)", &[word(alice), U256::from(1_000)])),
        evm_call(ALICE_KEY, erc20, calldata("transfer(address,uint256)", &[word(bob), U256::from(250)])),
        deploy("token", TOKEN_WASM),
        wasm_call(ALICE_KEY, token_input(0x00, alice, None).slice(..1)),
        wasm_call(ALICE_KEY, token_input(0x01, alice, Some(900))),
        wasm_call(ALICE_KEY, token_input(0x02, bob, Some(400))),
        request(DEPLOYER_KEY, DevTarget::Create, wasm_reader_bytecode(), 3_000_000),
    ];
    let evm_read_index = requests.len();
    requests.push(evm_call(
        ALICE_KEY,
        reader,
        calldata("readTokenBalance(address,address)", &[word(token.to_address()), word(bob)]),
    ));
    requests.push(deploy("erc20-reader", ERC20_READER_WASM));
    let wasm_read_index = requests.len();
    requests.push(request(ALICE_KEY, module("erc20-reader"), reader_input.into(), 1_000_000));
    DemoBlock { requests, erc20, reader, token, erc20_reader, evm_read_index, wasm_read_index }
}

impl DemoBlock {
    /// Signs the block's transactions with the dev keys and runs them as the next block of
    /// `runtime` (which must have its genesis), then checks that every transaction succeeded and
    /// that each cross read returned what the other engine holds.
    pub fn run(self, runtime: &Runtime, block: &BlockInput, progress: impl FnMut(usize)) -> Result<DemoRun, DemoError> {
        let mut nonces = std::collections::HashMap::new();
        let mut raws = Vec::with_capacity(self.requests.len());
        for request in &self.requests {
            let nonce = match nonces.get(&request.key) {
                Some(nonce) => *nonce,
                None => runtime.account(dev_address(request.key))?.map_or(0, |record| record.nonce),
            };
            nonces.insert(request.key, nonce + 1);
            raws.push(Bytes::from(request.sign(runtime, nonce).encoded_2718()));
        }
        let outcome = runtime.execute_block(block, &raws, progress)?;
        if let Some(rejected) = outcome.rejected.first() {
            return Err(DemoError::Rejected { index: rejected.position, reason: rejected.reason.clone() });
        }
        if let Some(receipt) = outcome.receipts.iter().find(|receipt| !receipt.status.is_success()) {
            return Err(DemoError::Transaction { index: receipt.index, status: receipt.status.clone() });
        }
        let output = |index: usize| U256::from_be_slice(&outcome.receipts[index].output);
        let (evm_read, wasm_read) = (output(self.evm_read_index), output(self.wasm_read_index));
        let stored = |key: &[u8]| -> Result<U256, RuntimeError> {
            Ok(runtime.get(key)?.map_or(U256::ZERO, |value| U256::from_be_slice(&value)))
        };
        let wasm_held = stored(&Namespace::wasm(self.token).slot_key(token_balance_slot(bob())))?;
        let evm_held = stored(&Namespace::evm(self.erc20).word_key(&erc20_balance_slot(bob()).to_be_bytes::<32>()))?;
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
