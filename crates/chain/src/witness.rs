//! Stateless blocks: the witness of a block (everything both engines read, in reth's
//! `ExecutionWitness` shape plus the headers `BLOCKHASH` reached) and the verifier that
//! re-executes a block from its witness alone, with no store.
//!
//! [`Runtime::witness`] reads back the witness a block recorded while it executed (ADR 0016), or
//! re-executes a block recorded without one over a recording view of its parent state (kv-core's
//! [`StateView`], [`Runtime::reexecuted_witness`]); [`verify_block`] runs the same block execution over a view that a
//! witness backs, and checks the resulting state root, receipts root, gas used and every other
//! header field against the block's header. The file formats are in `docs/spec/witness.md`.

use crate::receipt::Kind;
use crate::runtime::{BlockInput, Engines, ExecutedBlock, Runtime, RuntimeError};
use crate::signed::recover_all;
use alloy_consensus::Header;
use alloy_primitives::{B256, Bytes, hex, keccak256};
use evm_binding::BlockHashes;
use kv_core::{Identity, ModuleRecord, Namespace, StateView, StoreError, Witness, WitnessError};
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// How many past block hashes `BLOCKHASH` can see.
const BLOCKHASH_WINDOW: u64 = 256;

/// A block's witness: reth's `ExecutionWitness` (`state`, `codes`, `keys`, `headers`), where
/// `codes` holds WASM modules beside EVM code and `keys` the encoded state keys of both engines
/// (spec `docs/spec/witness.md`). `headers` are RLP headers, oldest first, ending with the
/// block's parent: every header from the oldest block whose hash `BLOCKHASH` reached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockWitness {
    /// Trie nodes, RLP, sorted by keccak256.
    pub state: Vec<Bytes>,
    /// Code blobs, sorted by keccak256.
    pub codes: Vec<Bytes>,
    /// Encoded state keys, sorted.
    pub keys: Vec<Bytes>,
    /// RLP headers, oldest first; the last is the block's parent.
    pub headers: Vec<Bytes>,
}

/// A block as the verifier takes it: its chain, header and transactions (EIP-2718 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatelessBlock {
    /// The chain id the transactions are signed for.
    pub chain_id: u64,
    /// The header, as the producer sealed it.
    pub header: Header,
    /// The transactions in block order.
    pub transactions: Vec<Bytes>,
}

/// Why a witness or block file does not parse.
#[derive(Debug, thiserror::Error)]
pub enum WitnessFileError {
    /// Not JSON.
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A field is missing or of the wrong shape.
    #[error("field `{field}`: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn hex_list(value: &serde_json::Value, field: &'static str) -> Result<Vec<Bytes>, WitnessFileError> {
    let bad = |reason: String| WitnessFileError::Field { field, reason };
    let list =
        value.get(field).and_then(serde_json::Value::as_array).ok_or_else(|| bad("missing or not a list".into()))?;
    list.iter()
        .enumerate()
        .map(|(index, item)| {
            let text = item.as_str().ok_or_else(|| bad(format!("entry {index} is not a string")))?;
            let text = text.strip_prefix("0x").ok_or_else(|| bad(format!("entry {index} lacks the 0x prefix")))?;
            hex::decode(text).map(Bytes::from).map_err(|error| bad(format!("entry {index}: {error}")))
        })
        .collect()
}

fn hex_strings(list: &[Bytes]) -> serde_json::Value {
    serde_json::Value::Array(list.iter().map(|bytes| serde_json::Value::String(bytes.to_string())).collect())
}

impl BlockWitness {
    /// The JSON form: `{"state": [...], "codes": [...], "keys": [...], "headers": [...]}`, each a
    /// list of `0x`-prefixed lowercase hex strings (reth's `ExecutionWitness` serialization).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "state": hex_strings(&self.state),
            "codes": hex_strings(&self.codes),
            "keys": hex_strings(&self.keys),
            "headers": hex_strings(&self.headers),
        })
    }

    /// Parses the JSON form.
    pub fn from_json(text: &str) -> Result<Self, WitnessFileError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        Ok(Self {
            state: hex_list(&value, "state")?,
            codes: hex_list(&value, "codes")?,
            keys: hex_list(&value, "keys")?,
            headers: hex_list(&value, "headers")?,
        })
    }

    /// The state part, as kv-core takes it.
    pub fn state_witness(&self) -> Witness {
        Witness { state: self.state.clone(), codes: self.codes.clone(), keys: self.keys.clone() }
    }

    /// The number of bytes the four lists hold.
    pub fn byte_len(&self) -> usize {
        self.state_witness().byte_len() + self.headers.iter().map(|header| header.len()).sum::<usize>()
    }
}

impl StatelessBlock {
    /// The JSON form: `{"chainId": "0x..", "header": "0x<RLP>", "transactions": ["0x<2718>", ...]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "chainId": format!("{:#x}", self.chain_id),
            "header": Bytes::from(alloy_rlp::encode(&self.header)).to_string(),
            "transactions": hex_strings(&self.transactions),
        })
    }

    /// Parses the JSON form.
    pub fn from_json(text: &str) -> Result<Self, WitnessFileError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let field = |field: &'static str| {
            value
                .get(field)
                .and_then(serde_json::Value::as_str)
                .ok_or(WitnessFileError::Field { field, reason: "missing or not a string".into() })
        };
        let chain_id = field("chainId")?;
        let chain_id = u64::from_str_radix(chain_id.trim_start_matches("0x"), 16)
            .map_err(|error| WitnessFileError::Field { field: "chainId", reason: error.to_string() })?;
        let bad_header = |reason: String| WitnessFileError::Field { field: "header", reason };
        let header = hex::decode(field("header")?).map_err(|error| bad_header(error.to_string()))?;
        let header = alloy_rlp::decode_exact(&header).map_err(|error| bad_header(error.to_string()))?;
        Ok(Self { chain_id, header, transactions: hex_list(&value, "transactions")? })
    }
}

/// What [`verify_block`] established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedBlock {
    /// The block number.
    pub number: u64,
    /// The block hash, which the re-executed header reproduces.
    pub hash: B256,
    /// The state root after the block.
    pub state_root: B256,
    /// The receipts root.
    pub receipts_root: B256,
    /// The gas used.
    pub gas_used: u64,
    /// The number of transactions.
    pub transactions: usize,
}

/// Why a block does not verify against its witness. Each names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The state part of the witness is not a witness of the parent's state.
    #[error(transparent)]
    Witness(#[from] WitnessError),
    /// A witness header does not decode.
    #[error("witness header {index} is not an RLP header: {reason}")]
    Header {
        /// Its position in `headers`.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The witness holds no header of the block's parent.
    #[error("the witness holds no header of the block's parent {0}: it is the witness of another block")]
    NoParent(B256),
    /// A witness header is not on the block's chain of ancestors.
    #[error("witness header {index} (block {number}, {hash}) is not an ancestor of the block")]
    StrayHeader {
        /// Its position in `headers`.
        index: usize,
        /// Its number.
        number: u64,
        /// Its hash.
        hash: B256,
    },
    /// `BLOCKHASH` reached a block whose header the witness lacks.
    #[error("BLOCKHASH({0}) was executed but the witness holds no header of block {0}")]
    MissingBlockHash(u64),
    /// A transaction of the block does not decode, does not recover, or is not valid on the
    /// witnessed state.
    #[error("transaction {position} of the block is invalid: {reason}")]
    Transaction {
        /// Its position in the block.
        position: usize,
        /// Why.
        reason: String,
    },
    /// Re-executing the block failed: a read the witness does not prove, or a block-level error.
    #[error("re-executing the block failed: {0}")]
    Execution(#[from] RuntimeError),
    /// Computing the new root failed: a trie node the update needs is not in the witness.
    #[error("computing the state root failed: {0}")]
    Root(#[from] StoreError),
    /// A header field differs from what re-execution gives.
    #[error("the block's {field} is {header}, but re-executing it gives {computed}")]
    Mismatch {
        /// The field.
        field: &'static str,
        /// The header's value.
        header: String,
        /// The re-executed value.
        computed: String,
    },
}

/// The parent header, and the hashes `BLOCKHASH` may read, from a witness's `headers`: every
/// header must decode and lie on the chain of parents from the block back.
fn ancestors(block: &Header, headers: &[Bytes]) -> Result<(Header, HashMap<u64, B256>), VerifyError> {
    let mut decoded: HashMap<B256, (usize, Header)> = HashMap::new();
    for (index, rlp) in headers.iter().enumerate() {
        let header: Header = alloy_rlp::decode_exact(rlp.as_ref())
            .map_err(|error| VerifyError::Header { index, reason: error.to_string() })?;
        decoded.insert(keccak256(rlp), (index, header));
    }
    let parent = decoded
        .get(&block.parent_hash)
        .map(|(_, header)| header.clone())
        .ok_or(VerifyError::NoParent(block.parent_hash))?;
    let mut hashes = HashMap::new();
    let mut on_chain = BTreeSet::new();
    let mut next = Some(block.parent_hash);
    while let Some(hash) = next {
        let Some((index, header)) = decoded.get(&hash) else { break };
        // Each step back is one block older; a header claiming any other number ends the chain.
        if header.number.checked_add(1 + hashes.len() as u64) != Some(block.number) {
            break;
        }
        hashes.insert(header.number, hash);
        on_chain.insert(*index);
        next = (header.number > 0).then_some(header.parent_hash);
    }
    if let Some((index, header)) = decoded.values().find(|(index, _)| !on_chain.contains(index)) {
        return Err(VerifyError::StrayHeader {
            index: *index,
            number: header.number,
            hash: keccak256(&headers[*index]),
        });
    }
    Ok((parent, hashes))
}

/// Re-executes `block` over the state `witness` proves and checks the result against the
/// block's header: the witness's nodes must hash up to the parent's state root (from the parent
/// header in `headers`), every transaction must be valid and included, and the state root,
/// receipts root, gas used and the whole header (its hash) must be what re-execution gives. A
/// read the witness does not prove fails the verification; nothing is ever read as a default.
pub fn verify_block(block: &StatelessBlock, witness: &BlockWitness) -> Result<VerifiedBlock, VerifyError> {
    let header = &block.header;
    let (parent, hashes) = ancestors(header, &witness.headers)?;
    let state = witness.state_witness();
    let view = StateView::from_witness(&state, parent.state_root)?;
    let missing: Arc<Mutex<Option<u64>>> = Arc::new(Mutex::new(None));
    let block_hashes: BlockHashes = {
        let missing = Arc::clone(&missing);
        Arc::new(move |number| {
            // revm asks only for the 256 blocks before this one (older and newer ones are zero
            // by the EVM's own rule), so a number the witness lacks is a gap in the witness.
            let hash = hashes.get(&number).copied();
            if hash.is_none() {
                missing.lock().get_or_insert(number);
            }
            hash
        })
    };
    let mut transactions = Vec::with_capacity(block.transactions.len());
    for (position, recovered) in recover_all(&block.transactions, block.chain_id).into_iter().enumerate() {
        transactions
            .push(Ok(recovered.map_err(|reason| VerifyError::Transaction { position, reason: reason.to_string() })?));
    }
    let input = BlockInput {
        timestamp: header.timestamp,
        beneficiary: header.beneficiary,
        extra_data: header.extra_data.clone(),
        prevrandao: header.mix_hash,
        parent_beacon_block_root: header.parent_beacon_block_root.unwrap_or_default(),
    };
    let engines = Engines::new(block.chain_id);
    let mut overlay = view.overlay();
    let executed = engines.run_block(
        &mut overlay,
        &parent,
        header.parent_hash,
        header.gas_limit,
        &input,
        transactions,
        block_hashes,
        |_| {},
    )?;
    if let Some(number) = *missing.lock() {
        return Err(VerifyError::MissingBlockHash(number));
    }
    let ExecutedBlock { header: mut computed, included, rejected, .. } = executed;
    if let Some(rejection) = rejected.first() {
        return Err(VerifyError::Transaction { position: rejection.position, reason: rejection.reason.to_string() });
    }
    computed.state_root = view.root_after(&overlay)?;
    let mismatch = |field, header: String, computed: String| Err(VerifyError::Mismatch { field, header, computed });
    if computed.state_root != header.state_root {
        return mismatch("state root", header.state_root.to_string(), computed.state_root.to_string());
    }
    if computed.receipts_root != header.receipts_root {
        return mismatch("receipts root", header.receipts_root.to_string(), computed.receipts_root.to_string());
    }
    if computed.gas_used != header.gas_used {
        return mismatch("gas used", header.gas_used.to_string(), computed.gas_used.to_string());
    }
    if computed.transactions_root != header.transactions_root {
        return mismatch(
            "transactions root",
            header.transactions_root.to_string(),
            computed.transactions_root.to_string(),
        );
    }
    if computed.logs_bloom != header.logs_bloom {
        return mismatch("logs bloom", header.logs_bloom.to_string(), computed.logs_bloom.to_string());
    }
    let (hash, computed_hash) = (header.hash_slow(), computed.hash_slow());
    if hash != computed_hash {
        return mismatch("header (hash)", hash.to_string(), computed_hash.to_string());
    }
    // Last, once the header is known to be right: a blob the block never read was added or
    // swapped in (a swap of a blob the block does read already failed, naming the missing one).
    view.check_codes_used(&state)?;
    Ok(VerifiedBlock {
        number: header.number,
        hash,
        state_root: header.state_root,
        receipts_root: header.receipts_root,
        gas_used: header.gas_used,
        transactions: included.len(),
    })
}

/// A failure of the parent state's view, as the store's.
fn state_failure(error: kv_core::StateError) -> StoreError {
    match error {
        kv_core::StateError::Failed(kv_core::StateFailure::Backend(error)) => StoreError::Backend(error),
        other => StoreError::Corrupt(other.to_string()),
    }
}

impl Runtime {
    /// The witness of committed block `number` (not the genesis) and the block as the verifier
    /// takes it. A block executed with [`ChainConfig::record_witnesses`](crate::ChainConfig) on
    /// has its witness recorded while it ran, read back here with the headers from the oldest
    /// block `BLOCKHASH` reached up to the parent; any other block is re-executed over its
    /// parent state ([`Runtime::reexecuted_witness`]), which must still be retained.
    pub fn witness(&self, number: u64) -> Result<(StatelessBlock, BlockWitness), RuntimeError> {
        if number == 0 {
            return Err(RuntimeError::Block("the genesis block has no parent state to witness".into()));
        }
        let height = self.state_height(Some(number))?;
        let Some(recorded) = self.chain().witness(number)? else { return self.reexecuted_witness(number) };
        let stored = self.block(number)?.ok_or(RuntimeError::UnknownBlock { number, latest: height - 1 })?;
        let headers = self.header_range(recorded.oldest_header, number - 1)?;
        let state = recorded.state;
        Ok((
            self.stateless_block(stored),
            BlockWitness { state: state.state, codes: state.codes, keys: state.keys, headers },
        ))
    }

    /// The RLP headers of blocks `oldest..=newest`.
    fn header_range(&self, oldest: u64, newest: u64) -> Result<Vec<Bytes>, RuntimeError> {
        let chain = self.chain();
        let mut headers = Vec::new();
        for past in oldest..=newest {
            let header =
                chain.header(past)?.ok_or_else(|| StoreError::Corrupt(format!("block {past} has no header")))?;
            headers.push(Bytes::from(alloy_rlp::encode(&header)));
        }
        Ok(headers)
    }

    /// A committed block as the verifier takes it.
    fn stateless_block(&self, stored: crate::StoredBlock) -> StatelessBlock {
        StatelessBlock {
            chain_id: self.chain_id(),
            header: stored.header,
            transactions: stored.transactions.iter().map(|transaction| transaction.encoded()).collect(),
        }
    }

    /// The witness of committed block `number` (not the genesis) by re-executing it over a
    /// recording view of its parent state: the witness holds every trie node, code blob and key
    /// that execution and its root update read, and the headers from the oldest block
    /// `BLOCKHASH` reached up to the parent. The parent state must still be retained by the
    /// store (the latest 128 heights by default). It is the same witness the block recorded
    /// while it ran, when it did.
    pub fn reexecuted_witness(&self, number: u64) -> Result<(StatelessBlock, BlockWitness), RuntimeError> {
        if number == 0 {
            return Err(RuntimeError::Block("the genesis block has no parent state to witness".into()));
        }
        let height = self.state_height(Some(number))?;
        let stored = self.block(number)?.ok_or(RuntimeError::UnknownBlock { number, latest: height - 1 })?;
        let chain = self.chain();
        let parent_number = number - 1;
        let missing = |what: &str, at: u64| StoreError::Corrupt(format!("block {at} has no {what}"));
        let parent = chain.header(parent_number)?.ok_or_else(|| missing("header", parent_number))?;
        let mut recent = HashMap::new();
        for past in number.saturating_sub(BLOCKHASH_WINDOW)..number {
            recent.insert(past, chain.hash(past)?.ok_or_else(|| missing("hash record", past))?);
        }
        let reached: Arc<Mutex<BTreeSet<u64>>> = Arc::new(Mutex::new(BTreeSet::new()));
        let block_hashes: BlockHashes = {
            let reached = Arc::clone(&reached);
            Arc::new(move |asked| {
                let hash = recent.get(&asked).copied();
                if hash.is_some() {
                    reached.lock().insert(asked);
                }
                hash
            })
        };
        let view = self.store().view_at(height - 1)?;
        let mut overlay = view.overlay();
        let input = BlockInput {
            timestamp: stored.header.timestamp,
            beneficiary: stored.header.beneficiary,
            extra_data: stored.header.extra_data.clone(),
            prevrandao: stored.header.mix_hash,
            parent_beacon_block_root: stored.header.parent_beacon_block_root.unwrap_or_default(),
        };
        let transactions = stored.transactions.iter().cloned().map(Ok).collect();
        let parent_hash = stored.header.parent_hash;
        // A fresh EVM executor, with no analysed code in memory, reads every contract's code from
        // the state, so the witness records it; the WASM engine's compiled modules are the
        // runtime's own (compiling them again would cost more than the block), so the code of
        // every module a transaction calls is added below from the parent's module record.
        let executed = self.engines().with_fresh_evm(self.chain_id()).run_block(
            &mut overlay,
            &parent,
            parent_hash,
            stored.header.gas_limit,
            &input,
            transactions,
            block_hashes,
            |_| {},
        )?;
        let parent_state = view.overlay();
        for receipt in executed.receipts.iter().filter(|receipt| receipt.kind == Kind::WasmCall) {
            let Some(to) = receipt.to else { continue };
            let key = Namespace::wasm(Identity::from(to)).record_key();
            // A module deployed by this very block has its code in the block's writes.
            if let Some(record) = parent_state.get(&key).map_err(state_failure)? {
                let record = ModuleRecord::decode(&record).map_err(|error| StoreError::Corrupt(error.to_string()))?;
                view.include_code(record.code_hash)?;
            }
        }
        let root = view.root_after(&overlay)?;
        if root != stored.header.state_root {
            return Err(StoreError::Corrupt(format!(
                "re-executing block {number} gives root {root}, but its header holds {}",
                stored.header.state_root
            ))
            .into());
        }
        let state = view.witness(&overlay);
        let oldest = reached.lock().first().copied().unwrap_or(parent_number);
        let headers = self.header_range(oldest, parent_number)?;
        let block = self.stateless_block(stored);
        Ok((block, BlockWitness { state: state.state, codes: state.codes, keys: state.keys, headers }))
    }
}
