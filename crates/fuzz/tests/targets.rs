//! Every target's fixtures build, its valid seeds pass its invariants and reach its deep path
//! (so generation starts from inputs that get past the parser), and its committed corpus replays
//! with no crash: the regressions stay fixed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use xstate_fuzz::driver::{corpus_root, execute, read_corpus};
use xstate_fuzz::{Budget, all_targets, run_target, target};

#[test]
fn every_target_passes_its_seeds_and_its_corpus_and_reaches_its_deep_path() {
    assert_eq!(all_targets().len(), 8);
    for name in all_targets() {
        let mut fuzzed = target(name).unwrap();
        assert_eq!(fuzzed.name(), name);
        for (index, seed) in fuzzed.seeds().iter().enumerate() {
            execute(fuzzed.as_mut(), seed).unwrap_or_else(|message| panic!("{name} seed {index}: {message}"));
        }
        for (path, input) in read_corpus(&corpus_root().join(name)) {
            execute(fuzzed.as_mut(), &input).unwrap_or_else(|message| panic!("{}: {message}", path.display()));
        }
        // The differential target has no seeds: its inputs are wasm-smith's, from any bytes.
        if fuzzed.seeds().is_empty() {
            let bytes: Vec<u8> = (0..2048u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0]).collect();
            execute(fuzzed.as_mut(), &bytes).unwrap();
        }
        assert!(fuzzed.reached() > 0, "{name}: no seed reached {}", fuzzed.reached_means());
    }
}

#[test]
fn a_short_generated_run_finds_nothing_and_leaves_the_corpus_as_it_was() {
    for name in ["precompile_calldata", "proof_file"] {
        let before = read_corpus(&corpus_root().join(name)).len();
        let report = run_target(target(name).unwrap().as_mut(), &corpus_root().join(name), 16, Budget::Executions(300));
        assert!(report.crashes.is_empty(), "{name}: {:?}", report.crashes);
        assert!(report.executions >= 300);
        assert_eq!(report.corpus_size, before);
    }
}
