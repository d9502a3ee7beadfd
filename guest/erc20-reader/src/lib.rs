//! Reads an ERC-20 balance from EVM storage through `evm_storage_read`.
//!
//! Input: token contract (20) and holder (20). The balance lives in the contract's storage at
//! `keccak256(pad32(holder) || pad32(0))`: OpenZeppelin's `ERC20` keeps `_balances` in slot 0.
//! The module records what it read (the low 64 bits in its slot 1, the whole word under the byte
//! key `last`) and outputs the 32-byte word.
#![no_std]

use xstate_guest as host;

const LAST_BALANCE: u64 = 1;

#[unsafe(no_mangle)]
pub extern "C" fn call() {
    let mut buffer = [0u8; 40];
    let input = host::input(&mut buffer);
    let token = host::read_identity(input, 0, b"expected token address");
    let holder = host::read_identity(input, 20, b"expected holder address");
    let mut padded_holder = [0u8; 32];
    padded_holder[12..].copy_from_slice(&holder);
    let slot = host::keccak256(&[&padded_holder, &[0u8; 32]]);
    let word = host::evm_storage_read(&token, &slot);
    let mut low = [0u8; 8];
    low.copy_from_slice(&word[24..]);
    host::state_set(LAST_BALANCE, u64::from_be_bytes(low));
    host::storage_write(b"last", &word);
    host::output(&word);
}
