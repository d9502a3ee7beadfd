//! Shared by the tests that drive `xstate node`: starting the binary on a port the system
//! chooses, plain HTTP JSON-RPC requests to it, and stopping it with a signal.

#![allow(dead_code)] // Each test binary uses part of these helpers.

use alloy_primitives::{B256, Bytes, U256};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const CHAIN_ID: u64 = 31337;
/// The genesis timestamp every test chain starts at.
pub(crate) const GENESIS_TIME: &str = "1700000000";

/// A running `xstate node`; killed if the test ends without stopping it.
pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) address: SocketAddr,
    output: Arc<Mutex<String>>,
}

impl Node {
    pub(crate) fn start(db: &Path, extra: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xstate"));
        command.args(["node", "--db"]).arg(db).args(["--http", "127.0.0.1:0", "--timestamp", GENESIS_TIME]).args(extra);
        Self::spawn(command)
    }

    /// Runs `command`, a node that prints `Listening on ADDRESS` (ours, or anvil), and waits for
    /// that line.
    pub(crate) fn spawn(mut command: Command) -> Self {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        let address = loop {
            let mut line = String::new();
            assert!(lines.read_line(&mut line).unwrap() > 0, "the node exited before listening:\n{banner}");
            banner.push_str(&line);
            if let Some(address) = line.trim().strip_prefix("Listening on ") {
                break address.parse().unwrap();
            }
        };
        let output = Arc::new(Mutex::new(banner));
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = lines.read_to_string(&mut rest);
            sink.lock().unwrap().push_str(&rest);
        });
        Self { child, address, output }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub(crate) fn banner(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// POSTs `body` and returns the HTTP status and the response body.
    pub(crate) fn post(&self, body: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(self.address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.address,
            body.len()
        );
        // A server refusing an oversized body may close the connection before reading it all:
        // what it answered is still read below.
        let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body));
        // Read the head, then exactly the body it announces: a server may keep the connection
        // open whatever `Connection: close` asked (anvil does).
        let mut response = Vec::new();
        let mut buffer = [0u8; 65536];
        let complete = |response: &[u8]| -> bool {
            let Some(end) = response.windows(4).position(|window| window == b"\r\n\r\n") else { return false };
            let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
            let body = &response[end + 4..];
            if head.contains("transfer-encoding: chunked") {
                return body.ends_with(b"0\r\n\r\n");
            }
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok());
            length.is_some_and(|length| body.len() >= length)
        };
        while !complete(&response) {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => response.extend_from_slice(&buffer[..read]),
            }
        }
        let text = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_owned()
        };
        (status, body)
    }

    /// Sends one call and returns the whole response object.
    pub(crate) fn request(&self, method: &str, params: Value) -> Value {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let (_, text) = self.post(body.to_string().as_bytes());
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method}: not JSON: {text}"))
    }

    /// The result of a call that must succeed.
    pub(crate) fn call(&self, method: &str, params: Value) -> Value {
        let response = self.request(method, params);
        assert!(response.get("error").is_none(), "{method} failed: {response}");
        response["result"].clone()
    }

    /// The error of a call that must fail: its code and message.
    pub(crate) fn error(&self, method: &str, params: Value) -> (i64, String, Value) {
        let response = self.request(method, params);
        let error = response.get("error").unwrap_or_else(|| panic!("{method} should fail: {response}"));
        (error["code"].as_i64().unwrap(), error["message"].as_str().unwrap().to_owned(), error["data"].clone())
    }

    pub(crate) fn quantity(&self, method: &str, params: Value) -> U256 {
        let value = self.call(method, params);
        value.as_str().unwrap().parse().unwrap()
    }

    pub(crate) fn block_number(&self) -> u64 {
        self.quantity("eth_blockNumber", json!([])).to()
    }

    pub(crate) fn send(&self, raw: &Bytes) -> B256 {
        self.call("eth_sendRawTransaction", json!([raw])).as_str().unwrap().parse().unwrap()
    }

    /// Sends `raw` and returns its receipt (instant mining: it is in a block when the send returns).
    pub(crate) fn send_and_receipt(&self, raw: &Bytes) -> Value {
        let hash = self.send(raw);
        let receipt = self.call("eth_getTransactionReceipt", json!([hash]));
        assert!(!receipt.is_null(), "no receipt for {hash}");
        receipt
    }

    /// Sends `signal` to the node, waits for it to exit, and returns everything it printed.
    pub(crate) fn stop_with(mut self, signal: &str) -> String {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "the node exited with {exit} after {signal}");
        // The reader thread ends with the process's stdout.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.banner().contains("store is closed") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.banner()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
