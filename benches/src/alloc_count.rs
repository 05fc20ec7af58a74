//! A global allocator that counts: calls and bytes, for every thread of the process.
//!
//! A bench that wants the counts declares it as its allocator:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: sdk_benches::alloc_count::Counting = sdk_benches::alloc_count::Counting;
//! ```
//!
//! and reads [`snapshot`] before and after the work. The counts are process-wide, so
//! they include what async-nats' connection task and the tokio runtime allocate for
//! the work (which is part of the cost of a message); run nothing else meanwhile.

// `unsafe_code` is denied workspace-wide. A `GlobalAlloc` can only be written with
// `unsafe impl` (the trait's contract is unsafe), and it only forwards every call to
// `System` unchanged after two relaxed counter increments, so it keeps System's
// guarantees. This module is the only place in the workspace that allows it, and it
// is used by benchmarks only.
#![allow(unsafe_code)]
#![allow(clippy::cast_possible_wrap)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

static CALLS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

/// Counts every allocation (and reallocation) and its bytes, then defers to
/// [`System`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

// SAFETY: every method forwards to `System` with the same arguments and returns its
// result unchanged; the counters are plain atomics that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: forwarded as received; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System` through this allocator, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A reallocation is a call; its bytes are the growth (what it newly reserves).
        CALLS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(
            new_size.saturating_sub(layout.size()) as u64,
            Ordering::Relaxed,
        );
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System` through this allocator, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocation calls and bytes so far, process-wide.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Calls to `alloc`, `alloc_zeroed` and `realloc`.
    pub calls: u64,
    /// Bytes those calls reserved (for `realloc`, the growth).
    pub bytes: u64,
    /// Bytes allocated and not yet freed.
    pub live: i64,
}

impl Snapshot {
    /// What happened between `earlier` and this one, per `n` units of work.
    pub fn per(&self, earlier: Snapshot, n: u64) -> (f64, f64) {
        #[allow(clippy::cast_precision_loss)]
        let f = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / n.max(1) as f64;
        (f(self.calls, earlier.calls), f(self.bytes, earlier.bytes))
    }
}

/// The counters now.
pub fn snapshot() -> Snapshot {
    Snapshot {
        calls: CALLS.load(Ordering::Relaxed),
        bytes: BYTES.load(Ordering::Relaxed),
        live: LIVE.load(Ordering::Relaxed),
    }
}
