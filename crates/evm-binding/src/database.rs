//! revm's `Database`, `DatabaseRef` and `DatabaseCommit` over the shared substrate.
//!
//! Reads translate revm's questions into kv-core keys (`0x02 | address | 0x00` for the account
//! record, `0x02 | address | 0x01 | slot` for storage, the runtime's code blobs by hash). Commits
//! apply what revm hands over exactly as Ethereum does: untouched accounts are ignored, a
//! self-destructed account loses its record and all its storage, a created account starts from
//! empty storage, a touched empty account is deleted (EIP-161; revm's journal already keeps empty
//! accounts alive before Spurious Dragon), and zero storage words are deletions.

use kv_core::key::code_key;
use kv_core::{AccountRecord, Namespace, Overlay, RecordError, StateError};
use revm::bytecode::Bytecode;
use revm::database_interface::DBErrorMarker;
use revm::primitives::{Address, AddressMap, B256, KECCAK_EMPTY, U256, keccak256};
use revm::state::{Account, AccountInfo};
use revm::{Database, DatabaseCommit, DatabaseRef};

/// Why the EVM's view of the store failed. Surfaced by revm as `EVMError::Database`.
#[derive(Debug, thiserror::Error)]
pub enum EvmDbError {
    /// The substrate failed (a backend error, or a write it refused).
    #[error(transparent)]
    State(#[from] StateError),
    /// An account record is damaged: never read as a zeroed account.
    #[error("corrupt account record of {address}: {error}")]
    CorruptAccount {
        /// The account.
        address: Address,
        /// What is wrong.
        error: RecordError,
    },
    /// An account refers to code that is not in the store.
    #[error("code {0} is referenced by an account but missing from the store")]
    MissingCode(B256),
    /// A storage word has the wrong length.
    #[error("corrupt storage word of {address}: {len} bytes")]
    CorruptWord {
        /// The account.
        address: Address,
        /// Bytes found.
        len: usize,
    },
}

impl DBErrorMarker for EvmDbError {}

/// The EVM's read-only view of the store: an overlay's current state.
#[derive(Clone, Copy)]
pub struct EvmView<'a> {
    overlay: &'a Overlay,
}

impl<'a> EvmView<'a> {
    /// A view of `overlay`.
    pub fn new(overlay: &'a Overlay) -> Self {
        Self { overlay }
    }
}

/// The account record of `address`, if it exists.
pub fn account(overlay: &Overlay, address: Address) -> Result<Option<AccountRecord>, EvmDbError> {
    let Some(bytes) = overlay.get(&Namespace::evm(address).record_key())? else {
        return Ok(None);
    };
    AccountRecord::decode(&bytes)
        .map(Some)
        .map_err(|error| EvmDbError::CorruptAccount { address, error })
}

/// The storage word `slot` of `address` (zero when absent). Allocates nothing.
pub fn storage_word(overlay: &Overlay, address: Address, slot: U256) -> Result<U256, EvmDbError> {
    let key = Namespace::evm(address).word_key(&slot.to_be_bytes::<32>());
    let mut word = Ok(U256::ZERO);
    overlay.read(&key, &mut |bytes| {
        word = if bytes.len() == 32 {
            Ok(U256::from_be_slice(bytes))
        } else {
            Err(EvmDbError::CorruptWord {
                address,
                len: bytes.len(),
            })
        };
    })?;
    word
}

/// The code whose keccak256 is `hash`.
pub fn code(overlay: &Overlay, hash: B256) -> Result<Bytecode, EvmDbError> {
    if hash == KECCAK_EMPTY || hash == B256::ZERO {
        return Ok(Bytecode::default());
    }
    let raw = overlay
        .get(&code_key(&hash))?
        .ok_or(EvmDbError::MissingCode(hash))?;
    let raw = revm::primitives::Bytes::from(raw);
    // EIP-7702 delegation designators must come back as such; anything else is legacy code.
    Ok(Bytecode::new_raw_checked(raw.clone()).unwrap_or_else(|_| Bytecode::new_legacy(raw)))
}

/// The hash of block `number`: keccak256 of its decimal representation. The store keeps no block
/// headers; this is the convention of revm's `EmptyDB` and of Ethereum's state tests, which the
/// runtime follows until it tracks real block hashes.
pub fn block_hash(number: u64) -> B256 {
    keccak256(number.to_string().as_bytes())
}

fn account_info(record: AccountRecord) -> AccountInfo {
    AccountInfo {
        balance: record.balance,
        nonce: record.nonce,
        code_hash: record.code_hash,
        code: None,
        ..Default::default()
    }
}

impl DatabaseRef for EvmView<'_> {
    type Error = EvmDbError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, EvmDbError> {
        Ok(account(self.overlay, address)?.map(account_info))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, EvmDbError> {
        code(self.overlay, code_hash)
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, EvmDbError> {
        storage_word(self.overlay, address, index)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, EvmDbError> {
        Ok(block_hash(number))
    }
}

/// The EVM's read-write view of the store, for one transaction at a time.
pub struct EvmDatabase<'a> {
    overlay: &'a mut Overlay,
    failure: Option<EvmDbError>,
}

impl<'a> EvmDatabase<'a> {
    /// A database over `overlay`.
    pub fn new(overlay: &'a mut Overlay) -> Self {
        Self {
            overlay,
            failure: None,
        }
    }

    /// The overlay underneath, read-only (for stateful precompiles that read other engines).
    pub fn overlay(&self) -> &Overlay {
        self.overlay
    }

    /// The error a [`DatabaseCommit::commit`] ran into, if any (that trait cannot return one).
    pub fn take_failure(&mut self) -> Option<EvmDbError> {
        self.failure.take()
    }

    /// Applies a transaction's state changes with Ethereum's rules; see the module docs.
    pub fn apply(&mut self, changes: AddressMap<Account>) -> Result<(), EvmDbError> {
        // Apply in address order so that the overlay's journal is deterministic.
        let mut changes: Vec<(Address, Account)> = changes.into_iter().collect();
        changes.sort_unstable_by_key(|(address, _)| *address);
        for (address, account) in changes {
            apply_account(self.overlay, address, account)?;
        }
        Ok(())
    }
}

fn apply_account(
    overlay: &mut Overlay,
    address: Address,
    account: Account,
) -> Result<(), EvmDbError> {
    if !account.is_touched() {
        return Ok(());
    }
    let namespace = Namespace::evm(address);
    if account.is_selfdestructed() {
        overlay.wipe(&namespace);
        return Ok(());
    }
    if account.is_created() {
        // A created account starts from empty storage, whatever an earlier incarnation left,
        // and exists even when empty (revm marks empty accounts it must keep as created).
        overlay.wipe(&namespace);
    } else if account.is_empty() {
        overlay.wipe(&namespace);
        return Ok(());
    }
    let info = &account.info;
    let code_hash = if info.code_hash == B256::ZERO {
        KECCAK_EMPTY
    } else {
        info.code_hash
    };
    if code_hash != KECCAK_EMPTY
        && let Some(bytecode) = &info.code
    {
        let key = code_key(&code_hash);
        if overlay.get(&key)?.is_none() {
            overlay.set(&key, bytecode.original_byte_slice())?;
        }
    }
    let record = AccountRecord {
        nonce: info.nonce,
        balance: info.balance,
        code_hash,
    };
    overlay.set(&namespace.record_key(), &record.encode())?;
    for (slot, value) in account
        .storage
        .iter()
        .filter(|(_, value)| value.is_changed() || account.is_created())
    {
        let key = namespace.word_key(&slot.to_be_bytes::<32>());
        let present = value.present_value();
        if present.is_zero() {
            overlay.remove(&key)?;
        } else {
            overlay.set(&key, &present.to_be_bytes::<32>())?;
        }
    }
    Ok(())
}

impl Database for EvmDatabase<'_> {
    type Error = EvmDbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, EvmDbError> {
        EvmView::new(self.overlay).basic_ref(address)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, EvmDbError> {
        code(self.overlay, code_hash)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, EvmDbError> {
        storage_word(self.overlay, address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, EvmDbError> {
        Ok(block_hash(number))
    }
}

impl DatabaseCommit for EvmDatabase<'_> {
    /// Applies the changes; an error is kept for [`EvmDatabase::take_failure`], since this trait
    /// cannot return one. The runtime uses [`EvmDatabase::apply`] instead.
    fn commit(&mut self, changes: AddressMap<Account>) {
        if let Err(error) = self.apply(changes)
            && self.failure.is_none()
        {
            self.failure = Some(error);
        }
    }
}

/// An account for a genesis or a test's pre-state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenesisAccount {
    /// The nonce.
    pub nonce: u64,
    /// The balance.
    pub balance: U256,
    /// The code (empty for an externally owned account).
    pub code: Vec<u8>,
    /// Storage words; zero words are skipped.
    pub storage: Vec<(U256, U256)>,
}

/// Writes `account` at `address`: record, code blob and storage.
pub fn insert_account(
    overlay: &mut Overlay,
    address: Address,
    account: &GenesisAccount,
) -> Result<(), EvmDbError> {
    let namespace = Namespace::evm(address);
    let code_hash = if account.code.is_empty() {
        KECCAK_EMPTY
    } else {
        keccak256(&account.code)
    };
    if code_hash != KECCAK_EMPTY {
        let key = code_key(&code_hash);
        if overlay.get(&key)?.is_none() {
            overlay.set(&key, &account.code)?;
        }
    }
    let record = AccountRecord {
        nonce: account.nonce,
        balance: account.balance,
        code_hash,
    };
    overlay.set(&namespace.record_key(), &record.encode())?;
    for (slot, value) in &account.storage {
        if !value.is_zero() {
            overlay.set(
                &namespace.word_key(&slot.to_be_bytes::<32>()),
                &value.to_be_bytes::<32>(),
            )?;
        }
    }
    Ok(())
}
