//! The JSON-RPC methods: each parses its parameters into alloy's types (a wrong type is -32602),
//! resolves the block it names once (so every answer is of one height), and answers in alloy's
//! types. Every method runs on the blocking pool: store reads and block production never stall
//! the server's event loop.

use crate::errors::{self, invalid_params, server};
use crate::{MAX_LOG_BLOCK_RANGE, MAX_LOGS, NodeState, convert};
use alloy_consensus::Transaction as _;
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::{
    BlockId, BlockNumberOrTag, EIP1186AccountProofResponse, FeeHistory, Filter, FilterBlockOption, Log,
    TransactionRequest,
};
use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use kv_core::{Identity, Namespace};
use std::sync::Arc;
use xstate_chain::dev::{DEFAULT_PRIORITY_FEE, DEV_ACCOUNTS, dev_address};
use xstate_chain::{CallFailure, CallInput, CallOutcome, Rejection, SignedTransaction, Status, StoredBlock};

type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// The most blocks one `eth_feeHistory` covers (geth's cap).
const MAX_FEE_HISTORY: u64 = 1024;

/// Every method of the node, over `state`.
pub(crate) fn module(state: Arc<NodeState>) -> RpcModule<NodeState> {
    let mut module = RpcModule::from_arc(state);
    macro_rules! method {
        ($name:literal, $handler:expr) => {
            module
                .register_blocking_method($name, |params, state, _| $handler(&state, params))
                .expect("each method is registered once");
        };
    }
    method!("web3_clientVersion", |_: &NodeState, _| -> RpcResult<&'static str> { Ok(crate::CLIENT_VERSION) });
    method!("net_version", |state: &NodeState, _| -> RpcResult<String> { Ok(state.runtime.chain_id().to_string()) });
    method!("eth_chainId", |state: &NodeState, _| -> RpcResult<U64> { Ok(U64::from(state.runtime.chain_id())) });
    method!("eth_blockNumber", |state: &NodeState, _| -> RpcResult<U64> { Ok(U64::from(latest(state)?)) });
    method!("eth_accounts", |_: &NodeState, _| -> RpcResult<Vec<Address>> {
        Ok((0..DEV_ACCOUNTS).map(dev_address).collect())
    });
    method!("eth_gasPrice", |state: &NodeState, _| -> RpcResult<U256> {
        Ok(U256::from(state.runtime.next_base_fee()) + U256::from(DEFAULT_PRIORITY_FEE))
    });
    method!("eth_maxPriorityFeePerGas", |_: &NodeState, _| -> RpcResult<U256> { Ok(U256::from(DEFAULT_PRIORITY_FEE)) });
    method!("eth_getBlockByNumber", get_block_by_number);
    method!("eth_getBlockByHash", get_block_by_hash);
    method!("eth_getTransactionByHash", get_transaction_by_hash);
    method!("eth_getTransactionReceipt", get_transaction_receipt);
    method!("eth_getBalance", get_balance);
    method!("eth_getTransactionCount", get_transaction_count);
    method!("eth_getCode", get_code);
    method!("eth_getStorageAt", get_storage_at);
    method!("eth_call", call);
    method!("eth_estimateGas", estimate_gas);
    method!("eth_feeHistory", fee_history);
    method!("eth_sendRawTransaction", send_raw_transaction);
    method!("eth_getLogs", get_logs);
    method!("eth_getProof", get_proof);
    method!("xstate_moduleIdentity", module_identity);
    method!("xstate_getWasmSlot", get_wasm_slot);
    method!("xstate_getWasmProof", get_wasm_proof);
    method!("xstate_getNamespaceProof", get_namespace_proof);
    method!("debug_executionWitness", execution_witness);
    method!("evm_mine", evm_mine);
    method!("evm_increaseTime", evm_increase_time);
    method!("evm_setNextBlockTimestamp", evm_set_next_block_timestamp);
    method!("evm_snapshot", evm_snapshot);
    method!("evm_revert", evm_revert);
    module
}

/// The latest block's number.
fn latest(state: &NodeState) -> RpcResult<u64> {
    state.runtime.latest().map(|(header, _)| header.number).ok_or_else(|| server("the chain has no genesis block"))
}

/// The number of the block `tag` names; a block after the latest is geth's "header not found".
fn number_of_tag(state: &NodeState, tag: BlockNumberOrTag) -> RpcResult<u64> {
    let latest = latest(state)?;
    match tag {
        BlockNumberOrTag::Earliest => Ok(0),
        BlockNumberOrTag::Number(number) if number <= latest => Ok(number),
        BlockNumberOrTag::Number(_) => Err(server("header not found")),
        BlockNumberOrTag::Latest | BlockNumberOrTag::Pending | BlockNumberOrTag::Safe | BlockNumberOrTag::Finalized => {
            Ok(latest)
        }
    }
}

/// The number of the block `id` names (the latest when absent).
fn number_of(state: &NodeState, id: Option<BlockId>) -> RpcResult<u64> {
    match id {
        None => latest(state),
        Some(BlockId::Number(tag)) => number_of_tag(state, tag),
        Some(BlockId::Hash(hash)) => state
            .runtime
            .chain()
            .number(&hash.block_hash)
            .map_err(|error| errors::runtime(error.into()))?
            .ok_or_else(|| server(format!("header for hash {} not found", hash.block_hash))),
    }
}

fn stored_block(state: &NodeState, number: u64) -> RpcResult<Option<StoredBlock>> {
    state.runtime.block(number).map_err(errors::runtime)
}

fn get_block_by_number(state: &NodeState, params: Params<'_>) -> RpcResult<Option<alloy_rpc_types_eth::Block>> {
    let mut params = params.sequence();
    let tag: BlockNumberOrTag = params.next()?;
    let full: bool = params.optional_next()?.unwrap_or(false);
    let number = match number_of_tag(state, tag) {
        Ok(number) => number,
        // A block that does not exist yet is `null`, as geth answers.
        Err(_) => return Ok(None),
    };
    Ok(stored_block(state, number)?.map(|block| convert::block(&block, full)))
}

fn get_block_by_hash(state: &NodeState, params: Params<'_>) -> RpcResult<Option<alloy_rpc_types_eth::Block>> {
    let mut params = params.sequence();
    let hash: B256 = params.next()?;
    let full: bool = params.optional_next()?.unwrap_or(false);
    let Some(number) = state.runtime.chain().number(&hash).map_err(|error| errors::runtime(error.into()))? else {
        return Ok(None);
    };
    Ok(stored_block(state, number)?.map(|block| convert::block(&block, full)))
}

/// The block and position of transaction `hash`, if it was mined.
fn locate(state: &NodeState, hash: &B256) -> RpcResult<Option<(StoredBlock, usize)>> {
    let Some((number, index)) =
        state.runtime.chain().transaction_location(hash).map_err(|error| errors::runtime(error.into()))?
    else {
        return Ok(None);
    };
    Ok(stored_block(state, number)?.map(|block| (block, index)))
}

fn get_transaction_by_hash(
    state: &NodeState,
    params: Params<'_>,
) -> RpcResult<Option<alloy_rpc_types_eth::Transaction>> {
    let hash: B256 = params.one()?;
    if let Some((block, index)) = locate(state, &hash)? {
        return Ok(convert::transaction(&block, index));
    }
    // A waiting transaction is known but not yet in a block.
    Ok(state.pool.lock().get(&hash).map(|transaction| alloy_rpc_types_eth::Transaction {
        inner: alloy_consensus::transaction::Recovered::new_unchecked(transaction.envelope.clone(), transaction.sender),
        block_hash: None,
        block_number: None,
        transaction_index: None,
        effective_gas_price: None,
        block_timestamp: None,
    }))
}

fn get_transaction_receipt(
    state: &NodeState,
    params: Params<'_>,
) -> RpcResult<Option<alloy_rpc_types_eth::TransactionReceipt>> {
    let hash: B256 = params.one()?;
    Ok(locate(state, &hash)?.and_then(|(block, index)| convert::receipt(&block, index)))
}

/// An account's nonce, balance and code hash after block `number`: from the flat committed state
/// for the latest block, from the trie (through a proof) for an older one.
fn account_at(state: &NodeState, address: Address, number: u64, latest: u64) -> RpcResult<(u64, U256, B256)> {
    if number == latest {
        let record = state.runtime.account(address).map_err(errors::runtime)?;
        return Ok(record.map_or((0, U256::ZERO, evm_binding::revm::primitives::KECCAK_EMPTY), |record| {
            (record.nonce, record.balance, record.code_hash)
        }));
    }
    let proof = state.runtime.eip1186_proof(address, &[], Some(number)).map_err(errors::runtime)?;
    let account = proof.reported_account();
    Ok((account.nonce, account.balance, account.code_hash))
}

/// An address and an optional block, the parameters of the account queries.
fn address_and_block(state: &NodeState, params: Params<'_>) -> RpcResult<(Address, u64, u64, bool)> {
    let mut params = params.sequence();
    let address: Address = params.next()?;
    let id: Option<BlockId> = params.optional_next()?;
    let pending = matches!(id, Some(BlockId::Number(BlockNumberOrTag::Pending)));
    let latest = latest(state)?;
    Ok((address, number_of(state, id)?, latest, pending))
}

fn get_balance(state: &NodeState, params: Params<'_>) -> RpcResult<U256> {
    let (address, number, latest, _) = address_and_block(state, params)?;
    Ok(account_at(state, address, number, latest)?.1)
}

fn get_transaction_count(state: &NodeState, params: Params<'_>) -> RpcResult<U64> {
    let (address, number, latest, pending) = address_and_block(state, params)?;
    let nonce = account_at(state, address, number, latest)?.0;
    Ok(U64::from(if pending { state.pool.lock().pending_nonce(address, nonce) } else { nonce }))
}

/// The one byte `eth_getCode` answers for a WASM module's identity: EVM's designated invalid
/// opcode, so the answer is not empty (libraries waiting for a deployment see one) and an EVM
/// reading it as code finds nothing it could run (ADR 0012).
pub const MODULE_CODE: [u8; 1] = [0xfe];

fn get_code(state: &NodeState, params: Params<'_>) -> RpcResult<Bytes> {
    let (address, number, latest, _) = address_and_block(state, params)?;
    let code_hash = account_at(state, address, number, latest)?.2;
    let overlay = state.runtime.store().begin();
    if code_hash != evm_binding::revm::primitives::KECCAK_EMPTY {
        // Code blobs are never deleted, so the latest state holds every block's code.
        let code = evm_binding::database::code(&overlay, code_hash).map_err(|error| errors::runtime(error.into()))?;
        return Ok(code.original_bytes());
    }
    let is_module = overlay
        .read(&Namespace::wasm(Identity::from(address)).record_key(), &mut |_| {})
        .map_err(|error| server(error.to_string()))?;
    Ok(if is_module && number == latest { Bytes::from_static(&MODULE_CODE) } else { Bytes::new() })
}

fn get_storage_at(state: &NodeState, params: Params<'_>) -> RpcResult<B256> {
    let mut params = params.sequence();
    let address: Address = params.next()?;
    let slot: U256 = params.next()?;
    let id: Option<BlockId> = params.optional_next()?;
    let latest = latest(state)?;
    let number = number_of(state, id)?;
    if number == latest {
        let overlay = state.runtime.store().begin();
        let word = evm_binding::database::storage_word(&overlay, address, slot)
            .map_err(|error| errors::runtime(error.into()))?;
        return Ok(B256::from(word));
    }
    let proof = state.runtime.eip1186_proof(address, &[B256::from(slot)], Some(number)).map_err(errors::runtime)?;
    Ok(proof.storage.first().map_or(B256::ZERO, |slot| B256::from(slot.value)))
}

/// The call a request describes, and the block whose state it runs on.
fn call_input(state: &NodeState, params: Params<'_>) -> RpcResult<(CallInput, u64)> {
    let mut params = params.sequence();
    let request: TransactionRequest = params.next()?;
    let id: Option<BlockId> = params.optional_next()?;
    let number = number_of(state, id)?;
    let to = match request.to {
        Some(alloy_primitives::TxKind::Call(address)) => Some(address),
        Some(alloy_primitives::TxKind::Create) | None => None,
    };
    let input = CallInput {
        from: request.from.unwrap_or_default(),
        to,
        data: request.input.input().cloned().unwrap_or_default(),
        value: request.value.unwrap_or_default(),
        gas: request.gas,
    };
    Ok((input, number))
}

fn run_call(state: &NodeState, input: &CallInput, number: u64) -> RpcResult<CallOutcome> {
    state.runtime.call_at(input, Some(number)).map_err(|error| match error {
        CallFailure::Invalid(message) => server(message),
        CallFailure::Runtime(error) => errors::runtime(error),
    })
}

fn call(state: &NodeState, params: Params<'_>) -> RpcResult<Bytes> {
    let (input, number) = call_input(state, params)?;
    let outcome = run_call(state, &input, number)?;
    match outcome.status {
        Status::Success => Ok(outcome.output),
        Status::Revert(data) => Err(errors::reverted(&data)),
        Status::Failed(reason) => Err(server(reason)),
    }
}

/// The least gas limit with which the call succeeds, found as geth finds it: the gas it used,
/// else a binary search between that and the cap.
fn estimate_gas(state: &NodeState, params: Params<'_>) -> RpcResult<U64> {
    let (mut input, number) = call_input(state, params)?;
    let cap = input.gas.unwrap_or(state.runtime.config().block_gas_limit);
    input.gas = Some(cap);
    let outcome = run_call(state, &input, number)?;
    match outcome.status {
        Status::Success => {}
        Status::Revert(data) => return Err(errors::reverted(&data)),
        Status::Failed(reason) => return Err(server(format!("gas required exceeds allowance ({cap}): {reason}"))),
    }
    let succeeds = |gas: u64| -> RpcResult<bool> {
        let input = CallInput { gas: Some(gas), ..input.clone() };
        Ok(match state.runtime.call_at(&input, Some(number)) {
            Ok(outcome) => outcome.status.is_success(),
            Err(CallFailure::Invalid(_)) => false,
            Err(CallFailure::Runtime(error)) => return Err(errors::runtime(error)),
        })
    };
    let used = outcome.gas_used;
    if used >= cap || succeeds(used)? {
        return Ok(U64::from(used.min(cap)));
    }
    let (mut low, mut high) = (used, cap);
    while low + 1 < high {
        let middle = low + (high - low) / 2;
        if succeeds(middle)? {
            high = middle;
        } else {
            low = middle;
        }
    }
    Ok(U64::from(high))
}

fn fee_history(state: &NodeState, params: Params<'_>) -> RpcResult<FeeHistory> {
    let mut params = params.sequence();
    let count: U64 = params.next()?;
    let newest: BlockNumberOrTag = params.next()?;
    let percentiles: Option<Vec<f64>> = params.optional_next()?;
    if let Some(percentiles) = &percentiles
        && (percentiles.iter().any(|p| !(0.0..=100.0).contains(p)) || percentiles.windows(2).any(|w| w[0] > w[1]))
    {
        return Err(invalid_params("reward percentiles must be ascending and between 0 and 100"));
    }
    let newest = number_of_tag(state, newest)?;
    let count = count.to::<u64>().clamp(1, MAX_FEE_HISTORY).min(newest + 1);
    let oldest = newest + 1 - count;
    let mut history = FeeHistory { oldest_block: oldest, ..FeeHistory::default() };
    let mut rewards = Vec::new();
    for number in oldest..=newest {
        let block = stored_block(state, number)?.ok_or_else(|| server("header not found"))?;
        let header = &block.header;
        history.base_fee_per_gas.push(u128::from(header.base_fee_per_gas.unwrap_or_default()));
        history.gas_used_ratio.push(header.gas_used as f64 / header.gas_limit.max(1) as f64);
        history.base_fee_per_blob_gas.push(1);
        history.blob_gas_used_ratio.push(0.0);
        if let Some(percentiles) = &percentiles {
            rewards.push(block_rewards(&block, percentiles));
        }
    }
    history.base_fee_per_gas.push(u128::from(
        state
            .runtime
            .chain()
            .header(newest)
            .map_err(|error| errors::runtime(error.into()))?
            .and_then(|header| header.next_block_base_fee(alloy_eips::eip1559::BaseFeeParams::ethereum()))
            .unwrap_or_default(),
    ));
    history.base_fee_per_blob_gas.push(1);
    history.reward = percentiles.map(|_| rewards);
    Ok(history)
}

/// The priority fees paid in `block` at each percentile of its gas, as geth computes them.
fn block_rewards(block: &StoredBlock, percentiles: &[f64]) -> Vec<u128> {
    let base_fee = u128::from(block.header.base_fee_per_gas.unwrap_or_default());
    let mut tips: Vec<(u128, u64)> = block
        .receipts
        .iter()
        .map(|receipt| (receipt.effective_gas_price.saturating_sub(base_fee), receipt.gas_used))
        .collect();
    if tips.is_empty() {
        return vec![0; percentiles.len()];
    }
    tips.sort_unstable();
    let total: u64 = tips.iter().map(|(_, gas)| gas).sum();
    percentiles
        .iter()
        .map(|percentile| {
            let threshold = total as f64 * percentile / 100.0;
            let mut sum = 0u64;
            for (tip, gas) in &tips {
                sum += gas;
                if sum as f64 >= threshold {
                    return *tip;
                }
            }
            tips.last().map_or(0, |(tip, _)| *tip)
        })
        .collect()
}

fn send_raw_transaction(state: &NodeState, params: Params<'_>) -> RpcResult<B256> {
    let raw: Bytes = params.one()?;
    let transaction =
        SignedTransaction::decode(&raw, state.runtime.chain_id()).map_err(|rejection| server(rejection.to_string()))?;
    let hash = transaction.hash();
    let _mining = state.mining.lock();
    if state.runtime.chain().transaction_location(&hash).map_err(|error| errors::runtime(error.into()))?.is_some() {
        return Err(server("already known"));
    }
    let sender = transaction.sender;
    let nonce = transaction.envelope.nonce();
    let state_nonce = state.runtime.account(sender).map_err(errors::runtime)?.map_or(0, |record| record.nonce);
    if nonce < state_nonce {
        return Err(server(Rejection::NonceTooLow { address: sender, tx: nonce, state: state_nonce }.to_string()));
    }
    // The sender's next transaction is checked in full now; one with a later nonce waits for the
    // nonces before it, and the runtime checks it when its block is made.
    if nonce == state_nonce {
        state.runtime.check_transaction(&transaction).map_err(|rejection| server(rejection.to_string()))?;
    }
    state.pool.lock().insert(transaction).map_err(|error| server(error.to_string()))?;
    if state.config.block_time.is_none()
        && let Some(outcome) = state.mine_ready(false).map_err(errors::runtime)?
        && let Some(rejected) = outcome.rejected.iter().find(|rejected| rejected.hash == Some(hash))
    {
        return Err(server(rejected.reason.to_string()));
    }
    Ok(hash)
}

fn get_logs(state: &NodeState, params: Params<'_>) -> RpcResult<Vec<Log>> {
    let filter: Filter = params.one()?;
    let (from, to) = match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let number = state
                .runtime
                .chain()
                .number(&hash)
                .map_err(|error| errors::runtime(error.into()))?
                .ok_or_else(|| server("unknown block"))?;
            (number, number)
        }
        FilterBlockOption::Range { from_block, to_block } => {
            let latest = latest(state)?;
            // The range is judged as asked, before it is cut at the latest block, so that a huge
            // range is refused however short the chain is.
            let resolve = |tag: Option<BlockNumberOrTag>| match tag {
                None => Ok(latest),
                Some(BlockNumberOrTag::Number(number)) => Ok(number),
                Some(tag) => number_of_tag(state, tag),
            };
            let (from, to) = (resolve(from_block)?, resolve(to_block)?);
            if from > to {
                return Err(invalid_params("invalid block range params"));
            }
            if to - from >= MAX_LOG_BLOCK_RANGE {
                return Err(invalid_params(format!("block range greater than {MAX_LOG_BLOCK_RANGE} max")));
            }
            (from, to.min(latest))
        }
    };
    let mut logs = Vec::new();
    for number in from..=to {
        let header = state.runtime.chain().header(number).map_err(|error| errors::runtime(error.into()))?;
        if header.is_none_or(|header| !filter.matches_bloom(header.logs_bloom)) {
            continue;
        }
        let Some(block) = stored_block(state, number)? else { continue };
        for index in 0..block.receipts.len() {
            for log in convert::logs(&block, index) {
                if filter.matches(&log.inner) {
                    if logs.len() == MAX_LOGS {
                        return Err(ErrorObjectOwned::owned(
                            -32005,
                            format!("query returned more than {MAX_LOGS} results"),
                            None::<()>,
                        ));
                    }
                    logs.push(log);
                }
            }
        }
    }
    Ok(logs)
}

fn get_proof(state: &NodeState, params: Params<'_>) -> RpcResult<EIP1186AccountProofResponse> {
    let mut params = params.sequence();
    let address: Address = params.next()?;
    let slots: Vec<alloy_serde::JsonStorageKey> = params.next()?;
    let slots: Vec<B256> = slots.iter().map(alloy_serde::JsonStorageKey::as_b256).collect();
    let id: Option<BlockId> = params.optional_next()?;
    if slots.len() > 1024 {
        return Err(invalid_params("at most 1024 storage keys per proof"));
    }
    let number = number_of(state, id)?;
    let proof = state.runtime.eip1186_proof(address, &slots, Some(number)).map_err(errors::runtime)?;
    Ok(convert::account_proof_response(&proof))
}

/// A number as the dev methods take one: a JSON number, or a quantity or decimal string.
fn dev_number(value: &serde_json::Value, what: &str) -> RpcResult<u64> {
    let parsed = match value {
        serde_json::Value::Number(number) => number.as_u64(),
        serde_json::Value::String(text) => match text.strip_prefix("0x") {
            Some(digits) => u64::from_str_radix(digits, 16).ok(),
            None => text.parse().ok(),
        },
        _ => None,
    };
    parsed.ok_or_else(|| invalid_params(format!("expected a non-negative number ({what}), not {value}")))
}

/// Fixes the next block's timestamp, which must be after the latest block's.
fn set_next_timestamp(state: &NodeState, timestamp: u64) -> RpcResult<()> {
    let parent = state.runtime.latest_timestamp();
    if timestamp <= parent {
        return Err(server(format!(
            "Timestamp error: {timestamp} is lower than or equal to previous block's timestamp {parent}"
        )));
    }
    state.clock.lock().next = Some(timestamp);
    Ok(())
}

/// `evm_mine [timestamp]`: mines one block now (the queued transactions, or none), as anvil does.
fn evm_mine(state: &NodeState, params: Params<'_>) -> RpcResult<&'static str> {
    let mut params = params.sequence();
    let timestamp: Option<serde_json::Value> = params.optional_next()?;
    match timestamp {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(options)) => {
            if let Some(timestamp) = options.get("timestamp") {
                set_next_timestamp(state, dev_number(timestamp, "seconds")?)?;
            }
        }
        Some(timestamp) => set_next_timestamp(state, dev_number(&timestamp, "seconds")?)?,
    }
    let _mining = state.mining.lock();
    state.mine_ready(true).map_err(errors::runtime)?;
    Ok("0x0")
}

/// `evm_increaseTime seconds`: moves the clock forward; answers the total offset in seconds.
fn evm_increase_time(state: &NodeState, params: Params<'_>) -> RpcResult<U64> {
    let seconds: serde_json::Value = params.one()?;
    let seconds = dev_number(&seconds, "seconds")?;
    let mut clock = state.clock.lock();
    clock.offset = clock.offset.saturating_add(seconds);
    Ok(U64::from(clock.offset))
}

/// `evm_setNextBlockTimestamp timestamp`: the next block's timestamp.
fn evm_set_next_block_timestamp(state: &NodeState, params: Params<'_>) -> RpcResult<()> {
    let timestamp: serde_json::Value = params.one()?;
    set_next_timestamp(state, dev_number(&timestamp, "seconds")?)
}

/// `evm_snapshot`: remembers the latest block (and the clock) and answers the snapshot's id, a
/// quantity counting up from 0 as anvil's do.
fn evm_snapshot(state: &NodeState, _: Params<'_>) -> RpcResult<U64> {
    // Under the mining lock the latest block cannot move while the snapshot is taken.
    let _mining = state.mining.lock();
    let block = latest(state)?;
    let clock_offset = state.clock.lock().offset;
    let mut snapshots = state.snapshots.lock();
    let id = snapshots.next_id;
    snapshots.next_id += 1;
    snapshots.taken.insert(id, crate::Snapshot { block, clock_offset });
    Ok(U64::from(id))
}

/// `evm_revert id`: goes back to snapshot `id`'s block, dropping every later block with its
/// state, transactions and receipts, and consumes that snapshot and every later one; `false`
/// for an id that was never taken or is already consumed, as anvil answers. The clock goes back
/// to where it was (the offset of `evm_increaseTime`, no fixed next timestamp). Waiting
/// transactions stay waiting: a rewind only lowers nonces, so none of them becomes runnable or
/// stale, and each is checked again when its block is made. A snapshot older than the store's
/// retained state is an error that changes nothing.
fn evm_revert(state: &NodeState, params: Params<'_>) -> RpcResult<bool> {
    let id: serde_json::Value = params.one()?;
    let id = dev_number(&id, "a snapshot id")?;
    let _mining = state.mining.lock();
    let mut snapshots = state.snapshots.lock();
    let Some(snapshot) = snapshots.taken.get(&id).copied() else {
        return Ok(false);
    };
    match state.runtime.rewind_to(snapshot.block) {
        Ok(_) => {}
        Err(error @ xstate_chain::RuntimeError::Store(kv_core::StoreError::CannotRewind { .. })) => {
            return Err(server(format!("cannot revert to snapshot {id} (block {}): {error}", snapshot.block)));
        }
        Err(error) => return Err(errors::runtime(error)),
    }
    snapshots.taken.split_off(&id);
    let mut clock = state.clock.lock();
    clock.offset = snapshot.clock_offset;
    clock.next = None;
    Ok(true)
}

/// `xstate_moduleIdentity name version`: the identity (address) of WASM module `name` at
/// `version` on this chain, deployed or not.
fn module_identity(state: &NodeState, params: Params<'_>) -> RpcResult<Address> {
    let mut params = params.sequence();
    let name: String = params.next()?;
    let version: u32 = params.next()?;
    let name =
        kv_core::ModuleName::new(&name).map_err(|error| invalid_params(format!("invalid module name: {error}")))?;
    Ok(state.runtime.module_identity(&name, version).to_address())
}

/// A module identity, a u64 slot and an optional block: the parameters of the WASM slot queries.
fn wasm_slot_params(state: &NodeState, params: Params<'_>) -> RpcResult<(Vec<u8>, u64)> {
    let mut params = params.sequence();
    let identity: Address = params.next()?;
    let slot: U64 = params.next()?;
    let id: Option<BlockId> = params.optional_next()?;
    let number = number_of(state, id)?;
    Ok((Namespace::wasm(Identity::from(identity)).slot_key(slot.to::<u64>()).to_vec(), number))
}

/// `xstate_getWasmSlot identity slot [block]`: a module's u64 slot after the block (0 when unset).
fn get_wasm_slot(state: &NodeState, params: Params<'_>) -> RpcResult<U64> {
    let (key, number) = wasm_slot_params(state, params)?;
    let (_, value) = state.runtime.prove_value(&key, Some(number)).map_err(errors::runtime)?;
    let value = match value {
        None => 0,
        Some(bytes) => u64::from_be_bytes(
            bytes.as_slice().try_into().map_err(|_| server(format!("slot value of {} bytes, not 8", bytes.len())))?,
        ),
    };
    Ok(U64::from(value))
}

/// A proof of one state key, in the proof-file format `xstate verify` checks
/// (`xstate-proof/2`: the key, its value or `null`, and the encoded proof under `root`).
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct WasmProof {
    format: &'static str,
    root: B256,
    block: u64,
    key: Bytes,
    value: Option<Bytes>,
    proof: Bytes,
}

/// `xstate_getWasmProof identity slot [block]`: the proof of a module's slot against the block's
/// state root.
fn get_wasm_proof(state: &NodeState, params: Params<'_>) -> RpcResult<WasmProof> {
    let (key, number) = wasm_slot_params(state, params)?;
    let (proof, value) = state.runtime.prove_value(&key, Some(number)).map_err(errors::runtime)?;
    let root = state.runtime.root_at(Some(number)).map_err(errors::runtime)?;
    Ok(WasmProof {
        format: "xstate-proof/2",
        root,
        block: number,
        key: key.into(),
        value: value.map(Bytes::from),
        proof: proof.encode().into(),
    })
}

/// What `xstate_getNamespaceProof` answers: a module's (or contract's) account leaf in the state
/// trie and its path, against the block's state root.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NamespaceProofResponse {
    root: B256,
    block: u64,
    /// The namespace's storage root, `null` when it has no leaf.
    storage_hash: Option<B256>,
    account_proof: Vec<Bytes>,
}

/// `xstate_getNamespaceProof identity [block]`: one proof of a module's whole state.
/// `debug_executionWitness(block)`: everything block `block` read, in reth's `ExecutionWitness`
/// shape (`docs/spec/witness.md`): the witness the block recorded while it executed, or, for a
/// block executed without recording, one produced by re-executing it over its retained parent
/// state; `xstate verify-block` checks a block against it with no store. Block 0 has no parent to
/// witness, and is an error.
fn execution_witness(state: &NodeState, params: Params<'_>) -> RpcResult<serde_json::Value> {
    let tag: BlockNumberOrTag = params.one()?;
    let number = number_of_tag(state, tag)?;
    let (_, witness) = state.runtime.witness(number).map_err(errors::runtime)?;
    Ok(witness.to_json())
}

fn get_namespace_proof(state: &NodeState, params: Params<'_>) -> RpcResult<NamespaceProofResponse> {
    let mut params = params.sequence();
    let identity: Address = params.next()?;
    let id: Option<BlockId> = params.optional_next()?;
    let number = number_of(state, id)?;
    let (storage_hash, proof) = state
        .runtime
        .prove_namespace(&Namespace::wasm(Identity::from(identity)), Some(number))
        .map_err(errors::runtime)?;
    let root = state.runtime.root_at(Some(number)).map_err(errors::runtime)?;
    Ok(NamespaceProofResponse { root, block: number, storage_hash, account_proof: proof.account_proof })
}
