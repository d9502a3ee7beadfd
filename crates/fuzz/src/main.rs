//! `xstate-fuzz [TARGET] [--executions N | --time SECS] [--seed SEED]`: runs the fuzz targets
//! (all, or one) and prints, per target, the executions, crashes and corpus size. Without
//! `--time` each target runs its fixed CI budget from a fixed seed, so CI does the same work on
//! every run; with `--time` each target runs that many seconds from a random seed, which is
//! printed so a run can be repeated. Exits 1 when anything crashed (the inputs are in the corpus).

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use xstate_fuzz::driver::corpus_root;
use xstate_fuzz::{Budget, TARGET_NAMES, run_target, target};

/// The seed of bounded (CI) runs.
const CI_SEED: u64 = 0x5eed_0016;

/// Generated inputs per target in a bounded run, sized so all targets together take well under
/// half a minute on a loaded 2-core machine in the dev profile (about 18 s measured).
fn ci_executions(name: &str) -> u64 {
    match name {
        "wasm_deploy" => 2_000,
        "wasm_vs_wasmi" => 2_000,
        "precompile_calldata" => 60_000,
        "raw_transaction" => 40_000,
        "jsonrpc_body" => 4_000,
        "block_file" => 20_000,
        "proof_file" => 200_000,
        "witness_file" => 20_000,
        _ => 100,
    }
}

const USAGE: &str = "usage: xstate-fuzz [TARGET] [--executions N | --time SECS] [--seed SEED]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut names: Vec<&str> = Vec::new();
    let mut time: Option<u64> = None;
    let mut executions: Option<u64> = None;
    let mut seed: Option<u64> = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut number = |flag: &str| -> Result<u64, String> {
            iter.next().and_then(|value| value.parse().ok()).ok_or(format!("{flag} needs a number\n{USAGE}"))
        };
        let parsed = match arg.as_str() {
            "--time" => number("--time").map(|value| time = Some(value)),
            "--executions" => number("--executions").map(|value| executions = Some(value)),
            "--seed" => number("--seed").map(|value| seed = Some(value)),
            "-h" | "--help" => {
                println!("{USAGE}\ntargets: {}", TARGET_NAMES.join(", "));
                return ExitCode::SUCCESS;
            }
            name => match TARGET_NAMES.iter().find(|known| **known == name) {
                Some(known) => {
                    names.push(known);
                    Ok(())
                }
                None => Err(format!("unknown target `{name}`: expected one of {}\n{USAGE}", TARGET_NAMES.join(", "))),
            },
        };
        if let Err(message) = parsed {
            eprintln!("xstate-fuzz: {message}");
            return ExitCode::from(2);
        }
    }
    if names.is_empty() {
        names = TARGET_NAMES.to_vec();
    }
    let seed = seed.unwrap_or_else(|| match time {
        // A long run explores: a new seed each time, printed so it can be repeated.
        Some(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |elapsed| elapsed.as_secs().rotate_left(32) ^ u64::from(elapsed.subsec_nanos())),
        None => CI_SEED,
    });
    // A panic is a finding the driver reports with its input; the default hook would print each
    // one with a backtrace, burying the summary.
    // `XSTATE_FUZZ_PANICS=1` keeps it, to see where a crash panics.
    if std::env::var_os("XSTATE_FUZZ_PANICS").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    println!("xstate-fuzz: seed {seed}");
    println!(
        "{:<22}{:>12}{:>9}{:>8}{:>10}{:>10}  reached: what",
        "target", "executions", "crashes", "corpus", "seconds", "reached"
    );
    let mut crashed = false;
    for name in names {
        let budget = match (time, executions) {
            (Some(seconds), _) => Budget::Time(Duration::from_secs(seconds)),
            (None, Some(count)) => Budget::Executions(count),
            (None, None) => Budget::Executions(ci_executions(name)),
        };
        let started = std::time::Instant::now();
        let Some(mut fuzzed) = target(name) else { continue };
        let report = run_target(fuzzed.as_mut(), &corpus_root().join(name), seed, budget);
        let means = fuzzed.reached_means();
        drop(fuzzed);
        println!(
            "{:<22}{:>12}{:>9}{:>8}{:>10.1}{:>10}  {means}",
            report.target,
            report.executions,
            report.crashes.len(),
            report.corpus_size,
            started.elapsed().as_secs_f64(),
            report.reached,
        );
        for crash in &report.crashes {
            crashed = true;
            println!("  crash {}: {}", crash.input.display(), crash.message.chars().take(600).collect::<String>());
        }
    }
    if crashed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
