//! `cargo xtask`: the workspace's one entry point.
//!
//! `ci` runs formatting, lints, every test, the Ethereum conformance suite and the checks that
//! generated artifacts are reproducible; `bench` runs the benchmarks of `benches/` (callgrind
//! and side-by-side wall clock) and writes `<target dir>/xtask/bench-summary.json`;
//! `conformance` runs the state-test suite on any fixtures; `contracts` and `wasm` regenerate
//! committed artifacts and fail when they differ;
//! `fuzz` runs the fuzz targets of `crates/fuzz` for a time per target;
//! `fetch-fixtures` downloads the public state tests; `verifiers` prepares the independent
//! verifiers; `clients` installs the real clients the node's end-to-end tests drive. It depends on no workspace crate, so it
//! builds in seconds; everything heavy runs through `cargo`.

mod artifacts;
mod bench;
mod ci;
mod clients;
mod command;
mod phase;
mod rules;
mod verifiers;

use command::{cargo, run};
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci [--phase a|b|c|d|e]           fmt check, clippy -D warnings, tests, conformance, artifact checks
  bench [--phase a|b|c|d|e] [--quick]
                                   deterministic (callgrind) and side-by-side wall-clock figures;
                                   writes <target dir>/xtask/bench-summary.json
  conformance [PATH...]            Ethereum state tests (default: $XSTATE_STATE_TESTS, then ../shared/conformance)
  contracts [--check]              recompile the Solidity contracts; --check fails when they differ
  wasm [--check]                   rebuild the guest .wasm files; --check fails when they differ
  fetch-fixtures [DIR]             download the public state-test corpora
  verifiers                        prepare the independent verifiers (py-trie) and check the spec's golden root
  clients                          install viem, @ethereumjs/mpt and anvil (npm ci) for the node's end-to-end tests
  fuzz [TARGET] [--time SECS]      generated inputs for every boundary (crates/fuzz): each target (or TARGET)
                                   SECS seconds (default 60) from a random seed, which is printed";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    // `cargo xtask bench --help` should explain itself rather than fail on an unknown argument.
    if asks_for_help(rest) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let result = match command.as_str() {
        "ci" => phase::parse(rest).and_then(ci::run_ci),
        "bench" => bench::Options::parse(rest).and_then(bench::run_benches),
        "conformance" => paths(rest).and_then(|()| artifacts::conformance(rest)),
        "contracts" => check_flag(rest).and_then(artifacts::contracts),
        "wasm" => check_flag(rest).and_then(artifacts::wasm),
        "verifiers" if rest.is_empty() => verifiers::verifiers(),
        "verifiers" => Err(format!("verifiers takes no arguments, not {rest:?}")),
        "clients" if rest.is_empty() => {
            clients::prepare().map(|directory| println!("clients ready: {}", directory.display()))
        }
        "clients" => Err(format!("clients takes no arguments, not {rest:?}")),
        "fuzz" => fuzz_args(rest)
            .and_then(|args| run("fuzz", cargo().args(["run", "-q", "-p", "xstate-fuzz", "--"]).args(args))),
        "fetch-fixtures" => match rest {
            [] => artifacts::fetch_fixtures(None),
            [dir] if !dir.starts_with('-') => artifacts::fetch_fixtures(Some(dir)),
            _ => Err(format!("fetch-fixtures takes at most one directory, not {rest:?}")),
        },
        _ if asks_for_help(std::slice::from_ref(command)) => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `[--check]`: a typo must not turn a check into a regeneration that overwrites committed files.
fn check_flag(args: &[String]) -> Result<bool, String> {
    match args {
        [] => Ok(false),
        [flag] if flag == "--check" => Ok(true),
        _ => Err(format!("expected nothing or `--check`, not {args:?}")),
    }
}

/// `[TARGET] [--time SECS]`, as the fuzz driver takes them, with 60 s per target by default: a
/// long run is what the command is for (CI runs the driver's bounded budget itself).
fn fuzz_args(args: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut time = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--time" => {
                let value = iter.next().filter(|value| value.parse::<u64>().is_ok_and(|secs| secs > 0));
                time = Some(value.ok_or("--time needs a number of seconds")?.clone());
            }
            option if option.starts_with('-') => return Err(format!("fuzz: unexpected option `{option}`")),
            target if out.is_empty() => out.push(target.to_owned()),
            extra => return Err(format!("fuzz takes at most one target, not also `{extra}`")),
        }
    }
    out.extend(["--time".to_owned(), time.unwrap_or_else(|| "60".to_owned())]);
    Ok(out)
}

/// Fixture paths only: an option here is a mistake, not a directory.
fn paths(args: &[String]) -> Result<(), String> {
    match args.iter().find(|arg| arg.starts_with('-')) {
        Some(option) => Err(format!("unexpected option `{option}`: conformance takes fixture paths only")),
        None => Ok(()),
    }
}

fn asks_for_help(args: &[String]) -> bool {
    args.iter().any(|arg| matches!(arg.as_str(), "help" | "--help" | "-h"))
}

#[cfg(test)]
mod tests {
    use super::{asks_for_help, check_flag, fuzz_args, paths};

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn artifact_commands_refuse_what_they_do_not_know() {
        assert_eq!(check_flag(&args(&[])), Ok(false));
        assert_eq!(check_flag(&args(&["--check"])), Ok(true));
        for wrong in [&["--chek"][..], &["--check", "--check"], &["check"]] {
            assert!(check_flag(&args(wrong)).is_err(), "{wrong:?}");
        }
        assert!(paths(&args(&["fixtures/a", "b"])).is_ok());
        assert!(paths(&args(&["fixtures", "--quick"])).is_err());
    }

    #[test]
    fn fuzz_runs_for_a_time_and_refuses_what_it_does_not_know() {
        assert_eq!(fuzz_args(&args(&[])).unwrap(), ["--time", "60"]);
        assert_eq!(fuzz_args(&args(&["jsonrpc_body", "--time", "600"])).unwrap(), ["jsonrpc_body", "--time", "600"]);
        assert_eq!(fuzz_args(&args(&["--time", "5", "wasm_deploy"])).unwrap(), ["wasm_deploy", "--time", "5"]);
        for wrong in [&["--time"][..], &["--time", "0"], &["--time", "soon"], &["a", "b"], &["--seed", "1"]] {
            assert!(fuzz_args(&args(wrong)).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn help_is_recognised_anywhere_but_not_in_other_arguments() {
        for help in [&["--help"][..], &["-h"], &["--phase", "a", "--help"], &["help"]] {
            assert!(asks_for_help(&args(help)), "{help:?}");
        }
        for other in [&[][..], &["--phase", "a"], &["--quick"], &["--helpful"]] {
            assert!(!asks_for_help(&args(other)), "{other:?}");
        }
    }
}
