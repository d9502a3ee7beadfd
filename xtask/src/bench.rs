//! `cargo xtask bench`: runs the criterion benchmarks of the selected phases, derives the
//! figures the issues ask for (ratios, per-operation times, throughputs) from criterion's own
//! estimates, and writes them to `target/xtask/bench-summary.json` and a table on stdout.
//!
//! Every figure comes from benchmarks measured in the same `cargo bench` run, so a ratio never
//! mixes two runs of a noisy machine.

use crate::command::{cargo, root, run};
use crate::phase::{self, Phase};
use serde_json::{Value, json};
use std::path::PathBuf;

/// The benchmark targets of each phase: (phase, package, bench target).
const TARGETS: &[(char, &str, &str)] = &[
    ('a', "kv-core", "state_get"),
    ('a', "kv-core", "root"),
    ('b', "wasm-binding", "wasm"),
    ('c', "evm-binding", "evm"),
    ('d', "cross-read", "cross"),
    ('e', "xstate", "mixed_block"),
];

/// How a figure is computed from criterion results (ids are `group/function`).
enum Formula {
    /// Mean time of one element (iteration time divided by the declared throughput).
    PerElementNs(&'static str),
    /// Sum of several benchmarks' per-element times.
    SumPerElementNs(&'static [&'static str]),
    /// Mean time of one iteration.
    IterationNs(&'static str),
    /// Mean time of one iteration, in microseconds.
    IterationUs(&'static str),
    /// Elements per second.
    ElementsPerSecond(&'static str),
    /// Per-element time of the first list's sum over the second list's sum.
    PerElementRatio(&'static [&'static str], &'static [&'static str]),
    /// Iteration time of one benchmark over another's.
    IterationRatio(&'static str, &'static str),
    /// Throughput of one benchmark over another's.
    ThroughputRatio(&'static str, &'static str),
    /// A value a benchmark (through `XTASK_BENCH_FACTS`) or a step of the run recorded itself.
    Fact(&'static str),
}

struct Metric {
    phase: char,
    name: &'static str,
    unit: &'static str,
    formula: Formula,
    /// The required value, if any.
    target: Option<f64>,
    /// The value to aim for, if any.
    aim: Option<f64>,
    /// Whether larger values are better (throughputs); otherwise smaller ones are.
    higher_is_better: bool,
}

const fn metric(phase: char, name: &'static str, unit: &'static str, formula: Formula) -> Metric {
    Metric { phase, name, unit, formula, target: None, aim: None, higher_is_better: false }
}

const fn bounded(metric: Metric, target: Option<f64>, aim: Option<f64>, higher_is_better: bool) -> Metric {
    Metric { target, aim, higher_is_better, ..metric }
}

fn metrics() -> Vec<Metric> {
    use Formula::*;
    vec![
        // Phase A: the prefix budget on the state_get path.
        metric('a', "state_get/native_ns", "ns", PerElementNs("state_get/native")),
        bounded(
            metric(
                'a',
                "state_get/prefixed_vs_native",
                "ratio",
                PerElementRatio(&["state_get/prefixed_cached"], &["state_get/native"]),
            ),
            Some(1.10),
            Some(1.02),
            false,
        ),
        metric(
            'a',
            "state_get/uncached_vs_native",
            "ratio",
            PerElementRatio(&["state_get/prefixed_uncached"], &["state_get/native"]),
        ),
        metric(
            'a',
            "state_get/overlay_vs_native",
            "ratio",
            PerElementRatio(&["state_get/overlay_cached"], &["state_get/native"]),
        ),
        // Phase A: the state root.
        bounded(
            metric(
                'a',
                "root/commit_1k_at_1m_vs_rebuild",
                "ratio",
                IterationRatio("root/commit_1k_changes_at_1m", "root/hash_builder_1m"),
            ),
            Some(0.05),
            Some(0.01),
            false,
        ),
        metric('a', "root/commit_1k_changes_at_10k", "ns", IterationNs("root/commit_1k_changes_at_10k")),
        metric('a', "root/commit_1k_changes_at_1m", "ns", IterationNs("root/commit_1k_changes_at_1m")),
        bounded(
            metric(
                'a',
                "root/growth_1m_vs_10k",
                "ratio",
                IterationRatio("root/commit_1k_changes_at_1m", "root/commit_1k_changes_at_10k"),
            ),
            Some(3.0),
            Some(2.0),
            false,
        ),
        metric('a', "root/hash_builder_1m", "ns", IterationNs("root/hash_builder_1m")),
        metric('a', "root/full_build_100k", "ops_per_s", ElementsPerSecond("root/full_build_100k")),
        bounded(
            metric(
                'a',
                "root/full_build_vs_alloy_trie",
                "ratio",
                ThroughputRatio("root/full_build_100k", "root/hash_builder_100k"),
            ),
            None,
            Some(0.5),
            true,
        ),
        metric('a', "root/commit_1k_changes_at_1m_redb", "ns", IterationNs("root/commit_1k_changes_at_1m_redb")),
        metric('a', "root/commit_10k_entries_redb", "ops_per_s", ElementsPerSecond("root/commit_10k_entries_redb")),
        metric('a', "redb/batch_10k_entries", "ops_per_s", ElementsPerSecond("redb/batch_10k_entries")),
        metric('a', "root/proof_bytes_at_1m", "bytes", Fact("root/proof_bytes_at_1m")),
        metric('a', "root/verify_proof_at_1m", "ns", PerElementNs("root/verify_proof_at_1m")),
        // Phase B: the WASM engine.
        metric('b', "wasm/state_get_host_ns", "ns", PerElementNs("wasm/state_get_loop")),
        metric(
            'b',
            "wasm/state_get_floor_ns",
            "ns",
            Formula::SumPerElementNs(&["wasm/empty_host_call_loop", "wasm/kv_core_get"]),
        ),
        bounded(
            metric(
                'b',
                "wasm/state_get_vs_floor",
                "ratio",
                PerElementRatio(&["wasm/state_get_loop"], &["wasm/empty_host_call_loop", "wasm/kv_core_get"]),
            ),
            Some(1.5),
            Some(1.2),
            false,
        ),
        metric('b', "wasm/call_overhead_us", "us", IterationUs("wasm/trivial_call")),
        metric('b', "wasm/token_transfer_ns", "ns", IterationNs("wasm/token_transfer")),
        // Phase C: revm on the substrate.
        bounded(
            metric(
                'c',
                "evm/erc20_transfer_vs_cachedb",
                "ratio",
                PerElementRatio(&["evm/erc20_transfer_shared"], &["evm/erc20_transfer_cachedb"]),
            ),
            Some(1.25),
            Some(1.05),
            false,
        ),
        metric('c', "evm/erc20_transfers_per_s", "ops_per_s", ElementsPerSecond("evm/erc20_transfer_shared")),
        metric('c', "evm/sload_cold_ns", "ns", PerElementNs("evm/sload_cold")),
        metric('c', "evm/sload_warm_ns", "ns", PerElementNs("evm/sload_warm")),
        metric('c', "evm/conformance_wall_s", "s", Fact("evm/conformance_wall_s")),
        // Phase D: cross-engine reads.
        bounded(
            metric(
                'd',
                "cross/wasm_reads_evm_vs_native",
                "ratio",
                PerElementRatio(&["cross/wasm_evm_storage_read"], &["cross/wasm_state_get"]),
            ),
            None,
            Some(2.0),
            false,
        ),
        metric('d', "cross/wasm_reads_evm_ns", "ns", PerElementNs("cross/wasm_evm_storage_read")),
        metric('d', "cross/wasm_native_floor_ns", "ns", PerElementNs("cross/wasm_state_get")),
        bounded(
            metric(
                'd',
                "cross/evm_reads_wasm_vs_sload",
                "ratio",
                PerElementRatio(&["cross/evm_precompile_read"], &["cross/evm_warm_sload"]),
            ),
            None,
            Some(2.0),
            false,
        ),
        metric('d', "cross/evm_reads_wasm_ns", "ns", PerElementNs("cross/evm_precompile_read")),
        metric('d', "cross/evm_sload_floor_ns", "ns", PerElementNs("cross/evm_warm_sload")),
        metric('d', "cross/evm_precompile_call_floor_ns", "ns", PerElementNs("cross/evm_identity_call")),
        metric(
            'd',
            "cross/evm_reads_wasm_vs_precompile_call",
            "ratio",
            PerElementRatio(&["cross/evm_precompile_read"], &["cross/evm_identity_call"]),
        ),
        // Phase E: the runtime.
        metric('e', "xstate/mixed_block_tx_per_s", "ops_per_s", ElementsPerSecond("xstate/mixed_block_1000")),
        metric('e', "xstate/commit_share", "ratio", Fact("xstate/commit_share")),
    ]
}

/// Options of `cargo xtask bench`.
pub(crate) struct Options {
    phase: Phase,
    quick: bool,
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self { phase: Phase::All, quick: false };
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--phase" => options.phase = phase::letter(iter.next().ok_or("--phase needs a value")?)?,
                other => return Err(format!("unexpected argument `{other}`")),
            }
        }
        Ok(options)
    }
}

fn xtask_dir() -> PathBuf {
    root().join("target").join("xtask")
}

pub(crate) fn facts_dir() -> PathBuf {
    xtask_dir().join("facts")
}

/// Runs the benchmarks and writes the summary.
pub(crate) fn run_benches(options: Options) -> Result<(), String> {
    std::fs::create_dir_all(facts_dir()).map_err(|error| error.to_string())?;
    let targets: Vec<_> = TARGETS.iter().filter(|(phase, _, _)| options.phase.includes(*phase)).collect();
    for (_, package, target) in &targets {
        let mut command = cargo();
        // `--workspace` resolves features once for every package, so each bench reuses the same
        // release build instead of rebuilding revm and wasmer with another feature set.
        command.env("XTASK_BENCH_FACTS", facts_dir()).args([
            "bench",
            "--workspace",
            "--bench",
            target,
            "--",
            "--noplot",
        ]);
        if options.quick {
            command.args(["--warm-up-time", "0.5", "--measurement-time", "2"]);
        }
        run(&format!("bench {package}/{target}"), &mut command)?;
    }
    if options.phase.includes('c') {
        if crate::artifacts::fixtures_available() {
            // Build first, so that the timing is the suite's and not the compiler's.
            run("build the state-test runner", cargo().args(["build", "-p", "evm-binding", "--bin", "state-tests"]))?;
            let started = std::time::Instant::now();
            crate::artifacts::run_conformance(&[], false)?;
            record_fact("evm/conformance_wall_s", started.elapsed().as_secs_f64(), "s")?;
        } else {
            // The summary is still written; the figure is reported as one without data.
            eprintln!("\nnote: no conformance fixtures, so evm/conformance_wall_s is not measured");
        }
    }
    let ran: Vec<char> = targets.iter().map(|(phase, _, _)| *phase).collect();
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for metric in metrics().into_iter().filter(|metric| ran.contains(&metric.phase)) {
        match evaluate(&metric.formula) {
            Ok(value) => rows.push((metric, value)),
            Err(error) => missing.push(format!("{}: {error}", metric.name)),
        }
    }
    write_summary(&rows)?;
    print_table(&rows);
    if !missing.is_empty() {
        return Err(format!("figures without data:\n  {}", missing.join("\n  ")));
    }
    let failed: Vec<&str> =
        rows.iter().filter(|(metric, value)| !meets(metric, *value)).map(|(metric, _)| metric.name).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("figures outside their required target: {}", failed.join(", ")))
    }
}

fn record_fact(name: &str, value: f64, unit: &str) -> Result<(), String> {
    let path = facts_dir().join(format!("{}.json", name.replace('/', "__")));
    let text = json!({ "name": name, "value": value, "unit": unit }).to_string();
    std::fs::write(&path, text).map_err(|error| format!("{}: {error}", path.display()))
}

fn meets(metric: &Metric, value: f64) -> bool {
    metric.target.is_none_or(|target| if metric.higher_is_better { value >= target } else { value <= target })
}

fn criterion_dir(id: &str) -> PathBuf {
    let mut path = root().join("target").join("criterion");
    for part in id.split('/') {
        path.push(part);
    }
    path.join("new")
}

fn read_json(path: &std::path::Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
}

/// Mean iteration time in ns and the number of elements per iteration.
fn measurement(id: &str) -> Result<(f64, f64), String> {
    let dir = criterion_dir(id);
    let estimates = read_json(&dir.join("estimates.json"))?;
    let mean = estimates["mean"]["point_estimate"].as_f64().ok_or_else(|| format!("{id}: no mean estimate"))?;
    let benchmark = read_json(&dir.join("benchmark.json"))?;
    let elements = benchmark["throughput"]["Elements"].as_f64().unwrap_or(1.0);
    Ok((mean, elements))
}

fn per_element(id: &str) -> Result<f64, String> {
    measurement(id).map(|(mean, elements)| mean / elements)
}

fn evaluate(formula: &Formula) -> Result<f64, String> {
    let sum = |ids: &[&str]| ids.iter().map(|id| per_element(id)).sum::<Result<f64, String>>();
    match formula {
        Formula::PerElementNs(id) => per_element(id),
        Formula::SumPerElementNs(ids) => sum(ids),
        Formula::IterationNs(id) => measurement(id).map(|(mean, _)| mean),
        Formula::IterationUs(id) => measurement(id).map(|(mean, _)| mean / 1000.0),
        Formula::ElementsPerSecond(id) => measurement(id).map(|(mean, elements)| elements * 1e9 / mean),
        Formula::PerElementRatio(top, bottom) => Ok(sum(top)? / sum(bottom)?),
        Formula::IterationRatio(top, bottom) => Ok(measurement(top)?.0 / measurement(bottom)?.0),
        Formula::ThroughputRatio(top, bottom) => Ok(per_element(bottom)? / per_element(top)?),
        Formula::Fact(name) => {
            let fact = read_json(&facts_dir().join(format!("{}.json", name.replace('/', "__"))))?;
            fact["value"].as_f64().ok_or_else(|| format!("{name}: fact without a value"))
        }
    }
}

fn write_summary(rows: &[(Metric, f64)]) -> Result<(), String> {
    let path = xtask_dir().join("bench-summary.json");
    // Merge with figures of phases not run this time, so a per-phase run does not erase others.
    let mut entries: Vec<Value> = read_json(&path)
        .ok()
        .and_then(|value| value.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| !rows.iter().any(|(metric, _)| entry["name"] == metric.name))
        .collect();
    for (metric, value) in rows {
        entries.push(json!({
            "phase": metric.phase.to_string(),
            "name": metric.name,
            "value": value,
            "unit": metric.unit,
            "target": metric.target,
            "aim": metric.aim,
            "better": if metric.higher_is_better { "higher" } else { "lower" },
            "meets_target": meets(metric, *value),
        }));
    }
    entries.sort_by(|a, b| (a["phase"].as_str(), a["name"].as_str()).cmp(&(b["phase"].as_str(), b["name"].as_str())));
    let text = serde_json::to_string_pretty(&entries).map_err(|error| error.to_string())?;
    std::fs::write(&path, text + "\n").map_err(|error| format!("{}: {error}", path.display()))?;
    println!("\nwrote {}", path.display());
    Ok(())
}

fn print_table(rows: &[(Metric, f64)]) {
    println!("\n{:<5} {:<40} {:>16} {:<10} {:>10} {:>10}  status", "phase", "name", "value", "unit", "target", "aim");
    for (metric, value) in rows {
        let show = |bound: Option<f64>| bound.map_or_else(|| "-".to_owned(), |bound| format!("{bound}"));
        let status = match metric.target {
            None => "info",
            Some(_) if meets(metric, *value) => "ok",
            Some(_) => "MISSED",
        };
        println!(
            "{:<5} {:<40} {:>16} {:<10} {:>10} {:>10}  {status}",
            metric.phase,
            metric.name,
            format_value(*value),
            metric.unit,
            show(metric.target),
            show(metric.aim)
        );
    }
}

fn format_value(value: f64) -> String {
    if value.abs() >= 1000.0 { format!("{value:.0}") } else { format!("{value:.4}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_has_a_unique_name_and_a_bench_target_for_its_phase() {
        let all = metrics();
        for (index, metric) in all.iter().enumerate() {
            assert!(all[index + 1..].iter().all(|other| other.name != metric.name), "duplicate {}", metric.name);
            assert!(TARGETS.iter().any(|(phase, _, _)| *phase == metric.phase), "{} has no bench target", metric.name);
            assert!(["ratio", "ns", "us", "s", "ops_per_s", "bytes"].contains(&metric.unit), "{}", metric.name);
        }
    }

    #[test]
    fn targets_are_checked_in_the_right_direction() {
        let lower = Metric { target: Some(1.1), ..metric('a', "x", "ratio", Formula::Fact("x")) };
        assert!(meets(&lower, 1.05) && !meets(&lower, 1.2));
        let higher =
            Metric { target: Some(0.5), higher_is_better: true, ..metric('a', "y", "ratio", Formula::Fact("y")) };
        assert!(meets(&higher, 0.6) && !meets(&higher, 0.4));
    }
}
