//! The Solidity ABI of the precompile at `0x…0a00`: selectors, strict calldata decoding and the
//! documented custom errors. Decoding accepts only canonical encodings: exact lengths, zero
//! padding, in-range integers, the standard offset for the string.
//!
//! Selectors are constants, since the precompile matches them on every call; a test checks each
//! against `evm_binding::abi::selector` of its signature.

use evm_binding::abi::word;
use evm_binding::revm::primitives::{Address, Bytes};
use kv_core::ModuleName;

/// `readU64(address,uint64)`.
pub const READ_U64_SIGNATURE: &str = "readU64(address,uint64)";
/// `moduleAddress(string,uint32)`.
pub const MODULE_ADDRESS_SIGNATURE: &str = "moduleAddress(string,uint32)";
/// The selector of [`READ_U64_SIGNATURE`].
pub const READ_U64_SELECTOR: [u8; 4] = [0xf5, 0xc7, 0x16, 0xee];
/// The selector of [`MODULE_ADDRESS_SIGNATURE`].
pub const MODULE_ADDRESS_SELECTOR: [u8; 4] = [0x77, 0xef, 0x69, 0x96];

/// A decoded call to the precompile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `readU64(address module, uint64 slot)`.
    ReadU64 {
        /// The module's synthetic identity.
        module: Address,
        /// The slot.
        slot: u64,
    },
    /// `moduleAddress(string name, uint32 version)`.
    ModuleAddress {
        /// The module name.
        name: ModuleName,
        /// The version.
        version: u32,
    },
}

/// Why a call was refused; each is reverted with the custom error of the same name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// `UnknownSelector(bytes4)`: the first four bytes name no function of the precompile.
    #[error("unknown selector 0x{}", evm_binding::revm::primitives::hex::encode(.0))]
    UnknownSelector([u8; 4]),
    /// `MalformedCalldata()`: too short, too long, or not canonically encoded.
    #[error("malformed calldata")]
    MalformedCalldata,
    /// `ValueNotAccepted()`: the call carried ether.
    #[error("the precompile does not accept value")]
    ValueNotAccepted,
    /// `InvalidModuleName()`: the name is not 1-64 bytes of `[a-z0-9_-]`.
    #[error("invalid module name")]
    InvalidModuleName,
    /// `SlotNotU64(address,uint64)`: the slot holds a value that is not a u64.
    #[error("slot {slot} of {module} does not hold a u64")]
    SlotNotU64 {
        /// The module.
        module: Address,
        /// The slot.
        slot: u64,
    },
}

impl CallError {
    /// The Solidity signature of this error.
    pub fn signature(&self) -> &'static str {
        match self {
            Self::UnknownSelector(_) => "UnknownSelector(bytes4)",
            Self::MalformedCalldata => "MalformedCalldata()",
            Self::ValueNotAccepted => "ValueNotAccepted()",
            Self::InvalidModuleName => "InvalidModuleName()",
            Self::SlotNotU64 { .. } => "SlotNotU64(address,uint64)",
        }
    }

    /// The selector of this error: the first four bytes of keccak256 of [`Self::signature`].
    pub const fn selector(&self) -> [u8; 4] {
        match self {
            Self::UnknownSelector(_) => [0xc2, 0xa8, 0x25, 0xf5],
            Self::MalformedCalldata => [0x59, 0x17, 0x0b, 0xf0],
            Self::ValueNotAccepted => [0x0d, 0x7b, 0x65, 0xad],
            Self::InvalidModuleName => [0x65, 0xfb, 0x67, 0xe4],
            Self::SlotNotU64 { .. } => [0x96, 0x34, 0x9f, 0x03],
        }
    }

    /// The revert data: the error's selector and its ABI-encoded arguments.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(4 + 64);
        out.extend_from_slice(&self.selector());
        match self {
            Self::UnknownSelector(found) => {
                let mut word = [0u8; 32];
                word[..4].copy_from_slice(found);
                out.extend_from_slice(&word);
            }
            Self::SlotNotU64 { module, slot } => {
                out.extend_from_slice(&word(*module).to_be_bytes::<32>());
                out.extend_from_slice(&u64_word(*slot));
            }
            Self::MalformedCalldata | Self::ValueNotAccepted | Self::InvalidModuleName => {}
        }
        out.into()
    }
}

/// A u64 as an ABI word.
pub fn u64_word(value: u64) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[24..].copy_from_slice(&value.to_be_bytes());
    word
}

fn argument(data: &[u8], index: usize) -> Result<&[u8], CallError> {
    data.get(index * 32..index * 32 + 32).ok_or(CallError::MalformedCalldata)
}

fn zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&byte| byte == 0)
}

fn decode_uint(word: &[u8], bytes: usize) -> Result<&[u8], CallError> {
    let (padding, value) = word.split_at(32 - bytes);
    if zero(padding) { Ok(value) } else { Err(CallError::MalformedCalldata) }
}

/// Decodes calldata strictly. A canonically encoded name that is not a module name (of any
/// length, empty included) is [`CallError::InvalidModuleName`]; a length that does not match the
/// bytes that follow is [`CallError::MalformedCalldata`].
pub fn decode(input: &[u8]) -> Result<Call, CallError> {
    let (found, arguments) = input.split_at_checked(4).ok_or(CallError::MalformedCalldata)?;
    let found: [u8; 4] = found.try_into().map_err(|_| CallError::MalformedCalldata)?;
    if found == READ_U64_SELECTOR {
        if arguments.len() != 64 {
            return Err(CallError::MalformedCalldata);
        }
        let module = Address::from_slice(decode_uint(argument(arguments, 0)?, 20)?);
        let slot = u64::from_be_bytes(
            decode_uint(argument(arguments, 1)?, 8)?.try_into().map_err(|_| CallError::MalformedCalldata)?,
        );
        return Ok(Call::ReadU64 { module, slot });
    }
    if found == MODULE_ADDRESS_SELECTOR {
        // Head: offset of the string (always 0x40), the version; tail: length, padded bytes.
        let offset = argument(arguments, 0)?;
        if decode_uint(offset, 1)? != [0x40] {
            return Err(CallError::MalformedCalldata);
        }
        let version = u32::from_be_bytes(
            decode_uint(argument(arguments, 1)?, 4)?.try_into().map_err(|_| CallError::MalformedCalldata)?,
        );
        // A length beyond 64 bits could never be followed by its bytes.
        let length = u64::from_be_bytes(
            decode_uint(argument(arguments, 2)?, 8)?.try_into().map_err(|_| CallError::MalformedCalldata)?,
        );
        let length = usize::try_from(length).map_err(|_| CallError::MalformedCalldata)?;
        let padded = length.div_ceil(32).checked_mul(32).ok_or(CallError::MalformedCalldata)?;
        if Some(arguments.len()) != padded.checked_add(96) {
            return Err(CallError::MalformedCalldata);
        }
        let tail = arguments.get(96..).ok_or(CallError::MalformedCalldata)?;
        let (name, padding) = tail.split_at_checked(length).ok_or(CallError::MalformedCalldata)?;
        if !zero(padding) {
            return Err(CallError::MalformedCalldata);
        }
        let name = std::str::from_utf8(name).map_err(|_| CallError::InvalidModuleName)?;
        let name = ModuleName::new(name).map_err(|_| CallError::InvalidModuleName)?;
        return Ok(Call::ModuleAddress { name, version });
    }
    Err(CallError::UnknownSelector(found))
}

/// Calldata for `readU64(module, slot)`.
pub fn encode_read_u64(module: Address, slot: u64) -> Vec<u8> {
    let mut out = READ_U64_SELECTOR.to_vec();
    out.extend_from_slice(&word(module).to_be_bytes::<32>());
    out.extend_from_slice(&u64_word(slot));
    out
}

/// Calldata for `moduleAddress(name, version)`.
pub fn encode_module_address(name: &str, version: u32) -> Vec<u8> {
    let mut out = MODULE_ADDRESS_SELECTOR.to_vec();
    out.extend_from_slice(&u64_word(0x40));
    out.extend_from_slice(&u64_word(u64::from(version)));
    out.extend_from_slice(&u64_word(name.len() as u64));
    let mut tail = name.as_bytes().to_vec();
    tail.resize(name.len().div_ceil(32) * 32, 0);
    out.extend_from_slice(&tail);
    out
}
