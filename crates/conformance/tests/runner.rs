//! The conformance runner itself: on real fixtures it passes, and when a fixture's expectation is
//! changed it fails naming the first mismatching field. The fixtures are read from
//! `$XSTATE_STATE_TESTS` or `../shared/conformance` and never copied into the project; without
//! them these tests say so and fail when `CI` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

use evm_conformance::{CaseReport, Summary, Verdict, run_file, skip_reason};
use std::path::{Path, PathBuf};

fn fixtures() -> Option<PathBuf> {
    let root = std::env::var_os("XSTATE_STATE_TESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance"));
    let file = root.join("eest-osaka/fusaka-devnet-5/state_tests/osaka/eip7823_modexp_upper_bounds/modexp_upper_bounds/modexp_upper_bounds.json");
    if file.exists() {
        return Some(file);
    }
    eprintln!("!!! state-test fixtures not found under {}: conformance runner tests did not run !!!", root.display());
    assert!(std::env::var_os("CI").is_none(), "fixtures are required in CI");
    None
}

/// Rewrites the fixture with `edit` applied to its first test, runs it, and returns the first
/// case's report.
fn run_edited_test(file: &Path, edit: impl Fn(&mut serde_json::Value)) -> CaseReport {
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    edit(json.as_object_mut().unwrap().values_mut().next().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.json");
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    run_file(&path).remove(0)
}

/// As [`run_edited_test`], with `edit` applied to the first post entry; returns the verdict.
fn run_edited(file: &Path, edit: impl Fn(&mut serde_json::Value)) -> Verdict {
    run_edited_test(file, |test| {
        let post = test["post"].as_object_mut().unwrap().values_mut().next().unwrap();
        edit(&mut post[0]);
    })
    .verdict
}

#[test]
fn real_fixtures_pass_and_edited_expectations_fail_with_the_field_named() {
    let Some(file) = fixtures() else { return };
    let mut summary = Summary::default();
    for report in run_file(&file) {
        summary.add(&report.verdict);
    }
    assert!(summary.passed > 0 && summary.failed == 0, "{}", summary.line());

    let bumped_balance = run_edited(&file, |post| {
        let state = post["state"].as_object_mut().unwrap();
        let account = state.values_mut().next().unwrap();
        account["balance"] = serde_json::Value::from("0x01");
    });
    assert!(matches!(&bumped_balance, Verdict::Failed(reason) if reason.contains("balance")), "{bumped_balance:?}");

    let wrong_root = run_edited(&file, |post| {
        post.as_object_mut().unwrap().remove("state");
        post["hash"] = serde_json::Value::from(format!("0x{}", "11".repeat(32)));
    });
    assert!(matches!(&wrong_root, Verdict::Failed(reason) if reason.contains("state root")), "{wrong_root:?}");

    let wrong_logs = run_edited(&file, |post| post["logs"] = serde_json::Value::from(format!("0x{}", "22".repeat(32))));
    assert!(matches!(&wrong_logs, Verdict::Failed(reason) if reason.contains("logs hash")), "{wrong_logs:?}");

    let unexpected = run_edited(&file, |post| {
        post["expectException"] = serde_json::Value::from("TransactionException.INTRINSIC_GAS_TOO_LOW")
    });
    assert!(matches!(&unexpected, Verdict::Failed(reason) if reason.contains("expected exception")), "{unexpected:?}");

    // An expected post state that does not parse fails the case (the fixture types refuse the
    // whole file), never a comparison silently left out.
    let unparsable = run_edited(&file, |post| {
        let state = post["state"].as_object_mut().unwrap();
        state.values_mut().next().unwrap()["balance"] = serde_json::Value::from("not a number");
    });
    assert!(
        matches!(&unparsable, Verdict::Failed(reason) if reason.starts_with("not a state test") && reason.contains("not a number")),
        "{unparsable:?}"
    );
}

/// A fork key the fixture types read as an alias (`SpuriousDragon` is `EIP158`) still finds its
/// expected post state: the run fails on an account, before it gets to the state root.
#[test]
fn expected_states_are_found_under_fork_aliases() {
    let Some(file) = fixtures() else { return };
    let report = run_edited_test(&file, |test| {
        let post = test["post"].as_object_mut().unwrap();
        let fork = post.keys().next().unwrap().clone();
        let entries = post.remove(&fork).unwrap();
        post.insert("SpuriousDragon".to_owned(), entries);
    });
    assert_eq!(report.fork, "SpuriousDragon");
    assert!(matches!(&report.verdict, Verdict::Failed(reason) if reason.starts_with("account ")), "{report:?}");

    // Two keys naming one fork are merged by the fixture types; which expectation is meant is
    // unknown, so the case fails.
    let report = run_edited_test(&file, |test| {
        let post = test["post"].as_object_mut().unwrap();
        let fork = post.keys().next().unwrap().clone();
        let entries = post.remove(&fork).unwrap();
        post.insert("EIP150".to_owned(), entries.clone());
        post.insert("TangerineWhistle".to_owned(), entries);
    });
    assert!(matches!(&report.verdict, Verdict::Failed(reason) if reason.starts_with("2 keys")), "{report:?}");
}

#[test]
fn garbage_files_fail_cleanly_and_the_skip_list_matches_revme() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    assert!(matches!(&run_file(&garbage)[0].verdict, Verdict::Failed(reason) if reason.contains("not JSON")));
    let wrong_shape = dir.path().join("shape.json");
    std::fs::write(&wrong_shape, r#"{"t": {"env": 1}}"#).unwrap();
    assert!(
        matches!(&run_file(&wrong_shape)[0].verdict, Verdict::Failed(reason) if reason.contains("not a state test"))
    );
    assert!(skip_reason(Path::new("x/stSStoreTest/InitCollision.json")).is_some());
    assert!(skip_reason(Path::new("x/stSStoreTest/sstore_0to1.json")).is_none());

    let mut summary = Summary::default();
    summary.add(&Verdict::Passed);
    summary.add(&Verdict::Failed("x".into()));
    summary.add(&Verdict::Skipped("slow".into()));
    assert_eq!(summary.line(), "1 passed, 1 failed, 1 skipped (1: slow)");
}
