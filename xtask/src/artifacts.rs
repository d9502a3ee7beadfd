//! Generated artifacts and external data: the conformance fixtures, the compiled Solidity
//! contracts and the guest `.wasm` modules. Each generator has a `--check` mode that rebuilds into
//! a scratch directory and fails when the result differs from what is committed.

use crate::command::{available, cargo, root, run};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixture folders to run: the arguments, else `$XSTATE_STATE_TESTS` (a `:`-separated
/// list), else `../shared/conformance` next to the workspace.
fn fixture_paths(args: &[String]) -> Vec<PathBuf> {
    if !args.is_empty() {
        return args.iter().map(PathBuf::from).collect();
    }
    if let Some(paths) = std::env::var_os("XSTATE_STATE_TESTS") {
        return std::env::split_paths(&paths).filter(|path| path.exists()).collect();
    }
    let shared = root().join("..").join("shared").join("conformance");
    if shared.exists() { vec![shared] } else { Vec::new() }
}

/// Whether any fixture folder is found without arguments.
pub(crate) fn fixtures_available() -> bool {
    !fixture_paths(&[]).is_empty()
}

/// `cargo xtask conformance [PATH...]`.
pub(crate) fn conformance(args: &[String]) -> Result<(), String> {
    run_conformance(args, Runner::Cargo)
}

/// Where the state-test runner comes from, which also says who asked for the suite.
pub(crate) enum Runner<'a> {
    /// Built and run by cargo: an explicit `cargo xtask conformance` or `bench`, which fail
    /// without fixtures.
    Cargo,
    /// The `state-tests` executable the test build of `cargo xtask ci` made. Without fixtures a
    /// local `ci` only warns; a CI machine (`CI` set) fails.
    FromCiBuild(&'a Path),
}

impl Runner<'_> {
    /// Whether a run without fixtures fails, on a CI machine (`on_ci`) or not.
    fn needs_fixtures(&self, on_ci: bool) -> bool {
        matches!(self, Self::Cargo) || on_ci
    }
}

/// Runs the state-test suite with `runner`; absent fixtures fail it as [`Runner`] says.
pub(crate) fn run_conformance(args: &[String], runner: Runner<'_>) -> Result<(), String> {
    let paths = fixture_paths(args);
    if paths.is_empty() {
        let banner = "!!! Ethereum state-test fixtures not found: set XSTATE_STATE_TESTS or place them at \
                      ../shared/conformance (cargo xtask fetch-fixtures downloads them). The EVM \
                      conformance suite did NOT run. !!!";
        eprintln!("\n{banner}\n");
        if runner.needs_fixtures(std::env::var_os("CI").is_some()) {
            return Err("conformance fixtures are missing".into());
        }
        return Ok(());
    }
    let mut command = match runner {
        Runner::FromCiBuild(executable) => {
            let mut command = Command::new(executable);
            command.current_dir(root());
            command
        }
        Runner::Cargo => {
            let mut command = cargo();
            command.args(["run", "--quiet", "-p", "evm-conformance", "--bin", "state-tests", "--"]);
            command
        }
    };
    command.args(&paths);
    run("conformance", &mut command)
}

/// Whether the wasm32 target is installed for the active toolchain.
fn wasm_target_installed() -> bool {
    Command::new("rustup").args(["target", "list", "--installed"]).output().is_ok_and(|output| {
        String::from_utf8_lossy(&output.stdout).lines().any(|line| line.trim() == "wasm32-unknown-unknown")
    })
}

/// The guest modules and where their committed `.wasm` lives.
const GUEST_MODULES: &[&str] = &["counter", "token", "erc20-reader"];

fn guest_dir() -> PathBuf {
    root().join("guest")
}

/// Builds the guest workspace into `target_dir`. The flags in `guest/.cargo/config.toml` apply;
/// on top, source paths are remapped so that the bytes do not depend on where the checkout or the
/// cargo home is (cargo joins both flag lists).
fn build_guests(target_dir: &Path) -> Result<(), String> {
    let cargo_home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo"));
    let remap = format!(
        "target.wasm32-unknown-unknown.rustflags=[\"--remap-path-prefix={}=/xstate\", \"--remap-path-prefix={}=/cargo\"]",
        root().display(),
        cargo_home.display()
    );
    let mut command = guest_cargo();
    command
        .args(["build", "--release", "--locked", "--target", "wasm32-unknown-unknown", "--config"])
        .arg(remap)
        .arg("--target-dir")
        .arg(target_dir);
    run("build guest modules", &mut command)
}

/// Cargo in the guest workspace, without the host's flags (they would change the built bytes).
fn guest_cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(guest_dir()).env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS");
    command
}

fn built_module(target_dir: &Path, module: &str) -> PathBuf {
    target_dir.join("wasm32-unknown-unknown").join("release").join(format!("{}.wasm", module.replace('-', "_")))
}

fn committed_module(module: &str) -> PathBuf {
    guest_dir().join(module).join(format!("{module}.wasm"))
}

/// `cargo xtask wasm [--check]`.
pub(crate) fn wasm(check: bool) -> Result<(), String> {
    if !wasm_target_installed() {
        return Err(
            "the wasm32-unknown-unknown target is not installed (rustup target add wasm32-unknown-unknown)".into()
        );
    }
    let target_dir = root().join("target").join("xtask").join("guest");
    build_guests(&target_dir)?;
    let mut differ = Vec::new();
    for module in GUEST_MODULES {
        let built = std::fs::read(built_module(&target_dir, module)).map_err(|error| format!("{module}: {error}"))?;
        let committed = committed_module(module);
        if check {
            if std::fs::read(&committed).ok().as_deref() != Some(built.as_slice()) {
                differ.push(committed.display().to_string());
            }
        } else {
            std::fs::write(&committed, &built).map_err(|error| format!("{}: {error}", committed.display()))?;
            println!("wrote {} ({} bytes)", committed.display(), built.len());
        }
    }
    if differ.is_empty() {
        println!("guest modules {}", if check { "match their sources" } else { "regenerated" });
        Ok(())
    } else {
        Err(format!("rebuilt modules differ from the committed ones: {} (run cargo xtask wasm)", differ.join(", ")))
    }
}

/// The wasm check inside `ci`: runs where the target is installed, otherwise says why not.
pub(crate) fn check_wasm_if_possible() -> Result<(), String> {
    if wasm_target_installed() {
        let mut clippy = guest_cargo();
        clippy
            .args(["clippy", "--locked", "--target", "wasm32-unknown-unknown", "--target-dir"])
            .arg(root().join("target").join("xtask").join("guest-clippy"))
            .args(["--", "-D", "warnings"]);
        run("clippy guest modules", &mut clippy)?;
        wasm(true)
    } else {
        println!(
            "\nnote: wasm32-unknown-unknown is not installed; the committed guest .wasm files are used as they are"
        );
        Ok(())
    }
}

fn contracts_dir() -> PathBuf {
    root().join("contracts")
}

/// `cargo xtask contracts [--check]`: compiles with the pinned npm `solc` (standard JSON).
pub(crate) fn contracts(check: bool) -> Result<(), String> {
    let dir = contracts_dir();
    if !dir.join("node_modules").join("solc").exists() {
        run("install the pinned solc", Command::new("npm").current_dir(&dir).args(["ci", "--no-audit", "--no-fund"]))?;
    }
    let mut command = Command::new("node");
    command.current_dir(&dir).arg("build.js");
    if check {
        command.arg("--check");
    }
    run(if check { "check contracts" } else { "compile contracts" }, &mut command)
}

/// The contracts check inside `ci`: runs where node and the pinned compiler are installed.
pub(crate) fn check_contracts_if_possible() -> Result<(), String> {
    if available("node", "--version") && contracts_dir().join("node_modules").join("solc").exists() {
        contracts(true)
    } else {
        println!(
            "\nnote: node or contracts/node_modules is missing; the committed contract artifacts are used as they are (run cargo xtask contracts to check them)"
        );
        Ok(())
    }
}

/// `cargo xtask fetch-fixtures [DIR]`: downloads the same public corpora as ../shared/conformance.
pub(crate) fn fetch_fixtures(dir: Option<&str>) -> Result<(), String> {
    let dir = dir.map(PathBuf::from).unwrap_or_else(|| root().join("target").join("fixtures"));
    std::fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
    let sources = [
        (
            "legacytests",
            "https://github.com/ethereum/legacytests/archive/71560ecd.tar.gz",
            "*/Cancun/GeneralStateTests",
        ),
        (
            "eest",
            "https://github.com/ethereumjs/execution-spec-tests-fixtures/archive/e07657c.tar.gz",
            "*/fusaka-devnet-5/state_tests",
        ),
    ];
    for (name, url, member) in sources {
        let archive = dir.join(format!("{name}.tar.gz"));
        run(
            &format!("download {name}"),
            Command::new("curl").args(["-fL", "--retry", "2", "-o"]).arg(&archive).arg(url),
        )?;
        let out = dir.join(name);
        std::fs::create_dir_all(&out).map_err(|error| error.to_string())?;
        run(
            &format!("unpack {name}"),
            // stTimeConsuming is left out, as in ../shared/conformance: it alone takes longer than
            // every other category together.
            Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(&out).args([
                "--wildcards",
                "--exclude",
                "*/stTimeConsuming/*",
                member,
            ]),
        )?;
    }
    println!("fixtures are in {}; run: XSTATE_STATE_TESTS={} cargo xtask conformance", dir.display(), dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An explicit conformance run and any run on a CI machine fail without fixtures; only a
    /// local `cargo xtask ci` goes on with a warning.
    #[test]
    fn missing_fixtures_fail_every_run_but_a_local_ci() {
        let built = Path::new("state-tests");
        assert!(Runner::Cargo.needs_fixtures(false));
        assert!(Runner::Cargo.needs_fixtures(true));
        assert!(Runner::FromCiBuild(built).needs_fixtures(true));
        assert!(!Runner::FromCiBuild(built).needs_fixtures(false));
    }
}
