//! revm's `Database`, `DatabaseRef` and `DatabaseCommit` over the shared substrate.
//!
//! Reads translate revm's questions into kv-core keys (`0x02 | address | 0x00` for the account
//! record, `0x02 | address | 0x01 | slot` for storage, the runtime's code blobs by hash). Commits
//! apply what revm hands over exactly as Ethereum does: untouched accounts are ignored, a
//! self-destructed account loses its record and all its storage, a created account starts from
//! empty storage, a touched empty account is deleted (EIP-161; revm's journal already keeps empty
//! accounts alive before Spurious Dragon), and zero storage words are deletions.

use alloy_primitives::map::Entry;
use alloy_primitives::map::HashMap;
use kv_core::key::code_key;
use kv_core::{AccountRecord, Engine, KeyError, Namespace, Overlay, RecordError, StateError};
use parking_lot::RwLock;
use revm::bytecode::Bytecode;
use revm::database_interface::DBErrorMarker;
use revm::primitives::{Address, AddressMap, B256, KECCAK_EMPTY, U256, keccak256};
use revm::state::{Account, AccountInfo};
use revm::{Database, DatabaseCommit, DatabaseRef};
use std::sync::Arc;

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
    /// A key in the EVM namespace has none of the spec's layouts (kv-core refuses such keys on
    /// write, so only a damaged store holds one).
    #[error("corrupt key 0x{} in the EVM namespace: {error}", revm::primitives::hex::encode(key))]
    CorruptKey {
        /// The key as stored.
        key: Vec<u8>,
        /// Why it does not decode.
        error: KeyError,
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
    let mut record = Ok(None);
    overlay.read(&Namespace::evm(address).record_key(), &mut |bytes| {
        record = AccountRecord::decode(bytes).map(Some).map_err(|error| EvmDbError::CorruptAccount { address, error });
    })?;
    record
}

/// The storage word `slot` of `address` (zero when absent). Allocates nothing.
pub fn storage_word(overlay: &Overlay, address: Address, slot: U256) -> Result<U256, EvmDbError> {
    let key = Namespace::evm(address).word_key(&slot.to_be_bytes::<32>());
    let mut word = Ok(U256::ZERO);
    overlay.read(&key, &mut |bytes| {
        word = if bytes.len() == 32 {
            Ok(U256::from_be_slice(bytes))
        } else {
            Err(EvmDbError::CorruptWord { address, len: bytes.len() })
        };
    })?;
    word
}

/// The code whose keccak256 is `hash`.
pub fn code(overlay: &Overlay, hash: B256) -> Result<Bytecode, EvmDbError> {
    if hash == KECCAK_EMPTY || hash == B256::ZERO {
        return Ok(Bytecode::default());
    }
    let raw = overlay.get(&code_key(&hash))?.ok_or(EvmDbError::MissingCode(hash))?;
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

/// Analysed bytecode by code hash. Code never changes under its hash, so entries never go stale;
/// analysing a contract's jump table is otherwise a large share of every call to it. Shared by
/// clones of an executor.
#[derive(Clone, Default)]
pub struct CodeCache {
    entries: Arc<RwLock<HashMap<B256, Bytecode>>>,
}

impl std::fmt::Debug for CodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CodeCache({} entries)", self.entries.read().len())
    }
}

impl CodeCache {
    /// Most entries kept; when full the cache starts over, which costs one analysis per contract.
    pub const CAPACITY: usize = 4_096;

    /// The code of `hash`, from the cache or the store.
    pub fn code(&self, overlay: &Overlay, hash: B256) -> Result<Bytecode, EvmDbError> {
        if let Some(bytecode) = self.entries.read().get(&hash) {
            // The block still ran this code: a recording overlay (a block's witness) must see it.
            if hash != KECCAK_EMPTY && hash != B256::ZERO {
                overlay.note_read(&code_key(&hash));
            }
            return Ok(bytecode.clone());
        }
        let bytecode = code(overlay, hash)?;
        let mut entries = self.entries.write();
        if entries.len() >= Self::CAPACITY {
            entries.clear();
        }
        entries.insert(hash, bytecode.clone());
        Ok(bytecode)
    }
}

/// The EVM's read-write view of the store, for one transaction at a time.
pub struct EvmDatabase<'a> {
    overlay: &'a mut Overlay,
    codes: CodeCache,
    /// Decoded reads of this session, kept in step with every write `apply` makes (and cleared
    /// when an apply is undone). Only this database writes the EVM namespace while it exists:
    /// the overlay is handed out mutably only for writes outside it.
    accounts: HashMap<Address, Option<AccountRecord>>,
    words: HashMap<(Address, U256), U256>,
    failure: Option<EvmDbError>,
    block_hashes: Option<BlockHashes>,
}

/// Where `BLOCKHASH` finds the hashes of past blocks: a chain that keeps headers answers with the
/// real hash of block `number` (revm asks only for the 256 blocks before the current one), or
/// `None` for a block it does not know, which `BLOCKHASH` sees as zero. Without one, a database
/// answers with the state-test convention of [`block_hash`].
pub type BlockHashes = Arc<dyn Fn(u64) -> Option<B256> + Send + Sync>;

impl<'a> EvmDatabase<'a> {
    /// A database over `overlay` sharing `codes`.
    pub fn with_code_cache(overlay: &'a mut Overlay, codes: CodeCache) -> Self {
        Self {
            overlay,
            codes,
            accounts: HashMap::default(),
            words: HashMap::default(),
            failure: None,
            block_hashes: None,
        }
    }

    /// This database with `BLOCKHASH` answered by `hashes` instead of the state-test convention.
    pub fn with_block_hashes(mut self, hashes: BlockHashes) -> Self {
        self.block_hashes = Some(hashes);
        self
    }

    /// The overlay underneath, read-only (for stateful precompiles that read other engines).
    pub fn overlay(&self) -> &Overlay {
        self.overlay
    }

    /// Runs `f` on the overlay underneath, for the other engine's deploys and calls between EVM
    /// transactions. The decoded accounts and words stay cached across it when `f` changed
    /// nothing of the EVM namespace ([`Overlay::changes`]), which is the case for WASM, so the
    /// next transaction starts warm; they are dropped when it did. Crate-private so that a
    /// precompile, which reaches this database through revm's context, cannot write at all.
    pub(crate) fn with_overlay<R>(&mut self, f: impl FnOnce(&mut Overlay) -> R) -> R {
        let before = self.overlay.changes(Engine::Evm);
        let result = f(self.overlay);
        if self.overlay.changes(Engine::Evm) != before {
            self.accounts.clear();
            self.words.clear();
        }
        result
    }

    /// The error a [`DatabaseCommit::commit`] ran into, if any (that trait cannot return one).
    pub fn take_failure(&mut self) -> Option<EvmDbError> {
        self.failure.take()
    }

    /// Records a failure of the store met outside revm's own database calls (a stateful
    /// precompile's read). The session reports it as [`crate::EvmError::Database`] instead of the
    /// precompile's own error, so the caller treats it as the node's failure.
    pub fn record_failure(&mut self, error: EvmDbError) {
        if self.failure.is_none() {
            self.failure = Some(error);
        }
    }

    /// Applies a transaction's state changes with Ethereum's rules (see the module docs), all or
    /// nothing: when the store fails partway, every write of this call is undone and the
    /// decoded-read caches, which followed those writes, are dropped.
    pub fn apply(&mut self, changes: AddressMap<Account>) -> Result<(), EvmDbError> {
        let checkpoint = self.overlay.checkpoint();
        // The order does not matter: each account touches only its own keys.
        let applied = changes.into_iter().try_for_each(|(address, account)| self.apply_account(address, account));
        match applied {
            Ok(()) => Ok(self.overlay.release(checkpoint)?),
            Err(error) => {
                self.accounts.clear();
                self.words.clear();
                self.overlay.revert(checkpoint)?;
                Err(error)
            }
        }
    }
}

impl EvmDatabase<'_> {
    fn apply_account(&mut self, address: Address, account: Account) -> Result<(), EvmDbError> {
        let overlay = &mut *self.overlay;
        if !account.is_touched() {
            return Ok(());
        }
        let namespace = Namespace::evm(address);
        // An account that did not exist when the transaction loaded it has nothing in the store to
        // delete (no record, hence no storage), so it needs no wipe.
        let existed = !account.is_loaded_as_not_existing();
        if account.is_selfdestructed() || (account.is_empty() && !account.is_created()) {
            if existed {
                overlay.wipe(&namespace)?;
                self.words.retain(|(owner, _), _| *owner != address);
            }
            self.accounts.insert(address, None);
            return Ok(());
        }
        if account.is_created() && existed {
            // A created account starts from empty storage, whatever an earlier incarnation left,
            // and exists even when empty (revm marks empty accounts it must keep as created).
            overlay.wipe(&namespace)?;
            self.words.retain(|(owner, _), _| *owner != address);
        }
        let info = &account.info;
        let code_hash = if info.code_hash == B256::ZERO { KECCAK_EMPTY } else { info.code_hash };
        // revm hands over the code of every contract it loaded, but only a created account or a
        // new code hash (an EIP-7702 delegation) can bring code the store may not hold yet. For
        // an account missing from the cache the blob is written again, which changes nothing.
        let known_code = matches!(self.accounts.get(&address), Some(Some(record)) if record.code_hash == code_hash);
        if code_hash != KECCAK_EMPTY
            && (account.is_created() || !known_code)
            && let Some(bytecode) = &info.code
        {
            // Written without asking whether the blob exists: blobs are content-addressed, so a
            // rewrite changes nothing, and a read would make a block's witness carry the code the
            // block itself deploys (a verifier cannot prove a blob absent; docs/spec/witness.md).
            overlay.set(&code_key(&code_hash), bytecode.original_byte_slice())?;
        }
        let record = AccountRecord { nonce: info.nonce, balance: info.balance, code_hash };
        // A touched account whose record did not change (a contract whose storage changed) keeps
        // its record as it is.
        let unchanged = !account.is_created() && self.accounts.get(&address) == Some(&Some(record));
        if !unchanged {
            overlay.set(&namespace.record_key(), &record.encode())?;
            self.accounts.insert(address, Some(record));
        }
        for (slot, value) in account.storage.iter().filter(|(_, value)| value.is_changed() || account.is_created()) {
            let key = namespace.word_key(&slot.to_be_bytes::<32>());
            let present = value.present_value();
            if present.is_zero() {
                overlay.remove(&key)?;
            } else {
                overlay.set(&key, &present.to_be_bytes::<32>())?;
            }
            self.words.insert((address, *slot), present);
        }
        Ok(())
    }
}

impl Database for EvmDatabase<'_> {
    type Error = EvmDbError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, EvmDbError> {
        let record = match self.accounts.entry(address) {
            Entry::Occupied(entry) => *entry.get(),
            Entry::Vacant(entry) => *entry.insert(account(self.overlay, address)?),
        };
        Ok(record.map(account_info))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, EvmDbError> {
        self.codes.code(self.overlay, code_hash)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, EvmDbError> {
        match self.words.entry((address, index)) {
            Entry::Occupied(entry) => Ok(*entry.get()),
            Entry::Vacant(entry) => Ok(*entry.insert(storage_word(self.overlay, address, index)?)),
        }
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, EvmDbError> {
        Ok(match &self.block_hashes {
            Some(hashes) => hashes(number).unwrap_or_default(),
            None => block_hash(number),
        })
    }
}

impl DatabaseCommit for EvmDatabase<'_> {
    /// Applies the changes, all or nothing; an error is kept for [`EvmDatabase::take_failure`],
    /// since this trait cannot return one. The runtime uses [`EvmDatabase::apply`] instead.
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
pub fn insert_account(overlay: &mut Overlay, address: Address, account: &GenesisAccount) -> Result<(), EvmDbError> {
    let namespace = Namespace::evm(address);
    let code_hash = if account.code.is_empty() { KECCAK_EMPTY } else { keccak256(&account.code) };
    if code_hash != KECCAK_EMPTY {
        let key = code_key(&code_hash);
        if !overlay.read(&key, &mut |_| {})? {
            overlay.set(&key, &account.code)?;
        }
    }
    let record = AccountRecord { nonce: account.nonce, balance: account.balance, code_hash };
    overlay.set(&namespace.record_key(), &record.encode())?;
    for (slot, value) in &account.storage {
        if !value.is_zero() {
            overlay.set(&namespace.word_key(&slot.to_be_bytes::<32>()), &value.to_be_bytes::<32>())?;
        }
    }
    Ok(())
}
