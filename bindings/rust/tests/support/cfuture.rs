//! A future written the way C writes one -- a state struct and a vtable of
//! `extern "C"` functions that use only the C API -- so the tests can
//! await a "C future" from Rust without a C compiler.
//!
//! It completes after `steps` pending polls. Each pending poll arranges its
//! own wake: by reference through the context's waker, or (`from_thread`)
//! by cloning the waker and waking the clone from another thread. It then
//! completes with `value` (output: a u64), or fails with `fail_code`.

use std::mem;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use asyncrt::sys;

pub struct Outcome {
    pub value: u64,
    /// 0 to complete with `value`, else the failure to name.
    pub fail_code: c_int,
}

#[derive(Clone, Default)]
pub struct Counters {
    pub polls: Arc<AtomicUsize>,
    pub drops: Arc<AtomicUsize>,
}

struct State {
    steps: u32,
    from_thread: bool,
    outcome: Outcome,
    counters: Counters,
}

static VTABLE: sys::asyncrt_future_vtable = sys::asyncrt_future_vtable {
    size: mem::size_of::<sys::asyncrt_future_vtable>(),
    output_size: mem::size_of::<u64>(),
    poll: Some(poll),
    drop: Some(drop_state),
    cleanup: None,
};

pub fn countdown(steps: u32, from_thread: bool, outcome: Outcome, counters: &Counters) -> sys::asyncrt_future {
    let state = Box::new(State { steps, from_thread, outcome, counters: counters.clone() });
    sys::asyncrt_future { self_: Box::into_raw(state) as *mut c_void, vtable: &VTABLE }
}

/// An asyncrt waker handed to another thread (asyncrt wakers may be used
/// from any thread).
struct SendWaker(sys::asyncrt_waker);
unsafe impl Send for SendWaker {}

unsafe extern "C" fn poll(this: *mut c_void, cx: *mut sys::asyncrt_context, out: *mut c_void) -> c_int {
    let state = &mut *(this as *mut State);
    state.counters.polls.fetch_add(1, Ordering::SeqCst);
    if state.steps > 0 {
        state.steps -= 1;
        let waker = sys::asyncrt_context_waker(cx);
        if state.from_thread {
            let mut clone = SendWaker(sys::asyncrt_waker::NONE);
            sys::asyncrt_waker_clone(waker, &mut clone.0);
            wake_later(clone);
        } else {
            sys::asyncrt_waker_wake_by_ref(waker);
        }
        return sys::ASYNCRT_POLL_PENDING;
    }
    if state.outcome.fail_code != 0 {
        sys::asyncrt_context_fail(cx, state.outcome.fail_code);
        return sys::ASYNCRT_POLL_ERROR;
    }
    (out as *mut u64).write_unaligned(state.outcome.value);
    sys::ASYNCRT_POLL_READY
}

/// Wakes (and so consumes) `waker` from a new thread, a moment later.
fn wake_later(waker: SendWaker) {
    thread::spawn(move || {
        let mut waker = waker;
        thread::sleep(Duration::from_millis(2));
        // SAFETY: the clone is ours to consume.
        unsafe { sys::asyncrt_waker_wake(&mut waker.0) };
    });
}

unsafe extern "C" fn drop_state(this: *mut c_void) {
    let state = Box::from_raw(this as *mut State);
    state.counters.drops.fetch_add(1, Ordering::SeqCst);
}
