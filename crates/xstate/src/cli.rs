//! Argument parsing, store opening, and the readable and JSON reports of each command.

use alloy_primitives::{Address, B256, U256, hex};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kv_core::{
    AccountRecord, BackendError, Identity, KeyLayout, KeyProof, ModuleName, ModuleRecord, Namespace, StateKey,
    StoreError,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use xstate_chain::{
    BlockFile, BlockInput, ChainConfig, Created, DEFAULT_CHAIN_ID, Receipt, RejectedTransaction, Runtime, RuntimeError,
    Status, StoredBlock, demo, dev,
};

/// The file inside a store directory.
const STORE_FILE: &str = "state.redb";
/// The format tag of proof files.
const PROOF_FORMAT: &str = "xstate-proof/2";

#[derive(Parser)]
#[command(name = "xstate", version, about = "WASM and EVM state under one root: run blocks, inspect, prove and verify")]
struct Cli {
    /// Print machine-readable JSON instead of a report.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the built-in scenario: both engines, cross reads both ways, one block, one root.
    Demo {
        /// Keep the store in this directory (default: a temporary one, removed on exit).
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Execute a block file as the next block of a store (created if absent, with the file's
    /// genesis or anvil's) and print its header and receipts.
    Run {
        /// The block file (see docs/block-format.md).
        block: PathBuf,
        /// The store directory.
        #[arg(long)]
        db: PathBuf,
        /// The chain id of a new store (default: the block file's, else 31337).
        #[arg(long)]
        chain_id: Option<u64>,
    },
    /// Print block N (or `latest`): its header and transactions.
    Block {
        /// A block number, or `latest`.
        number: String,
        /// The store directory.
        #[arg(long)]
        db: PathBuf,
    },
    /// Print the receipt of the transaction with hash HASH.
    Receipt {
        /// The transaction hash.
        hash: String,
        /// The store directory.
        #[arg(long)]
        db: PathBuf,
    },
    /// Print the state root after the latest block, or after block N (`--block N`), as the
    /// block's header records it.
    Root {
        /// The store directory.
        #[arg(long)]
        db: PathBuf,
        /// A block number whose state is retained (default: the latest).
        #[arg(long)]
        block: Option<u64>,
    },
    /// Print the value of a key.
    Get {
        /// The store directory.
        #[arg(long)]
        db: PathBuf,
        /// 0x-hex of an encoded key, or evm-account:ADDR, evm-slot:ADDR:SLOT, wasm-slot:ID:N,
        /// wasm-key:ID:HEX, module:ID, code:HASH.
        key: String,
    },
    /// Write a proof of a key's value (or absence) to a file, or with `--eip1186 ADDRESS [SLOT...]`
    /// print exactly the JSON `eth_getProof` returns for that account and those slots.
    Prove {
        /// The store directory.
        #[arg(long)]
        db: PathBuf,
        /// The key, as for `get`; with `--eip1186`, an EVM address followed by storage slots.
        #[arg(required = true, num_args = 1..)]
        key: Vec<String>,
        /// Print an EIP-1186 account proof (`eth_getProof`'s result) on stdout.
        #[arg(long)]
        eip1186: bool,
        /// The proof file to write (required without `--eip1186`).
        #[arg(long, required_unless_present = "eip1186")]
        out: Option<PathBuf>,
        /// A block number whose state is retained (default: the latest).
        #[arg(long)]
        block: Option<u64>,
    },
    /// Verify a proof file against a root you trust: `--root ROOT` (from a header you trust), or
    /// `--db DIR [--block N]` (a store you trust). Without either, only checks that the file is
    /// consistent with the root written in it, and says so.
    Verify {
        /// The proof file.
        file: PathBuf,
        /// The root to verify against.
        #[arg(long, conflicts_with = "db")]
        root: Option<String>,
        /// A store whose block header gives the root (with `--block`, default the latest block).
        #[arg(long)]
        db: Option<PathBuf>,
        /// The block of `--db` whose state root the proof is checked against.
        #[arg(long, requires = "db")]
        block: Option<u64>,
    },
    /// Write the witness of block N (everything it read, reth's `ExecutionWitness` JSON) to
    /// FILE, and the block itself (header and transactions) to FILE with `.block.json` appended
    /// (or `--block-out`): the two files `verify-block` takes.
    Witness {
        /// The block number (its parent state must still be retained).
        number: u64,
        /// The store directory.
        #[arg(long)]
        db: PathBuf,
        /// The witness file to write.
        #[arg(long)]
        out: PathBuf,
        /// The block file to write (default: the witness file's name with `.block.json` appended).
        #[arg(long)]
        block_out: Option<PathBuf>,
    },
    /// Re-execute a block from its witness alone and check its state root, receipts root, gas
    /// and header; needs no store.
    VerifyBlock {
        /// The block file (`xstate witness` writes it).
        block: PathBuf,
        /// The witness file.
        witness: PathBuf,
    },
    /// Serve the chain over Ethereum JSON-RPC (HTTP, batches), as anvil does: a store in a data
    /// directory (created with anvil's genesis if absent, reopened with its history otherwise),
    /// the dev accounts and keys printed at start, a block per transaction (or every
    /// `--block-time` seconds). SIGINT or SIGTERM finish the block in progress and close the store.
    Node {
        /// The store directory.
        #[arg(long, default_value = "xstate-data")]
        db: PathBuf,
        /// The address to listen on (port 0: a free port, printed at start).
        #[arg(long, default_value = "127.0.0.1:8545")]
        http: std::net::SocketAddr,
        /// The chain id of a new store (default: the store's, else 31337).
        #[arg(long)]
        chain_id: Option<u64>,
        /// Mine a block every SECS seconds instead of one per transaction.
        #[arg(long, value_name = "SECS")]
        block_time: Option<u64>,
        /// The timestamp of a new store's genesis block (default: now).
        #[arg(long)]
        timestamp: Option<u64>,
    },
    /// Print the synthetic address of WASM module NAME at VERSION.
    Identity {
        /// Module name (1-64 bytes of [a-z0-9_-]).
        name: String,
        /// Module version.
        version: u32,
        /// The chain id.
        #[arg(long, default_value_t = DEFAULT_CHAIN_ID)]
        chain_id: u64,
    },
}

/// A failure, reported as one line on stderr.
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Self(error.to_string())
    }
}

type CliResult = Result<(), Failure>;

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let result = match cli.command {
        Command::Demo { db } => demo_command(db, json),
        Command::Run { block, db, chain_id } => run_command(&block, &db, chain_id, json),
        Command::Block { number, db } => block_command(&db, &number, json),
        Command::Receipt { hash, db } => receipt_command(&db, &hash, json),
        Command::Root { db, block } => root_command(&db, block, json),
        Command::Get { db, key } => get_command(&db, &key, json),
        Command::Prove { db, key, eip1186: true, block, .. } => eip1186_command(&db, &key, block),
        Command::Prove { db, key, out, block, .. } => match (key.as_slice(), out) {
            ([key], Some(out)) => prove_command(&db, key, &out, block, json),
            _ => Err(Failure("prove takes one key (and --out FILE); several arguments need --eip1186".into())),
        },
        Command::Verify { file, root, db, block } => {
            let trusted = match (root, db) {
                (Some(root), _) => TrustedRoot::Given(root),
                (None, Some(db)) => TrustedRoot::Store { db, block },
                (None, None) => TrustedRoot::None,
            };
            verify_command(&file, trusted, json)
        }
        Command::Witness { number, db, out, block_out } => open(&db, None, false).and_then(|runtime| {
            crate::stateless::witness_command(&runtime, number, &out, block_out, json).map_err(Failure)
        }),
        Command::VerifyBlock { block, witness } => {
            crate::stateless::verify_block_command(&block, &witness, json).map_err(Failure)
        }
        Command::Node { db, http, chain_id, block_time, timestamp } => {
            node_command(&db, http, chain_id, block_time, timestamp)
        }
        Command::Identity { name, version, chain_id } => identity_command(&name, version, chain_id, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("xstate: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Explains store errors in terms of the directory the user named.
fn store_failure(dir: &Path, error: RuntimeError) -> Failure {
    match error {
        RuntimeError::Store(StoreError::Backend(BackendError::AlreadyOpen)) => {
            Failure(format!("the store at {} is in use by another process", dir.display()))
        }
        RuntimeError::Store(StoreError::Backend(BackendError::Corrupt(reason)) | StoreError::Corrupt(reason)) => {
            Failure(format!("the store at {} is corrupt or not an xstate store: {reason}", dir.display()))
        }
        RuntimeError::ChainMismatch { stored, requested } => {
            Failure(format!("the store at {} belongs to chain {stored}, not chain {requested}", dir.display()))
        }
        other => Failure(format!("store at {}: {other}", dir.display())),
    }
}

/// Opens the store in `dir`. Without `create`, a missing store is an error.
fn open(dir: &Path, chain_id: Option<u64>, create: bool) -> Result<Runtime, Failure> {
    let file = dir.join(STORE_FILE);
    if !file.exists() {
        if !create {
            return Err(Failure(format!("no store at {} (xstate run creates one)", dir.display())));
        }
        std::fs::create_dir_all(dir).map_err(|error| Failure(format!("cannot create {}: {error}", dir.display())))?;
    }
    let store =
        kv_core::Store::open_redb(&file, Runtime::store_config()).map_err(|error| store_failure(dir, error.into()))?;
    // Without a requested chain, the store's own (or, for a new store, the default) is taken;
    // with one, the runtime refuses a store created for another chain.
    let chain_id = match chain_id {
        Some(requested) => requested,
        None => {
            Runtime::stored_chain_id(&store).map_err(|error| store_failure(dir, error))?.unwrap_or(DEFAULT_CHAIN_ID)
        }
    };
    Runtime::new(store, ChainConfig::new(chain_id)).map_err(|error| store_failure(dir, error))
}

fn node_command(
    dir: &Path,
    http: std::net::SocketAddr,
    chain_id: Option<u64>,
    block_time: Option<u64>,
    timestamp: Option<u64>,
) -> CliResult {
    if block_time == Some(0) {
        return Err(Failure("--block-time must be at least 1 second".into()));
    }
    let runtime = open(dir, chain_id, true)?;
    let genesis = match runtime.latest() {
        Some((header, hash)) => format!("reopened at block {} ({hash})", header.number),
        None => {
            let outcome = runtime
                .init_genesis(&dev::anvil_genesis(timestamp.unwrap_or_else(now)))
                .map_err(|error| store_failure(dir, error))?;
            format!("block 0 ({}), state root {}", outcome.hash, outcome.header.state_root)
        }
    };
    println!("Available Accounts\n==================");
    for index in 0..dev::DEV_ACCOUNTS {
        println!("({index}) {} (10000.000000000000000000 ETH)", dev::dev_address(index));
    }
    println!("\nPrivate Keys\n==================");
    for index in 0..dev::DEV_ACCOUNTS {
        println!("({index}) {}", dev::dev_signer(index).to_bytes());
    }
    println!("\nWallet\n==================\nMnemonic:          {}\nDerivation path:   m/44'/60'/0'/0/", dev::MNEMONIC);
    println!("\nChain ID:          {}", runtime.chain_id());
    println!("Store:             {}", dir.display());
    println!("Genesis:           {genesis}");
    println!(
        "Mining:            {}",
        block_time.map_or_else(|| "a block per transaction".to_owned(), |secs| format!("a block every {secs} s"))
    );
    let config = xstate_node::NodeConfig {
        http,
        block_time: block_time.map(std::time::Duration::from_secs),
        ..Default::default()
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure(format!("cannot start the async runtime: {error}")))?;
    tokio.block_on(async move {
        let node = xstate_node::Node::start(runtime, config).await?;
        println!("\nListening on {}", node.address());
        let signal = shutdown_signal().await;
        println!("\n{signal}: finishing the block in progress and closing the store");
        if let Some(runtime) = node.stop().await {
            let latest = runtime.latest().map_or(0, |(header, _)| header.number);
            drop(runtime);
            println!("Stopped at block {latest}; the store is closed");
        }
        Ok::<(), Failure>(())
    })
}

/// Waits for SIGINT or SIGTERM and names it.
async fn shutdown_signal() -> &'static str {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            eprintln!("xstate node: cannot watch SIGTERM ({error}); SIGINT still stops the node");
            return match tokio::signal::ctrl_c().await {
                Ok(()) => "SIGINT",
                Err(_) => "signal error",
            };
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

/// Seconds since the epoch.
fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

fn progress_bar(length: usize) -> ProgressBar {
    let bar = ProgressBar::new(length as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} transactions")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

fn status_text(status: &Status) -> (String, String) {
    match status {
        Status::Success => ("success".into(), String::new()),
        Status::Revert(data) => ("revert".into(), revert_reason(data)),
        Status::Failed(reason) => ("failed".into(), reason.clone()),
    }
}

/// Revert data as text when it is printable (WASM modules revert with messages), else hex.
fn revert_reason(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) if !text.is_empty() && text.chars().all(|c| !c.is_control()) => format!("\"{text}\""),
        _ => hex::encode_prefixed(data),
    }
}

fn created_text(created: Option<Created>) -> Option<String> {
    created.map(|created| match created {
        Created::Contract(address) => format!("contract {address}"),
        Created::Module(identity) => format!("module {identity}"),
    })
}

/// A receipt as JSON, with the field names of `eth_getTransactionReceipt` where Ethereum has one
/// (`moduleIdentity` is this chain's own).
fn receipt_json(receipt: &Receipt, block: Option<(u64, B256)>) -> Value {
    let (status, reason) = status_text(&receipt.status);
    let envelope = receipt.envelope();
    json!({
        "transactionHash": receipt.hash.to_string(),
        "transactionIndex": receipt.index,
        "blockNumber": block.map(|(number, _)| number),
        "blockHash": block.map(|(_, hash)| hash.to_string()),
        "type": receipt.tx_type,
        "kind": receipt.kind.as_str(),
        "from": receipt.sender.to_string(),
        "to": receipt.to.map(|to| to.to_string()),
        "nonce": receipt.nonce,
        "status": status,
        "reason": if reason.is_empty() { Value::Null } else { Value::from(reason) },
        "gasUsed": receipt.gas_used,
        "cumulativeGasUsed": receipt.cumulative_gas_used,
        "effectiveGasPrice": receipt.effective_gas_price.to_string(),
        "fee": receipt.fee().to_string(),
        "contractAddress": match receipt.created { Some(Created::Contract(address)) => Value::from(address.to_string()), _ => Value::Null },
        "moduleIdentity": match receipt.created { Some(Created::Module(identity)) => Value::from(identity.to_string()), _ => Value::Null },
        "output": hex::encode_prefixed(&receipt.output),
        "logs": receipt.logs.iter().map(|log| json!({
            "address": log.address.to_string(),
            "topics": log.topics().iter().map(|topic| topic.to_string()).collect::<Vec<_>>(),
            "data": hex::encode_prefixed(&log.data.data),
        })).collect::<Vec<_>>(),
        "logsBloom": hex::encode_prefixed(envelope.logs_bloom()),
    })
}

fn rejected_json(rejected: &RejectedTransaction) -> Value {
    json!({
        "position": rejected.position,
        "hash": rejected.hash.map(|hash| hash.to_string()),
        "from": rejected.sender.map(|sender| sender.to_string()),
        "reason": rejected.reason.to_string(),
    })
}

fn print_receipts(receipts: &[Receipt]) {
    for receipt in receipts {
        let (status, reason) = status_text(&receipt.status);
        let mut line = format!(
            "  #{:<3} {:<11} {:<7} from {} nonce {:<3} gas {:>9}  fee {} wei",
            receipt.index,
            receipt.kind.as_str(),
            status,
            receipt.sender,
            receipt.nonce,
            receipt.gas_used,
            receipt.fee()
        );
        if let Some(created) = created_text(receipt.created) {
            line.push_str(&format!("  created {created}"));
        }
        if !receipt.logs.is_empty() {
            line.push_str(&format!("  logs {}", receipt.logs.len()));
        }
        if !receipt.output.is_empty() && receipt.output.len() <= 32 {
            line.push_str(&format!("  output {}", hex::encode_prefixed(&receipt.output)));
        }
        if !reason.is_empty() {
            line.push_str(&format!("  {reason}"));
        }
        println!("{line}");
    }
}

/// A header as JSON, with `eth_getBlockByNumber`'s field names (alloy's serialisation) and the
/// block hash.
fn header_json(header: &alloy_consensus::Header, hash: B256) -> Result<Value, Failure> {
    let mut value = serde_json::to_value(header)?;
    if let Value::Object(fields) = &mut value {
        fields.insert("hash".into(), Value::from(hash.to_string()));
    }
    Ok(value)
}

fn print_header(header: &alloy_consensus::Header, hash: B256) {
    println!("block {}  hash {hash}", header.number);
    println!("  parent      {}", header.parent_hash);
    println!("  state root  {}", header.state_root);
    println!("  tx root     {}", header.transactions_root);
    println!("  receipts    {}", header.receipts_root);
    println!("  timestamp   {}  beneficiary {}", header.timestamp, header.beneficiary);
    println!(
        "  gas used    {} of {}  base fee {} wei",
        header.gas_used,
        header.gas_limit,
        header.base_fee_per_gas.unwrap_or_default()
    );
}

fn run_command(block: &Path, dir: &Path, chain_id: Option<u64>, json: bool) -> CliResult {
    let text =
        std::fs::read_to_string(block).map_err(|error| Failure(format!("cannot read {}: {error}", block.display())))?;
    let file = BlockFile::parse(&text).map_err(|error| Failure(format!("{}: {error}", block.display())))?;
    if let (Some(flag), Some(in_file)) = (chain_id, file.chain_id)
        && flag != in_file
    {
        return Err(Failure(format!("--chain-id {flag} contradicts the block file's chain_id {in_file}")));
    }
    let runtime = open(dir, chain_id.or(file.chain_id), true)?;
    let genesis = match (runtime.latest(), &file.genesis) {
        (None, genesis) => {
            let genesis = genesis.clone().unwrap_or_else(|| dev::anvil_genesis(now()));
            Some(runtime.init_genesis(&genesis).map_err(|error| store_failure(dir, error))?)
        }
        (Some((header, _)), Some(_)) => return Err(store_failure(dir, RuntimeError::GenesisNotEmpty(header.number))),
        (Some(_), None) => None,
    };
    let raws = dev::raw_transactions(&runtime, &file.transactions).map_err(|error| store_failure(dir, error))?;
    let input = BlockInput {
        timestamp: file.block.timestamp.unwrap_or_else(|| now().max(runtime.latest_timestamp() + 1)),
        beneficiary: file.block.beneficiary.unwrap_or_default(),
        extra_data: file.block.extra_data.clone().unwrap_or_default(),
        ..Default::default()
    };
    let bar = progress_bar(raws.len());
    let outcome = runtime
        .execute_block(&input, &raws, |done| bar.set_position(done as u64))
        .map_err(|error| store_failure(dir, error))?;
    bar.finish_and_clear();
    let block_id = Some((outcome.header.number, outcome.hash));
    for rejected in &outcome.rejected {
        eprintln!("xstate: transaction {} rejected: {}", rejected.position, rejected.reason);
    }
    if json {
        println!(
            "{}",
            json!({
                "genesis": genesis.as_ref().map(|genesis| json!({"hash": genesis.hash.to_string(), "root": genesis.header.state_root.to_string()})),
                "number": outcome.header.number,
                "hash": outcome.hash.to_string(),
                "height": outcome.commit.height,
                "root": outcome.commit.root.to_string(),
                "header": header_json(&outcome.header, outcome.hash)?,
                "receipts": outcome.receipts.iter().map(|receipt| receipt_json(receipt, block_id)).collect::<Vec<_>>(),
                "rejected": outcome.rejected.iter().map(rejected_json).collect::<Vec<_>>(),
            })
        );
    } else {
        if let Some(genesis) = &genesis {
            println!("genesis block 0  hash {}  root {}", genesis.hash, genesis.header.state_root);
        }
        print_header(&outcome.header, outcome.hash);
        print_receipts(&outcome.receipts);
        for rejected in &outcome.rejected {
            println!("  rejected transaction {}: {}", rejected.position, rejected.reason);
        }
    }
    Ok(())
}

fn stored_block(runtime: &Runtime, dir: &Path, number: u64) -> Result<StoredBlock, Failure> {
    runtime.block(number).map_err(|error| store_failure(dir, error))?.ok_or_else(|| {
        let latest = runtime.latest().map_or_else(|| "none".to_owned(), |(header, _)| header.number.to_string());
        Failure(format!("no block {number} (the latest is {latest})"))
    })
}

fn block_command(dir: &Path, number: &str, json: bool) -> CliResult {
    let runtime = open(dir, None, false)?;
    let number = match number {
        "latest" => runtime
            .latest()
            .map(|(header, _)| header.number)
            .ok_or_else(|| Failure("the chain has no blocks".into()))?,
        text => text.parse::<u64>().map_err(|_| Failure(format!("`{text}` is not a block number or `latest`")))?,
    };
    let block = stored_block(&runtime, dir, number)?;
    let block_id = Some((number, block.hash));
    if json {
        let mut value = header_json(&block.header, block.hash)?;
        if let Value::Object(fields) = &mut value {
            fields.insert(
                "transactions".into(),
                Value::from(
                    block.transactions.iter().map(|transaction| transaction.hash().to_string()).collect::<Vec<_>>(),
                ),
            );
            fields.insert(
                "receipts".into(),
                Value::from(block.receipts.iter().map(|receipt| receipt_json(receipt, block_id)).collect::<Vec<_>>()),
            );
        }
        println!("{value}");
    } else {
        print_header(&block.header, block.hash);
        print_receipts(&block.receipts);
    }
    Ok(())
}

fn receipt_command(dir: &Path, hash: &str, json: bool) -> CliResult {
    let runtime = open(dir, None, false)?;
    let hash: B256 = hash.parse().map_err(|_| Failure(format!("`{hash}` is not a 32-byte transaction hash")))?;
    let (block, receipt) = runtime
        .receipt(&hash)
        .map_err(|error| store_failure(dir, error))?
        .ok_or_else(|| Failure(format!("no transaction {hash} in this chain")))?;
    if json {
        println!("{}", receipt_json(&receipt, Some((block.header.number, block.hash))));
    } else {
        println!("transaction {hash}  in block {} ({}) at {}", block.header.number, block.hash, receipt.index);
        print_receipts(std::slice::from_ref(&receipt));
        println!(
            "  effective gas price {} wei, cumulative gas {}",
            receipt.effective_gas_price, receipt.cumulative_gas_used
        );
    }
    Ok(())
}

fn root_command(dir: &Path, block: Option<u64>, json: bool) -> CliResult {
    let runtime = open(dir, None, false)?;
    let number = block_number(&runtime, block)?;
    let root = runtime.root_at(Some(number)).map_err(|error| store_failure(dir, error))?;
    if json {
        println!("{}", json!({ "block": number, "root": root.to_string(), "chain_id": runtime.chain_id() }));
    } else {
        println!("block {number}  root {root}");
    }
    Ok(())
}

/// The block a query names: `block`, or the latest when `None` (the runtime refuses a block
/// after the latest).
fn block_number(runtime: &Runtime, block: Option<u64>) -> Result<u64, Failure> {
    block
        .or_else(|| runtime.latest().map(|(header, _)| header.number))
        .ok_or_else(|| Failure("the store has no blocks yet".into()))
}

/// Parses a key written as hex or as one of the named forms.
fn parse_key(text: &str) -> Result<Vec<u8>, Failure> {
    let parts: Vec<&str> = text.split(':').collect();
    let identity = |text: &str| text.parse::<Identity>().map_err(|error| Failure(format!("`{text}`: {error}")));
    let number = |text: &str| xstate_chain::transaction::parse_number(text).map_err(Failure);
    let key = match parts.as_slice() {
        [hex] if hex.starts_with("0x") => xstate_chain::transaction::parse_hex(hex).map_err(Failure)?.to_vec(),
        ["evm-account", address] => Namespace::evm(identity(address)?.to_address()).record_key().to_vec(),
        ["evm-slot", address, slot] => {
            Namespace::evm(identity(address)?.to_address()).word_key(&number(slot)?.to_be_bytes::<32>()).to_vec()
        }
        ["wasm-slot", module, slot] => {
            let slot = u64::try_from(number(slot)?).map_err(|_| Failure(format!("slot `{slot}` is not a u64")))?;
            Namespace::wasm(identity(module)?).slot_key(slot).to_vec()
        }
        ["wasm-key", module, user_key] => {
            let user_key = xstate_chain::transaction::parse_hex(user_key).map_err(Failure)?;
            StateKey::WasmStorage(identity(module)?, user_key.to_vec()).encode()?
        }
        ["module", module] => Namespace::wasm(identity(module)?).record_key().to_vec(),
        ["code", hash] => {
            let hash: B256 = hash.parse().map_err(|_| Failure(format!("`{hash}` is not a 32-byte hash")))?;
            StateKey::Code(hash).encode()?
        }
        _ => {
            return Err(Failure(format!(
                "cannot read key `{text}`: give 0x-hex, or evm-account:ADDR, evm-slot:ADDR:SLOT, wasm-slot:ID:N, wasm-key:ID:HEX, module:ID or code:HASH"
            )));
        }
    };
    StateKey::decode(&key).map_err(|error| Failure(format!("invalid key {}: {error}", hex::encode_prefixed(&key))))?;
    Ok(key)
}

/// A readable form of a value, by the layout of its key.
fn describe(key: &[u8], value: &[u8]) -> String {
    match KeyLayout::of(key) {
        Ok(KeyLayout::EvmAccount) => AccountRecord::decode(value)
            .map(|record| {
                format!("account: nonce {}, balance {}, code hash {}", record.nonce, record.balance, record.code_hash)
            })
            .unwrap_or_else(|error| error.to_string()),
        Ok(KeyLayout::EvmStorage) if value.len() == 32 => format!("word {}", U256::from_be_slice(value)),
        Ok(KeyLayout::WasmModule) => ModuleRecord::decode(value)
            .map(|record| format!("module {} v{}, code hash {}", record.name, record.version, record.code_hash))
            .unwrap_or_else(|error| error.to_string()),
        Ok(KeyLayout::WasmStorage) if value.len() == 8 => {
            format!("u64 {}", u64::from_be_bytes(value.try_into().unwrap_or_default()))
        }
        Ok(KeyLayout::Code) => format!("code, {} bytes", value.len()),
        _ => format!("{} bytes", value.len()),
    }
}

fn get_command(dir: &Path, key: &str, json: bool) -> CliResult {
    let runtime = open(dir, None, false)?;
    let key = parse_key(key)?;
    let value = runtime.get(&key).map_err(|error| store_failure(dir, error))?;
    if json {
        println!(
            "{}",
            json!({ "key": hex::encode_prefixed(&key), "value": value.as_ref().map(hex::encode_prefixed), "block": runtime.latest().map(|(header, _)| header.number) })
        );
    } else {
        match value {
            Some(value) => println!("{}  ({})", hex::encode_prefixed(&value), describe(&key, &value)),
            None => println!("absent"),
        }
    }
    Ok(())
}

fn prove_command(dir: &Path, key: &str, out: &Path, block: Option<u64>, json: bool) -> CliResult {
    let runtime = open(dir, None, false)?;
    let key = parse_key(key)?;
    let number = block_number(&runtime, block)?;
    // The trie's leaves hold the values, so the proof answers at any retained block.
    let (proof, value) = runtime.prove_value(&key, Some(number)).map_err(|error| store_failure(dir, error))?;
    let root = runtime.root_at(Some(number)).map_err(|error| store_failure(dir, error))?;
    kv_core::verify(root, &key, value.as_deref(), &proof)
        .map_err(|error| Failure(format!("the fresh proof does not verify: {error}")))?;
    let file = json!({
        "format": PROOF_FORMAT,
        "root": root.to_string(),
        "block": number,
        "key": hex::encode_prefixed(&key),
        "value": value.as_ref().map(hex::encode_prefixed),
        "proof": hex::encode_prefixed(proof.encode()),
    });
    std::fs::write(out, serde_json::to_string_pretty(&file)? + "\n")
        .map_err(|error| Failure(format!("cannot write {}: {error}", out.display())))?;
    let what = if value.is_some() { "inclusion" } else { "exclusion" };
    if json {
        println!(
            "{}",
            json!({ "written": out.display().to_string(), "kind": what, "bytes": proof.encoded_len(), "root": root.to_string() })
        );
    } else {
        println!(
            "wrote {what} proof of {} ({} bytes) to {}",
            hex::encode_prefixed(&key),
            proof.encoded_len(),
            out.display()
        );
    }
    Ok(())
}

/// `xstate prove --eip1186 ADDRESS [SLOT...]`: the EIP-1186 proof, as `eth_getProof` prints it.
fn eip1186_command(dir: &Path, arguments: &[String], block: Option<u64>) -> CliResult {
    let (address, slots) = arguments.split_first().ok_or_else(|| Failure("--eip1186 needs an address".into()))?;
    let address: Address = address.parse().map_err(|_| Failure(format!("`{address}` is not a 20-byte hex address")))?;
    let slots = slots
        .iter()
        .map(|slot| {
            parse_slot(slot)
                .ok_or_else(|| Failure(format!("`{slot}` is not a storage slot (hex or decimal, at most 32 bytes)")))
        })
        .collect::<Result<Vec<B256>, Failure>>()?;
    let runtime = open(dir, None, false)?;
    let number = block_number(&runtime, block)?;
    let proof = runtime.eip1186_proof(address, &slots, Some(number)).map_err(|error| store_failure(dir, error))?;
    let root = runtime.root_at(Some(number)).map_err(|error| store_failure(dir, error))?;
    kv_core::verify_account_proof(root, &proof)
        .map_err(|error| Failure(format!("the fresh proof does not verify: {error}")))?;
    println!("{}", serde_json::to_string_pretty(&xstate_node::account_proof_response(&proof))?);
    Ok(())
}

/// A storage slot as `eth_getProof` takes one: 0x-hex of up to 32 bytes, or a decimal number.
fn parse_slot(text: &str) -> Option<B256> {
    if let Some(digits) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        let bytes = hex::decode(if digits.len() % 2 == 1 { format!("0{digits}") } else { digits.to_owned() }).ok()?;
        (bytes.len() <= 32).then(|| B256::left_padding_from(&bytes))
    } else {
        text.parse::<U256>().ok().map(B256::from)
    }
}

fn hex_field(file: &Value, field: &str) -> Result<Option<Vec<u8>>, Failure> {
    match file.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => xstate_chain::transaction::parse_hex(text)
            .map(|bytes| Some(bytes.to_vec()))
            .map_err(|reason| Failure(format!("proof file field `{field}`: {reason}"))),
        Some(_) => Err(Failure(format!("proof file field `{field}`: expected a hex string"))),
    }
}

/// Where `xstate verify` takes the root it checks a proof against.
enum TrustedRoot {
    /// `--root`: a root the user took from a header they trust.
    Given(String),
    /// `--db [--block]`: the state root in a block header of a store the user trusts.
    Store { db: PathBuf, block: Option<u64> },
    /// Neither: only the root written in the proof file, which proves nothing to someone who does
    /// not trust the file.
    None,
}

fn verify_command(path: &Path, trusted: TrustedRoot, json: bool) -> CliResult {
    let text =
        std::fs::read_to_string(path).map_err(|error| Failure(format!("cannot read {}: {error}", path.display())))?;
    let file: Value = serde_json::from_str(&text)
        .map_err(|error| Failure(format!("{} is not a proof file: {error}", path.display())))?;
    if file.get("format").and_then(Value::as_str) != Some(PROOF_FORMAT) {
        return Err(Failure(format!("{} is not a proof file (expected format {PROOF_FORMAT})", path.display())));
    }
    let parse_root = |text: &str| text.parse::<B256>().map_err(|_| Failure(format!("`{text}` is not a 32-byte root")));
    let (root, source, authenticated) = match trusted {
        TrustedRoot::Given(text) => (parse_root(&text)?, "the root given with --root".to_owned(), true),
        TrustedRoot::Store { db, block } => {
            let runtime = open(&db, None, false)?;
            let number = block_number(&runtime, block)?;
            let root = runtime.root_at(Some(number)).map_err(|error| store_failure(&db, error))?;
            (root, format!("block {number}'s state root in {}", db.display()), true)
        }
        TrustedRoot::None => {
            let text = file
                .get("root")
                .and_then(Value::as_str)
                .ok_or_else(|| Failure("proof file field `root`: missing".into()))?;
            (parse_root(text)?, "the root written in the proof file".to_owned(), false)
        }
    };
    let key = hex_field(&file, "key")?.ok_or_else(|| Failure("proof file field `key`: missing".into()))?;
    let value = hex_field(&file, "value")?;
    let proof_bytes = hex_field(&file, "proof")?.ok_or_else(|| Failure("proof file field `proof`: missing".into()))?;
    let proof =
        KeyProof::decode(&proof_bytes).map_err(|error| Failure(format!("proof file field `proof`: {error}")))?;
    kv_core::verify(root, &key, value.as_deref(), &proof)
        .map_err(|error| Failure(format!("proof does NOT verify against {root} ({source}): {error}")))?;
    if json {
        println!(
            "{}",
            json!({
                "verified": true,
                "root": root.to_string(),
                "root_source": source,
                "root_authenticated": authenticated,
                "key": hex::encode_prefixed(&key),
                "value": value.as_ref().map(hex::encode_prefixed),
            })
        );
    } else {
        match value {
            Some(value) => println!(
                "verified: {} = {} under root {root}",
                hex::encode_prefixed(&key),
                hex::encode_prefixed(&value)
            ),
            None => println!("verified: {} is absent under root {root}", hex::encode_prefixed(&key)),
        }
        if authenticated {
            println!("the root is {source}");
        } else {
            println!(
                "NOT checked: where the root comes from. It is the root written in the proof file, so this only \
                 shows the file is consistent; pass --root with a root from a header you trust, or --db DIR \
                 [--block N] for a store you trust"
            );
        }
    }
    Ok(())
}

fn identity_command(name: &str, version: u32, chain_id: u64, json: bool) -> CliResult {
    let name = ModuleName::new(name)?;
    let identity = kv_core::module_identity(chain_id, &name, version);
    if json {
        println!(
            "{}",
            json!({ "name": name.as_str(), "version": version, "chain_id": chain_id, "identity": identity.to_string() })
        );
    } else {
        println!("{identity}");
    }
    Ok(())
}

fn demo_command(db: Option<PathBuf>, json: bool) -> CliResult {
    let temporary;
    let is_temporary = db.is_none();
    let dir = match db {
        Some(dir) => dir,
        None => {
            temporary = tempfile::tempdir()?;
            temporary.path().to_path_buf()
        }
    };
    let runtime = open(&dir, Some(DEFAULT_CHAIN_ID), true)?;
    if runtime.height() != 0 {
        return Err(Failure(format!(
            "the demo needs an empty store; {} already has {} blocks",
            dir.display(),
            runtime.height()
        )));
    }
    let genesis = runtime.init_genesis(&dev::anvil_genesis(now())).map_err(|error| store_failure(&dir, error))?;
    let block = demo::block(&runtime);
    let bar = progress_bar(block.requests.len());
    let input = BlockInput { timestamp: genesis.header.timestamp + 1, ..Default::default() };
    let run = block.run(&runtime, &input, |done| bar.set_position(done as u64)).map_err(|error| match error {
        demo::DemoError::Runtime(error) => store_failure(&dir, error),
        other => Failure(other.to_string()),
    })?;
    bar.finish_and_clear();
    let root = run.outcome.commit.root;

    // One inclusion proof (BOB's balance in the WASM token) and one exclusion proof (the balance
    // slot of a holder the token never saw), each verified.
    let token = Namespace::wasm(run.token);
    let included = token.slot_key(demo::token_balance_slot(demo::bob())).to_vec();
    let excluded = token.slot_key(demo::token_balance_slot(Address::repeat_byte(0x99))).to_vec();
    let mut proofs = Vec::new();
    for key in [&included, &excluded] {
        let value = runtime.get(key).map_err(|error| store_failure(&dir, error))?;
        let proof = runtime.prove(key, None).map_err(|error| store_failure(&dir, error))?;
        let verified = kv_core::verify(root, key, value.as_deref(), &proof);
        proofs.push((key.clone(), value, proof.encoded_len(), verified));
    }
    let all_verified = proofs.iter().all(|(.., verified)| verified.is_ok());

    if json {
        println!(
            "{}",
            json!({
                "store": dir.display().to_string(),
                "number": run.outcome.header.number,
                "hash": run.outcome.hash.to_string(),
                "height": run.outcome.commit.height,
                "root": root.to_string(),
                "base_fee": run.outcome.header.base_fee_per_gas,
                "erc20": run.erc20.to_string(),
                "wasm_reader": run.reader.to_string(),
                "wasm_token": run.token.to_string(),
                "erc20_reader": run.erc20_reader.to_string(),
                "evm_read_wasm_balance": run.evm_read.to_string(),
                "wasm_read_erc20_balance": run.wasm_read.to_string(),
                "receipts": run.outcome.receipts.iter().map(|receipt| receipt_json(receipt, Some((run.outcome.header.number, run.outcome.hash)))).collect::<Vec<_>>(),
                "proofs": proofs.iter().map(|(key, value, bytes, verified)| json!({
                    "key": hex::encode_prefixed(key),
                    "value": value.as_ref().map(hex::encode_prefixed),
                    "bytes": bytes,
                    "verified": verified.is_ok(),
                })).collect::<Vec<_>>(),
            })
        );
    } else {
        println!("xstate demo: one block, two engines, one state root\n");
        println!("store       {}{}", dir.display(), if is_temporary { "  (temporary, removed on exit)" } else { "" });
        println!("ERC-20      {} (OpenZeppelin, solc 0.8.30)", run.erc20);
        println!("WasmReader  {}", run.reader);
        println!("WASM token  {} (guest/token)", run.token);
        println!("ERC-20 rd.  {} (guest/erc20-reader)\n", run.erc20_reader);
        println!(
            "block {} (hash {}, base fee {} wei): signed by dev accounts 0-2, each paying gas used x effective price",
            run.outcome.header.number,
            run.outcome.hash,
            run.outcome.header.base_fee_per_gas.unwrap_or_default()
        );
        print_receipts(&run.outcome.receipts);
        println!();
        println!("EVM read WASM:  WasmReader.readTokenBalance(token, bob) = {}", run.evm_read);
        println!("WASM read EVM:  erc20-reader(erc20, bob)               = {}", run.wasm_read);
        println!(
            "\nstate root {root}  (block {}, store height {})\n",
            run.outcome.header.number, run.outcome.commit.height
        );
        for (key, value, bytes, verified) in &proofs {
            let kind = if value.is_some() { "inclusion" } else { "exclusion" };
            let shown = value.as_ref().map_or_else(|| "absent".to_owned(), |value| describe(key, value));
            let result = match verified {
                Ok(()) => "verified".to_owned(),
                Err(error) => format!("FAILED: {error}"),
            };
            println!("{kind} proof  {}  {shown}  ({bytes} bytes)  {result}", hex::encode_prefixed(key));
        }
    }
    if all_verified { Ok(()) } else { Err(Failure("a proof did not verify".into())) }
}
