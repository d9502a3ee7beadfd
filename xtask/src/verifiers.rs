//! The independent verifiers: py-trie (Python's `trie` package), which shares no code with this
//! project, in a virtual environment under `target/xtask/pyenv` built from the pinned
//! `xtask/verifiers/requirements.txt`. `ci` prepares it before the tests (the EIP-1186 test of
//! the `xstate` binary runs it, found through `XSTATE_PYTHON`) and checks the spec's golden root
//! with it.

use crate::command::{root, run};
use std::path::PathBuf;
use std::process::Command;

/// The pinned requirements of the verifiers.
fn requirements() -> PathBuf {
    root().join("xtask").join("verifiers").join("requirements.txt")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// The environment's interpreter, creating or refreshing the environment when it is missing or
/// was built from other requirements.
pub(crate) fn prepare() -> Result<PathBuf, String> {
    let environment = target_dir().join("xtask").join("pyenv");
    let python = environment.join("bin").join("python");
    let wanted = std::fs::read_to_string(requirements()).map_err(|error| format!("verifier requirements: {error}"))?;
    let stamp = environment.join("requirements.txt");
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return Ok(python);
    }
    let host = ["python3", "python"]
        .into_iter()
        .find(|program| crate::command::available(program, "--version"))
        .ok_or("no python3 on PATH: the independent verifiers need Python 3.10 or later")?;
    run("verifier environment", Command::new(host).arg("-m").arg("venv").arg("--clear").arg(&environment))?;
    run(
        "verifier packages",
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(requirements()),
    )?;
    std::fs::write(&stamp, wanted).map_err(|error| format!("{}: {error}", stamp.display()))?;
    Ok(python)
}

/// Recomputes the golden root of `docs/spec/abi/state.md` section 5.4 with py-trie.
pub(crate) fn check_golden_root(python: &PathBuf) -> Result<(), String> {
    let spec =
        std::fs::read_to_string(root().join("docs/spec/abi/state.md")).map_err(|error| format!("spec: {error}"))?;
    let section = spec.split("### 5.4 Golden root").nth(1).ok_or("the spec has no section 5.4 Golden root")?;
    let golden = section
        .split('`')
        .find(|word| word.len() == 66 && word.starts_with("0x"))
        .ok_or("section 5.4 prints no root")?;
    let script = root().join("xtask").join("verifiers").join("golden_root.py");
    run("golden root (py-trie)", Command::new(python).arg(script).arg(golden))
}

/// `cargo xtask verifiers`: prepare the environment and check the golden root.
pub(crate) fn verifiers() -> Result<(), String> {
    let python = prepare()?;
    check_golden_root(&python)?;
    println!("\nindependent verifiers ready: {}", python.display());
    Ok(())
}
