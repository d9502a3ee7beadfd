//! The byte layout of every key in the shared state: `engine (1) | identity (20) | engine key`.
//!
//! Everything here is pure: encoding and decoding never touch a backend. Decoding is strict: a
//! key that is truncated, too long, carries an unknown engine tag or an unknown layout tag is
//! rejected with a [`KeyError`], never silently mapped to something else. The layouts are frozen
//! in `docs/spec/abi/state.md`, and `tests/golden.rs` checks the vectors printed there.

use alloy_primitives::{Address, B256, keccak256};
use std::fmt;

/// Length of the `engine | identity` prefix shared by every key of one namespace.
pub const PREFIX_LEN: usize = 1 + IDENTITY_LEN;
/// Length of an identity: an EVM address, or a WASM module's synthetic address.
pub const IDENTITY_LEN: usize = 20;
/// The longest user key a WASM module may store (the bytes after the `0x01` layout tag).
pub const MAX_USER_KEY_LEN: usize = 128;
/// The largest value a WASM module may store under one user key.
pub const MAX_USER_VALUE_LEN: usize = 16 * 1024;
/// The longest encoded key of any layout: a WASM user key of maximal length.
pub const MAX_KEY_LEN: usize = PREFIX_LEN + 1 + MAX_USER_KEY_LEN;
/// Shortest and longest module name, in bytes.
pub const MODULE_NAME_LEN: std::ops::RangeInclusive<usize> = 1..=64;

/// Layout tag of a namespace's record: the WASM module record or the EVM account record.
pub const RECORD_TAG: u8 = 0x00;
/// Layout tag of storage: WASM user storage, EVM storage words, or runtime code blobs.
pub const STORAGE_TAG: u8 = 0x01;

/// Length of an encoded u64 slot key: prefix, storage tag, 8-byte big-endian slot.
pub const SLOT_KEY_LEN: usize = PREFIX_LEN + 1 + 8;
/// Length of an encoded EVM storage-word key: prefix, storage tag, 32-byte slot.
pub const WORD_KEY_LEN: usize = PREFIX_LEN + 1 + 32;
/// Length of an encoded code-blob key: prefix, storage tag, 32-byte code hash.
pub const CODE_KEY_LEN: usize = PREFIX_LEN + 1 + 32;
/// Length of an encoded record key: prefix and record tag.
pub const RECORD_KEY_LEN: usize = PREFIX_LEN + 1;

/// The engine that owns a namespace: the first byte of every key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Engine {
    /// The runtime's own records, such as code blobs by hash.
    Runtime = 0x00,
    /// WASM modules executed by wasmer.
    Wasm = 0x01,
    /// EVM contracts and accounts executed by revm.
    Evm = 0x02,
}

impl Engine {
    /// The tag byte that starts every key of this engine.
    pub const fn tag(self) -> u8 {
        self as u8
    }

    /// Parses a tag byte; every byte other than `0x00`, `0x01` and `0x02` is an error.
    pub const fn from_tag(tag: u8) -> Result<Self, KeyError> {
        match tag {
            0x00 => Ok(Self::Runtime),
            0x01 => Ok(Self::Wasm),
            0x02 => Ok(Self::Evm),
            other => Err(KeyError::UnknownEngine(other)),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Runtime => "runtime",
            Self::Wasm => "wasm",
            Self::Evm => "evm",
        })
    }
}

/// A 20-byte identity: an EVM address or a WASM module's synthetic address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Identity(pub [u8; IDENTITY_LEN]);

impl Identity {
    /// The identity of the runtime's own namespace: twenty zero bytes.
    pub const RUNTIME: Self = Self([0; IDENTITY_LEN]);

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; IDENTITY_LEN] {
        &self.0
    }

    /// The identity as an EVM address (the same 20 bytes).
    pub const fn to_address(self) -> Address {
        Address::new(self.0)
    }
}

impl From<Address> for Identity {
    fn from(address: Address) -> Self {
        Self(address.into_array())
    }
}

impl From<Identity> for Address {
    fn from(identity: Identity) -> Self {
        Self::new(identity.0)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({self})")
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", alloy_primitives::hex::encode_prefixed(self.0))
    }
}

impl std::str::FromStr for Identity {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = alloy_primitives::hex::decode(text).map_err(|_| KeyError::InvalidHex)?;
        let array: [u8; IDENTITY_LEN] =
            bytes.as_slice().try_into().map_err(|_| KeyError::IdentityLength(bytes.len()))?;
        Ok(Self(array))
    }
}

/// A validated WASM module name: 1 to 64 bytes of `[a-z0-9_-]`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleName(String);

impl ModuleName {
    /// Validates `name`; anything outside the allowed alphabet or length is an error.
    pub fn new(name: &str) -> Result<Self, KeyError> {
        Self::from_bytes(name.as_bytes())
    }

    /// Validates raw name bytes, such as a stored record's: the error names the first byte
    /// outside the alphabet and its position, whether or not the bytes are UTF-8.
    pub fn from_bytes(name: &[u8]) -> Result<Self, KeyError> {
        if !MODULE_NAME_LEN.contains(&name.len()) {
            return Err(KeyError::ModuleNameLength(name.len()));
        }
        if let Some((position, &byte)) =
            name.iter().enumerate().find(|(_, byte)| !matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
        {
            return Err(KeyError::ModuleNameByte { position, byte });
        }
        // Every byte is ASCII now, and an ASCII byte is the character of the same value.
        Ok(Self(name.iter().copied().map(char::from).collect()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModuleName({:?})", self.0)
    }
}

impl fmt::Display for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Derives a WASM module's synthetic identity.
///
/// The preimage is `chain_id (u64 BE) || name length (u16 BE) || name || version (u32 BE)`. The
/// length field makes the encoding injective: two different triples never share a preimage, so
/// two modules can only share an identity through a keccak256 collision on the first 20 bytes.
pub fn module_identity(chain_id: u64, name: &ModuleName, version: u32) -> Identity {
    let name = name.as_str().as_bytes();
    let mut preimage = [0u8; 8 + 2 + 64 + 4];
    preimage[..8].copy_from_slice(&chain_id.to_be_bytes());
    // A validated name is at most 64 bytes, so its length always fits in a u16.
    let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    preimage[8..10].copy_from_slice(&name_len.to_be_bytes());
    preimage[10..10 + name.len()].copy_from_slice(name);
    let end = 10 + name.len();
    preimage[end..end + 4].copy_from_slice(&version.to_be_bytes());
    let hash = keccak256(&preimage[..end + 4]);
    let mut identity = [0u8; IDENTITY_LEN];
    identity.copy_from_slice(&hash[..IDENTITY_LEN]);
    Identity(identity)
}

/// The `engine | identity` prefix of one namespace, cached by engine instances so that building
/// a full key is a copy into a stack buffer rather than an encoding step.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Namespace {
    prefix: [u8; PREFIX_LEN],
}

impl Namespace {
    /// The namespace of `identity` under `engine`.
    pub const fn new(engine: Engine, identity: Identity) -> Self {
        let mut prefix = [0u8; PREFIX_LEN];
        prefix[0] = engine.tag();
        let mut index = 0;
        while index < IDENTITY_LEN {
            prefix[1 + index] = identity.0[index];
            index += 1;
        }
        Self { prefix }
    }

    /// The namespace of a WASM module.
    pub const fn wasm(identity: Identity) -> Self {
        Self::new(Engine::Wasm, identity)
    }

    /// The namespace of an EVM account.
    pub const fn evm(address: Address) -> Self {
        Self::new(Engine::Evm, Identity(address.into_array()))
    }

    /// The runtime's own namespace (code blobs).
    pub const fn runtime() -> Self {
        Self::new(Engine::Runtime, Identity::RUNTIME)
    }

    /// Parses the first 21 bytes of `bytes` as a namespace prefix.
    pub fn from_prefix(bytes: &[u8]) -> Result<Self, KeyError> {
        let prefix: [u8; PREFIX_LEN] = bytes
            .get(..PREFIX_LEN)
            .and_then(|prefix| prefix.try_into().ok())
            .ok_or(KeyError::Truncated { len: bytes.len(), expected: PREFIX_LEN })?;
        let engine = Engine::from_tag(prefix[0])?;
        if engine == Engine::Runtime && prefix[1..] != Identity::RUNTIME.0 {
            return Err(KeyError::UnknownRuntimeIdentity);
        }
        Ok(Self { prefix })
    }

    /// The engine that owns this namespace.
    pub fn engine(&self) -> Engine {
        // The constructors only ever store a valid tag.
        Engine::from_tag(self.prefix[0]).unwrap_or(Engine::Runtime)
    }

    /// The identity of this namespace.
    pub fn identity(&self) -> Identity {
        let mut identity = [0u8; IDENTITY_LEN];
        identity.copy_from_slice(&self.prefix[1..]);
        Identity(identity)
    }

    /// The 21 prefix bytes.
    pub const fn prefix(&self) -> &[u8; PREFIX_LEN] {
        &self.prefix
    }

    /// The key of this namespace's record (`prefix | 0x00`).
    #[inline]
    pub fn record_key(&self) -> [u8; RECORD_KEY_LEN] {
        let mut key = [0u8; RECORD_KEY_LEN];
        key[..PREFIX_LEN].copy_from_slice(&self.prefix);
        key[PREFIX_LEN] = RECORD_TAG;
        key
    }

    /// The key of u64 slot `slot` (`prefix | 0x01 | slot as 8 bytes BE`), built on the stack.
    #[inline]
    pub fn slot_key(&self, slot: u64) -> [u8; SLOT_KEY_LEN] {
        let mut key = [0u8; SLOT_KEY_LEN];
        key[..PREFIX_LEN].copy_from_slice(&self.prefix);
        key[PREFIX_LEN] = STORAGE_TAG;
        key[PREFIX_LEN + 1..].copy_from_slice(&slot.to_be_bytes());
        key
    }

    /// The key of a 32-byte storage word or code hash (`prefix | 0x01 | word`), on the stack.
    #[inline]
    pub fn word_key(&self, word: &[u8; 32]) -> [u8; WORD_KEY_LEN] {
        let mut key = [0u8; WORD_KEY_LEN];
        key[..PREFIX_LEN].copy_from_slice(&self.prefix);
        key[PREFIX_LEN] = STORAGE_TAG;
        key[PREFIX_LEN + 1..].copy_from_slice(word);
        key
    }

    /// Writes the key of user key `user_key` into `buffer` and returns the used part.
    #[inline]
    pub fn user_key<'buffer>(
        &self,
        user_key: &[u8],
        buffer: &'buffer mut [u8; MAX_KEY_LEN],
    ) -> Result<&'buffer [u8], KeyError> {
        check_user_key(user_key)?;
        let len = PREFIX_LEN + 1 + user_key.len();
        buffer[..PREFIX_LEN].copy_from_slice(&self.prefix);
        buffer[PREFIX_LEN] = STORAGE_TAG;
        buffer[PREFIX_LEN + 1..len].copy_from_slice(user_key);
        Ok(&buffer[..len])
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namespace({}:{})", self.engine(), self.identity())
    }
}

/// The code-blob key of `code_hash`: `0x00 | 20 zero bytes | 0x01 | hash`.
pub fn code_key(code_hash: &B256) -> [u8; CODE_KEY_LEN] {
    Namespace::runtime().word_key(&code_hash.0)
}

/// Checks a WASM user key against the length bounds.
pub fn check_user_key(user_key: &[u8]) -> Result<(), KeyError> {
    if user_key.is_empty() || user_key.len() > MAX_USER_KEY_LEN {
        return Err(KeyError::UserKeyLength(user_key.len()));
    }
    Ok(())
}

/// Checks a WASM user value against the length bound.
pub fn check_user_value(value: &[u8]) -> Result<(), KeyError> {
    if value.len() > MAX_USER_VALUE_LEN {
        return Err(KeyError::UserValueLength(value.len()));
    }
    Ok(())
}

/// A decoded key: every layout the spec defines, and nothing else.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StateKey {
    /// `0x00 | 0^20 | 0x01 | hash`: a code blob (EVM bytecode or WASM module bytes) by keccak256.
    Code(B256),
    /// `0x01 | id | 0x00`: a WASM module's record.
    WasmModule(Identity),
    /// `0x01 | id | 0x01 | user key`: a WASM module's user storage (1 to 128 key bytes).
    WasmStorage(Identity, Vec<u8>),
    /// `0x02 | address | 0x00`: an EVM account record.
    EvmAccount(Address),
    /// `0x02 | address | 0x01 | slot`: an EVM storage word.
    EvmStorage(Address, B256),
}

impl StateKey {
    /// The WASM user key of u64 slot `slot`.
    pub fn wasm_slot(identity: Identity, slot: u64) -> Self {
        Self::WasmStorage(identity, slot.to_be_bytes().to_vec())
    }

    /// The namespace this key belongs to.
    pub fn namespace(&self) -> Namespace {
        match self {
            Self::Code(_) => Namespace::runtime(),
            Self::WasmModule(identity) | Self::WasmStorage(identity, _) => Namespace::wasm(*identity),
            Self::EvmAccount(address) | Self::EvmStorage(address, _) => Namespace::evm(*address),
        }
    }

    /// Encodes the key. Fails only for a WASM user key outside its length bounds.
    pub fn encode(&self) -> Result<Vec<u8>, KeyError> {
        let namespace = self.namespace();
        Ok(match self {
            Self::Code(hash) => namespace.word_key(&hash.0).to_vec(),
            Self::WasmModule(_) | Self::EvmAccount(_) => namespace.record_key().to_vec(),
            Self::WasmStorage(_, user_key) => {
                let mut buffer = [0u8; MAX_KEY_LEN];
                namespace.user_key(user_key, &mut buffer)?.to_vec()
            }
            Self::EvmStorage(_, slot) => namespace.word_key(&slot.0).to_vec(),
        })
    }

    /// Decodes `bytes`, rejecting anything that is not exactly one of the spec's layouts.
    pub fn decode(bytes: &[u8]) -> Result<Self, KeyError> {
        let namespace = Namespace::from_prefix(bytes)?;
        let identity = namespace.identity();
        let body = bytes.get(PREFIX_LEN + 1..).unwrap_or_default();
        Ok(match KeyLayout::of(bytes)? {
            KeyLayout::Code => Self::Code(B256::from_slice(body)),
            KeyLayout::WasmModule => Self::WasmModule(identity),
            KeyLayout::WasmStorage => Self::WasmStorage(identity, body.to_vec()),
            KeyLayout::EvmAccount => Self::EvmAccount(identity.to_address()),
            KeyLayout::EvmStorage => Self::EvmStorage(identity.to_address(), B256::from_slice(body)),
        })
    }
}

/// Which of the spec's layouts an encoded key has; found without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyLayout {
    /// A code blob.
    Code,
    /// A WASM module record.
    WasmModule,
    /// WASM user storage.
    WasmStorage,
    /// An EVM account record.
    EvmAccount,
    /// An EVM storage word.
    EvmStorage,
}

impl KeyLayout {
    /// Classifies `bytes`, rejecting anything that is not exactly one of the spec's layouts.
    pub fn of(bytes: &[u8]) -> Result<Self, KeyError> {
        let namespace = Namespace::from_prefix(bytes)?;
        let Some((&tag, body)) = bytes[PREFIX_LEN..].split_first() else {
            return Err(KeyError::Truncated { len: bytes.len(), expected: RECORD_KEY_LEN });
        };
        let exact = |layout: Self, body_len: usize| -> Result<Self, KeyError> {
            let expected = RECORD_KEY_LEN + body_len;
            match bytes.len() {
                len if len < expected => Err(KeyError::Truncated { len, expected }),
                len if len > expected => Err(KeyError::Oversized { len, max: expected }),
                _ => Ok(layout),
            }
        };
        match (namespace.engine(), tag) {
            (Engine::Runtime, STORAGE_TAG) => exact(Self::Code, 32),
            (Engine::Wasm, RECORD_TAG) => exact(Self::WasmModule, 0),
            (Engine::Wasm, STORAGE_TAG) => {
                if body.len() > MAX_USER_KEY_LEN {
                    return Err(KeyError::Oversized { len: bytes.len(), max: MAX_KEY_LEN });
                }
                check_user_key(body).map(|()| Self::WasmStorage)
            }
            (Engine::Evm, RECORD_TAG) => exact(Self::EvmAccount, 0),
            (Engine::Evm, STORAGE_TAG) => exact(Self::EvmStorage, 32),
            (engine, tag) => Err(KeyError::UnknownLayout { engine, tag }),
        }
    }
}

/// Why a key, identity or module name was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The first byte is not a known engine tag.
    #[error("unknown engine tag 0x{0:02x} (expected 0x00 runtime, 0x01 wasm or 0x02 evm)")]
    UnknownEngine(u8),
    /// The layout tag after the prefix is not defined for this engine.
    #[error("unknown layout tag 0x{tag:02x} for the {engine} engine")]
    UnknownLayout {
        /// The engine of the key.
        engine: Engine,
        /// The layout tag found.
        tag: u8,
    },
    /// The runtime namespace only has the all-zero identity.
    #[error("runtime keys must use the all-zero identity")]
    UnknownRuntimeIdentity,
    /// The key ends before its layout is complete.
    #[error("truncated key: {len} bytes, expected at least {expected}")]
    Truncated {
        /// Bytes given.
        len: usize,
        /// Bytes the layout needs.
        expected: usize,
    },
    /// The key is longer than its layout allows.
    #[error("oversized key: {len} bytes, at most {max} allowed for this layout")]
    Oversized {
        /// Bytes given.
        len: usize,
        /// Bytes the layout allows.
        max: usize,
    },
    /// A WASM user key is empty or longer than [`MAX_USER_KEY_LEN`].
    #[error("user key of {0} bytes: user keys are 1 to 128 bytes")]
    UserKeyLength(usize),
    /// A WASM user value is longer than [`MAX_USER_VALUE_LEN`].
    #[error("user value of {0} bytes: user values are at most 16384 bytes")]
    UserValueLength(usize),
    /// A module name is empty or longer than 64 bytes.
    #[error("module name of {0} bytes: names are 1 to 64 bytes")]
    ModuleNameLength(usize),
    /// A module name holds a byte outside `[a-z0-9_-]`.
    #[error("module name byte 0x{byte:02x} at position {position} is not in [a-z0-9_-]")]
    ModuleNameByte {
        /// Offset of the first bad byte.
        position: usize,
        /// The bad byte.
        byte: u8,
    },
    /// An identity in text form is not hex.
    #[error("identity is not valid hex")]
    InvalidHex,
    /// An identity in text form does not have 20 bytes.
    #[error("identity of {0} bytes: identities are 20 bytes")]
    IdentityLength(usize),
}
