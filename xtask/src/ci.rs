//! `cargo xtask ci`: everything a change must pass, in the order that fails fastest.

use crate::artifacts;
use crate::clients;
use crate::command::{build_binaries, cargo, root, run};
use crate::phase::Phase;
use crate::verifiers;
use std::path::PathBuf;
use std::process::Command;

/// Runs the checks of `phase`.
pub(crate) fn run_ci(phase: Phase) -> Result<(), String> {
    run("format", cargo().args(["fmt", "--all", "--", "--check"]))?;
    // The guest modules are a workspace of their own, which `--all` does not reach.
    run(
        "format guest modules",
        cargo().args(["fmt", "--all", "--manifest-path", "guest/Cargo.toml", "--", "--check"]),
    )?;
    let packages = phase.packages();
    let mut selection: Vec<String> = Vec::new();
    if phase == Phase::All {
        selection.push("--workspace".into());
    } else {
        for package in &packages {
            selection.extend(["-p".into(), (*package).into()]);
        }
    }
    let mut clippy = cargo();
    clippy.arg("clippy").args(&selection).args(["--all-targets", "--", "-D", "warnings"]);
    run("clippy", &mut clippy)?;
    if phase.includes('a') {
        // The verifier a light client takes alone: kv-core without its store.
        run(
            "kv-core without default features",
            cargo().args(["clippy", "-p", "kv-core", "--no-default-features", "--", "-D", "warnings"]),
        )?;
    }
    // The tests of the phases that make roots and proofs check them with independent verifiers.
    let mut test = cargo();
    if phase.includes('a') || phase.includes('e') {
        let python = verifiers::prepare()?;
        verifiers::check_golden_root(&python)?;
        test.env("XSTATE_PYTHON", python);
    }
    // The node's end-to-end tests drive real clients (viem, web3.py) and anvil.
    if phase.includes('e') {
        test.env("XSTATE_CLIENTS", clients::prepare()?);
    }
    // The test build also builds the fuzz driver and the conformance runner (both crates have
    // integration tests), with the features the whole selection unifies to; the steps below run
    // those files, so nothing is compiled twice.
    let binaries = build_binaries("build tests", cargo().arg("test").args(&selection).arg("--no-run"))?;
    test.arg("test").args(&selection);
    run("tests", &mut test)?;
    if phase.includes('e') {
        // Generated inputs for every boundary: the committed corpus, then a fixed number of
        // inputs per target from a fixed seed (crates/fuzz, ADR 0015).
        run("fuzz (bounded)", Command::new(built(&binaries, "xstate-fuzz")?).current_dir(root()))?;
    }
    if phase.includes('b') {
        artifacts::check_wasm_if_possible()?;
    }
    if phase.includes('c') {
        artifacts::check_contracts_if_possible()?;
        artifacts::run_conformance(&[], artifacts::Runner::FromCiBuild(&built(&binaries, "state-tests")?))?;
    }
    println!(
        "
ci passed ({phase})"
    );
    Ok(())
}

/// The executable of binary target `name` from the test build, to run from the workspace root.
fn built(binaries: &std::collections::BTreeMap<String, PathBuf>, name: &str) -> Result<PathBuf, String> {
    let path = binaries.get(name).ok_or_else(|| format!("the test build did not build the `{name}` binary"))?;
    Ok(root().join(path))
}
