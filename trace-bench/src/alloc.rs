//! A global allocator that counts the bytes currently allocated, to measure how much memory a
//! replayed document holds.
//!
//! It wraps the system allocator and keeps one relaxed atomic counter, so every system pays the
//! same small overhead on each allocation, in the timed runs too.

#![allow(unsafe_code, reason = "a global allocator can only be written with unsafe code")]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicIsize, Ordering},
};

/// Bytes allocated and not yet freed. Signed, so that a free racing ahead of its allocation's
/// count on another thread cannot wrap it.
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting live bytes.
pub(crate) struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so it upholds
// exactly the contract `System` does; the counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(size(layout.size()), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(size(layout.size()), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(size(layout.size()), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // On failure the old block stays allocated, so the count only moves on success.
            LIVE.fetch_add(size(new_size) - size(layout.size()), Ordering::Relaxed);
        }
        new
    }
}

/// Allocation sizes never exceed `isize::MAX` (Layout guarantees it), so this cast is exact.
fn size(bytes: usize) -> isize {
    bytes as isize
}

/// Bytes allocated through the global allocator and not yet freed.
pub(crate) fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}
