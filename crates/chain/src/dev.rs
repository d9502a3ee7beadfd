//! The dev keys and the default genesis, as anvil and Hardhat have them: the ten accounts of the
//! test mnemonic, each funded with 10,000 ether, and signing for block files that name a dev key
//! (`"from": "dev:3"`) instead of carrying a signed transaction.

use crate::receipt::Kind;
use crate::runtime::{Runtime, RuntimeError, WASM_DEPLOY_ADDRESS, deployCall};
use crate::transaction::{FileTransaction, Genesis};
use alloy_consensus::{SignableTransaction, Signed, TxEip1559, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_eips::eip2935::{HISTORY_STORAGE_ADDRESS, HISTORY_STORAGE_CODE};
use alloy_primitives::{Address, Bytes, Signature, TxKind, U256, address, hex};
use alloy_signer::SignerSync;
use alloy_signer_local::MnemonicBuilder;
use alloy_signer_local::PrivateKeySigner;
use alloy_signer_local::coins_bip39::English;
use alloy_sol_types::SolCall;
use evm_binding::GenesisAccount;
use kv_core::ModuleName;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The well-known test mnemonic of anvil and Hardhat. Its keys are public: never fund them on a
/// real chain.
pub const MNEMONIC: &str = "test test test test test test test test test test test junk";
/// How many dev accounts the default genesis funds.
pub const DEV_ACCOUNTS: u32 = 10;
/// What each dev account holds at genesis: 10,000 ether.
pub const DEV_BALANCE: U256 = U256::from_limbs([0x19e0_c9ba_b240_0000, 0x21e, 0, 0]);
/// The deterministic CREATE2 deployer every anvil chain has.
pub const CREATE2_DEPLOYER: Address = address!("0x4e59b44847b379578588920cA78FbF26c0B4956C");
/// Its runtime code.
pub const CREATE2_DEPLOYER_CODE: &[u8] = &hex!(
    "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe03601600081602082378035828234f58015156039578182fd5b8082525050506014600cf3"
);
/// The gas limit of a dev request that names none.
pub const DEFAULT_DEV_GAS: u64 = 5_000_000;
/// The priority fee of a dev request that names none: 1 gwei.
pub const DEFAULT_PRIORITY_FEE: u128 = 1_000_000_000;

fn signers() -> &'static [PrivateKeySigner] {
    static SIGNERS: OnceLock<Vec<PrivateKeySigner>> = OnceLock::new();
    SIGNERS.get_or_init(|| {
        (0..DEV_ACCOUNTS)
            .map(|index| {
                MnemonicBuilder::<English>::default()
                    .phrase(MNEMONIC)
                    .index(index)
                    .and_then(|builder| builder.build())
                    .expect("the test mnemonic derives its ten keys")
            })
            .collect()
    })
}

/// The signer of dev account `index` (0-9).
pub fn dev_signer(index: u32) -> &'static PrivateKeySigner {
    &signers()[index as usize % DEV_ACCOUNTS as usize]
}

/// The address of dev account `index` (0-9).
pub fn dev_address(index: u32) -> Address {
    dev_signer(index).address()
}

/// anvil's default genesis at `timestamp`: the ten dev accounts with 10,000 ether each, the
/// EIP-2935 history contract and the CREATE2 deployer.
pub fn anvil_genesis(timestamp: u64) -> Genesis {
    let mut accounts: Vec<(Address, GenesisAccount)> = (0..DEV_ACCOUNTS)
        .map(|index| (dev_address(index), GenesisAccount { balance: DEV_BALANCE, ..Default::default() }))
        .collect();
    accounts
        .push((HISTORY_STORAGE_ADDRESS, GenesisAccount { code: HISTORY_STORAGE_CODE.to_vec(), ..Default::default() }));
    accounts.push((CREATE2_DEPLOYER, GenesisAccount { code: CREATE2_DEPLOYER_CODE.to_vec(), ..Default::default() }));
    Genesis { timestamp, accounts, modules: Vec::new() }
}

/// Signs `transaction` with dev key `index`.
pub fn sign<T>(index: u32, transaction: T) -> TxEnvelope
where
    T: SignableTransaction<Signature>,
    TxEnvelope: From<Signed<T>>,
{
    let signature =
        dev_signer(index).sign_hash_sync(&transaction.signature_hash()).expect("a local key signs any hash");
    TxEnvelope::from(transaction.into_signed(signature))
}

/// Where a dev request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevTarget {
    /// No `to`: an EVM contract creation with the data as init code.
    Create,
    /// An address (an EVM account, or a module identity).
    Address(Address),
    /// Module `name` at `version`, by its identity on the runtime's chain.
    Module(ModuleName, u32),
    /// A WASM deploy: the request becomes a transaction to `0x…0a01` with ABI calldata.
    Deploy {
        /// The module name.
        name: ModuleName,
        /// The module version.
        version: u32,
        /// The WASM bytes.
        code: Bytes,
    },
}

/// How a dev request pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeeKind {
    /// A legacy (EIP-155) transaction.
    Legacy {
        /// Wei per gas.
        gas_price: u128,
    },
    /// An EIP-1559 transaction; defaults: a 1 gwei tip, and twice the next base fee plus the tip
    /// as the cap.
    Eip1559 {
        /// The fee cap per gas.
        max_fee_per_gas: Option<u128>,
        /// The tip per gas.
        max_priority_fee_per_gas: Option<u128>,
    },
}

/// A transaction for a dev key to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevRequest {
    /// The dev account (0-9).
    pub key: u32,
    /// Where it goes.
    pub target: DevTarget,
    /// Calldata (or init code).
    pub data: Bytes,
    /// Wei sent along.
    pub value: U256,
    /// The gas limit (default [`DEFAULT_DEV_GAS`]).
    pub gas: Option<u64>,
    /// The nonce (default: the account's next one, counting earlier requests of the same key).
    pub nonce: Option<u64>,
    /// The fees.
    pub fee: FeeKind,
}

impl DevRequest {
    /// What kind of transaction the request makes, judged from its target alone.
    pub fn kind(&self) -> Kind {
        match self.target {
            DevTarget::Create => Kind::EvmCreate,
            DevTarget::Address(_) => Kind::EvmCall,
            DevTarget::Module(..) => Kind::WasmCall,
            DevTarget::Deploy { .. } => Kind::WasmDeploy,
        }
    }

    /// Signs the request for `runtime`'s chain with `nonce`.
    pub fn sign(&self, runtime: &Runtime, nonce: u64) -> TxEnvelope {
        let (to, input) = match &self.target {
            DevTarget::Create => (TxKind::Create, self.data.clone()),
            DevTarget::Address(address) => (TxKind::Call(*address), self.data.clone()),
            DevTarget::Module(name, version) => {
                (TxKind::Call(runtime.module_identity(name, *version).to_address()), self.data.clone())
            }
            DevTarget::Deploy { name, version, code } => {
                let call = deployCall { name: name.as_str().to_owned(), version: *version, code: code.clone() };
                (TxKind::Call(WASM_DEPLOY_ADDRESS), call.abi_encode().into())
            }
        };
        let gas_limit = self.gas.unwrap_or(DEFAULT_DEV_GAS);
        let chain_id = runtime.chain_id();
        match self.fee {
            FeeKind::Legacy { gas_price } => sign(
                self.key,
                TxLegacy { chain_id: Some(chain_id), nonce, gas_price, gas_limit, to, value: self.value, input },
            ),
            FeeKind::Eip1559 { max_fee_per_gas, max_priority_fee_per_gas } => {
                let tip = max_priority_fee_per_gas.unwrap_or(DEFAULT_PRIORITY_FEE);
                let cap = max_fee_per_gas.unwrap_or(2 * u128::from(runtime.next_base_fee()) + tip);
                sign(
                    self.key,
                    TxEip1559 {
                        chain_id,
                        nonce,
                        gas_limit,
                        max_fee_per_gas: cap,
                        max_priority_fee_per_gas: tip,
                        to,
                        value: self.value,
                        access_list: Default::default(),
                        input,
                    },
                )
            }
        }
    }
}

/// The raw transactions of a block file for `runtime`'s next block: raw ones as they are, dev
/// requests signed, each with the nonce it names or the sender's next (its committed nonce plus
/// the dev requests of the same key before it in the file).
pub fn raw_transactions(runtime: &Runtime, transactions: &[FileTransaction]) -> Result<Vec<Bytes>, RuntimeError> {
    let mut next: HashMap<u32, u64> = HashMap::new();
    let mut raws = Vec::with_capacity(transactions.len());
    for transaction in transactions {
        match transaction {
            FileTransaction::Raw(raw) => raws.push(raw.clone()),
            FileTransaction::Dev(request) => {
                let nonce = match request.nonce {
                    Some(nonce) => nonce,
                    None => match next.get(&request.key) {
                        Some(nonce) => *nonce,
                        None => runtime.account(dev_address(request.key))?.map_or(0, |record| record.nonce),
                    },
                };
                next.insert(request.key, nonce + 1);
                raws.push(request.sign(runtime, nonce).encoded_2718().into());
            }
        }
    }
    Ok(raws)
}
