//! The real Ethereum clients the node's end-to-end tests drive (viem, the independent MPT
//! verifier `@ethereumjs/mpt`, and anvil as the reference node), installed with `npm ci` from the
//! committed `xtask/clients/package-lock.json` into `<target dir>/xtask/clients`. `ci` prepares
//! them before the tests and hands their directory to the tests through `XSTATE_CLIENTS`; a
//! machine without Node.js and npm fails here, so the end-to-end tests are never skipped.

use crate::command::{root, run, target_dir};
use std::path::PathBuf;
use std::process::Command;

/// The directory of the clients' package files.
fn sources() -> PathBuf {
    root().join("xtask").join("clients")
}

/// The installed clients' directory, installing or refreshing them when the lockfile changed.
pub(crate) fn prepare() -> Result<PathBuf, String> {
    let directory = target_dir().join("xtask").join("clients");
    let lock = std::fs::read_to_string(sources().join("package-lock.json"))
        .map_err(|error| format!("clients lockfile: {error}"))?;
    let stamp = directory.join("installed-lock.json");
    if directory.join("node_modules").exists()
        && std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == lock)
    {
        return Ok(directory);
    }
    for program in ["node", "npm"] {
        if !crate::command::available(program, "--version") {
            return Err(format!(
                "no `{program}` on PATH: the node's end-to-end tests drive viem and anvil, which need Node.js 20 or later and npm"
            ));
        }
    }
    std::fs::create_dir_all(&directory).map_err(|error| format!("{}: {error}", directory.display()))?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(sources().join(file), directory.join(file))
            .map_err(|error| format!("copying the clients' {file}: {error}"))?;
    }
    // No install scripts: anvil's binary comes in its platform package, and its postinstall
    // script would only fetch that package again.
    run(
        "client packages (npm ci)",
        Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&directory),
    )?;
    std::fs::write(&stamp, lock).map_err(|error| format!("{}: {error}", stamp.display()))?;
    Ok(directory)
}
