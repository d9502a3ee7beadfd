//! evm-conformance runs Ethereum's state tests through evm-binding: the tool that checks phase C
//! against fixtures no one here wrote.
//!
//! It sits on `evm-binding` (and `kv-core` beneath it) and uses only their public API. It owns the
//! fixture format (`revm-statetest-types`), JSON parsing and the runner's progress bar, so that
//! none of them is a dependency of the binding a chain embeds. It executes nothing on its own: the
//! binding does.
//!
//! Each case loads the test's `pre` state into a fresh shared store through the binding and
//! commits it, runs the transaction on revm over the binding, commits the result, and compares the
//! Ethereum view of the store with the expected state root and logs hash (and, for fixtures that
//! list it, every account of the expected post state). A case that expects an exception passes
//! when revm refuses the transaction, as in revm's own runner.
//!
//! Cases revm's own runner (`revme statetest` 43.0.3) skips are skipped here for the same reasons
//! and reported as skipped.

use evm_binding::ethereum::{EthAccount, ethereum_accounts, logs_hash, state_root};
use evm_binding::revm;
use evm_binding::{EvmError, EvmExecutor, GenesisAccount, insert_account};
use kv_core::Store;
use revm::context::CfgEnv;
use revm::primitives::hardfork::SpecId;
use revm::primitives::{Address, U256, keccak256};
use revm_statetest_types::{AccountInfo, SpecName, Test, TestSuite, TestUnit};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How one case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It matched.
    Passed,
    /// It did not; the reason names the first mismatching account or field.
    Failed(String),
    /// It was not run; the reason says why.
    Skipped(String),
}

/// One case: a (test, fork, post entry) triple of a fixture file.
#[derive(Clone, Debug)]
pub struct CaseReport {
    /// The fixture file.
    pub file: PathBuf,
    /// The test's name in the file.
    pub test: String,
    /// The fork.
    pub fork: String,
    /// The post entry's position for that fork.
    pub index: usize,
    /// The outcome.
    pub verdict: Verdict,
}

/// Files revm's own runner skips, with its reasons.
const SKIPPED_FILES: &[(&str, &str)] = &[
    ("RevertInCreateInInit_Paris.json", "create collision with pre-existing storage (skipped by revme too)"),
    ("RevertInCreateInInit.json", "create collision with pre-existing storage (skipped by revme too)"),
    ("dynamicAccountOverwriteEmpty.json", "create collision with pre-existing storage (skipped by revme too)"),
    ("dynamicAccountOverwriteEmpty_Paris.json", "create collision with pre-existing storage (skipped by revme too)"),
    ("RevertInCreateInInitCreate2Paris.json", "create collision with pre-existing storage (skipped by revme too)"),
    ("create2collisionStorage.json", "create collision with pre-existing storage (skipped by revme too)"),
    ("RevertInCreateInInitCreate2.json", "create collision with pre-existing storage (skipped by revme too)"),
    ("create2collisionStorageParis.json", "create collision with pre-existing storage (skipped by revme too)"),
    ("InitCollision.json", "create collision with pre-existing storage (skipped by revme too)"),
    ("InitCollisionParis.json", "create collision with pre-existing storage (skipped by revme too)"),
    ("test_init_collision_create_opcode.json", "create collision with pre-existing storage (skipped by revme too)"),
    ("ValueOverflow.json", "malformed value in the fixture (skipped by revme too)"),
    ("ValueOverflowParis.json", "malformed value in the fixture (skipped by revme too)"),
    ("Call50000_sha256.json", "too slow for the suite (skipped by revme too)"),
    ("static_Call50000_sha256.json", "too slow for the suite (skipped by revme too)"),
    ("loopMul.json", "too slow for the suite (skipped by revme too)"),
    ("CALLBlake2f_MaxRounds.json", "too slow for the suite (skipped by revme too)"),
];

/// Why a file is skipped, if it is.
pub fn skip_reason(path: &Path) -> Option<&'static str> {
    if path.to_string_lossy().contains("paris/eip7610_create_collision") {
        return Some("create collision with pre-existing storage (skipped by revme too)");
    }
    let name = path.file_name()?.to_str()?;
    SKIPPED_FILES.iter().find(|(file, _)| *file == name).map(|(_, reason)| *reason)
}

/// Every `.json` fixture under `paths` (files are taken as they are), sorted; hidden directories
/// (such as `.meta`) are left out.
pub fn fixture_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files)?;
    }
    files.sort();
    Ok(files)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_file() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(path)? {
        let entry = entry?.path();
        let hidden = entry.file_name().and_then(|name| name.to_str()).is_some_and(|name| name.starts_with('.'));
        if hidden {
            continue;
        }
        if entry.is_dir() {
            collect(&entry, files)?;
        } else if entry.extension().is_some_and(|extension| extension == "json") {
            files.push(entry);
        }
    }
    Ok(())
}

/// Runs every case of one fixture file.
pub fn run_file(path: &Path) -> Vec<CaseReport> {
    let report = |test: &str, fork: &str, index: usize, verdict: Verdict| CaseReport {
        file: path.to_path_buf(),
        test: test.to_owned(),
        fork: fork.to_owned(),
        index,
        verdict,
    };
    let skipped = skip_reason(path);
    let parsed = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read the file: {error}"))
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).map_err(|error| format!("not JSON: {error}")))
        .and_then(|json| {
            let suite = TestSuite::deserialize(&json).map_err(|error| format!("not a state test: {error}"))?;
            Ok((json, suite))
        });
    let (json, suite) = match parsed {
        Ok(parsed) => parsed,
        Err(reason) => {
            let verdict = skipped.map_or(Verdict::Failed(reason), |reason| Verdict::Skipped(reason.to_owned()));
            return vec![report("*", "*", 0, verdict)];
        }
    };
    let mut reports = Vec::new();
    for (name, unit) in &suite.0 {
        let keys = post_keys(&json, name);
        for (fork, tests) in &unit.post {
            let key = match keys.get(fork).map(Vec::as_slice) {
                Some([key]) => Ok(key.as_str()),
                found => Err(format!("{} keys of the fixture's post name fork {fork:?}", found.map_or(0, <[_]>::len))),
            };
            let fork_name = key.as_ref().map_or_else(|_| format!("{fork:?}"), |key| (*key).to_owned());
            for (index, test) in tests.iter().enumerate() {
                let verdict = if let Some(reason) = skipped {
                    Verdict::Skipped(reason.to_owned())
                } else {
                    match fork {
                        SpecName::Constantinople | SpecName::ByzantiumToConstantinopleAt5 => Verdict::Skipped(
                            "Constantinople was replaced by Petersburg (skipped by revme too)".to_owned(),
                        ),
                        SpecName::Unknown => Verdict::Skipped("unknown fork name (skipped by revme too)".to_owned()),
                        _ => match key.clone().and_then(|key| expected_post_state(&json, name, key, index)) {
                            Ok(expected) => run_case(unit, fork.to_spec_id(), test, expected.as_ref()),
                            Err(reason) => Verdict::Failed(reason),
                        },
                    }
                };
                reports.push(report(name, &fork_name, index, verdict));
            }
        }
    }
    reports
}

/// The keys of `test`'s post entries in the raw fixture, by the fork each names. `SpecName`
/// accepts aliases (`TangerineWhistle`, `SpuriousDragon`), so a fork's own name need not be its
/// key; two keys naming one fork would have been merged by the fixture types.
fn post_keys(json: &serde_json::Value, test: &str) -> BTreeMap<SpecName, Vec<String>> {
    let mut keys: BTreeMap<SpecName, Vec<String>> = BTreeMap::new();
    let post = json.get(test).and_then(|test| test.get("post")).and_then(serde_json::Value::as_object);
    for key in post.into_iter().flat_map(serde_json::Map::keys) {
        if let Ok(fork) = SpecName::deserialize(serde_json::Value::String(key.clone())) {
            keys.entry(fork).or_default().push(key.clone());
        }
    }
    keys
}

/// The full post state an execution-spec-tests fixture lists for a case (its `state` field),
/// read from the raw JSON because the fixture types keep that field private. `None` when the
/// fixture lists none (the legacy tests). The fixture types parse the same field when the file is
/// loaded, so a state that does not parse already failed the file as "not a state test"; the
/// error here keeps that true should they ever stop doing so, rather than skip the comparison.
fn expected_post_state(
    json: &serde_json::Value,
    test: &str,
    fork_key: &str,
    index: usize,
) -> Result<Option<BTreeMap<Address, AccountInfo>>, String> {
    let entry = json
        .get(test)
        .and_then(|test| test.get("post"))
        .and_then(|post| post.get(fork_key))
        .and_then(|entries| entries.get(index))
        .ok_or_else(|| format!("post entry {fork_key} #{index} is missing from the fixture"))?;
    let Some(state) = entry.get("state") else { return Ok(None) };
    BTreeMap::<Address, AccountInfo>::deserialize(state)
        .map(Some)
        .map_err(|error| format!("the expected post state does not parse: {error}"))
}

fn max_blobs(spec: SpecId) -> u64 {
    if spec.is_enabled_in(SpecId::OSAKA) {
        6
    } else if spec.is_enabled_in(SpecId::PRAGUE) {
        9
    } else {
        6
    }
}

/// Runs one case on a fresh store.
pub fn run_case(
    unit: &TestUnit,
    spec: SpecId,
    test: &Test,
    expected_state: Option<&BTreeMap<Address, AccountInfo>>,
) -> Verdict {
    match try_case(unit, spec, test, expected_state) {
        Ok(verdict) => verdict,
        Err(reason) => Verdict::Failed(reason),
    }
}

fn try_case(
    unit: &TestUnit,
    spec: SpecId,
    test: &Test,
    expected_state: Option<&BTreeMap<Address, AccountInfo>>,
) -> Result<Verdict, String> {
    let mut cfg = CfgEnv::new_with_spec(spec);
    cfg.set_spec_and_mainnet_gas_params(spec);
    cfg.chain_id = unit.env.current_chain_id.unwrap_or(U256::ONE).try_into().unwrap_or(1);
    cfg.set_max_blobs_per_tx(max_blobs(spec));
    let block = unit.block_env(&mut cfg);
    let tx = match test.tx_env(unit) {
        Ok(tx) => tx,
        Err(_) if test.expect_exception.is_some() => return Ok(Verdict::Passed),
        Err(error) => return Err(format!("cannot build the transaction: {error}")),
    };

    let store = Store::in_memory();
    let mut overlay = store.begin();
    for (address, info) in &unit.pre {
        let account = GenesisAccount {
            nonce: info.nonce,
            balance: info.balance,
            code: info.code.to_vec(),
            storage: info.storage.iter().map(|(slot, value)| (*slot, *value)).collect(),
        };
        insert_account(&mut overlay, *address, &account).map_err(|error| format!("loading pre-state: {error}"))?;
    }
    store.commit(&overlay).map_err(|error| format!("committing pre-state: {error}"))?;

    let mut overlay = store.begin();
    let executor = EvmExecutor::from_cfg(cfg);
    let outcome = executor.transact(&mut overlay, &block, tx);
    match (&test.expect_exception, &outcome) {
        (Some(_), Err(EvmError::Database(error))) => {
            return Err(format!("database error instead of the expected exception: {error}"));
        }
        (Some(_), Err(_)) => return Ok(Verdict::Passed),
        (Some(expected), Ok(_)) => {
            return Ok(Verdict::Failed(format!("expected exception `{expected}`, but the transaction was executed")));
        }
        (None, Err(error)) => return Ok(Verdict::Failed(format!("unexpected exception: {error}"))),
        (None, Ok(_)) => {}
    }
    let result = outcome.map_err(|error| error.to_string())?;
    store.commit(&overlay).map_err(|error| format!("committing the result: {error}"))?;

    if let (Some(expected), Some(output)) = (&unit.out, result.output())
        && expected != output
    {
        return Ok(Verdict::Failed(format!("output {output} differs from the expected {expected}")));
    }
    let logs = logs_hash(result.logs());
    if logs != test.logs {
        return Ok(Verdict::Failed(format!("logs hash {logs} differs from the expected {}", test.logs)));
    }
    let accounts = ethereum_accounts(&store.begin()).map_err(|error| format!("reading the Ethereum view: {error}"))?;
    if let Some(expected) = expected_state
        && let Some(mismatch) = first_mismatch(&accounts, expected)
    {
        return Ok(Verdict::Failed(mismatch));
    }
    // The store's own root is what is compared: it is Ethereum's state root of the EVM state.
    let root = store.root();
    if root != test.hash {
        return Ok(Verdict::Failed(format!("state root {root} differs from the expected {}", test.hash)));
    }
    // The from-scratch Ethereum view is an oracle for the store's incremental root; they can only
    // differ through a bug of the store, which the fixture's root alone might not show.
    let oracle = state_root(&accounts);
    if oracle != root {
        return Err(format!("the store's root {root} differs from the from-scratch Ethereum root {oracle}"));
    }
    Ok(Verdict::Passed)
}

/// The first difference between the store's accounts and a fixture's expected post state.
fn first_mismatch(found: &BTreeMap<Address, EthAccount>, expected: &BTreeMap<Address, AccountInfo>) -> Option<String> {
    for (address, want) in expected {
        let Some(have) = found.get(address) else {
            return Some(format!("account {address} is missing"));
        };
        if have.nonce != want.nonce {
            return Some(format!("account {address}: nonce {} instead of {}", have.nonce, want.nonce));
        }
        if have.balance != want.balance {
            return Some(format!("account {address}: balance {} instead of {}", have.balance, want.balance));
        }
        let code_hash = if want.code.is_empty() { revm::primitives::KECCAK_EMPTY } else { keccak256(&want.code) };
        if have.code_hash != code_hash {
            return Some(format!("account {address}: code hash {} instead of {code_hash}", have.code_hash));
        }
        let want_storage: BTreeMap<U256, U256> =
            want.storage.iter().filter(|(_, value)| !value.is_zero()).map(|(slot, value)| (*slot, *value)).collect();
        for (slot, value) in &want_storage {
            let got = have.storage.get(slot).copied().unwrap_or_default();
            if got != *value {
                return Some(format!("account {address}: storage slot {slot:#x} is {got:#x} instead of {value:#x}"));
            }
        }
        if let Some((slot, value)) = have.storage.iter().find(|(slot, _)| !want_storage.contains_key(slot)) {
            return Some(format!("account {address}: unexpected storage slot {slot:#x} = {value:#x}"));
        }
    }
    found
        .keys()
        .find(|address| !expected.contains_key(*address))
        .map(|address| format!("account {address} should not exist"))
}

/// Totals of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases skipped, by reason.
    pub skipped: BTreeMap<String, usize>,
}

impl Summary {
    /// Adds one case.
    pub fn add(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Passed => self.passed += 1,
            Verdict::Failed(_) => self.failed += 1,
            Verdict::Skipped(reason) => *self.skipped.entry(reason.clone()).or_default() += 1,
        }
    }

    /// The closing line: `N passed, M failed[, K skipped (reasons)]`.
    pub fn line(&self) -> String {
        let skipped: usize = self.skipped.values().sum();
        let mut line = format!("{} passed, {} failed", self.passed, self.failed);
        if skipped > 0 {
            let reasons: Vec<String> =
                self.skipped.iter().map(|(reason, count)| format!("{count}: {reason}")).collect();
            line.push_str(&format!(", {skipped} skipped ({})", reasons.join("; ")));
        }
        line
    }
}

/// A name for a case in failure reports.
pub fn case_name(report: &CaseReport) -> String {
    format!("{}::{} [{} #{}]", report.file.display(), report.test, report.fork, report.index)
}
