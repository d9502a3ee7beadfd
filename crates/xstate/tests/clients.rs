//! `xstate node` driven by real clients that no one here wrote, restarts included: viem
//! (JavaScript) runs `xtask/clients/viem_e2e.mjs` and checks `eth_getProof` with
//! `@ethereumjs/mpt`; web3.py runs `xtask/clients/web3_e2e.py` and checks it with py-trie.
//!
//! `cargo xtask ci` installs the JavaScript clients with `npm ci` from the committed lockfile into
//! `<target dir>/xtask/clients` (or `cargo xtask clients`; or name a directory in
//! `XSTATE_CLIENTS`), and the Python ones from the pinned `xtask/verifiers/requirements.txt` into
//! `<target dir>/xtask/pyenv` (or `XSTATE_PYTHON`). A machine without them fails these tests with
//! the command that installs them: they are never skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::Node;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The directory holding the installed clients (`node_modules`).
fn clients() -> PathBuf {
    let directory = match std::env::var_os("XSTATE_CLIENTS") {
        Some(path) => PathBuf::from(path),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace().join("target"), PathBuf::from)
            .join("xtask/clients"),
    };
    assert!(
        directory.join("node_modules/viem").exists(),
        "no installed clients at {}: run `cargo xtask clients` (cargo xtask ci does) or set XSTATE_CLIENTS",
        directory.display()
    );
    directory
}

/// The Python interpreter with web3.py and py-trie installed.
fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("XSTATE_PYTHON") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from);
    let path = target.join("xtask/pyenv/bin/python");
    assert!(
        path.exists(),
        "no Python environment with web3.py at {}: run `cargo xtask verifiers` (cargo xtask ci does) or set XSTATE_PYTHON",
        path.display()
    );
    path
}

/// Puts `script` beside the installed packages (ES modules resolve packages from the script's own
/// directory) and returns its path there. Each test writes its own copy, atomically.
fn install_script(clients: &Path, script: &str, tag: &str) -> PathBuf {
    let source = workspace().join("xtask/clients").join(script);
    let target = clients.join(format!("{tag}-{script}"));
    let partial = clients.join(format!(".{tag}-{script}.{}", std::process::id()));
    std::fs::copy(&source, &partial).unwrap();
    std::fs::rename(&partial, &target).unwrap();
    target
}

fn run_script(interpreter: &Path, script: &Path, args: &[&str]) {
    let output = Command::new(interpreter).arg(script).args(args).output().expect("the interpreter runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{} {args:?} failed:\n{stdout}\n{stderr}", script.display());
    println!("{stdout}");
}

#[test]
fn viem_deploys_transfers_reads_proves_and_finds_everything_after_a_restart() {
    let clients = clients();
    let script = install_script(&clients, "viem_e2e.mjs", "viem");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("viem-state.json");
    let db = dir.path().join("db");
    let repo = workspace();
    let (repo, state) = (repo.to_str().unwrap(), state.to_str().unwrap());

    let node = Node::start(&db, &[]);
    run_script(Path::new("node"), &script, &["before", &node.url(), repo, state]);
    let output = node.stop_with("-TERM");
    assert!(output.contains("the store is closed"), "{output}");

    let node = Node::start(&db, &[]);
    run_script(Path::new("node"), &script, &["after", &node.url(), repo, state]);
    node.stop_with("-TERM");
}

#[test]
fn web3_py_deploys_transfers_reads_proves_and_finds_everything_after_a_restart() {
    let python = python();
    let script = workspace().join("xtask/clients/web3_e2e.py");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("web3-state.json");
    let db = dir.path().join("db");
    let repo = workspace();
    let (repo, state) = (repo.to_str().unwrap(), state.to_str().unwrap());

    let node = Node::start(&db, &[]);
    run_script(&python, &script, &["before", &node.url(), repo, state]);
    let output = node.stop_with("-TERM");
    assert!(output.contains("the store is closed"), "{output}");

    let node = Node::start(&db, &[]);
    run_script(&python, &script, &["after", &node.url(), repo, state]);
    node.stop_with("-TERM");
}
