//! The built-in demo: both engines, both directions of cross reads, one block, one root.

use crate::runtime::{BlockOutcome, Runtime, RuntimeError};
use crate::transaction::{Created, Genesis, ModuleRef, Transaction};
use alloy_primitives::{Address, Bytes, U256};
use evm_binding::GenesisAccount;
use kv_core::ModuleName;

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

/// Everything the demo did, for the report.
pub struct DemoRun {
    /// The block's outcome.
    pub outcome: BlockOutcome,
    /// The ERC-20 contract.
    pub erc20: Address,
    /// The WasmReader contract.
    pub reader: Address,
    /// The WASM token module.
    pub token: kv_core::Identity,
    /// The ERC-20 reader module.
    pub erc20_reader: kv_core::Identity,
}

/// Runs the demo on `runtime` (which must be empty): genesis, then one block in which the
/// ERC-20 and the WASM token are deployed, minted and transferred, a Solidity contract reads a
/// WASM balance through the precompile, and a WASM module reads an ERC-20 balance through
/// `evm_storage_read`.
pub fn run(runtime: &Runtime, progress: impl FnMut(usize)) -> Result<DemoRun, RuntimeError> {
    runtime.import_genesis(&genesis())?;
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
    let transactions = vec![
        Transaction::EvmCreate { from: DEPLOYER, code: xtoken.into(), value: U256::ZERO, gas: 3_000_000 },
        evm_call(DEPLOYER, erc20, calldata("mint(address,uint256)", &[word(ALICE), U256::from(1_000)])),
        evm_call(ALICE, erc20, calldata("transfer(address,uint256)", &[word(BOB), U256::from(250)])),
        Transaction::WasmDeploy { name: name("token"), version: 1, code: TOKEN_WASM.into() },
        wasm_call(ALICE, token_input(0x00, ALICE, None).slice(..1)),
        wasm_call(ALICE, token_input(0x01, ALICE, Some(900))),
        wasm_call(ALICE, token_input(0x02, BOB, Some(400))),
        Transaction::EvmCreate { from: DEPLOYER, code: wasm_reader_bytecode(), value: U256::ZERO, gas: 3_000_000 },
        evm_call(ALICE, reader, calldata("readTokenBalance(address,address)", &[word(token.to_address()), word(BOB)])),
        Transaction::WasmDeploy { name: name("erc20-reader"), version: 1, code: ERC20_READER_WASM.into() },
        Transaction::WasmCall {
            from: ALICE,
            module: ModuleRef::Named(name("erc20-reader"), 1),
            input: reader_input.into(),
            gas: 10_000_000,
        },
    ];
    let outcome = runtime.execute_block(&transactions, progress)?;
    debug_assert!(matches!(outcome.receipts[0].created, Some(Created::Contract(address)) if address == erc20));
    Ok(DemoRun { outcome, erc20, reader, token, erc20_reader })
}
