//! `jsonrpc_body`: request bodies POSTed to a running `xstate_node::Node` on 127.0.0.1:0: random
//! bytes, mutations of valid requests and batches, and requests generated from the node's method
//! list with generated parameters. Every answer is a well-formed JSON-RPC response (or a batch of
//! them, or HTTP 413 for an oversized body; HTTP 400 when the body is not a request, with the
//! -32700 or -32600 response), and the node keeps answering `eth_blockNumber`.

use arbitrary::Unstructured;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use xstate_node::{MAX_REQUEST_BYTES, Node, NodeConfig};

/// Every method the node serves, and a few it does not.
const METHODS: &[&str] = &[
    "web3_clientVersion",
    "net_version",
    "eth_chainId",
    "eth_blockNumber",
    "eth_accounts",
    "eth_gasPrice",
    "eth_maxPriorityFeePerGas",
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
    "eth_getTransactionByHash",
    "eth_getTransactionReceipt",
    "eth_getBalance",
    "eth_getTransactionCount",
    "eth_getCode",
    "eth_getStorageAt",
    "eth_call",
    "eth_estimateGas",
    "eth_feeHistory",
    "eth_sendRawTransaction",
    "eth_getLogs",
    "eth_getProof",
    "xstate_moduleIdentity",
    "xstate_getWasmSlot",
    "xstate_getWasmProof",
    "xstate_getNamespaceProof",
    "debug_executionWitness",
    "evm_mine",
    "evm_increaseTime",
    "eth_unknownMethod",
];

/// A JSON value of the shapes Ethereum parameters take, drawn from `u`.
fn value(u: &mut Unstructured<'_>, depth: u32) -> Value {
    let choice: u8 = u.int_in_range(0..=11).unwrap_or(0);
    match choice {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary().unwrap_or(false)),
        2 => json!(u.arbitrary::<i64>().unwrap_or(0)),
        3 => json!(u.arbitrary::<u64>().unwrap_or(0)),
        4 => {
            let len = u.int_in_range(0..=40).unwrap_or(0);
            let bytes = u.bytes(len).unwrap_or_default();
            json!(format!("0x{}", alloy_primitives::hex::encode(bytes)))
        }
        5 => json!(
            ["latest", "pending", "earliest", "safe", "finalized", "0x0", "0x1", "0xffffffffffffffff"]
                [usize::from(u.int_in_range(0u8..=7).unwrap_or(0))]
        ),
        6 => json!(format!("{:#x}", alloy_primitives::Address::repeat_byte(u.arbitrary().unwrap_or(0)))),
        7 => json!(u.arbitrary::<String>().unwrap_or_default()),
        8 if depth < 3 => {
            let keys = [
                "from",
                "to",
                "data",
                "input",
                "value",
                "gas",
                "gasPrice",
                "nonce",
                "fromBlock",
                "toBlock",
                "address",
                "topics",
                "blockHash",
            ];
            let mut object = serde_json::Map::new();
            for _ in 0..u.int_in_range(0..=4).unwrap_or(0) {
                let key = keys[usize::from(u.int_in_range(0u8..=12).unwrap_or(0))];
                object.insert(key.to_owned(), value(u, depth + 1));
            }
            Value::Object(object)
        }
        9 if depth < 3 => Value::Array((0..u.int_in_range(0..=3).unwrap_or(0)).map(|_| value(u, depth + 1)).collect()),
        10 => json!(format!("{:#x}", u.arbitrary::<u128>().unwrap_or(0))),
        _ => json!(format!("{:#066x}", alloy_primitives::U256::from(u.arbitrary::<u64>().unwrap_or(0)))),
    }
}

/// One request generated from `u`: a method of the list with generated parameters and id.
fn request(u: &mut Unstructured<'_>) -> Value {
    let method = METHODS[u.choose_index(METHODS.len()).unwrap_or(0)];
    let params: Vec<Value> = (0..u.int_in_range(0..=4).unwrap_or(0)).map(|_| value(u, 0)).collect();
    let mut object = json!({ "jsonrpc": "2.0", "method": method, "params": params });
    match u.int_in_range(0u8..=3).unwrap_or(0) {
        0 => object["id"] = json!(u.arbitrary::<u32>().unwrap_or(0)),
        1 => object["id"] = json!(u.arbitrary::<String>().unwrap_or_default()),
        2 => object["id"] = Value::Null,
        // No id: a notification, which gets no response.
        _ => {}
    }
    object
}

/// The status and body of one HTTP POST of `body`.
fn post(address: SocketAddr, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let mut stream = TcpStream::connect(address).map_err(|error| format!("the node stopped accepting: {error}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|error| error.to_string())?;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // A server refusing a body may close before reading it all; its answer is still read below.
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body));
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|error| format!("no response: {error}"))?;
    let end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP response: {:?}", String::from_utf8_lossy(&response)))?;
    let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line: {head}"))?;
    let mut body = response[end + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body)?;
    }
    Ok((status, body))
}

/// The body of a chunked HTTP response.
fn dechunk(mut chunked: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = chunked.windows(2).position(|window| window == b"\r\n").ok_or("a chunk without its size")?;
        let size = usize::from_str_radix(String::from_utf8_lossy(&chunked[..line_end]).trim(), 16)
            .map_err(|error| format!("a chunk size: {error}"))?;
        if size == 0 {
            return Ok(body);
        }
        let data = chunked.get(line_end + 2..line_end + 2 + size).ok_or("a chunk shorter than its size")?;
        body.extend_from_slice(data);
        chunked = chunked.get(line_end + 4 + size..).ok_or("a chunk without its end")?;
    }
}

/// Whether `response` is one well-formed JSON-RPC 2.0 response object.
fn check_response(response: &Value) -> Result<(), String> {
    let object = response.as_object().ok_or_else(|| format!("a response that is not an object: {response}"))?;
    if object.get("jsonrpc") != Some(&json!("2.0")) || !object.contains_key("id") {
        return Err(format!("a response without jsonrpc 2.0 and an id: {response}"));
    }
    match (object.get("result"), object.get("error")) {
        (Some(_), None) => Ok(()),
        (None, Some(error)) if error["code"].is_i64() && error["message"].is_string() => Ok(()),
        _ => Err(format!("a response with neither a result nor a well-formed error: {response}")),
    }
}

/// How many `id` members a JSON value has, if it is an object (0 for anything else). A
/// `serde_json::Value` keeps only the last of duplicated members, so they are counted here.
struct IdMembers(usize);

impl<'de> serde::Deserialize<'de> for IdMembers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Count;
        impl<'de> serde::de::Visitor<'de> for Count {
            type Value = IdMembers;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("any JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<IdMembers, A::Error> {
                let mut ids = 0;
                while let Some(key) = map.next_key::<String>()? {
                    ids += usize::from(key == "id");
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                Ok(IdMembers(ids))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<IdMembers, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(IdMembers(0))
            }
            fn visit_bool<E>(self, _: bool) -> Result<IdMembers, E> {
                Ok(IdMembers(0))
            }
            fn visit_i64<E>(self, _: i64) -> Result<IdMembers, E> {
                Ok(IdMembers(0))
            }
            fn visit_u64<E>(self, _: u64) -> Result<IdMembers, E> {
                Ok(IdMembers(0))
            }
            fn visit_f64<E>(self, _: f64) -> Result<IdMembers, E> {
                Ok(IdMembers(0))
            }
            fn visit_str<E>(self, _: &str) -> Result<IdMembers, E> {
                Ok(IdMembers(0))
            }
            fn visit_unit<E>(self) -> Result<IdMembers, E> {
                Ok(IdMembers(0))
            }
        }
        deserializer.deserialize_any(Count)
    }
}

/// Whether `body` is a notification (or a batch of them): an object with no `id` member, to
/// which no answer is due. A request whose `id` jsonrpsee cannot represent (a second `id` member,
/// or an id that is neither null, a string nor a number within u64) is owed an answer: the node
/// refuses it with -32600 (`xstate_node`'s id layer; the corpus entries
/// `duplicate-id-is-a-notification` and `id-beyond-u64-is-a-notification` are the inputs that
/// found jsonrpsee taking them for notifications). An answer is checked all the same if one comes.
fn only_notifications(body: &[u8]) -> bool {
    let is_notification = |value: &Value, ids: usize| value.is_object() && ids == 0;
    // serde_json skips the members a type ignores without checking their UTF-8, so jsonrpsee can
    // take a body with invalid UTF-8 in an unknown member for a notification: read it lossily.
    let body = String::from_utf8_lossy(body);
    match (serde_json::from_str::<Value>(&body), serde_json::from_str::<IdMembers>(&body)) {
        (Ok(Value::Array(items)), _) => {
            let Ok(ids) = serde_json::from_str::<Vec<IdMembers>>(&body) else { return false };
            !items.is_empty() && items.iter().zip(ids).all(|(item, ids)| is_notification(item, ids.0))
        }
        (Ok(value), Ok(ids)) => is_notification(&value, ids.0),
        // A number serde_json cannot hold (`1e999`) fails the `Value` reading but not the count,
        // which skips values unparsed: an object without `id` is a notification all the same.
        (Err(_), Ok(ids)) => body.trim_start().starts_with('{') && ids.0 == 0,
        _ => false,
    }
}

/// The `jsonrpc_body` target: a node over an in-memory chain with anvil's genesis.
pub(crate) struct JsonRpcBody {
    node: Option<Node>,
    address: SocketAddr,
    tokio: tokio::runtime::Runtime,
    seeds: Vec<Vec<u8>>,
    reached: u64,
}

impl JsonRpcBody {
    pub(crate) fn new() -> Self {
        let tokio = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
        let runtime = super::raw_transaction::dev_runtime();
        let transactions = super::raw_transaction::valid_transactions(&runtime);
        let config = NodeConfig { http: SocketAddr::from(([127, 0, 0, 1], 0)), ..NodeConfig::default() };
        let node = tokio.block_on(Node::start(runtime, config)).expect("the node starts on a free loopback port");
        let address = node.address();
        let call = |id: u64, method: &str, params: Value| json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let dev = format!("{:#x}", xstate_chain::dev::dev_address(0));
        let mut seeds: Vec<Value> = vec![
            call(1, "eth_blockNumber", json!([])),
            call(2, "eth_getBalance", json!([dev, "latest"])),
            call(3, "eth_getBlockByNumber", json!(["0x0", true])),
            call(4, "eth_call", json!([{"from": dev, "to": dev, "data": "0x"}, "latest"])),
            call(5, "eth_estimateGas", json!([{"from": dev, "data": "0x600060005260206000f3"}])),
            call(6, "eth_getProof", json!([dev, ["0x0"], "latest"])),
            call(7, "eth_getLogs", json!([{"fromBlock": "0x0", "toBlock": "latest"}])),
            call(8, "eth_feeHistory", json!(["0x4", "latest", [10, 50]])),
            call(9, "xstate_moduleIdentity", json!(["counter", 1])),
            call(10, "debug_executionWitness", json!(["0x1"])),
            json!([call(11, "eth_chainId", json!([])), call(12, "net_version", json!([]))]),
        ];
        seeds.extend(
            transactions
                .iter()
                .enumerate()
                .map(|(index, raw)| call(20 + index as u64, "eth_sendRawTransaction", json!([raw]))),
        );
        let seeds = seeds.iter().map(|seed| serde_json::to_vec(seed).unwrap_or_default()).collect();
        Self { node: Some(node), address, tokio, seeds, reached: 0 }
    }
}

impl Drop for JsonRpcBody {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            let _ = self.tokio.block_on(node.stop());
        }
    }
}

impl super::Target for JsonRpcBody {
    fn name(&self) -> &'static str {
        "jsonrpc_body"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        self.seeds.clone()
    }

    fn reached(&self) -> u64 {
        self.reached
    }

    fn reached_means(&self) -> &'static str {
        "bodies with a result in the answer"
    }

    fn random_len(&self) -> usize {
        512
    }

    fn run(&mut self, input: &[u8]) -> Result<(), String> {
        // An input whose first byte could not start a JSON text (0x80 and above) describes
        // requests (one, or a batch) rather than being one: half of the random inputs.
        let body = match input.split_first() {
            Some((first, rest)) if *first >= 0x80 => {
                let mut u = Unstructured::new(rest);
                let count = u.int_in_range(0u8..=4).unwrap_or(0);
                let value = if count == 0 {
                    request(&mut u)
                } else {
                    Value::Array((0..count).map(|_| request(&mut u)).collect())
                };
                serde_json::to_vec(&value).map_err(|error| error.to_string())?
            }
            _ => input.to_vec(),
        };
        let (status, answer) = post(self.address, &body)?;
        if String::from_utf8_lossy(&answer).contains("\"result\"") {
            self.reached += 1;
        }
        let oversized = body.len() > MAX_REQUEST_BYTES as usize;
        match status {
            413 if oversized => {}
            // jsonrpsee answers a body that is not JSON-RPC with HTTP 400 and a -32700 or
            // -32600 response; the response, not the status, is what a client reads.
            200 | 400 if !oversized => {
                // jsonrpsee answers a notification (or a batch of them) with an empty body or
                // `null`: nothing a client could take for a response.
                if answer.is_empty() || answer == b"null" {
                    if !only_notifications(&body) {
                        return Err("an empty answer to a request that is owed one".into());
                    }
                } else {
                    match serde_json::from_slice::<Value>(&answer) {
                        Ok(Value::Array(responses)) if !responses.is_empty() => {
                            responses.iter().try_for_each(check_response)?;
                        }
                        Ok(response) => check_response(&response)?,
                        Err(error) => {
                            return Err(format!(
                                "the answer is not JSON ({error}): {}",
                                String::from_utf8_lossy(&answer)
                            ));
                        }
                    }
                }
            }
            other => {
                return Err(format!(
                    "HTTP {other} for a {}-byte body: {}",
                    body.len(),
                    String::from_utf8_lossy(&answer)
                ));
            }
        }
        let probe = br#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#;
        let (status, answer) = post(self.address, probe)?;
        let answered: Value = serde_json::from_slice(&answer).unwrap_or_default();
        if status != 200 || !answered["result"].is_string() {
            return Err(format!("the node no longer answers eth_blockNumber: HTTP {status} {answered}"));
        }
        Ok(())
    }
}
