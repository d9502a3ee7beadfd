//! The chain layer through the library: every rejection is typed, worded as geth words it, and
//! changes nothing; WASM transactions are paid for like EVM ones; an EVM contract cannot reach
//! WASM state through the deploy address or a module identity; roots, bloom and header hash
//! agree with alloy's own helpers; `BLOCKHASH` and EIP-2935 see the parent's real hash; a store
//! failure abandons the block.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use alloy_consensus::proofs::{calculate_receipt_root, calculate_transaction_root};
use alloy_consensus::{
    Eip658Value, ReceiptEnvelope, SignableTransaction, Signed, TxEip1559, TxEip2930, TxEip4844, TxEip7702, TxEnvelope,
    TxLegacy,
};
use alloy_eips::eip1559::{BaseFeeParams, calc_next_block_base_fee};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_eips::eip2935::HISTORY_STORAGE_ADDRESS;
use alloy_eips::eip7702::Authorization;
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, keccak256, logs_bloom};
use alloy_signer::SignerSync;
use alloy_sol_types::SolCall;
use kv_core::{Identity, ModuleName, ModuleRecord, Namespace, Table, WriteBatch};
use xstate_chain::dev::{DEV_BALANCE, anvil_genesis, dev_address, dev_signer, sign};
use xstate_chain::{
    BlockInput, BlockOutcome, ChainConfig, Created, Genesis, Kind, Rejection, Runtime, RuntimeError, Status,
    WASM_DEPLOY_ADDRESS, deployCall,
};

const CHAIN_ID: u64 = xstate_chain::DEFAULT_CHAIN_ID;
const BENEFICIARY: Address = Address::repeat_byte(0xbe);
const GWEI: u128 = 1_000_000_000;
/// Dev account 9 has code in the test genesis, so it cannot send transactions (EIP-3607).
const CONTRACT_KEY: u32 = 9;
/// A contract that stores `BLOCKHASH(NUMBER - 1)` in slot 0.
const PARENT_HASH_RECORDER: Address = Address::repeat_byte(0xb1);
/// Forwards its calldata to `0x…0a01` and stores the CALL's success flag in slot 0.
const DEPLOY_FORWARDER: Address = Address::repeat_byte(0xf1);
/// Forwards its calldata to the token module's identity and stores the success flag in slot 0.
const MODULE_FORWARDER: Address = Address::repeat_byte(0xf2);

fn name(text: &str) -> ModuleName {
    ModuleName::new(text).unwrap()
}

fn token_identity() -> Identity {
    kv_core::module_identity(CHAIN_ID, &name("token"), 1)
}

/// Runtime code: copy the calldata, CALL `target` with it and all gas, store success at slot 0.
fn forwarder(target: Address) -> Vec<u8> {
    let mut code = vec![0x36, 0x5f, 0x5f, 0x37, 0x5f, 0x5f, 0x36, 0x5f, 0x5f, 0x73];
    code.extend_from_slice(target.as_slice());
    code.extend_from_slice(&[0x5a, 0xf1, 0x5f, 0x55, 0x00]);
    code
}

fn genesis() -> Genesis {
    let mut genesis = anvil_genesis(1_000);
    let with_code = |code: Vec<u8>| evm_binding::GenesisAccount { code, ..Default::default() };
    for (address, account) in &mut genesis.accounts {
        if *address == dev_address(CONTRACT_KEY) {
            account.code = vec![0x00];
        }
    }
    // NUMBER PUSH1 1 SWAP1 SUB BLOCKHASH PUSH0 SSTORE STOP
    genesis
        .accounts
        .push((PARENT_HASH_RECORDER, with_code(vec![0x43, 0x60, 0x01, 0x90, 0x03, 0x40, 0x5f, 0x55, 0x00])));
    genesis.accounts.push((DEPLOY_FORWARDER, with_code(forwarder(WASM_DEPLOY_ADDRESS))));
    genesis.accounts.push((MODULE_FORWARDER, with_code(forwarder(token_identity().to_address()))));
    genesis
}

fn chain_with(config: ChainConfig) -> Runtime {
    let runtime = Runtime::in_memory(config);
    runtime.init_genesis(&genesis()).unwrap();
    runtime
}

fn chain() -> Runtime {
    chain_with(ChainConfig::default())
}

fn next_block(runtime: &Runtime, raws: &[Bytes]) -> BlockOutcome {
    let input =
        BlockInput { timestamp: runtime.latest_timestamp() + 12, beneficiary: BENEFICIARY, ..Default::default() };
    runtime.execute_block(&input, raws, |_| {}).unwrap()
}

fn raw(envelope: &TxEnvelope) -> Bytes {
    envelope.encoded_2718().into()
}

/// An EIP-1559 transaction with a 1 gwei tip and a 10 gwei cap, for a dev key to sign.
fn tx(nonce: u64, to: TxKind, input: Bytes, value: U256, gas_limit: u64) -> TxEip1559 {
    TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to,
        value,
        access_list: Default::default(),
        input,
    }
}

fn signed(key: u32, transaction: TxEip1559) -> Bytes {
    raw(&sign(key, transaction))
}

fn deploy_calldata(module: &str, code: &[u8]) -> Bytes {
    deployCall { name: module.to_owned(), version: 1, code: Bytes::copy_from_slice(code) }.abi_encode().into()
}

fn deploy_token(key: u32, nonce: u64) -> Bytes {
    let data = deploy_calldata("token", xstate_chain::demo::TOKEN_WASM);
    signed(key, tx(nonce, TxKind::Call(WASM_DEPLOY_ADDRESS), data, U256::ZERO, 3_000_000))
}

fn token_call(key: u32, nonce: u64, input: Bytes) -> Bytes {
    signed(key, tx(nonce, TxKind::Call(token_identity().to_address()), input, U256::ZERO, 1_000_000))
}

fn transfer(nonce: u64) -> TxEip1559 {
    tx(nonce, TxKind::Call(Address::repeat_byte(0x77)), Bytes::new(), U256::from(1), 21_000)
}

fn balance(runtime: &Runtime, address: Address) -> U256 {
    runtime.account(address).unwrap().map_or(U256::ZERO, |record| record.balance)
}

fn nonce(runtime: &Runtime, address: Address) -> u64 {
    runtime.account(address).unwrap().map_or(0, |record| record.nonce)
}

fn with_signature<T: SignableTransaction<Signature>>(transaction: T, signature: Signature) -> Bytes
where
    TxEnvelope: From<Signed<T>>,
{
    raw(&TxEnvelope::from(transaction.into_signed(signature)))
}

#[test]
fn each_rejection_is_typed_worded_as_geth_and_changes_nothing() {
    let sender = dev_address(1);
    let high_s = U256::from_be_bytes(
        alloy_primitives::b256!("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140").0,
    );
    let legacy = |chain_id| TxLegacy {
        chain_id,
        nonce: 0,
        gas_price: 10 * GWEI,
        gas_limit: 21_000,
        to: TxKind::Call(Address::repeat_byte(0x77)),
        value: U256::from(1),
        input: Bytes::new(),
    };
    let seven_702 = TxEip7702 {
        chain_id: CHAIN_ID,
        nonce: 0,
        gas_limit: 100_000,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: Address::repeat_byte(0x77),
        value: U256::ZERO,
        access_list: Default::default(),
        authorization_list: Vec::new(),
        input: Bytes::new(),
    };
    let blob = TxEip4844 {
        chain_id: CHAIN_ID,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: Address::repeat_byte(0x77),
        value: U256::ZERO,
        access_list: Default::default(),
        blob_versioned_hashes: vec![B256::repeat_byte(0x01)],
        max_fee_per_blob_gas: GWEI,
        input: Bytes::new(),
    };
    // (case, transactions before it in the block, the refused one, the start of its message)
    let cases: Vec<(&str, Vec<Bytes>, Bytes, &str)> = vec![
        ("undecodable", vec![], Bytes::from_static(&[0x02, 0xff, 0x00]), "failed to decode signed transaction"),
        ("unknown type", vec![], Bytes::from_static(&[0x7f, 0xc0]), "failed to decode signed transaction"),
        ("blob transaction", vec![], raw(&sign(1, blob)), "transaction type not supported: type 3"),
        (
            "bad signature",
            vec![],
            with_signature(transfer(0), Signature::new(U256::from(1), high_s, false)),
            "invalid transaction v, r, s values",
        ),
        (
            "missing chain id",
            vec![],
            raw(&sign(1, legacy(None))),
            "only replay-protected (EIP-155) transactions allowed",
        ),
        ("wrong chain id", vec![], raw(&sign(1, legacy(Some(1)))), "invalid chain id for signer: have 1 want 31337"),
        ("nonce too low", vec![signed(1, transfer(0))], signed(1, transfer(0)), "nonce too low"),
        ("nonce too high", vec![], signed(1, transfer(5)), "nonce too high"),
        (
            "insufficient funds",
            vec![],
            signed(1, TxEip1559 { value: DEV_BALANCE, ..transfer(0) }),
            "insufficient funds for gas * price + value",
        ),
        ("intrinsic gas", vec![], signed(1, TxEip1559 { gas_limit: 20_999, ..transfer(0) }), "intrinsic gas too low"),
        (
            "fee cap below base fee",
            vec![],
            signed(1, TxEip1559 { max_fee_per_gas: 1, max_priority_fee_per_gas: 1, ..transfer(0) }),
            "max fee per gas less than block base fee",
        ),
        (
            "tip above fee cap",
            vec![],
            signed(1, TxEip1559 { max_priority_fee_per_gas: 11 * GWEI, ..transfer(0) }),
            "max priority fee per gas higher than max fee per gas",
        ),
        (
            "above the block gas limit",
            vec![],
            signed(1, TxEip1559 { gas_limit: xstate_chain::DEFAULT_BLOCK_GAS_LIMIT + 1, ..transfer(0) }),
            "exceeds block gas limit",
        ),
        (
            "calldata floor",
            vec![],
            signed(1, TxEip1559 { gas_limit: 50_000, input: vec![0xff; 1_000].into(), ..transfer(0) }),
            "insufficient gas for floor data gas cost",
        ),
        (
            "init code too large",
            vec![],
            signed(1, tx(0, TxKind::Create, vec![0; 49_153].into(), U256::ZERO, 1_000_000)),
            "max initcode size exceeded",
        ),
        ("sender with code", vec![], signed(CONTRACT_KEY, transfer(0)), "sender not an eoa"),
        ("empty authorization list", vec![], raw(&sign(1, seven_702)), "EIP-7702 transaction with empty auth list"),
        (
            "value to a module",
            vec![deploy_token(0, 0)],
            signed(1, tx(0, TxKind::Call(token_identity().to_address()), Bytes::new(), U256::from(1), 100_000)),
            "value transfer to a WASM module is not supported",
        ),
        (
            "value to the deploy address",
            vec![],
            signed(
                1,
                tx(
                    0,
                    TxKind::Call(WASM_DEPLOY_ADDRESS),
                    deploy_calldata("token", xstate_chain::demo::TOKEN_WASM),
                    U256::from(1),
                    3_000_000,
                ),
            ),
            "value transfer to a WASM module is not supported",
        ),
    ];
    for (case, before, refused, message) in cases {
        let with = chain();
        let without = chain();
        let mut raws = before.clone();
        raws.push(refused.clone());
        let outcome = next_block(&with, &raws);
        let reference = next_block(&without, &before);
        assert_eq!(outcome.rejected.len(), 1, "{case}: {:?}", outcome.rejected);
        let rejected = &outcome.rejected[0];
        assert_eq!(rejected.position, before.len(), "{case}");
        let text = rejected.reason.to_string();
        assert!(text.starts_with(message), "{case}: `{text}` should start with `{message}`");
        assert_eq!(outcome.receipts.len(), before.len(), "{case}: the refused transaction has no receipt");
        assert_eq!(outcome.header.state_root, reference.header.state_root, "{case}: it changed the state");
        assert_eq!(outcome.header.transactions_root, reference.header.transactions_root, "{case}");
        if case != "nonce too low" {
            assert_eq!(nonce(&with, sender), nonce(&without, sender), "{case}");
        }
    }
}

#[test]
fn the_block_gas_left_refuses_what_no_longer_fits() {
    let runtime = chain_with(ChainConfig { block_gas_limit: 50_000, ..ChainConfig::default() });
    let outcome =
        next_block(&runtime, &[signed(1, transfer(0)), signed(2, TxEip1559 { gas_limit: 30_000, ..transfer(0) })]);
    assert_eq!(outcome.receipts.len(), 1);
    assert_eq!(
        outcome.rejected[0].reason,
        Rejection::BlockGasLimitReached { gas: 30_000, left: 29_000 },
        "{}",
        outcome.rejected[0].reason
    );
    assert_eq!(outcome.header.gas_used, 21_000);
}

#[test]
fn a_wasm_call_is_paid_by_its_sender_and_tips_the_beneficiary() {
    let runtime = chain();
    let alice = dev_address(1);
    let setup = next_block(&runtime, &[deploy_token(0, 0), token_call(1, 0, Bytes::from_static(&[0x00]))]);
    assert!(setup.receipts.iter().all(|receipt| receipt.status.is_success()), "{:?}", setup.receipts);
    assert_eq!(setup.receipts[0].created, Some(Created::Module(token_identity())));
    assert_eq!(setup.receipts[0].kind, Kind::WasmDeploy);
    let deploy_cost =
        xstate_chain::evm_gas_for_wasm_gas(wasm_binding::gas::deploy_cost(xstate_chain::demo::TOKEN_WASM.len()));
    assert!(setup.receipts[0].gas_used > deploy_cost, "the deploy pays its cost on top of the intrinsic gas");

    let (before, tips_before, nonce_before) =
        (balance(&runtime, alice), balance(&runtime, BENEFICIARY), nonce(&runtime, alice));
    let mut mint = vec![0x01];
    mint.extend_from_slice(alice.as_slice());
    mint.extend_from_slice(&900u64.to_be_bytes());
    let outcome = next_block(&runtime, &[token_call(1, nonce_before, mint.into())]);
    let receipt = &outcome.receipts[0];
    assert_eq!((receipt.kind, &receipt.status), (Kind::WasmCall, &Status::Success));
    let base_fee = u128::from(outcome.header.base_fee_per_gas.unwrap());
    assert_eq!(receipt.effective_gas_price, (base_fee + GWEI).min(10 * GWEI));
    assert!(receipt.gas_used > 21_000 && receipt.gas_used < 1_000_000, "{}", receipt.gas_used);
    let gas_used = U256::from(receipt.gas_used);
    assert_eq!(before - balance(&runtime, alice), gas_used * U256::from(receipt.effective_gas_price));
    assert_eq!(
        balance(&runtime, BENEFICIARY) - tips_before,
        gas_used * U256::from(receipt.effective_gas_price - base_fee),
        "the beneficiary receives the tip; the base fee is burned"
    );
    assert_eq!(nonce(&runtime, alice), nonce_before + 1);
    assert_eq!(outcome.header.gas_used, receipt.gas_used, "one block gas counter over both engines");

    // A reverted WASM call keeps none of its writes but still pays and uses its nonce.
    let before = balance(&runtime, alice);
    let mut overdraw = vec![0x02];
    overdraw.extend_from_slice(dev_address(2).as_slice());
    overdraw.extend_from_slice(&1_000_000u64.to_be_bytes());
    let outcome = next_block(&runtime, &[token_call(1, nonce_before + 1, overdraw.into())]);
    let receipt = &outcome.receipts[0];
    assert!(matches!(receipt.status, Status::Revert(_)), "{:?}", receipt.status);
    assert_eq!(before - balance(&runtime, alice), receipt.fee());
    assert_eq!(nonce(&runtime, alice), nonce_before + 2);
    assert!(!outcome.receipts[0].envelope().status(), "a revert is receipt status 0");
}

#[test]
fn an_evm_contract_reaching_the_deploy_address_or_a_module_changes_no_wasm_state() {
    let runtime = chain();
    next_block(&runtime, &[deploy_token(0, 0), token_call(1, 0, Bytes::from_static(&[0x00]))]);
    let token = Namespace::wasm(token_identity());
    let (token_root, _) = runtime.prove_namespace(&token, None).unwrap();
    let sneaky = Namespace::wasm(kv_core::module_identity(CHAIN_ID, &name("sneaky"), 1));
    let mut mint = vec![0x01];
    mint.extend_from_slice(dev_address(1).as_slice());
    mint.extend_from_slice(&900u64.to_be_bytes());
    let outcome = next_block(
        &runtime,
        &[
            signed(
                2,
                tx(
                    0,
                    TxKind::Call(DEPLOY_FORWARDER),
                    deploy_calldata("sneaky", xstate_chain::demo::TOKEN_WASM),
                    U256::ZERO,
                    3_000_000,
                ),
            ),
            signed(1, tx(1, TxKind::Call(MODULE_FORWARDER), mint.into(), U256::ZERO, 1_000_000)),
        ],
    );
    // To the EVM both addresses are accounts without code: the CALL succeeds, returns nothing and
    // reaches no WASM engine.
    for (receipt, forwarder) in outcome.receipts.iter().zip([DEPLOY_FORWARDER, MODULE_FORWARDER]) {
        assert_eq!((receipt.kind, &receipt.status), (Kind::EvmCall, &Status::Success));
        let flag = runtime.get(&Namespace::evm(forwarder).word_key(&[0; 32])).unwrap();
        assert_eq!(flag.map(|word| U256::from_be_slice(&word)), Some(U256::from(1)), "the inner CALL succeeded");
    }
    assert_eq!(runtime.get(&sneaky.record_key()).unwrap(), None, "no module was deployed");
    assert_eq!(runtime.prove_namespace(&token, None).unwrap().0, token_root, "the token's state is unchanged");
}

#[test]
fn roots_bloom_and_hash_agree_with_alloys_helpers() {
    let runtime = chain();
    let erc20 = dev_address(0).create(0);
    let mut xtoken = xstate_chain::demo::xtoken_bytecode().to_vec();
    xtoken.extend_from_slice(&xstate_chain::demo::word(dev_address(0)).to_be_bytes::<32>());
    let mint = xstate_chain::demo::calldata(
        "mint(address,uint256)",
        &[xstate_chain::demo::word(dev_address(1)), U256::from(500)],
    );
    let legacy = TxLegacy {
        chain_id: Some(CHAIN_ID),
        nonce: 0,
        gas_price: 10 * GWEI,
        gas_limit: 21_000,
        to: TxKind::Call(Address::repeat_byte(0x77)),
        value: U256::from(7),
        input: Bytes::new(),
    };
    let access_list = TxEip2930 {
        chain_id: CHAIN_ID,
        nonce: 0,
        gas_price: 10 * GWEI,
        gas_limit: 50_000,
        to: TxKind::Call(Address::repeat_byte(0x77)),
        value: U256::from(7),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    // Dev account 4 delegates its code to the parent-hash recorder (EIP-7702).
    let authorization = Authorization { chain_id: U256::from(CHAIN_ID), address: PARENT_HASH_RECORDER, nonce: 1 };
    let signature = dev_signer(4).sign_hash_sync(&authorization.signature_hash()).unwrap();
    let delegation = TxEip7702 {
        chain_id: CHAIN_ID,
        nonce: 0,
        gas_limit: 200_000,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: dev_address(4),
        value: U256::ZERO,
        access_list: Default::default(),
        authorization_list: vec![authorization.into_signed(signature)],
        input: Bytes::new(),
    };
    let raws = vec![
        signed(0, tx(0, TxKind::Create, xtoken.into(), U256::ZERO, 3_000_000)),
        signed(0, tx(1, TxKind::Call(erc20), mint, U256::ZERO, 200_000)),
        raw(&sign(2, legacy)),
        raw(&sign(3, access_list)),
        raw(&sign(4, delegation)),
        deploy_token(5, 0),
        token_call(5, 1, Bytes::from_static(&[0x00])),
    ];
    let outcome = next_block(&runtime, &raws);
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    assert!(outcome.receipts.iter().all(|receipt| receipt.status.is_success()), "{:?}", outcome.receipts);
    assert_eq!(outcome.receipts.iter().map(|receipt| receipt.tx_type).collect::<Vec<_>>(), [2, 2, 0, 1, 4, 2, 2]);
    assert_eq!(outcome.receipts[1].logs.len(), 1, "the mint logs a Transfer");

    let envelopes: Vec<TxEnvelope> = raws.iter().map(|raw| TxEnvelope::decode_2718_exact(raw).unwrap()).collect();
    assert_eq!(outcome.header.transactions_root, calculate_transaction_root(&envelopes));
    let mut cumulative = 0;
    let receipts: Vec<ReceiptEnvelope> = outcome
        .receipts
        .iter()
        .zip(&envelopes)
        .map(|(receipt, envelope)| {
            cumulative += receipt.gas_used;
            let inner = alloy_consensus::Receipt {
                status: Eip658Value::Eip658(receipt.status.is_success()),
                cumulative_gas_used: cumulative,
                logs: receipt.logs.clone(),
            };
            ReceiptEnvelope::from_typed(envelope.tx_type(), inner.with_bloom())
        })
        .collect();
    assert_eq!(outcome.header.receipts_root, calculate_receipt_root(&receipts));
    let all_logs: Vec<_> = outcome.receipts.iter().flat_map(|receipt| receipt.logs.clone()).collect();
    assert_eq!(outcome.header.logs_bloom, logs_bloom(all_logs.iter()));
    assert_eq!(outcome.header.gas_used, cumulative);
    assert_eq!(outcome.hash, keccak256(alloy_rlp::encode(&outcome.header)));
    assert_eq!(outcome.header.state_root, runtime.root(), "the header carries the one root");
    assert_eq!(outcome.header.extra_data.len(), 0);

    // The stored block and the transaction index give the same back.
    let stored = runtime.block(outcome.header.number).unwrap().unwrap();
    assert_eq!((stored.header, stored.hash), (outcome.header.clone(), outcome.hash));
    assert_eq!(stored.receipts, outcome.receipts);
    for receipt in &outcome.receipts {
        let (block, found) = runtime.receipt(&receipt.hash).unwrap().unwrap();
        assert_eq!((block.hash, &found), (outcome.hash, receipt));
    }
    assert_eq!(runtime.receipt(&B256::repeat_byte(1)).unwrap(), None);
}

#[test]
fn blockhash_and_the_history_contract_see_the_parents_real_hash() {
    let runtime = chain();
    let first = next_block(&runtime, &[]);
    let call = signed(1, tx(0, TxKind::Call(PARENT_HASH_RECORDER), Bytes::new(), U256::ZERO, 100_000));
    let second = next_block(&runtime, &[call]);
    assert_eq!(second.header.parent_hash, first.hash);
    let word = |address: Address, slot: U256| {
        runtime
            .get(&Namespace::evm(address).word_key(&slot.to_be_bytes::<32>()))
            .unwrap()
            .map(|word| B256::from_slice(&word))
    };
    assert_eq!(word(PARENT_HASH_RECORDER, U256::ZERO), Some(first.hash), "BLOCKHASH(n - 1)");
    // EIP-2935 stores the parent's hash at slot (n - 1) % 8191.
    assert_eq!(word(HISTORY_STORAGE_ADDRESS, U256::from(first.header.number)), Some(first.hash));
}

#[test]
fn the_beacon_roots_contract_is_called_where_it_exists() {
    use alloy_eips::eip4788::{BEACON_ROOTS_ADDRESS, BEACON_ROOTS_CODE};
    let mut with_contract = genesis();
    let code = BEACON_ROOTS_CODE.to_vec();
    with_contract.accounts.push((BEACON_ROOTS_ADDRESS, evm_binding::GenesisAccount { code, ..Default::default() }));
    let runtime = Runtime::in_memory(ChainConfig::default());
    runtime.init_genesis(&with_contract).unwrap();
    let root = B256::repeat_byte(0x4b);
    let timestamp: u64 = 20_000;
    let input = BlockInput { timestamp, parent_beacon_block_root: root, ..Default::default() };
    let block = runtime.execute_block(&input, &[], |_| {}).unwrap();
    assert_eq!(block.header.parent_beacon_block_root, Some(root));
    // EIP-4788's ring buffers: the timestamp at `timestamp % 8191`, the root 8191 slots later.
    let word = |slot: u64| {
        runtime
            .get(&Namespace::evm(BEACON_ROOTS_ADDRESS).word_key(&U256::from(slot).to_be_bytes::<32>()))
            .unwrap()
            .map(|word| U256::from_be_slice(&word))
    };
    assert_eq!(word(timestamp % 8_191), Some(U256::from(timestamp)));
    assert_eq!(word(timestamp % 8_191 + 8_191), Some(U256::from_be_bytes(root.0)));
    // Without the contract (the default genesis) nothing is called and nothing is written.
    let plain = chain();
    let before = plain.root();
    let block = plain
        .execute_block(
            &BlockInput { timestamp: 5_000, parent_beacon_block_root: root, ..Default::default() },
            &[],
            |_| {},
        )
        .unwrap();
    assert_eq!(plain.get(&Namespace::evm(BEACON_ROOTS_ADDRESS).record_key()).unwrap(), None);
    assert_ne!(block.header.state_root, before, "the history contract still recorded the parent hash");
}

#[test]
fn the_base_fee_follows_eip_1559() {
    let runtime = chain_with(ChainConfig { block_gas_limit: 100_000, ..ChainConfig::default() });
    let genesis = runtime.latest().unwrap().0;
    assert_eq!(genesis.base_fee_per_gas, Some(xstate_chain::DEFAULT_GENESIS_BASE_FEE));
    // A full block raises the next base fee by an eighth, an empty one lowers it by an eighth.
    let transfers: Vec<Bytes> = (0..4).map(|key| signed(key, transfer(0))).collect();
    let full = next_block(&runtime, &transfers);
    let empty = next_block(&runtime, &[]);
    let after = next_block(&runtime, &[]);
    // The first block keeps the genesis base fee, as anvil's does; the formula starts after it.
    assert_eq!(full.header.base_fee_per_gas, genesis.base_fee_per_gas);
    for (parent, child) in [(&full.header, &empty.header), (&empty.header, &after.header)] {
        let expected = calc_next_block_base_fee(
            parent.gas_used,
            parent.gas_limit,
            parent.base_fee_per_gas.unwrap(),
            BaseFeeParams::ethereum(),
        );
        assert_eq!(child.base_fee_per_gas, Some(expected));
    }
    assert!(empty.header.base_fee_per_gas > full.header.base_fee_per_gas, "84,000 of 100,000 is above the target");
    assert!(after.header.base_fee_per_gas < empty.header.base_fee_per_gas, "an empty block lowers it");
}

#[test]
fn a_block_must_follow_its_parent_in_time_and_carry_little_extra_data() {
    let runtime = chain();
    let same_time = BlockInput { timestamp: runtime.latest_timestamp(), ..Default::default() };
    let error = runtime.execute_block(&same_time, &[], |_| {}).unwrap_err();
    assert!(matches!(error, RuntimeError::Block(_)), "{error}");
    let long = BlockInput { timestamp: 2_000, extra_data: vec![0; 33].into(), ..Default::default() };
    assert!(matches!(runtime.execute_block(&long, &[], |_| {}).unwrap_err(), RuntimeError::Block(_)));
    assert_eq!(runtime.latest().unwrap().0.number, 0);
    let error = runtime.init_genesis(&genesis()).unwrap_err();
    assert!(matches!(error, RuntimeError::GenesisNotEmpty(0)), "{error}");
}

#[test]
fn a_corrupt_module_abandons_the_block() {
    let runtime = chain();
    let module = Identity([0x42; 20]);
    // A module record whose code blob is missing: the store is damaged.
    let record = ModuleRecord { code_hash: [9; 32].into(), name: name("ghost"), version: 1 };
    let mut batch = WriteBatch::new();
    batch.put(Table::State, Namespace::wasm(module).record_key(), record.encode());
    runtime.store().backend().write(batch).unwrap();
    let (height, root) = (runtime.height(), runtime.root());
    let raws = [
        signed(1, transfer(0)),
        signed(2, tx(0, TxKind::Call(module.to_address()), Bytes::new(), U256::ZERO, 100_000)),
    ];
    let input = BlockInput { timestamp: 5_000, ..Default::default() };
    let error = runtime.execute_block(&input, &raws, |_| {}).unwrap_err();
    assert!(matches!(&error, RuntimeError::Execution { index: 1, .. }), "{error}");
    assert_eq!((runtime.height(), runtime.root()), (height, root), "nothing of the block was committed");
    assert_eq!(runtime.latest().unwrap().0.number, 0);
}

#[test]
fn a_reopened_store_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let first = {
        let runtime = Runtime::open(&path, ChainConfig::default()).unwrap();
        runtime.init_genesis(&genesis()).unwrap();
        next_block(&runtime, &[signed(1, transfer(0))])
    };
    let runtime = Runtime::open(&path, ChainConfig::default()).unwrap();
    assert_eq!(runtime.latest(), Some((first.header.clone(), first.hash)));
    let call = signed(1, tx(1, TxKind::Call(PARENT_HASH_RECORDER), Bytes::new(), U256::ZERO, 100_000));
    let second = next_block(&runtime, &[call]);
    assert_eq!(second.header.parent_hash, first.hash);
    let recorded = runtime.get(&Namespace::evm(PARENT_HASH_RECORDER).word_key(&[0; 32])).unwrap();
    assert_eq!(recorded.map(|word| B256::from_slice(&word)), Some(first.hash), "BLOCKHASH after a reopen");
    drop(runtime);
    let error = Runtime::open(&path, ChainConfig::new(1)).err().unwrap();
    assert!(matches!(error, RuntimeError::ChainMismatch { stored: CHAIN_ID, requested: 1 }), "{error}");
}

#[test]
fn a_read_only_call_runs_either_engine_on_the_latest_state_and_commits_nothing() {
    use xstate_chain::demo::{calldata, token_input, word, xtoken_bytecode};
    use xstate_chain::{CallFailure, CallInput};
    let runtime = chain();
    let deployer = dev_address(0);
    let mut code = xtoken_bytecode().to_vec();
    code.extend_from_slice(&word(deployer).to_be_bytes::<32>());
    let erc20 = deployer.create(0);
    let mint = calldata("mint(address,uint256)", &[word(dev_address(1)), U256::from(1_000)]);
    let outcome = next_block(
        &runtime,
        &[
            signed(0, tx(0, TxKind::Create, code.into(), U256::ZERO, 3_000_000)),
            signed(0, tx(1, TxKind::Call(erc20), mint, U256::ZERO, 200_000)),
            deploy_token(0, 2),
            token_call(1, 0, token_input(0x00, dev_address(1), None).slice(..1)),
            token_call(1, 1, token_input(0x01, dev_address(1), Some(42))),
        ],
    );
    assert!(outcome.rejected.is_empty() && outcome.receipts.iter().all(|receipt| receipt.status.is_success()));
    let (height, root) = (runtime.height(), runtime.root());

    let view = CallInput {
        to: Some(erc20),
        data: calldata("balanceOf(address)", &[word(dev_address(1))]),
        ..Default::default()
    };
    let result = runtime.call(&view).unwrap();
    assert_eq!(result.status, Status::Success);
    assert_eq!(U256::from_be_slice(&result.output), U256::from(1_000));
    assert!(result.gas_used > 21_000);

    // A transfer that succeeds in the call changes nothing committed and emits its log.
    let transfer = CallInput {
        from: dev_address(1),
        to: Some(erc20),
        data: calldata("transfer(address,uint256)", &[word(dev_address(2)), U256::from(10)]),
        ..Default::default()
    };
    let result = runtime.call(&transfer).unwrap();
    assert_eq!(result.status, Status::Success);
    assert_eq!(result.logs.len(), 1);
    assert_eq!(
        U256::from_be_slice(&runtime.call(&view).unwrap().output),
        U256::from(1_000),
        "the transfer was not kept"
    );
    let too_much = CallInput {
        data: calldata("transfer(address,uint256)", &[word(dev_address(2)), U256::from(5_000)]),
        ..transfer.clone()
    };
    assert!(matches!(runtime.call(&too_much).unwrap().status, Status::Revert(data) if data.len() == 4 + 3 * 32));
    assert!(matches!(
        runtime.call(&CallInput { gas: Some(20_000), ..transfer.clone() }),
        Err(CallFailure::Invalid(message)) if message.contains("gas")
    ));

    // The module answers a call read-only, and reverts as a transaction would.
    let module = token_identity().to_address();
    let balance = runtime
        .call(&CallInput { to: Some(module), data: token_input(0x03, dev_address(1), None), ..Default::default() })
        .unwrap();
    assert_eq!(balance.output.as_ref(), 42u64.to_be_bytes());
    let refused = runtime
        .call(&CallInput {
            from: dev_address(3),
            to: Some(module),
            data: token_input(0x02, dev_address(1), Some(1)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(refused.status, Status::Revert(Bytes::from_static(b"insufficient balance")));
    assert!(matches!(
        runtime.call(&CallInput { to: Some(module), value: U256::from(1), ..Default::default() }),
        Err(CallFailure::Invalid(message)) if message.starts_with("value transfer to a WASM module")
    ));
    assert_eq!((runtime.height(), runtime.root()), (height, root), "calls commit nothing");
}

#[test]
fn a_transaction_is_checked_against_the_next_block_without_running() {
    let runtime = chain();
    let check = |raw: Bytes| {
        let transaction = xstate_chain::SignedTransaction::decode(&raw, CHAIN_ID).unwrap();
        runtime.check_transaction(&transaction)
    };
    assert_eq!(check(signed(0, transfer(0))), Ok(()));
    assert!(matches!(check(signed(0, transfer(1))), Err(Rejection::NonceTooHigh { tx: 1, state: 0, .. })));
    let poor = tx(0, TxKind::Call(Address::repeat_byte(0x77)), Bytes::new(), U256::MAX >> 8, 21_000);
    assert!(matches!(check(signed(0, poor)), Err(Rejection::InsufficientFunds { .. })));
    let to_module = tx(0, TxKind::Call(WASM_DEPLOY_ADDRESS), Bytes::new(), U256::from(1), 100_000);
    assert!(matches!(check(signed(0, to_module)), Err(Rejection::ValueToModule { .. })));
    assert!(matches!(check(signed(CONTRACT_KEY, transfer(0))), Err(Rejection::SenderNotEoa { .. })));
    assert_eq!(runtime.height(), 1, "checking commits nothing");
}

#[test]
fn queries_are_answered_while_a_block_executes() {
    use xstate_chain::CallInput;
    let runtime = chain();
    let input =
        BlockInput { timestamp: runtime.latest_timestamp() + 12, beneficiary: BENEFICIARY, ..Default::default() };
    let raws: Vec<Bytes> = (0..3).map(|nonce| signed(0, transfer(nonce))).collect();
    let mut answered = Vec::new();
    std::thread::scope(|scope| {
        let runtime = &runtime;
        runtime
            .execute_block(&input, &raws, |done| {
                if done != 1 {
                    return;
                }
                // Mid-block, on another thread: the queries must answer from the latest committed
                // block instead of waiting for this one (a bound, not a timing: 60 s).
                let (sender, receiver) = std::sync::mpsc::channel();
                scope.spawn(move || {
                    let call = CallInput { to: Some(Address::repeat_byte(0x77)), ..Default::default() };
                    let answer = (
                        runtime.latest().map(|(header, _)| header.number),
                        runtime.state_height(None).unwrap(),
                        runtime.call(&call).unwrap().status,
                        nonce(runtime, dev_address(0)),
                    );
                    sender.send(answer).unwrap();
                });
                answered.push(
                    receiver.recv_timeout(std::time::Duration::from_secs(60)).expect("a query waited for the block"),
                );
            })
            .unwrap();
    });
    assert_eq!(answered, [(Some(0), 1, Status::Success, 0)], "the queries saw the latest committed block");
    assert_eq!(runtime.latest().unwrap().0.number, 1);
}

/// A panic while a block executes (here raised after the first transaction, between engine
/// calls) is caught at the runtime's boundary: the block is an error naming the panic, nothing of
/// it is committed (height, root, balances and nonce are as before), and the same runtime then
/// executes the same transactions as the next block.
#[test]
fn a_panic_during_a_block_abandons_the_block_and_the_runtime_goes_on() {
    let runtime = chain();
    let sender = dev_address(0);
    let (height, root, before) = (runtime.height(), runtime.root(), balance(&runtime, sender));
    let raws = [signed(0, transfer(0)), signed(0, transfer(1))];
    let input =
        BlockInput { timestamp: runtime.latest_timestamp() + 12, beneficiary: BENEFICIARY, ..Default::default() };
    let error = runtime
        .execute_block(&input, &raws, |done| {
            if done == 1 {
                panic!("injected fault after the first transaction");
            }
        })
        .unwrap_err();
    match &error {
        RuntimeError::Panic { during, message } => {
            assert_eq!(during, "block 1");
            assert_eq!(message, "injected fault after the first transaction");
        }
        other => panic!("expected a caught panic, got {other:?}"),
    }
    assert!(error.to_string().contains("nothing of it was committed"), "{error}");
    assert_eq!((runtime.height(), runtime.root(), balance(&runtime, sender)), (height, root, before));
    assert_eq!(nonce(&runtime, sender), 0);
    assert!(runtime.block(1).unwrap().is_none());

    let block = next_block(&runtime, &raws);
    assert_eq!(block.receipts.len(), 2);
    assert_eq!(nonce(&runtime, sender), 2);
}

/// A rewind to block 1 drops blocks 2 and 3 with their records: the state (an EVM balance and a
/// WASM module's deployment) is block 1's, the dropped transactions are unknown, the chain goes on
/// from block 1 with the same transactions giving the same block, and a reopened store agrees.
/// Rewinds after the latest block, or before the oldest retained state, are typed errors.
#[test]
fn a_rewind_drops_the_later_blocks_and_their_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let runtime = Runtime::open(&path, ChainConfig::default()).unwrap();
    runtime.init_genesis(&genesis()).unwrap();
    let first = next_block(&runtime, &[signed(1, transfer(0))]);
    let receiver = Address::repeat_byte(0x77);
    let (root, balance_after_first) = (runtime.root(), balance(&runtime, receiver));
    let second_raws = [signed(1, transfer(1)), deploy_token(2, 0)];
    let second = next_block(&runtime, &second_raws);
    let third = next_block(&runtime, &[signed(1, transfer(2))]);
    assert_eq!(balance(&runtime, receiver), balance_after_first + U256::from(2));
    let module_record = Namespace::wasm(token_identity()).record_key();
    assert!(runtime.get(&module_record).unwrap().is_some());

    assert_eq!(runtime.rewind_to(1).unwrap(), 3);
    let check = |runtime: &Runtime| {
        assert_eq!(runtime.latest(), Some((first.header.clone(), first.hash)));
        assert_eq!((runtime.height(), runtime.root()), (2, root));
        assert_eq!(balance(runtime, receiver), balance_after_first);
        assert_eq!(nonce(runtime, dev_address(1)), 1);
        assert_eq!(runtime.get(&module_record).unwrap(), None, "the module deployed in block 2 is gone");
        assert_eq!(runtime.block(2).unwrap(), None);
        assert_eq!(runtime.chain().number(&third.hash).unwrap(), None);
        assert_eq!(runtime.receipt(&second.receipts[0].hash).unwrap(), None);
        assert_eq!(runtime.receipt(&first.receipts[0].hash).unwrap().map(|(block, _)| block.hash), Some(first.hash));
    };
    check(&runtime);
    assert!(matches!(runtime.rewind_to(5), Err(RuntimeError::UnknownBlock { number: 5, latest: 1 })));
    drop(runtime);
    let runtime = Runtime::open(&path, ChainConfig::default()).unwrap();
    check(&runtime);
    let again = runtime
        .execute_block(
            &BlockInput { timestamp: second.header.timestamp, beneficiary: BENEFICIARY, ..Default::default() },
            &second_raws,
            |_| {},
        )
        .unwrap();
    assert_eq!(again.hash, second.hash, "the same block on the same parent");
    assert_eq!(again.header.state_root, second.header.state_root);

    // A store retaining two roots cannot go back three blocks.
    let short = Runtime::new(
        kv_core::Store::in_memory_with(kv_core::StoreConfig { retained_roots: 2, rewindable: true }),
        ChainConfig::default(),
    )
    .unwrap();
    short.init_genesis(&genesis()).unwrap();
    for nonce in 0..3 {
        next_block(&short, &[signed(1, transfer(nonce))]);
    }
    let error = short.rewind_to(0).unwrap_err();
    assert!(matches!(error, RuntimeError::Store(kv_core::StoreError::CannotRewind { .. })), "{error}");
    assert_eq!(short.latest().map(|(header, _)| header.number), Some(3));
}
