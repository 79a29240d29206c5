//! The asyncrt poll running on this thread, if a Rust future is inside one.
//!
//! When asyncrt polls a Rust future (see `task_future.rs`), the future sees
//! a Rust `Context` whose waker is a view of the asyncrt context's waker.
//! The asyncrt context itself is kept here for the length of the poll, so
//! that code inside the Rust future can reach it:
//!
//! - an asyncrt future awaited from the Rust future is polled with the
//!   task's own context (timers, subsystems and scopes need an executor's
//!   context; asyncrt_poll_with_waker's has none), and a failure it names is
//!   read from there;
//! - `Scope::open` and `spawn_local` find the task and its executor.
//!
//! A Rust combinator that polls its children with a waker of its own hides
//! the context from them (the waker check below fails), and they fall back
//! to asyncrt_poll_with_waker.

use std::cell::Cell;
use std::ptr;
use std::task::Context;

use crate::sys;
use crate::waker;

#[derive(Clone, Copy)]
struct Current {
    cx: *mut sys::asyncrt_context,
    waker: *const sys::asyncrt_waker,
}

const NONE: Current = Current { cx: ptr::null_mut(), waker: ptr::null() };

thread_local! {
    static CURRENT: Cell<Current> = const { Cell::new(NONE) };
}

/// Keeps `cx` as this thread's current asyncrt poll until dropped; polls
/// nest (a Rust future awaiting an asyncrt future that polls a Rust future),
/// so the previous one comes back.
pub(crate) struct Enter {
    previous: Current,
}

/// # Safety
/// `cx` and `waker` (its waker) stay valid until the Enter is dropped.
pub(crate) unsafe fn enter(cx: *mut sys::asyncrt_context, waker: *const sys::asyncrt_waker) -> Enter {
    let previous = CURRENT.with(|c| c.replace(Current { cx, waker }));
    Enter { previous }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// The asyncrt context of the poll running on this thread, if any.
pub(crate) fn context() -> Option<*mut sys::asyncrt_context> {
    let current = CURRENT.with(|c| c.get());
    if current.cx.is_null() {
        None
    } else {
        Some(current.cx)
    }
}

/// The asyncrt context to poll an asyncrt future with from a Rust poll with
/// `cx`: the current task's, when `cx` carries that task's own waker.
pub(crate) fn context_for(cx: &Context<'_>) -> Option<*mut sys::asyncrt_context> {
    let current = CURRENT.with(|c| c.get());
    if !current.cx.is_null() && waker::is_borrowed_asyncrt(cx.waker(), current.waker) {
        Some(current.cx)
    } else {
        None
    }
}
