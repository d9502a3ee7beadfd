//! The `xstate` command: run mixed blocks on one state root, inspect the state, prove and verify.
//!
//! `xstate demo` is the built-in scenario; `run`, `root`, `get`, `prove` work on a redb store;
//! `verify` and `verify-block` need no store (`witness` writes what `verify-block` reads); `identity` derives a module's synthetic address. Every command prints
//! a readable report, or JSON with `--json`, and exits non-zero with a clear message on failure.

mod cli;
mod stateless;

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::main()
}
