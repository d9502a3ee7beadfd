//! Phase E's node figures: `xstate node` (in this process, on redb, instant mining) and anvil
//! (from the clients `cargo xtask clients` installs) side by side on loopback, receiving the same
//! load from 8 concurrent clients: signed ERC-20 transfers (each mined as it arrives, on both) and
//! `eth_call` of `balanceOf`. Rounds alternate between the nodes. Where anvil is missing, ours is
//! measured alone and the reason printed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Benchmark code: a failed unwrap is a failed run.

use crate::phase_e::signed;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use xstate_chain::demo::{calldata, word, xtoken_bytecode};
use xstate_chain::dev::{anvil_genesis, dev_address};
use xstate_chain::{ChainConfig, Runtime};

/// Concurrent clients, each with a dev key of its own (1-8).
pub const CLIENTS: u32 = 8;
/// Transfers each client sends per round.
const TRANSFERS_PER_CLIENT: usize = 10;
/// Calls each client makes per round.
const CALLS_PER_CLIENT: usize = 50;
const GENESIS_TIME: u64 = 1_700_000_000;

/// One JSON-RPC call over a fresh connection, the body read to its announced length.
fn rpc(address: SocketAddr, method: &str, params: Value) -> Value {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_nodelay(true).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    let response: Value = serde_json::from_slice(&body).unwrap();
    assert!(response.get("error").is_none(), "{method}: {response}");
    response["result"].clone()
}

/// A node under load: its address, the ERC-20 deployed on it and each client's next nonce.
struct Target {
    address: SocketAddr,
    token: Address,
    nonces: Vec<u64>,
}

impl Target {
    /// Deploys the ERC-20 (dev key 0) and mints to every client's account.
    fn prepare(address: SocketAddr) -> Self {
        let deployer = dev_address(0);
        let mut code = xtoken_bytecode().to_vec();
        code.extend_from_slice(&word(deployer).to_be_bytes::<32>());
        let send = |raw: Bytes| rpc(address, "eth_sendRawTransaction", json!([raw]));
        send(signed(0, 0, TxKind::Create, code.into(), 3_000_000));
        let token = deployer.create(0);
        for key in 1..=CLIENTS {
            let mint = calldata("mint(address,uint256)", &[word(dev_address(key)), U256::from(1_000_000_000u64)]);
            send(signed(0, u64::from(key), TxKind::Call(token), mint, 200_000));
        }
        // anvil mines a moment after it answers: wait for the last mint's effect.
        let last = word(dev_address(CLIENTS));
        let deadline = Instant::now() + Duration::from_secs(30);
        while rpc(address, "eth_call", json!([{ "to": token, "data": calldata("balanceOf(address)", &[last]) }]))
            == json!(format!("0x{}", "0".repeat(64)))
        {
            assert!(Instant::now() < deadline, "the mints were never mined on {address}");
            std::thread::sleep(Duration::from_millis(10));
        }
        Self { address, token, nonces: vec![0; CLIENTS as usize] }
    }

    /// One round of transfers: every client sends its transfers one after another, all clients
    /// at once. Returns the time from the first send to the last answer.
    fn transfers(&mut self) -> Duration {
        let batches: Vec<Vec<Bytes>> = (0..CLIENTS)
            .map(|client| {
                let key = client + 1;
                let recipient = dev_address((key % CLIENTS) + 1);
                let first = self.nonces[client as usize];
                (0..TRANSFERS_PER_CLIENT as u64)
                    .map(|offset| {
                        let input = calldata("transfer(address,uint256)", &[word(recipient), U256::from(1)]);
                        signed(key, first + offset, TxKind::Call(self.token), input, 100_000)
                    })
                    .collect()
            })
            .collect();
        for nonce in &mut self.nonces {
            *nonce += TRANSFERS_PER_CLIENT as u64;
        }
        let address = self.address;
        let started = Instant::now();
        std::thread::scope(|scope| {
            for batch in &batches {
                scope.spawn(move || {
                    for raw in batch {
                        rpc(address, "eth_sendRawTransaction", json!([raw]));
                    }
                });
            }
        });
        started.elapsed()
    }

    /// One round of `balanceOf` calls from every client at once.
    fn calls(&self) -> Duration {
        let (address, token) = (self.address, self.token);
        let started = Instant::now();
        std::thread::scope(|scope| {
            for client in 0..CLIENTS {
                scope.spawn(move || {
                    let data = calldata("balanceOf(address)", &[word(dev_address(client + 1))]);
                    for _ in 0..CALLS_PER_CLIENT {
                        rpc(address, "eth_call", json!([{ "to": token, "data": data.clone() }, "latest"]));
                    }
                });
            }
        });
        started.elapsed()
    }
}

/// anvil from the installed clients, or why it cannot run.
fn anvil_binary() -> Result<PathBuf, String> {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let clients = match std::env::var_os("XSTATE_CLIENTS") {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace.join("target"), PathBuf::from)
            .join("xtask/clients"),
    };
    let packages = clients.join("node_modules/@foundry-rs");
    std::fs::read_dir(&packages)
        .ok()
        .and_then(|entries| {
            entries
                .flatten()
                .filter(|entry| entry.file_name().to_string_lossy().starts_with("anvil-"))
                .map(|entry| entry.path().join("bin/anvil"))
                .find(|binary| binary.exists())
        })
        .ok_or_else(|| format!("no anvil under {} (cargo xtask clients installs it)", packages.display()))
}

/// A running anvil, killed when dropped.
struct Anvil {
    child: Child,
    address: SocketAddr,
}

impl Anvil {
    fn start() -> Result<Self, String> {
        let binary = anvil_binary()?;
        let mut child = Command::new(&binary)
            .args(["--port", "0", "--timestamp", &GENESIS_TIME.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        loop {
            let mut line = String::new();
            if lines.read_line(&mut line).unwrap_or(0) == 0 {
                return Err("anvil exited before listening".to_owned());
            }
            if let Some(address) = line.trim().strip_prefix("Listening on ") {
                let address = address.parse().map_err(|_| format!("anvil printed `{line}`"))?;
                // anvil keeps printing; drain it so it never blocks on a full pipe.
                std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
                return Ok(Self { child, address });
            }
        }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the node figures into `samples`.
pub fn wall(quick: bool, samples: &mut crate::harness::Samples) {
    use crate::harness::{Budget, pairs, repeats};
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::open(&dir.path().join("state.redb"), ChainConfig::default()).unwrap();
    runtime.init_genesis(&anvil_genesis(GENESIS_TIME)).unwrap();
    let config =
        xstate_node::NodeConfig { http: SocketAddr::from(([127, 0, 0, 1], 0)), ..xstate_node::NodeConfig::default() };
    let node = tokio.block_on(xstate_node::Node::start(runtime, config)).unwrap();
    let mut ours = Target::prepare(node.address());
    let transactions = f64::from(CLIENTS) * TRANSFERS_PER_CLIENT as f64;
    let calls = f64::from(CLIENTS) * CALLS_PER_CLIENT as f64;
    let budget = Budget::heavy(quick);
    match Anvil::start() {
        Ok(anvil) => {
            let theirs = std::cell::RefCell::new(Target::prepare(anvil.address));
            let ours = std::cell::RefCell::new(ours);
            let transfers =
                pairs(budget, &mut || ours.borrow_mut().transfers(), &mut || theirs.borrow_mut().transfers());
            samples.repeated("node/erc20_tx_per_s", transfers.iter().map(|(a, _)| transactions * 1e9 / a));
            // Throughput ratio: anvil's time over ours.
            samples.pair_ratios("node/erc20_tx_per_s_vs_anvil", &transfers, |a, b| b / a);
            let calls_pairs = pairs(budget, &mut || ours.borrow().calls(), &mut || theirs.borrow().calls());
            samples.repeated("node/eth_call_per_s", calls_pairs.iter().map(|(a, _)| calls * 1e9 / a));
            samples.pair_ratios("node/eth_call_per_s_vs_anvil", &calls_pairs, |a, b| b / a);
        }
        Err(reason) => {
            println!("  anvil cannot run here ({reason}): measuring xstate node alone");
            let times = repeats(budget, &mut || ours.transfers());
            samples.repeated("node/erc20_tx_per_s", times.iter().map(|ns| transactions * 1e9 / ns));
            let times = repeats(budget, &mut || ours.calls());
            samples.repeated("node/eth_call_per_s", times.iter().map(|ns| calls * 1e9 / ns));
        }
    }
    drop(tokio.block_on(node.stop()));
}
