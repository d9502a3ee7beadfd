//! Transactions and receipts of a mixed block, and the JSON block file that carries them
//! (`docs/block-format.md`).
//!
//! A block file is parsed field by field so that every error names the transaction's index and
//! the field, rather than a line and column of the JSON text.

use alloy_primitives::{Address, Bytes, Log, U256, hex};
use evm_binding::GenesisAccount;
use kv_core::{Identity, ModuleName};
use serde_json::{Map, Value};

/// The default gas limit of a transaction that names none.
pub const DEFAULT_GAS: u64 = 5_000_000;

/// Which WASM module a call addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleRef {
    /// By synthetic identity.
    Identity(Identity),
    /// By name and version (resolved with the runtime's chain id).
    Named(ModuleName, u32),
}

/// One transaction of a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transaction {
    /// Deploys an EVM contract.
    EvmCreate {
        /// Sender.
        from: Address,
        /// Init code (constructor arguments appended).
        code: Bytes,
        /// Wei sent along.
        value: U256,
        /// Gas limit.
        gas: u64,
    },
    /// Calls an EVM account.
    EvmCall {
        /// Sender.
        from: Address,
        /// Callee.
        to: Address,
        /// Calldata.
        data: Bytes,
        /// Wei sent along.
        value: U256,
        /// Gas limit.
        gas: u64,
    },
    /// Deploys a WASM module.
    WasmDeploy {
        /// Module name.
        name: ModuleName,
        /// Module version.
        version: u32,
        /// WASM bytes.
        code: Bytes,
    },
    /// Calls a WASM module.
    WasmCall {
        /// Caller.
        from: Address,
        /// The module.
        module: ModuleRef,
        /// Input bytes.
        input: Bytes,
        /// WASM gas limit.
        gas: u64,
    },
}

impl Transaction {
    /// The transaction's kind, as written in block files.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::EvmCreate { .. } => "evm_create",
            Self::EvmCall { .. } => "evm_call",
            Self::WasmDeploy { .. } => "wasm_deploy",
            Self::WasmCall { .. } => "wasm_call",
        }
    }
}

/// How a transaction ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// It ran and its effects are in the block.
    Success,
    /// It ran and reverted: an EVM transaction still paid its gas and used its nonce; a WASM call
    /// left no trace.
    Revert(Bytes),
    /// The EVM halted (out of gas, invalid opcode, ...) or the WASM module trapped.
    Failed(String),
    /// The transaction was refused before running (invalid transaction, invalid module, unknown
    /// module): nothing of it is in the block.
    Rejected(String),
}

impl Status {
    /// Whether the transaction succeeded.
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

/// The receipt of one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Position in the block.
    pub index: usize,
    /// `evm_create`, `evm_call`, `wasm_deploy` or `wasm_call`.
    pub kind: &'static str,
    /// How it ended.
    pub status: Status,
    /// Gas used: EVM gas for EVM transactions, WASM gas for WASM calls, 0 for deploys.
    pub gas_used: u64,
    /// Return data.
    pub output: Bytes,
    /// EVM logs.
    pub logs: Vec<Log>,
    /// The contract or module created, if any.
    pub created: Option<Created>,
}

impl Receipt {
    /// A receipt that used no gas and returned, logged and created nothing; callers fill in what
    /// their transaction did with struct update syntax.
    pub fn new(index: usize, kind: &'static str, status: Status) -> Self {
        Self { index, kind, status, gas_used: 0, output: Bytes::new(), logs: Vec::new(), created: None }
    }
}

/// State to import before the first block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Genesis {
    /// EVM accounts.
    pub accounts: Vec<(Address, GenesisAccount)>,
    /// WASM modules: name, version, code.
    pub modules: Vec<(ModuleName, u32, Bytes)>,
}

/// A parsed block file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockFile {
    /// The chain id the file is written for, if it says.
    pub chain_id: Option<u64>,
    /// Genesis state, only allowed on an empty store.
    pub genesis: Option<Genesis>,
    /// The transactions, in order.
    pub transactions: Vec<Transaction>,
}

/// Why a block file was refused. Nothing was executed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockFileError {
    /// The text is not JSON.
    #[error("not valid JSON: {0}")]
    Json(String),
    /// A top-level field is wrong.
    #[error("field `{field}`: {reason}")]
    Top {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A genesis entry is wrong.
    #[error("genesis {section} {index}, field `{field}`: {reason}")]
    Genesis {
        /// `accounts` or `modules`.
        section: &'static str,
        /// Position.
        index: usize,
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A transaction is wrong.
    #[error("transaction {index}, field `{field}`: {reason}")]
    Transaction {
        /// Position in `transactions`.
        index: usize,
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// Reads fields of one JSON object, producing errors that name the field.
struct Fields<'a> {
    object: &'a Map<String, Value>,
}

type FieldResult<T> = Result<T, (String, String)>;

impl<'a> Fields<'a> {
    fn of(value: &'a Value) -> FieldResult<Self> {
        value.as_object().map(|object| Self { object }).ok_or_else(|| ("*".into(), "expected a JSON object".into()))
    }

    fn only(&self, allowed: &[&str]) -> FieldResult<()> {
        match self.object.keys().find(|key| !allowed.contains(&key.as_str())) {
            Some(key) => Err((key.clone(), format!("unknown field (expected one of: {})", allowed.join(", ")))),
            None => Ok(()),
        }
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.object.get(field)
    }

    fn required(&self, field: &str) -> FieldResult<&'a Value> {
        self.get(field).ok_or_else(|| (field.into(), "missing".into()))
    }

    fn string(&self, field: &str) -> FieldResult<&'a str> {
        self.required(field)?.as_str().ok_or_else(|| (field.into(), "expected a string".into()))
    }

    fn address(&self, field: &str) -> FieldResult<Address> {
        parse_address(self.string(field)?).map_err(|reason| (field.into(), reason))
    }

    fn bytes(&self, field: &str) -> FieldResult<Option<Bytes>> {
        match self.get(field) {
            None => Ok(None),
            Some(value) => {
                let text =
                    value.as_str().ok_or_else(|| (field.to_owned(), "expected a 0x-prefixed hex string".to_owned()))?;
                parse_hex(text).map(Some).map_err(|reason| (field.into(), reason))
            }
        }
    }

    fn u64(&self, field: &str) -> FieldResult<Option<u64>> {
        match self.get(field) {
            None => Ok(None),
            Some(value) => parse_u64(value).map(Some).map_err(|reason| (field.into(), reason)),
        }
    }

    fn u256(&self, field: &str) -> FieldResult<Option<U256>> {
        match self.get(field) {
            None => Ok(None),
            Some(value) => parse_u256(value).map(Some).map_err(|reason| (field.into(), reason)),
        }
    }

    fn name(&self, field: &str) -> FieldResult<ModuleName> {
        ModuleName::new(self.string(field)?).map_err(|error| (field.into(), error.to_string()))
    }

    fn version(&self, field: &str) -> FieldResult<u32> {
        let version = self.u64(field)?.ok_or_else(|| (field.to_owned(), "missing".to_owned()))?;
        u32::try_from(version).map_err(|_| (field.into(), "versions are 32-bit".into()))
    }
}

/// Parses a 0x-prefixed 20-byte hex address.
pub fn parse_address(text: &str) -> Result<Address, String> {
    let bytes = parse_hex(text)?;
    if bytes.len() != 20 {
        return Err(format!("expected 20 bytes, found {}", bytes.len()));
    }
    Ok(Address::from_slice(&bytes))
}

/// Parses 0x-prefixed hex bytes.
pub fn parse_hex(text: &str) -> Result<Bytes, String> {
    let digits = text.strip_prefix("0x").ok_or("expected a 0x-prefixed hex string")?;
    hex::decode(digits).map(Bytes::from).map_err(|error| format!("invalid hex: {error}"))
}

fn parse_u64(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(number) => number.as_u64().ok_or_else(|| "expected a non-negative integer".to_owned()),
        Value::String(text) => parse_number(text)
            .and_then(|wide| u64::try_from(wide).map_err(|_| format!("{text} does not fit in 64 bits"))),
        _ => Err("expected an integer".into()),
    }
}

fn parse_u256(value: &Value) -> Result<U256, String> {
    match value {
        Value::Number(number) => {
            number.as_u64().map(U256::from).ok_or_else(|| "expected a non-negative integer".to_owned())
        }
        Value::String(text) => parse_number(text),
        _ => Err("expected a number or a numeric string".into()),
    }
}

/// Parses a number written as decimal digits or as a 0x-prefixed hex string.
pub fn parse_number(text: &str) -> Result<U256, String> {
    match text.strip_prefix("0x") {
        Some(digits) => {
            U256::from_str_radix(digits, 16).map_err(|error| format!("invalid hex number `{text}`: {error}"))
        }
        None => U256::from_str_radix(text, 10).map_err(|error| format!("invalid decimal number `{text}`: {error}")),
    }
}

fn transaction(value: &Value) -> FieldResult<Transaction> {
    let fields = Fields::of(value)?;
    let kind = fields.string("type")?;
    Ok(match kind {
        "evm_create" => {
            fields.only(&["type", "from", "code", "value", "gas"])?;
            Transaction::EvmCreate {
                from: fields.address("from")?,
                code: fields.bytes("code")?.ok_or_else(|| ("code".to_owned(), "missing".to_owned()))?,
                value: fields.u256("value")?.unwrap_or_default(),
                gas: fields.u64("gas")?.unwrap_or(DEFAULT_GAS),
            }
        }
        "evm_call" => {
            fields.only(&["type", "from", "to", "data", "value", "gas"])?;
            Transaction::EvmCall {
                from: fields.address("from")?,
                to: fields.address("to")?,
                data: fields.bytes("data")?.unwrap_or_default(),
                value: fields.u256("value")?.unwrap_or_default(),
                gas: fields.u64("gas")?.unwrap_or(DEFAULT_GAS),
            }
        }
        "wasm_deploy" => {
            fields.only(&["type", "name", "version", "code"])?;
            Transaction::WasmDeploy {
                name: fields.name("name")?,
                version: fields.version("version")?,
                code: fields.bytes("code")?.ok_or_else(|| ("code".to_owned(), "missing".to_owned()))?,
            }
        }
        "wasm_call" => {
            fields.only(&["type", "from", "module", "name", "version", "input", "gas"])?;
            let module = match (fields.get("module"), fields.get("name")) {
                (Some(_), None) => ModuleRef::Identity(Identity(fields.address("module")?.into_array())),
                (None, Some(_)) => ModuleRef::Named(fields.name("name")?, fields.version("version")?),
                _ => {
                    return Err(("module".into(), "give either `module` (an identity) or `name` and `version`".into()));
                }
            };
            Transaction::WasmCall {
                from: fields.address("from")?,
                module,
                input: fields.bytes("input")?.unwrap_or_default(),
                gas: fields.u64("gas")?.unwrap_or(DEFAULT_GAS),
            }
        }
        other => {
            return Err((
                "type".into(),
                format!("unknown transaction type `{other}` (expected evm_create, evm_call, wasm_deploy or wasm_call)"),
            ));
        }
    })
}

fn genesis(value: &Value) -> Result<Genesis, BlockFileError> {
    let top = |reason: String| BlockFileError::Top { field: "genesis".into(), reason };
    let object = value.as_object().ok_or_else(|| top("expected an object".into()))?;
    if let Some(key) = object.keys().find(|key| !["accounts", "modules"].contains(&key.as_str())) {
        return Err(top(format!("unknown field `{key}`")));
    }
    let mut genesis = Genesis::default();
    let list = |name: &str| -> Result<&[Value], BlockFileError> {
        match object.get(name) {
            None => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(top(format!("`{name}` must be an array"))),
        }
    };
    for (index, item) in list("accounts")?.iter().enumerate() {
        let error =
            |(field, reason): (String, String)| BlockFileError::Genesis { section: "account", index, field, reason };
        let fields = Fields::of(item).map_err(error)?;
        fields.only(&["address", "balance", "nonce", "code", "storage"]).map_err(error)?;
        let mut storage = Vec::new();
        if let Some(entries) = fields.get("storage") {
            let entries = entries
                .as_object()
                .ok_or_else(|| error(("storage".into(), "expected an object of slot: word".into())))?;
            for (slot, word) in entries {
                let slot = parse_number(slot).map_err(|reason| error(("storage".into(), reason)))?;
                let word = parse_u256(word).map_err(|reason| error(("storage".into(), reason)))?;
                storage.push((slot, word));
            }
        }
        let account = GenesisAccount {
            nonce: fields.u64("nonce").map_err(error)?.unwrap_or_default(),
            balance: fields.u256("balance").map_err(error)?.unwrap_or_default(),
            code: fields.bytes("code").map_err(error)?.map(|code| code.to_vec()).unwrap_or_default(),
            storage,
        };
        genesis.accounts.push((fields.address("address").map_err(error)?, account));
    }
    for (index, item) in list("modules")?.iter().enumerate() {
        let error =
            |(field, reason): (String, String)| BlockFileError::Genesis { section: "module", index, field, reason };
        let fields = Fields::of(item).map_err(error)?;
        fields.only(&["name", "version", "code"]).map_err(error)?;
        let code = fields.bytes("code").map_err(error)?.ok_or_else(|| error(("code".into(), "missing".into())))?;
        genesis.modules.push((fields.name("name").map_err(error)?, fields.version("version").map_err(error)?, code));
    }
    Ok(genesis)
}

impl BlockFile {
    /// Parses a block file; every error names where it is.
    pub fn parse(text: &str) -> Result<Self, BlockFileError> {
        let value: Value = serde_json::from_str(text).map_err(|error| BlockFileError::Json(error.to_string()))?;
        let object = value
            .as_object()
            .ok_or_else(|| BlockFileError::Top { field: "*".into(), reason: "expected a JSON object".into() })?;
        if let Some(key) = object.keys().find(|key| !["chain_id", "genesis", "transactions"].contains(&key.as_str())) {
            return Err(BlockFileError::Top {
                field: key.clone(),
                reason: "unknown field (expected chain_id, genesis, transactions)".into(),
            });
        }
        let chain_id = match object.get("chain_id") {
            None => None,
            Some(value) => {
                Some(parse_u64(value).map_err(|reason| BlockFileError::Top { field: "chain_id".into(), reason })?)
            }
        };
        let genesis = object.get("genesis").map(genesis).transpose()?;
        let transactions = match object.get("transactions") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    transaction(item).map_err(|(field, reason)| BlockFileError::Transaction { index, field, reason })
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => {
                return Err(BlockFileError::Top { field: "transactions".into(), reason: "expected an array".into() });
            }
            None => return Err(BlockFileError::Top { field: "transactions".into(), reason: "missing".into() }),
        };
        Ok(Self { chain_id, genesis, transactions })
    }
}
