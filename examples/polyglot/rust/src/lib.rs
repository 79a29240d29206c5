//! The Rust child of `examples/polyglot/one_tree.py` (see `../polyglot.h`):
//! an async block that sleeps on asyncrt's timer, then fails with its status
//! and message or finishes, handed out as an `asyncrt_future` by
//! `asyncrt::into_raw`. Whoever spawns it (here Python, into a scope it
//! opened) owns it; asyncrt drops it exactly once. A Rust future has no
//! cleanup to run: an asynchronous cancel drops it.

use std::os::raw::c_int;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use asyncrt::{fallible, into_raw, sleep, sys, Error};

/// Kept in step with polyglot.h.
const FAIL_AFTER: Duration = Duration::from_millis(50);
const WAIT: Duration = Duration::from_secs(60);
const RUST_STATUS: i32 = 1002;
const RUST_MESSAGE: &str = "the Rust child failed";

/// polyglot_counts: four uint32_t, which AtomicU32 matches in size and
/// alignment (so the counts are right on whatever thread asyncrt polls
/// and drops the future).
#[repr(C)]
pub struct Counts {
    started: AtomicU32,
    finished: AtomicU32,
    cleanups: AtomicU32,
    drops: AtomicU32,
}

/// Counts the drop of the future's state: it is captured by the async
/// block, so it is dropped with the future, polled or not, once.
struct CountDrop(&'static Counts);

impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Fills `*out` with the child; `fail` nonzero makes it the failing one.
///
/// # Safety
/// `counts` stays valid until the future is dropped; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn polyglot_rust_child(fail: c_int, counts: *mut Counts, out: *mut sys::asyncrt_future) -> c_int {
    if counts.is_null() || out.is_null() {
        return sys::ASYNCRT_EINVAL;
    }
    // SAFETY: the caller keeps the counts alive until the drop.
    let counts: &'static Counts = &*counts;
    let guard = CountDrop(counts);
    let body = fallible(async move {
        let guard = guard;
        guard.0.started.fetch_add(1, Ordering::SeqCst);
        sleep(if fail != 0 { FAIL_AFTER } else { WAIT }).await?;
        if fail != 0 {
            return Err(Error::with_code(RUST_STATUS, RUST_MESSAGE));
        }
        guard.0.finished.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    out.write(into_raw(body));
    sys::ASYNCRT_OK
}
