//! `state-tests [PATH...]`: runs Ethereum state tests through the EVM binding.
//!
//! Paths are fixture files or folders (searched recursively); without any, it uses
//! `$XSTATE_STATE_TESTS` (`:`-separated), then `../shared/conformance` next to the workspace. It
//! shows a progress bar, prints every failing case with its first mismatch, and ends with
//! `N passed, M failed` (and the skipped cases with their reasons). It exits non-zero when a case
//! fails or no fixture is found.

use evm_conformance::{CaseReport, Summary, Verdict, case_name, fixture_files, run_file};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

fn default_paths() -> Vec<PathBuf> {
    if let Some(paths) = std::env::var_os("XSTATE_STATE_TESTS") {
        return std::env::split_paths(&paths).collect();
    }
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance");
    if shared.exists() { vec![shared] } else { Vec::new() }
}

fn main() -> ExitCode {
    let mut paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        paths = default_paths();
    }
    if let Some(missing) = paths.iter().find(|path| !path.exists()) {
        eprintln!("state-tests: {} does not exist", missing.display());
        return ExitCode::FAILURE;
    }
    let mut files = match fixture_files(&paths) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("state-tests: cannot list fixtures: {error}");
            return ExitCode::FAILURE;
        }
    };
    if files.is_empty() {
        eprintln!(
            "state-tests: no fixtures found (set XSTATE_STATE_TESTS or pass paths; cargo xtask fetch-fixtures downloads them)"
        );
        return ExitCode::FAILURE;
    }

    // Workers take the largest files first: a few files hold most of the cases, and one of them
    // picked up last would leave the other workers idle while it runs alone.
    files.sort_by_cached_key(|file| std::cmp::Reverse(std::fs::metadata(file).map_or(0, |metadata| metadata.len())));

    let started = Instant::now();
    let progress = ProgressBar::new(files.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} files, {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let (sender, receiver) = mpsc::channel::<Vec<CaseReport>>();
    let mut summary = Summary::default();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let sender = sender.clone();
            let (next, files) = (&next, &files);
            scope.spawn(move || {
                while let Some(file) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if sender.send(run_file(file)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        for reports in receiver {
            for report in reports {
                summary.add(&report.verdict);
                if let Verdict::Failed(reason) = &report.verdict {
                    progress.suspend(|| eprintln!("FAILED {}: {reason}", case_name(&report)));
                }
            }
            progress.set_message(format!("{} passed, {} failed", summary.passed, summary.failed));
            progress.inc(1);
        }
    });
    progress.finish_and_clear();
    println!("{} fixture files in {:.1}s", files.len(), started.elapsed().as_secs_f64());
    println!("{}", summary.line());
    if summary.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
