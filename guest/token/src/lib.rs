//! A token: balances by holder in u64 slots, so EVM contracts can read them through the
//! `readU64` precompile.
//!
//! Slots: 0 holds the total supply; the balance of holder `h` (20 bytes) is in slot
//! `u64::from_be_bytes(keccak256(h)[0..8])`. The owner (who may mint) is stored under the byte key
//! `owner`. Input is an operation byte and its arguments:
//!
//! | op | arguments | effect | output |
//! |---|---|---|---|
//! | `0x00` init | none | the caller becomes the owner (once) | none |
//! | `0x01` mint | to (20), amount (u64 BE) | owner only; credits `to` | new total supply |
//! | `0x02` transfer | to (20), amount (u64 BE) | moves from the caller; reverts `insufficient balance` | caller's new balance |
//! | `0x03` balance | holder (20) | none | balance (u64 BE) |
//! | `0x04` total supply | none | none | total supply (u64 BE) |
#![no_std]

use xstate_guest as host;

const TOTAL_SUPPLY: u64 = 0;
const OWNER: &[u8] = b"owner";

/// The slot of `holder`'s balance.
fn balance_slot(holder: &[u8; 20]) -> u64 {
    let hash = host::keccak256(&[holder]);
    let mut slot = [0u8; 8];
    slot.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(slot)
}

fn credit(holder: &[u8; 20], amount: u64) -> u64 {
    let slot = balance_slot(holder);
    let Some(balance) = host::state_get(slot).checked_add(amount) else { host::revert(b"overflow") };
    host::state_set(slot, balance);
    balance
}

#[unsafe(no_mangle)]
pub extern "C" fn call() {
    let mut buffer = [0u8; 29];
    let input = host::input(&mut buffer);
    let Some((&operation, arguments)) = input.split_first() else { host::revert(b"empty input") };
    match operation {
        0x00 => {
            let mut owner = [0u8; 20];
            if host::storage_read(OWNER, &mut owner).is_some() {
                host::revert(b"already initialized");
            }
            host::storage_write(OWNER, &host::caller());
        }
        0x01 => {
            let mut owner = [0u8; 20];
            if host::storage_read(OWNER, &mut owner) != Some(20) || owner != host::caller() {
                host::revert(b"only the owner can mint");
            }
            let to = host::read_identity(arguments, 0, b"mint: expected recipient");
            let amount = host::read_u64(arguments, 20, b"mint: expected amount");
            let Some(supply) = host::state_get(TOTAL_SUPPLY).checked_add(amount) else { host::revert(b"overflow") };
            host::state_set(TOTAL_SUPPLY, supply);
            credit(&to, amount);
            host::output(&supply.to_be_bytes());
        }
        0x02 => {
            let to = host::read_identity(arguments, 0, b"transfer: expected recipient");
            let amount = host::read_u64(arguments, 20, b"transfer: expected amount");
            let from = host::caller();
            let from_slot = balance_slot(&from);
            let Some(left) = host::state_get(from_slot).checked_sub(amount) else {
                host::revert(b"insufficient balance")
            };
            host::state_set(from_slot, left);
            credit(&to, amount);
            host::output(&host::state_get(from_slot).to_be_bytes());
        }
        0x03 => {
            let holder = host::read_identity(arguments, 0, b"balance: expected holder");
            host::output(&host::state_get(balance_slot(&holder)).to_be_bytes());
        }
        0x04 => host::output(&host::state_get(TOTAL_SUPPLY).to_be_bytes()),
        _ => host::revert(b"unknown operation"),
    }
}
