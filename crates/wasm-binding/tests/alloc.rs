//! A guest's `state_get` allocates nothing on the host: a call making 1,000 `state_get`s over 64
//! slots (each cold once, in the call's access set, then warm) performs exactly as many heap
//! allocations as the same call making none (instantiation's own allocations are the same for both).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.
#![allow(unsafe_code)] // A counting global allocator must implement the unsafe `GlobalAlloc` trait.

use kv_core::{Identity, ModuleName, Namespace, Store};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use wasm_binding::{CallRequest, WasmEngine};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(pointer, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn reader(reads: u32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
            (import "xstate" "state_get" (func $get (param i64) (result i64)))
            (memory (export "memory") 1 1)
            (func (export "call") (local $i i32)
                (block $done (loop $again
                    (br_if $done (i32.ge_u (local.get $i) (i32.const {reads})))
                    (drop (call $get (i64.extend_i32_u (i32.and (local.get $i) (i32.const 63)))))
                    (local.set $i (i32.add (local.get $i) (i32.const 1)))
                    (br $again)))))"#
    ))
    .unwrap()
}

#[test]
fn state_get_allocates_nothing() {
    let store = Store::in_memory();
    let engine = WasmEngine::new(1);
    let mut overlay = store.begin();
    let none = engine.deploy(&mut overlay, &ModuleName::new("none").unwrap(), 1, &reader(0)).unwrap();
    let many = engine.deploy(&mut overlay, &ModuleName::new("many").unwrap(), 1, &reader(1_000)).unwrap();
    for slot in 0..64 {
        overlay.set_u64(&Namespace::wasm(many).slot_key(slot), slot + 1).unwrap();
    }
    store.commit(&overlay).unwrap();
    let mut overlay = store.begin();
    let mut measure = |module| {
        let request = CallRequest { module, caller: Identity::default(), input: b"", gas_limit: 100_000_000 };
        // Warm the compiled-module cache and the allocator before counting.
        assert!(engine.call(&mut overlay, &request).unwrap().is_success());
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        assert!(engine.call(&mut overlay, &request).unwrap().is_success());
        ALLOCATIONS.load(Ordering::Relaxed) - before
    };
    let baseline = measure(none);
    let with_reads = measure(many);
    assert_eq!(with_reads, baseline, "1,000 state_get calls allocated {} times", with_reads.saturating_sub(baseline));
}
