//! One harness for every WASM test: a store, an engine and an open overlay, with helpers to
//! deploy WAT or committed guest modules and to call them.
#![allow(dead_code)]

use kv_core::{Identity, ModuleName, Overlay, Store};
use wasm_binding::{CallRequest, CallStatus, DeployError, Receipt, WasmEngine};

pub(crate) const CHAIN_ID: u64 = 31337;
pub(crate) const GAS: u64 = 10_000_000;
pub(crate) const ALICE: Identity = Identity([0xa1; 20]);
pub(crate) const BOB: Identity = Identity([0xb0; 20]);

pub(crate) struct Harness {
    pub(crate) store: Store,
    pub(crate) engine: WasmEngine,
    pub(crate) overlay: Overlay,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::on(Store::in_memory())
    }

    pub(crate) fn on(store: Store) -> Self {
        let overlay = store.begin();
        Self { store, engine: WasmEngine::new(CHAIN_ID), overlay }
    }

    pub(crate) fn deploy_bytes(&mut self, name: &str, code: &[u8]) -> Result<Identity, DeployError> {
        self.engine.deploy(&mut self.overlay, &ModuleName::new(name).unwrap(), 1, code)
    }

    pub(crate) fn deploy_wat(&mut self, name: &str, wat: &str) -> Result<Identity, DeployError> {
        self.deploy_bytes(name, &wat::parse_str(wat).expect("test WAT parses"))
    }

    pub(crate) fn call_as(&mut self, caller: Identity, module: Identity, input: &[u8], gas_limit: u64) -> Receipt {
        self.engine.call(&mut self.overlay, &CallRequest { module, caller, input, gas_limit }).expect("the call runs")
    }

    pub(crate) fn call(&mut self, module: Identity, input: &[u8]) -> Receipt {
        self.call_as(ALICE, module, input, GAS)
    }

    /// What every call to `module` pays before its first instruction (`gas::call_base` of its
    /// code's artifact bound).
    pub(crate) fn call_base(&self, module: Identity) -> u64 {
        let record = self.engine.module_record(&self.overlay, module).unwrap().expect("the module is deployed");
        let code = self.overlay.get(&kv_core::key::code_key(&record.code_hash)).unwrap().expect("its code is stored");
        wasm_binding::gas::call_base(wasm_binding::validate::artifact_bound(&code))
    }

    pub(crate) fn commit(&mut self) {
        self.store.commit(&self.overlay).unwrap();
        self.overlay = self.store.begin();
    }
}

/// The committed guest module `name` (built from `guest/<name>`).
pub(crate) fn guest(name: &str) -> Vec<u8> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest").join(name).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A WAT module importing `imports` (already written as WAT import lines), with a one-page
/// memory (maximum 2 pages) and `body` as the entry point's body.
pub(crate) fn module(imports: &str, body: &str) -> String {
    format!(
        r#"(module
            {imports}
            (memory (export "memory") 1 2)
            (func (export "call") {body}))"#
    )
}

pub(crate) fn assert_trap(receipt: &Receipt, needle: &str) {
    match &receipt.status {
        CallStatus::Trap(reason) => assert!(reason.contains(needle), "trap `{reason}` should mention `{needle}`"),
        other => panic!("expected a trap mentioning `{needle}`, got {other:?}"),
    }
}
