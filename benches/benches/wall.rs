//! The wall-clock figures of the selected phases, each A/B figure measured side by side in this
//! one process (see `xstate_benches::harness`).
//!
//! Usage: `cargo bench -p xstate-benches --bench wall -- [--phase a|b|c|d|e]... [--quick]
//! [--out FILE]`; `cargo xtask bench` runs it and turns the samples into figures. Without
//! `--phase` every phase runs.

use std::process::ExitCode;
use xstate_benches::harness::Samples;

type PhaseRun = fn(bool, &mut Samples);

const PHASES: &[(char, PhaseRun)] = &[
    ('a', xstate_benches::phase_a::wall),
    ('b', xstate_benches::phase_b::wall),
    ('c', xstate_benches::phase_c::wall),
    ('d', xstate_benches::phase_d::wall),
    ('e', xstate_benches::phase_e::wall),
];

fn main() -> ExitCode {
    let mut phases = Vec::new();
    let mut quick = false;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--phase" => match args.next().and_then(|value| value.chars().next()) {
                Some(letter) if PHASES.iter().any(|(phase, _)| *phase == letter) => phases.push(letter),
                other => {
                    eprintln!("wall: --phase needs one of a, b, c, d, e, not {other:?}");
                    return ExitCode::from(2);
                }
            },
            "--out" => out = args.next(),
            // `cargo bench` passes `--bench` to every bench target.
            "--bench" => {}
            other => {
                eprintln!("wall: unexpected argument `{other}`");
                return ExitCode::from(2);
            }
        }
    }
    let mut samples = Samples::default();
    for (phase, run) in PHASES {
        if phases.is_empty() || phases.contains(phase) {
            println!("wall-clock figures of phase {phase}");
            run(quick, &mut samples);
        }
    }
    let text = samples.to_json();
    match out {
        Some(path) => {
            if let Err(error) = std::fs::write(&path, text) {
                eprintln!("wall: cannot write {path}: {error}");
                return ExitCode::FAILURE;
            }
        }
        None => println!("{text}"),
    }
    ExitCode::SUCCESS
}
