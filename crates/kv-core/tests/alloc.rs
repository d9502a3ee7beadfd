//! The hot path allocates nothing: reading a u64 slot through a prefix-cached handle and the block
//! overlay, from both backends, performs no heap allocation. Counted with a global allocator that
//! counts the allocations of the current thread.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failed unwrap is a failed test.
#![allow(unsafe_code)] // A counting global allocator must implement the unsafe `GlobalAlloc` trait.

use kv_core::{Identity, Namespace, Store, StoreConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
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

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn check_reads_do_not_allocate(store: &Store) {
    let namespace = Namespace::wasm(Identity([7; 20]));
    let mut overlay = store.begin();
    for slot in 0..64 {
        overlay.set_u64(&namespace.slot_key(slot), slot + 1).unwrap();
    }
    store.commit(&overlay).unwrap();
    let mut overlay = store.begin();
    // Some slots are in the overlay, the others only in the backend.
    overlay.set_u64(&namespace.slot_key(3), 300).unwrap();
    let before = allocations();
    let mut sum = 0;
    for slot in 0..128 {
        sum += overlay.get_u64(&namespace.slot_key(slot)).unwrap();
    }
    let after = allocations();
    assert_eq!(sum, (1..=64).sum::<u64>() - 4 + 300);
    assert_eq!(after - before, 0, "u64 slot reads allocated");
}

#[test]
fn u64_reads_allocate_nothing_on_the_memory_backend() {
    check_reads_do_not_allocate(&Store::in_memory());
}

#[test]
fn u64_reads_allocate_nothing_on_redb() {
    let dir = tempfile::tempdir().unwrap();
    check_reads_do_not_allocate(&Store::open_redb(dir.path().join("db"), StoreConfig::default()).unwrap());
}
