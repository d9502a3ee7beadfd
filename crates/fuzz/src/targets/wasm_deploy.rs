//! `wasm_deploy`: modules from `wasm-smith`, constrained to the allowed feature set and host ABI
//! or unconstrained, and raw bytes, deployed and called. Deploy validation never panics; a module
//! validation accepts also compiles and instantiates; a call gives the same receipt (status, trap
//! reason, gas, output) and the same writes twice, on fresh engines over fresh overlays; its gas
//! never exceeds its limit.

use arbitrary::Unstructured;
use kv_core::{Identity, ModuleName, Store};
use wasm_binding::{CallError, CallRequest, DeployError, Receipt, gas, validate};

const CHAIN_ID: u64 = 31337;

/// A module declaring every host import with its exact signature (`docs/spec/abi/wasm-host.md`),
/// `evm_storage_read` included: wasm-smith draws the imports of constrained modules from it.
const HOST_IMPORTS: &str = r#"(module
  (import "xstate" "state_get" (func (param i64) (result i64)))
  (import "xstate" "state_set" (func (param i64 i64)))
  (import "xstate" "storage_read" (func (param i32 i32 i32 i32) (result i32)))
  (import "xstate" "storage_write" (func (param i32 i32 i32 i32)))
  (import "xstate" "storage_remove" (func (param i32 i32)))
  (import "xstate" "input_len" (func (result i32)))
  (import "xstate" "input_read" (func (param i32)))
  (import "xstate" "output_write" (func (param i32 i32)))
  (import "xstate" "revert" (func (param i32 i32)))
  (import "xstate" "caller" (func (param i32)))
  (import "xstate" "self_identity" (func (param i32)))
  (import "xstate" "evm_storage_read" (func (param i32 i32 i32))))"#;

/// The exports every deployable module has: a bounded memory and the entry point.
const ABI_EXPORTS: &str = r#"(module
  (memory (export "memory") 1 16)
  (func (export "call")))"#;

/// How a generated module was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Within the allowed feature set, host imports and exports.
    Constrained,
    /// Any module wasm-smith makes.
    Unconstrained,
    /// The input's own bytes.
    Raw,
}

/// The wasm-smith configuration of the feature set `validate.rs` allows: MVP integers, mutable
/// globals, sign extension, multi-value and (when `bulk`) bulk memory; nothing else.
pub(crate) fn allowed_features(bulk: bool) -> wasm_smith::Config {
    wasm_smith::Config {
        allow_floats: false,
        saturating_float_to_int_enabled: false,
        simd_enabled: false,
        relaxed_simd_enabled: false,
        threads_enabled: false,
        reference_types_enabled: false,
        exceptions_enabled: false,
        gc_enabled: false,
        tail_call_enabled: false,
        memory64_enabled: false,
        extended_const_enabled: false,
        wide_arithmetic_enabled: false,
        custom_page_sizes_enabled: false,
        compact_imports_enabled: false,
        bulk_memory_enabled: bulk,
        multi_value_enabled: true,
        sign_extension_ops_enabled: true,
        allow_start_export: false,
        max_memories: 1,
        max_tables: 1,
        max_memory32_bytes: validate::MAX_MEMORY_PAGES * 65_536,
        memory_max_size_required: true,
        max_table_elements: validate::MAX_TABLE_ELEMENTS,
        max_funcs: 20,
        max_instructions: 200,
        ..wasm_smith::Config::default()
    }
}

/// The module an input describes: its first byte picks the shape, the rest drives wasm-smith.
pub(crate) fn module_of(input: &[u8]) -> (Shape, Vec<u8>) {
    let Some((&selector, rest)) = input.split_first() else { return (Shape::Raw, Vec::new()) };
    match selector % 4 {
        0 | 1 => {
            let mut config = allowed_features(selector & 0x10 != 0);
            config.available_imports = Some(wat::parse_str(HOST_IMPORTS).unwrap_or_default());
            config.exports = Some(wat::parse_str(ABI_EXPORTS).unwrap_or_default());
            // The exported memory is the module's one memory: wasm-smith adds it beyond its own
            // limit, so the limit is 0 here (else two memories, which validation refuses).
            config.max_memories = 0;
            let mut unstructured = Unstructured::new(rest);
            match wasm_smith::Module::new(config, &mut unstructured) {
                Ok(module) => (Shape::Constrained, module.to_bytes()),
                Err(_) => (Shape::Raw, rest.to_vec()),
            }
        }
        2 => {
            let mut unstructured = Unstructured::new(rest);
            match wasm_smith::Module::new(wasm_smith::Config::default(), &mut unstructured) {
                Ok(module) => (Shape::Unconstrained, module.to_bytes()),
                Err(_) => (Shape::Raw, rest.to_vec()),
            }
        }
        _ => {
            // Half the raw inputs carry the WASM header, so they reach the section parser.
            let mut bytes = if selector & 0x10 != 0 { b"\0asm\x01\0\0\0".to_vec() } else { Vec::new() };
            bytes.extend_from_slice(rest);
            (Shape::Raw, bytes)
        }
    }
}

/// What one deploy and call did, compared between two fresh runs.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Refused(String),
    Called { receipt: Receipt, writes: Vec<kv_core::backend::Entry> },
}

/// Deploys `code` on a fresh engine and store and calls it once.
fn deploy_and_call(code: &[u8], input: &[u8], extra_gas: u64) -> Result<Outcome, String> {
    let engine = cross_read::wasm_engine(CHAIN_ID);
    let store = Store::in_memory();
    let mut overlay = store.begin();
    let name = ModuleName::new("fuzzed").map_err(|error| error.to_string())?;
    let identity = match engine.deploy(&mut overlay, &name, 1, code) {
        Ok(identity) => identity,
        Err(DeployError::Invalid(error)) => return Ok(Outcome::Refused(error.to_string())),
        Err(error) => return Err(format!("validation accepted the module but deploy failed: {error}")),
    };
    let before = overlay.scan_prefix(&[]).map_err(|error| error.to_string())?;
    let gas_limit = gas::call_base(validate::artifact_bound(code)).saturating_add(extra_gas);
    let request = CallRequest {
        module: identity,
        caller: Identity::from(alloy_primitives::Address::repeat_byte(0xa1)),
        input,
        gas_limit,
    };
    let receipt = match engine.call(&mut overlay, &request) {
        Ok(receipt) => receipt,
        Err(CallError::Instantiation { reason, .. }) => {
            return Err(format!("a module validation accepted does not instantiate: {reason}"));
        }
        Err(error) => return Err(format!("the call failed as a call, not a receipt: {error}")),
    };
    if receipt.gas_used > gas_limit {
        return Err(format!("gas used {} exceeds the limit {gas_limit}", receipt.gas_used));
    }
    let after = overlay.scan_prefix(&[]).map_err(|error| error.to_string())?;
    let writes = after.into_iter().filter(|entry| !before.contains(entry)).collect();
    Ok(Outcome::Called { receipt, writes })
}

/// The `wasm_deploy` target.
pub(crate) struct WasmDeploy {
    reached: u64,
}

impl WasmDeploy {
    pub(crate) fn new() -> Self {
        Self { reached: 0 }
    }
}

impl super::Target for WasmDeploy {
    fn name(&self) -> &'static str {
        "wasm_deploy"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let mut counter = vec![3];
        counter.extend_from_slice(&include_bytes!("../../../../guest/counter/counter.wasm")[8..]);
        counter[0] |= 0x10;
        // Constrained modules, with and without bulk memory, from fixed bytes: mutating their
        // bytes makes other modules of the same shape.
        let noise: Vec<u8> = (0..2048u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11).to_le_bytes()[0]).collect();
        let constrained = |selector: u8| [vec![selector], noise.clone()].concat();
        vec![counter, constrained(0x00), constrained(0x11)]
    }

    fn reached(&self) -> u64 {
        self.reached
    }

    fn reached_means(&self) -> &'static str {
        "modules deployed and called"
    }

    fn random_len(&self) -> usize {
        4096
    }

    fn run(&mut self, input: &[u8]) -> Result<(), String> {
        let (_shape, code) = module_of(input);
        // The call's input and extra gas come from the input's tail, the same for both runs.
        let tail = &input[input.len().saturating_sub(8)..];
        let extra_gas = u64::from(tail.first().copied().unwrap_or(0)) * 20_000;
        let first = deploy_and_call(&code, tail, extra_gas)?;
        let second = deploy_and_call(&code, tail, extra_gas)?;
        if matches!(first, Outcome::Called { .. }) {
            self.reached += 1;
        }
        if first != second {
            return Err(format!("two fresh runs differ: {first:?} then {second:?}"));
        }
        Ok(())
    }
}
