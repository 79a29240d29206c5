//! Wakers across the boundary, both ways. Both sides have Rust's four
//! operations (clone, wake, wake_by_ref, drop), so each direction is a
//! vtable that forwards them:
//!
//! - an asyncrt waker seen as a Rust `Waker`: borrowed for one poll (the
//!   context's waker, never dropped), and owned once Rust clones it (the
//!   clone is an `asyncrt_waker` in a box, released through
//!   asyncrt_waker_drop or consumed by asyncrt_waker_wake);
//! - a Rust `Waker` seen as an asyncrt waker: borrowed for one
//!   asyncrt_poll_with_waker call, and owned once asyncrt clones it (the
//!   clone is a boxed `Waker`).

use std::mem::ManuallyDrop;
use std::os::raw::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::{RawWaker, RawWakerVTable, Waker};

use crate::sys;

// ---- an asyncrt waker as a Rust Waker ----------------------------------------

/// A Rust waker that borrows the asyncrt waker at `w`. It is never dropped
/// (ManuallyDrop), so it only clones and wakes by reference.
///
/// # Safety
/// `w` stays valid while the returned Waker (not its clones) is used.
pub(crate) unsafe fn borrow_asyncrt(w: *const sys::asyncrt_waker) -> ManuallyDrop<Waker> {
    ManuallyDrop::new(Waker::from_raw(RawWaker::new(w as *const (), &ASYNCRT_BORROWED)))
}

/// True if `waker` is the Rust view of the asyncrt waker at `w` made by
/// borrow_asyncrt: a future that sees it is polled directly by an asyncrt
/// task's poll.
pub(crate) fn is_borrowed_asyncrt(waker: &Waker, w: *const sys::asyncrt_waker) -> bool {
    // SAFETY: the borrowed view is only compared, never woken or cloned.
    let view = unsafe { borrow_asyncrt(w) };
    waker.will_wake(&view)
}

static ASYNCRT_BORROWED: RawWakerVTable =
    RawWakerVTable::new(asyncrt_clone, asyncrt_borrowed_wake, asyncrt_wake_by_ref, asyncrt_borrowed_drop);
static ASYNCRT_OWNED: RawWakerVTable =
    RawWakerVTable::new(asyncrt_clone, asyncrt_owned_wake, asyncrt_wake_by_ref, asyncrt_owned_drop);

/// Both views keep the asyncrt waker at their data pointer, so clone and
/// wake_by_ref serve both.
unsafe fn asyncrt_clone(data: *const ()) -> RawWaker {
    let mut clone = Box::new(sys::asyncrt_waker::NONE);
    sys::asyncrt_waker_clone(data as *const sys::asyncrt_waker, &mut *clone);
    RawWaker::new(Box::into_raw(clone) as *const (), &ASYNCRT_OWNED)
}

unsafe fn asyncrt_wake_by_ref(data: *const ()) {
    sys::asyncrt_waker_wake_by_ref(data as *const sys::asyncrt_waker);
}

/// A borrowed view is never owned by Rust code, so it is never consumed;
/// should it be, waking by reference is the harmless reading.
unsafe fn asyncrt_borrowed_wake(data: *const ()) {
    asyncrt_wake_by_ref(data);
}

unsafe fn asyncrt_borrowed_drop(_data: *const ()) {}

unsafe fn asyncrt_owned_wake(data: *const ()) {
    let mut owned = Box::from_raw(data as *mut sys::asyncrt_waker);
    sys::asyncrt_waker_wake(&mut *owned);
}

unsafe fn asyncrt_owned_drop(data: *const ()) {
    let mut owned = Box::from_raw(data as *mut sys::asyncrt_waker);
    sys::asyncrt_waker_drop(&mut *owned);
}

// ---- a Rust Waker as an asyncrt waker ----------------------------------------

/// An asyncrt waker that borrows `waker`, for a call that borrows its waker
/// (asyncrt_poll_with_waker): asyncrt clones it to keep it.
pub(crate) fn lend_rust(waker: &Waker) -> sys::asyncrt_waker {
    sys::asyncrt_waker { data: waker as *const Waker as *const c_void, vtable: &RUST_BORROWED }
}

static RUST_BORROWED: sys::asyncrt_waker_vtable = sys::asyncrt_waker_vtable {
    clone: rust_clone,
    wake: rust_wake_by_ref,
    wake_by_ref: rust_wake_by_ref,
    drop: rust_borrowed_drop,
};
static RUST_OWNED: sys::asyncrt_waker_vtable = sys::asyncrt_waker_vtable {
    clone: rust_clone,
    wake: rust_owned_wake,
    wake_by_ref: rust_wake_by_ref,
    drop: rust_owned_drop,
};

/// These are called from C: a panic in a Rust waker must not unwind into
/// it, and there is nobody to report it to but the process.
fn no_unwind<R>(what: &str, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            eprintln!("asyncrt: a Rust waker panicked in {}; aborting", what);
            std::process::abort()
        }
    }
}

/// Both views keep a `Waker` at their data pointer (owned: in a box).
unsafe extern "C" fn rust_clone(data: *const c_void, out: *mut sys::asyncrt_waker) {
    no_unwind("clone", || {
        let waker = &*(data as *const Waker);
        let clone = Box::into_raw(Box::new(waker.clone()));
        out.write(sys::asyncrt_waker { data: clone as *const c_void, vtable: &RUST_OWNED });
    })
}

unsafe extern "C" fn rust_wake_by_ref(data: *const c_void) {
    no_unwind("wake_by_ref", || (*(data as *const Waker)).wake_by_ref())
}

unsafe extern "C" fn rust_borrowed_drop(_data: *const c_void) {}

unsafe extern "C" fn rust_owned_wake(data: *const c_void) {
    no_unwind("wake", || Box::from_raw(data as *mut Waker).wake())
}

unsafe extern "C" fn rust_owned_drop(data: *const c_void) {
    no_unwind("drop", || drop(Box::from_raw(data as *mut Waker)))
}
