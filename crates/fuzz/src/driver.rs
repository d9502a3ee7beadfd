//! The driver: replays a target's committed corpus, then runs inputs generated from a seeded RNG
//! (random bytes, and mutations of the target's valid seeds and of its corpus) until its budget
//! is spent. A panic is caught (`catch_unwind`) like a violated invariant; either is a crash,
//! whose input is written to the corpus so the next run replays it.

use crate::mutate::mutate;
use crate::targets::Target;
use alloy_primitives::keccak256;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a target runs after its corpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// A fixed number of generated inputs: the same work on every machine (CI).
    Executions(u64),
    /// As many generated inputs as fit in this time (long runs).
    Time(Duration),
}

/// One crash: what failed and where its input was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crash {
    /// The corpus file holding the input.
    pub input: PathBuf,
    /// The panic message or the invariant that failed.
    pub message: String,
}

/// What a run of one target did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The target.
    pub target: &'static str,
    /// Inputs run: the corpus and the generated ones.
    pub executions: u64,
    /// Inputs that panicked or broke an invariant (distinct inputs).
    pub crashes: Vec<Crash>,
    /// Files in the target's corpus after the run.
    pub corpus_size: usize,
    /// Inputs that reached the deep path ([`Target::reached`]).
    pub reached: u64,
}

/// The committed corpus of all targets.
pub fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// The inputs in `dir`, in file-name order (so a replay is the same every time).
pub fn read_corpus(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).filter(|path| path.is_file()).collect();
    files.sort();
    files.into_iter().filter_map(|path| std::fs::read(&path).ok().map(|bytes| (path, bytes))).collect()
}

/// Runs `input` once, turning a panic into an error.
pub fn execute(target: &mut dyn Target, input: &[u8]) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| target.run(input))) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Err(format!("panic: {message}"))
        }
    }
}

/// Writes a crashing input to `dir` under a name derived from its bytes, once.
fn record(dir: &Path, input: &[u8]) -> PathBuf {
    let name = format!("crash-{}", &alloy_primitives::hex::encode(keccak256(input))[..16]);
    let path = dir.join(name);
    if !path.exists() {
        // A corpus that cannot be written still reports the crash; the message says where it
        // would have gone.
        let _ = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, input));
    }
    path
}

/// Replays `corpus_dir`, then generates inputs from `seed` within `budget`.
pub fn run_target(target: &mut dyn Target, corpus_dir: &Path, seed: u64, budget: Budget) -> Report {
    let name = target.name();
    let mut crashes: Vec<Crash> = Vec::new();
    let mut executions = 0u64;
    let note = |crashes: &mut Vec<Crash>, input: &[u8], message: String| {
        let path = record(corpus_dir, input);
        if !crashes.iter().any(|crash| crash.input == path) {
            crashes.push(Crash { input: path, message });
        }
    };
    let corpus = read_corpus(corpus_dir);
    for (_, input) in &corpus {
        executions += 1;
        if let Err(message) = execute(target, input) {
            note(&mut crashes, input, message);
        }
    }
    let mut pool: Vec<Vec<u8>> = target.seeds();
    pool.extend(corpus.into_iter().map(|(_, input)| input));
    for seed_input in pool.clone() {
        executions += 1;
        if let Err(message) = execute(target, &seed_input) {
            note(&mut crashes, &seed_input, message);
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut generated = 0u64;
    loop {
        let done = match budget {
            Budget::Executions(limit) => generated >= limit,
            Budget::Time(limit) => started.elapsed() >= limit,
        };
        if done {
            break;
        }
        let input = if pool.is_empty() || rng.random_bool(0.4) {
            let len = rng.random_range(0..=target.random_len());
            (0..len).map(|_| rng.random()).collect()
        } else {
            let mut input = pool[rng.random_range(0..pool.len())].clone();
            mutate(&mut rng, &mut input);
            input
        };
        generated += 1;
        executions += 1;
        if let Err(message) = execute(target, &input) {
            note(&mut crashes, &input, message);
        }
    }
    Report { target: name, executions, crashes, corpus_size: read_corpus(corpus_dir).len(), reached: target.reached() }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

    use super::{Budget, run_target};
    use crate::targets::Target;

    /// A target with a planted bug: inputs starting with `!` panic, inputs starting with `?`
    /// break its invariant.
    struct Planted;

    impl Target for Planted {
        fn name(&self) -> &'static str {
            "planted"
        }
        fn seeds(&self) -> Vec<Vec<u8>> {
            vec![b"ok".to_vec(), b"?bad".to_vec()]
        }
        fn random_len(&self) -> usize {
            2
        }
        fn reached(&self) -> u64 {
            0
        }
        fn reached_means(&self) -> &'static str {
            "nothing"
        }
        fn run(&mut self, input: &[u8]) -> Result<(), String> {
            match input.first() {
                Some(b'!') => panic!("planted panic"),
                Some(b'?') => Err("planted invariant".into()),
                _ => Ok(()),
            }
        }
    }

    #[test]
    fn crashes_are_caught_written_to_the_corpus_and_replayed() {
        let dir = std::env::temp_dir().join(format!("xstate-fuzz-driver-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = run_target(&mut Planted, &dir, 1, Budget::Executions(3000));
        assert_eq!(first.target, "planted");
        // Two seeds and 3,000 generated inputs, no corpus yet.
        assert_eq!(first.executions, 3002);
        let messages: Vec<&str> = first.crashes.iter().map(|crash| crash.message.as_str()).collect();
        assert!(messages.contains(&"planted invariant"), "{messages:?}");
        assert!(messages.contains(&"panic: planted panic"), "{messages:?}");
        assert_eq!(first.corpus_size, first.crashes.len());
        for crash in &first.crashes {
            assert!(crash.input.starts_with(&dir) && crash.input.exists());
        }
        // The next run replays the corpus first and finds the same crashes with no generated input.
        let again = run_target(&mut Planted, &dir, 2, Budget::Executions(0));
        assert_eq!(again.executions, u64::try_from(2 * first.corpus_size + 2).unwrap());
        assert_eq!(again.crashes.len(), first.crashes.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
