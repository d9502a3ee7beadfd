//! The workspace's benchmarks, outside the libraries they measure: one module per RFC phase
//! holding that phase's fixtures, the small wall-clock harness that measures two operations side
//! by side, and the shared deterministic input sequence.
//!
//! It sits on top of every layer (kv-core, the two bindings, cross-read, xstate-chain and the node) and uses only
//! their public APIs. Each fixture builds its state once and exposes the operations a figure
//! compares as methods that check their own result, so the callgrind targets
//! (`benches/callgrind_*.rs`, run under valgrind by gungraun) and the wall-clock target
//! (`benches/wall.rs`) measure exactly the same code. It computes no figure and checks no target:
//! `cargo xtask bench` turns the raw counts and samples into figures and verdicts.

pub mod harness;
pub mod node_load;
pub mod phase_a;
pub mod phase_b;
pub mod phase_c;
pub mod phase_d;
pub mod phase_e;
pub mod support;

// The same allocator as the xstate binary: the store's many small allocations are a large part of
// a commit's cost under glibc's allocator, so a figure measured without it would mislead.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
