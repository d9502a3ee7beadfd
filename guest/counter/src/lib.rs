//! A counter in slot 0. Input: empty or `0x00` increments and returns the new value; `0x01`
//! returns the value; `0x02 | n (u64 BE)` adds `n`, reverting on overflow. Outputs are u64 BE.
#![no_std]

use xstate_guest as host;

const COUNT: u64 = 0;

#[unsafe(no_mangle)]
pub extern "C" fn call() {
    let mut buffer = [0u8; 9];
    let input = host::input(&mut buffer);
    let value = match input.first() {
        None | Some(0) => add(1),
        Some(1) => host::state_get(COUNT),
        Some(2) => add(host::read_u64(input, 1, b"add: expected 8 bytes")),
        Some(_) => host::revert(b"unknown operation"),
    };
    host::output(&value.to_be_bytes());
}

fn add(amount: u64) -> u64 {
    let Some(value) = host::state_get(COUNT).checked_add(amount) else { host::revert(b"overflow") };
    host::state_set(COUNT, value);
    value
}
