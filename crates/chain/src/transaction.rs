//! The JSON block file (`docs/block-format.md`): a chain's genesis, a block's own fields and its
//! transactions, either signed raw envelopes or requests a dev key signs.
//!
//! A block file is parsed field by field so that every error names the transaction's index and
//! the field, rather than a line and column of the JSON text.

use crate::dev::{DevRequest, DevTarget, FeeKind};
use alloy_primitives::{Address, Bytes, U256, hex};
use evm_binding::GenesisAccount;
use kv_core::ModuleName;
use serde_json::{Map, Value};

/// One transaction of a block file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileTransaction {
    /// A signed EIP-2718 envelope, as `eth_sendRawTransaction` takes it.
    Raw(Bytes),
    /// A request that one of the dev keys signs when the block runs.
    Dev(Box<DevRequest>),
}

/// The fields of the block a file describes; what it leaves out takes the runtime's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockFields {
    /// Seconds since the epoch (default: now, and after the parent's).
    pub timestamp: Option<u64>,
    /// Who receives the priority fees (default: the zero address, as anvil).
    pub beneficiary: Option<Address>,
    /// At most 32 bytes.
    pub extra_data: Option<Bytes>,
}

/// State to import before the first block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Genesis {
    /// The genesis block's timestamp.
    pub timestamp: u64,
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
    /// Genesis state, only allowed on an empty store (default: anvil's, see
    /// [`crate::dev::anvil_genesis`]).
    pub genesis: Option<Genesis>,
    /// The block's own fields.
    pub block: BlockFields,
    /// The transactions, in order.
    pub transactions: Vec<FileTransaction>,
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

const TRANSACTION_FIELDS: &[&str] = &[
    "raw",
    "from",
    "to",
    "module",
    "deploy",
    "data",
    "value",
    "gas",
    "nonce",
    "gas_price",
    "max_fee_per_gas",
    "max_priority_fee_per_gas",
];

fn transaction(value: &Value) -> FieldResult<FileTransaction> {
    let fields = Fields::of(value)?;
    fields.only(TRANSACTION_FIELDS)?;
    if fields.get("raw").is_some() {
        if let Some(other) = TRANSACTION_FIELDS.iter().find(|field| **field != "raw" && fields.get(field).is_some()) {
            return Err(((*other).into(), "a raw transaction is signed already: give `raw` alone".into()));
        }
        return Ok(FileTransaction::Raw(fields.bytes("raw")?.unwrap_or_default()));
    }
    let from = fields.string("from")?;
    let key = from
        .strip_prefix("dev:")
        .and_then(|index| index.parse::<u32>().ok())
        .filter(|index| *index < crate::dev::DEV_ACCOUNTS)
        .ok_or_else(|| {
            ("from".to_owned(), format!("expected dev:0 to dev:{}, found `{from}`", crate::dev::DEV_ACCOUNTS - 1))
        })?;
    let targets = ["to", "module", "deploy"].iter().filter(|field| fields.get(field).is_some()).count();
    if targets > 1 {
        return Err(("to".into(), "give at most one of `to`, `module` and `deploy`".into()));
    }
    let (target, data) = if let Some(deploy) = fields.get("deploy") {
        if fields.get("data").is_some() {
            return Err(("data".into(), "a deploy's calldata is made from `deploy`".into()));
        }
        let deploy = Fields::of(deploy).map_err(|(_, reason)| ("deploy".to_owned(), reason))?;
        deploy.only(&["name", "version", "code"]).map_err(|(field, reason)| (format!("deploy.{field}"), reason))?;
        let name = deploy.name("name").map_err(|(field, reason)| (format!("deploy.{field}"), reason))?;
        let version = deploy.version("version").map_err(|(field, reason)| (format!("deploy.{field}"), reason))?;
        let code = deploy
            .bytes("code")
            .map_err(|(field, reason)| (format!("deploy.{field}"), reason))?
            .ok_or_else(|| ("deploy.code".to_owned(), "missing".to_owned()))?;
        (DevTarget::Deploy { name, version, code }, Bytes::new())
    } else if let Some(module) = fields.get("module") {
        let module = Fields::of(module).map_err(|(_, reason)| ("module".to_owned(), reason))?;
        module.only(&["name", "version"]).map_err(|(field, reason)| (format!("module.{field}"), reason))?;
        let name = module.name("name").map_err(|(field, reason)| (format!("module.{field}"), reason))?;
        let version = module.version("version").map_err(|(field, reason)| (format!("module.{field}"), reason))?;
        (DevTarget::Module(name, version), fields.bytes("data")?.unwrap_or_default())
    } else if fields.get("to").is_some() {
        (DevTarget::Address(fields.address("to")?), fields.bytes("data")?.unwrap_or_default())
    } else {
        (DevTarget::Create, fields.bytes("data")?.unwrap_or_default())
    };
    let fee = match (fields.get("gas_price"), fields.get("max_fee_per_gas"), fields.get("max_priority_fee_per_gas")) {
        (Some(_), None, None) => FeeKind::Legacy { gas_price: u128_of(&fields, "gas_price")? },
        (Some(_), _, _) => {
            return Err((
                "gas_price".into(),
                "a legacy gas price excludes max_fee_per_gas and max_priority_fee_per_gas".into(),
            ));
        }
        (None, _, _) => FeeKind::Eip1559 {
            max_fee_per_gas: fields.get("max_fee_per_gas").map(|_| u128_of(&fields, "max_fee_per_gas")).transpose()?,
            max_priority_fee_per_gas: fields
                .get("max_priority_fee_per_gas")
                .map(|_| u128_of(&fields, "max_priority_fee_per_gas"))
                .transpose()?,
        },
    };
    Ok(FileTransaction::Dev(Box::new(DevRequest {
        key,
        target,
        data,
        value: fields.u256("value")?.unwrap_or_default(),
        gas: fields.u64("gas")?,
        nonce: fields.u64("nonce")?,
        fee,
    })))
}

fn u128_of(fields: &Fields<'_>, field: &str) -> FieldResult<u128> {
    let value = fields.u256(field)?.unwrap_or_default();
    u128::try_from(value).map_err(|_| (field.to_owned(), "does not fit in 128 bits".to_owned()))
}

fn block_fields(value: &Value) -> Result<BlockFields, BlockFileError> {
    let top = |(field, reason): (String, String)| BlockFileError::Top { field: format!("block.{field}"), reason };
    let fields = Fields::of(value).map_err(top)?;
    fields.only(&["timestamp", "beneficiary", "extra_data"]).map_err(top)?;
    let beneficiary = match fields.get("beneficiary") {
        None => None,
        Some(_) => Some(fields.address("beneficiary").map_err(top)?),
    };
    let extra_data = fields.bytes("extra_data").map_err(top)?;
    if let Some(extra) = &extra_data
        && extra.len() > 32
    {
        return Err(top(("extra_data".into(), format!("{} bytes, at most 32", extra.len()))));
    }
    Ok(BlockFields { timestamp: fields.u64("timestamp").map_err(top)?, beneficiary, extra_data })
}

fn genesis(value: &Value) -> Result<Genesis, BlockFileError> {
    let top = |reason: String| BlockFileError::Top { field: "genesis".into(), reason };
    let object = value.as_object().ok_or_else(|| top("expected an object".into()))?;
    if let Some(key) = object.keys().find(|key| !["timestamp", "accounts", "modules"].contains(&key.as_str())) {
        return Err(top(format!("unknown field `{key}`")));
    }
    let mut genesis = Genesis::default();
    if let Some(timestamp) = object.get("timestamp") {
        genesis.timestamp = parse_u64(timestamp).map_err(|reason| top(format!("`timestamp`: {reason}")))?;
    }
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
        if let Some(key) =
            object.keys().find(|key| !["chain_id", "genesis", "block", "transactions"].contains(&key.as_str()))
        {
            return Err(BlockFileError::Top {
                field: key.clone(),
                reason: "unknown field (expected chain_id, genesis, block, transactions)".into(),
            });
        }
        let chain_id = match object.get("chain_id") {
            None => None,
            Some(value) => {
                Some(parse_u64(value).map_err(|reason| BlockFileError::Top { field: "chain_id".into(), reason })?)
            }
        };
        let genesis = object.get("genesis").map(genesis).transpose()?;
        let block = object.get("block").map(block_fields).transpose()?.unwrap_or_default();
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
        Ok(Self { chain_id, genesis, block, transactions })
    }
}
