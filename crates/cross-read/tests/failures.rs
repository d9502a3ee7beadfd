//! A store that fails or holds damaged data under a cross read is the node's failure: the call
//! or transaction fails as a whole (so the runtime abandons the block), never as a receipt of the
//! guest or the contract.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.

mod common;

use common::{ALICE, World};
use cross_read::{XSTATE_PRECOMPILE, abi};
use evm_binding::revm::primitives::{Address, TxKind};
use evm_binding::{EvmDbError, EvmError};
use kv_core::backend::ScanVisitor;
use kv_core::{Backend, BackendError, Identity, MemoryBackend, Namespace, Store, StoreConfig, Table, WriteBatch};
use std::sync::Arc;
use wasm_binding::{CallError, CallRequest};

/// A memory backend whose reads of one key prefix fail, as a failing disk would.
struct FailingReads {
    inner: MemoryBackend,
    prefix: Vec<u8>,
}

impl Backend for FailingReads {
    fn read(&self, table: Table, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool, BackendError> {
        if table == Table::State && key.starts_with(&self.prefix) {
            return Err(BackendError::Storage("injected read failure".into()));
        }
        self.inner.read(table, key, visit)
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<(), BackendError> {
        self.inner.scan(table, start, end, visit)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), BackendError> {
        self.inner.write(batch)
    }
}

#[test]
fn a_failing_read_in_the_precompile_is_a_database_error() {
    let module = Identity([0x77; 20]);
    let backend = FailingReads { inner: MemoryBackend::new(), prefix: Namespace::wasm(module).prefix().to_vec() };
    let mut world = World::on(Store::open(Arc::new(backend), StoreConfig::default()).unwrap());
    let tx = world.tx(ALICE, TxKind::Call(XSTATE_PRECOMPILE), abi::encode_read_u64(module.to_address(), 1));
    let before = world.overlay.scan_prefix(&[]).unwrap();
    let error = cross_read::evm_transact(&world.evm, &mut world.overlay, &world.block, tx).unwrap_err();
    assert!(matches!(error, EvmError::Database(EvmDbError::State(_))), "{error:?}");
    assert_eq!(world.overlay.scan_prefix(&[]).unwrap(), before, "nothing of the transaction stays");
}

#[test]
fn a_damaged_evm_word_under_evm_storage_read_fails_the_call() {
    let store = Store::in_memory();
    let contract = Address::repeat_byte(0xcc);
    let mut batch = WriteBatch::new();
    batch.put(Table::State, Namespace::evm(contract).word_key(&[0; 32]), vec![1, 2, 3, 4, 5]);
    store.backend().write(batch).unwrap();
    let mut world = World::on(store);
    let address: String = contract.iter().map(|byte| format!("\\{byte:02x}")).collect();
    let wat = format!(
        r#"(module
            (import "xstate" "evm_storage_read" (func $read (param i32 i32 i32)))
            (memory (export "memory") 1 1)
            (data (i32.const 0) "{address}")
            (func (export "call") (call $read (i32.const 0) (i32.const 32) (i32.const 64))))"#
    );
    let module = world.deploy_module("reader", &wat::parse_str(&wat).unwrap());
    let request = CallRequest { module, caller: Identity([1; 20]), input: b"", gas_limit: 1_000_000 };
    let error = world.wasm.call(&mut world.overlay, &request).unwrap_err();
    assert!(matches!(&error, CallError::State(_)), "{error:?}");
    assert!(error.to_string().contains("corrupt"), "{error}");
}
