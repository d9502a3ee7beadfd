// EIP-3529's test cases (https://eips.ethereum.org/EIPS/eip-3529#test-cases), under EIP-2929's
// costs on a warm slot, as (code, used gas, refund, original value of slot 0). Each code is a
// sequence of `PUSH1 value PUSH1 0 SSTORE`; its used gas includes 3 per `PUSH1`. Included by the
// gas schedule's unit tests, the WASM pricing tests and the cross-check against revm.
const EIP_3529_CASES: &[(&str, u64, i64, u64)] = &[
    ("0x60006000556000600055", 212, 0, 0),
    ("0x60006000556001600055", 20112, 0, 0),
    ("0x60016000556000600055", 20112, 19900, 0),
    ("0x60016000556002600055", 20112, 0, 0),
    ("0x60016000556001600055", 20112, 0, 0),
    ("0x60006000556000600055", 3012, 4800, 1),
    ("0x60006000556001600055", 3012, 2800, 1),
    ("0x60006000556002600055", 3012, 0, 1),
    ("0x60026000556000600055", 3012, 4800, 1),
    ("0x60026000556003600055", 3012, 0, 1),
    ("0x60026000556001600055", 3012, 2800, 1),
    ("0x60026000556002600055", 3012, 0, 1),
    ("0x60016000556000600055", 3012, 4800, 1),
    ("0x60016000556002600055", 3012, 0, 1),
    ("0x60016000556001600055", 212, 0, 1),
    ("0x600160005560006000556001600055", 40118, 19900, 0),
    ("0x600060005560016000556000600055", 5918, 7600, 1),
];

/// The values a test case's code stores, in order.
fn eip_3529_stored_values(code: &str) -> Vec<u64> {
    let hex = code.trim_start_matches("0x").as_bytes();
    let bytes: Vec<u8> = hex
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("hex"), 16).expect("hex"))
        .collect();
    bytes.chunks(5).map(|store| u64::from(store[1])).collect()
}
