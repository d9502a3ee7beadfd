//! Running child commands from the workspace root, loudly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

/// The workspace root (the parent of the xtask crate).
pub(crate) fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (a shared one, say), else `target/`.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() { dir } else { root().join(dir) }
        }
        _ => root().join("target"),
    }
}

/// The cargo that runs this xtask.
pub(crate) fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root());
    // A CI machine builds everything once from nothing, where incremental compilation only adds
    // the cost of writing its caches; a developer's machine keeps cargo's default.
    if std::env::var_os("CI").is_some() && std::env::var_os("CARGO_INCREMENTAL").is_none() {
        command.env("CARGO_INCREMENTAL", "0");
    }
    command
}

/// Runs `command`, printing it and how long it took; a non-zero exit is an error naming `step`.
pub(crate) fn run(step: &str, command: &mut Command) -> Result<(), String> {
    timed_step(step, command, |command| command.status().map(|status| (status, ())))
}

/// Prints a step's start, runs `command` with `execute` and prints how it ended and how long it
/// took; the step fails unless the command started and exited successfully.
fn timed_step<T>(
    step: &str,
    command: &mut Command,
    execute: impl FnOnce(&mut Command) -> std::io::Result<(ExitStatus, T)>,
) -> Result<T, String> {
    println!("\n==> {step}: {}", describe(command));
    let started = Instant::now();
    let (status, value) = execute(command).map_err(|error| format!("{step}: cannot start: {error}"))?;
    println!(
        "<== {step}: {} in {:.1}s",
        if status.success() { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    if status.success() { Ok(value) } else { Err(format!("{step} failed ({status})")) }
}

/// Runs a cargo build `command` (one that takes `--message-format`) like [`run`] and returns
/// the executables of the binary targets it built or found fresh, by target name.
///
/// Later steps run those files directly rather than through `cargo run -p`: cargo resolves
/// features for the packages a command selects, so `cargo run -p one-crate` after
/// `cargo test --workspace` rebuilds every dependency whose features differ between the two, which
/// on a machine building from nothing was minutes of the CI run.
pub(crate) fn build_binaries(step: &str, command: &mut Command) -> Result<BTreeMap<String, PathBuf>, String> {
    command.arg("--message-format=json-render-diagnostics").stdout(Stdio::piped());
    let messages = timed_step(step, command, |command| command.output().map(|output| (output.status, output.stdout)))?;
    Ok(binaries(&String::from_utf8_lossy(&messages)))
}

/// The binary targets' executables named in cargo's JSON messages (not their unit-test harnesses).
fn binaries(messages: &str) -> BTreeMap<String, PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact" && message["profile"]["test"] == false)
        .filter(|message| {
            message["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|kind| kind == "bin"))
        })
        .filter_map(|message| {
            let name = message["target"]["name"].as_str()?.to_owned();
            Some((name, PathBuf::from(message["executable"].as_str()?)))
        })
        .collect()
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Whether a program can be started.
pub(crate) fn available(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).output().is_ok_and(|output| output.status.success())
}

#[cfg(test)]
mod tests {
    use super::binaries;
    use std::path::PathBuf;

    #[test]
    fn only_binary_targets_built_as_programs_are_taken_from_cargo_messages() {
        let messages = [
            r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"state-tests"},"profile":{"test":false},"executable":"/t/debug/state-tests","fresh":true}"#,
            r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"name":"xstate"},"profile":{"test":true},"executable":"/t/debug/deps/xstate-1234"}"#,
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"kv_core"},"profile":{"test":false},"executable":null}"#,
            r#"{"reason":"compiler-artifact","target":{"kind":["test"],"name":"calls"},"profile":{"test":true},"executable":"/t/debug/deps/calls-99"}"#,
            r#"{"reason":"build-finished","success":true}"#,
            "not json at all",
        ]
        .join("\n");
        let found = binaries(&messages);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found["state-tests"], PathBuf::from("/t/debug/state-tests"));
    }
}
