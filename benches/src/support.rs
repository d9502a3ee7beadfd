//! What every phase's fixtures share: a deterministic random sequence and keys at a fixed
//! alignment.

/// splitmix64: a fast, deterministic sequence, so every run (and every process under valgrind)
/// measures the same keys in the same order.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A key at a fixed alignment. A key built on the stack lands wherever the process's stack
/// happens to start, which moves with the length of the environment and of paths, and the
/// instructions `memcmp` runs depend on its operands' alignment: under callgrind that moved the
/// prefixed read's count by up to 3% between two shells. A benchmark that builds a key puts it
/// here, at the start of a 64-byte line, so a count depends on the code alone.
#[repr(C, align(64))]
pub struct Aligned<const N: usize>(pub [u8; N]);
