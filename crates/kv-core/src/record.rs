//! The value layouts of the two per-namespace records: a WASM module record and an EVM account
//! record.
//!
//! The store itself never interprets values; these codecs exist so that both bindings, the spec
//! and its golden vectors agree on one byte layout. Decoding is strict and returns a
//! [`RecordError`] for any length or field that does not match, so a corrupt record is never
//! read as a zeroed or default one.

use crate::key::{KeyError, ModuleName};
use alloy_primitives::{B256, U256};

/// Format byte that starts a module record.
pub const MODULE_RECORD_FORMAT: u8 = 0x01;
/// Length of an EVM account record.
pub const ACCOUNT_RECORD_LEN: usize = 8 + 32 + 32;

/// A WASM module's record, stored at `0x01 | id | 0x00`.
///
/// Layout: `0x01 | code hash (32) | version (u32 BE) | name length (u8) | name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleRecord {
    /// keccak256 of the module's WASM bytes; the bytes live in the code-blob namespace.
    pub code_hash: B256,
    /// The module's name.
    pub name: ModuleName,
    /// The module's version.
    pub version: u32,
}

impl ModuleRecord {
    /// Encodes the record.
    pub fn encode(&self) -> Vec<u8> {
        let name = self.name.as_str().as_bytes();
        let mut out = Vec::with_capacity(1 + 32 + 4 + 1 + name.len());
        out.push(MODULE_RECORD_FORMAT);
        out.extend_from_slice(self.code_hash.as_slice());
        out.extend_from_slice(&self.version.to_be_bytes());
        // A validated name is at most 64 bytes.
        out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(name);
        out
    }

    /// Decodes a record, rejecting any other length, format byte or an invalid name.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        const FIXED: usize = 1 + 32 + 4 + 1;
        if bytes.len() < FIXED {
            return Err(RecordError::Length { record: "module", len: bytes.len() });
        }
        if bytes[0] != MODULE_RECORD_FORMAT {
            return Err(RecordError::Format(bytes[0]));
        }
        let code_hash = B256::from_slice(&bytes[1..33]);
        let version = u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
        let name_len = usize::from(bytes[37]);
        let name_bytes = &bytes[FIXED..];
        if name_bytes.len() != name_len {
            return Err(RecordError::Length { record: "module", len: bytes.len() });
        }
        let name = ModuleName::from_bytes(name_bytes).map_err(RecordError::Name)?;
        Ok(Self { code_hash, name, version })
    }
}

/// An EVM account's record, stored at `0x02 | address | 0x00`.
///
/// Layout: `nonce (u64 BE) | balance (32 bytes BE) | code hash (32)`, always 72 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    /// The account nonce.
    pub nonce: u64,
    /// The balance in wei.
    pub balance: U256,
    /// keccak256 of the account's code (keccak256 of nothing for accounts without code).
    pub code_hash: B256,
}

impl AccountRecord {
    /// Encodes the record.
    pub fn encode(&self) -> [u8; ACCOUNT_RECORD_LEN] {
        let mut out = [0u8; ACCOUNT_RECORD_LEN];
        out[..8].copy_from_slice(&self.nonce.to_be_bytes());
        out[8..40].copy_from_slice(&self.balance.to_be_bytes::<32>());
        out[40..].copy_from_slice(self.code_hash.as_slice());
        out
    }

    /// Decodes a record; any length other than 72 bytes is an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let bytes: &[u8; ACCOUNT_RECORD_LEN] =
            bytes.try_into().map_err(|_| RecordError::Length { record: "account", len: bytes.len() })?;
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&bytes[..8]);
        Ok(Self {
            nonce: u64::from_be_bytes(nonce),
            balance: U256::from_be_slice(&bytes[8..40]),
            code_hash: B256::from_slice(&bytes[40..]),
        })
    }
}

/// Why a stored record could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record has the wrong length for its layout.
    #[error("corrupt {record} record: {len} bytes do not match the layout")]
    Length {
        /// Which record.
        record: &'static str,
        /// Bytes found.
        len: usize,
    },
    /// The module record's format byte is unknown.
    #[error("corrupt module record: unknown format byte 0x{0:02x}")]
    Format(u8),
    /// The module record's name is invalid.
    #[error("corrupt module record: {0}")]
    Name(KeyError),
}
