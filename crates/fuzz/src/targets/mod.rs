//! The fuzz targets: one per boundary, each a function over bytes that returns an error when an
//! invariant of that boundary fails (a panic is caught by the driver and counts the same).

mod block_file;
mod fixture;
mod jsonrpc_body;
mod precompile_calldata;
mod proof_file;
mod raw_transaction;
mod wasm_deploy;
mod wasm_vs_wasmi;
mod witness_file;

/// One boundary under generated input.
pub trait Target {
    /// The target's name: its corpus folder and the name `cargo xtask fuzz TARGET` takes.
    fn name(&self) -> &'static str;
    /// Valid inputs the mutator starts from (besides the corpus).
    fn seeds(&self) -> Vec<Vec<u8>>;
    /// The longest random input the driver generates for this target.
    fn random_len(&self) -> usize;
    /// Runs one input: `Err` names the invariant it broke.
    fn run(&mut self, input: &[u8]) -> Result<(), String>;
    /// How many inputs so far got past the boundary's first check to the deep path (a module
    /// that deployed and ran, a transaction that decoded, a file that parsed): what shows that
    /// generation reaches more than the parser. Its meaning is in [`Target::reached_means`].
    fn reached(&self) -> u64;
    /// What [`Target::reached`] counts, in a few words.
    fn reached_means(&self) -> &'static str;
}

/// The names of every target, in the order runs take them.
pub const TARGET_NAMES: [&str; 8] = [
    "wasm_deploy",
    "wasm_vs_wasmi",
    "precompile_calldata",
    "raw_transaction",
    "jsonrpc_body",
    "block_file",
    "proof_file",
    "witness_file",
];

/// Builds the target called `name` (its fixtures: engines, runtimes, a running node).
pub fn target(name: &str) -> Option<Box<dyn Target>> {
    let target: Box<dyn Target> = match name {
        "wasm_deploy" => Box::new(wasm_deploy::WasmDeploy::new()),
        "wasm_vs_wasmi" => Box::new(wasm_vs_wasmi::WasmVsWasmi::new()),
        "precompile_calldata" => Box::new(precompile_calldata::PrecompileCalldata::new()),
        "raw_transaction" => Box::new(raw_transaction::RawTransaction::new()),
        "jsonrpc_body" => Box::new(jsonrpc_body::JsonRpcBody::new()),
        "block_file" => Box::new(block_file::BlockFileTarget::new()),
        "proof_file" => Box::new(proof_file::ProofFile::new()),
        "witness_file" => Box::new(witness_file::WitnessFile::new()),
        _ => return None,
    };
    Some(target)
}

/// Every target's name.
pub fn all_targets() -> Vec<&'static str> {
    TARGET_NAMES.to_vec()
}
