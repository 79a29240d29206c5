//! A Rust future as an asyncrt future: a boxed future behind a vtable whose
//! poll builds a Rust `Context` from the asyncrt context's waker, so that
//! asyncrt executors (and anything else that polls asyncrt futures) can run
//! Rust futures as tasks.

use std::any::Any;
use std::ffi::CString;
use std::future::Future;
use std::marker::PhantomData;
use std::mem;
use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::ptr;
use std::task::{Context, Poll};

use crate::current;
use crate::error::Error;
use crate::output::Output;
use crate::sys;
use crate::waker;

/// What asyncrt runs as a task: a Rust future that ends with an output or a
/// failure. Every `Future` is one (it never fails); wrap a future whose
/// output is a `Result` in [`fallible`] to have its `Err` reported as the
/// task's failure -- to its join, and to its scope, where a failure cancels
/// the siblings.
pub trait TaskBody {
    /// What the task outputs when it succeeds.
    type Output;

    /// Polls the body, as `Future::poll`.
    fn poll_body(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Self::Output, Error>>;
}

impl<F: Future> TaskBody for F {
    type Output = F::Output;

    fn poll_body(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<F::Output, Error>> {
        self.poll(cx).map(Ok)
    }
}

/// A future whose `Err` fails its task; made by [`fallible`].
pub struct Fallible<F> {
    future: F,
}

/// Makes a task body of a future that returns `Result<T, E>`: `Ok(value)`
/// is the task's output, `Err(error)` fails the task with the error's code
/// and message (ASYNCRT_EFAILED for an [`Error::new`]).
pub fn fallible<F, T, E>(future: F) -> Fallible<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<Error>,
{
    Fallible { future }
}

impl<F, T, E> TaskBody for Fallible<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<Error>,
{
    type Output = T;

    fn poll_body(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, Error>> {
        // SAFETY: `future` is pinned when Fallible is (structural pinning:
        // Fallible has no Drop and is Unpin only when F is).
        let future = unsafe { self.map_unchecked_mut(|f| &mut f.future) };
        future.poll(cx).map(|r| r.map_err(Into::into))
    }
}

/// Turns a task body into an asyncrt future (output_size: the output's size,
/// or a pointer's for outputs larger than ASYNCRT_OUTPUT_MAX). Whoever gets
/// it must drop it exactly once through its vtable; asyncrt does that for
/// the futures handed to it.
///
/// Threads: the future is polled and dropped wherever its new owner polls
/// and drops it. Unless `B` is `Send`, hand it only to an owner that does
/// both on this thread (a local task spawned on this thread's worker).
pub fn into_raw<B: TaskBody + 'static>(body: B) -> sys::asyncrt_future {
    // SAFETY: 'static: the body borrows nothing that could end first.
    unsafe { into_raw_unchecked(body) }
}

/// `into_raw` without the 'static bound.
///
/// # Safety
/// The future is dropped before anything the body borrows goes away.
pub(crate) unsafe fn into_raw_unchecked<B: TaskBody>(body: B) -> sys::asyncrt_future {
    sys::asyncrt_future { self_: Box::into_raw(Box::new(body)) as *mut c_void, vtable: &VTable::<B>::VTABLE }
}

struct VTable<B>(PhantomData<B>);

impl<B: TaskBody> VTable<B> {
    const VTABLE: sys::asyncrt_future_vtable = sys::asyncrt_future_vtable {
        size: mem::size_of::<sys::asyncrt_future_vtable>(),
        output_size: Output::<B::Output>::SIZE,
        poll: Some(poll::<B>),
        drop: Some(drop_body::<B>),
        // A cancelled Rust future is dropped: Rust has no async drop.
        cleanup: None,
    };
}

unsafe extern "C" fn poll<B: TaskBody>(this: *mut c_void, cx: *mut sys::asyncrt_context, out: *mut c_void) -> c_int {
    // SAFETY: `this` is the box made by into_raw_unchecked, which never moves
    // until drop_body; asyncrt never polls one future twice at once.
    let body = Pin::new_unchecked(&mut *(this as *mut B));
    let asyncrt_waker = sys::asyncrt_context_waker(cx);
    let waker = waker::borrow_asyncrt(asyncrt_waker);
    let mut rust_cx = Context::from_waker(&waker);
    let _current = current::enter(cx, asyncrt_waker);
    match poll_catching(body, &mut rust_cx) {
        Poll::Pending => sys::ASYNCRT_POLL_PENDING,
        Poll::Ready(Ok(value)) => {
            Output::<B::Output>::write(out, value);
            sys::ASYNCRT_POLL_READY
        }
        Poll::Ready(Err(error)) => {
            fail(cx, &error);
            sys::ASYNCRT_POLL_ERROR
        }
    }
}

/// Polls `body`, turning a panic into a failure: a panic must not unwind
/// into C, and asyncrt never polls a failed future again. (The panic hook
/// has printed the panic already.)
pub(crate) fn poll_catching<B: TaskBody>(body: Pin<&mut B>, cx: &mut Context<'_>) -> Poll<Result<B::Output, Error>> {
    match catch_unwind(AssertUnwindSafe(|| body.poll_body(cx))) {
        Ok(poll) => poll,
        Err(payload) => {
            let error = Error::new(format!("a Rust future panicked: {}", panic_message(&*payload)));
            drop_payload(payload);
            Poll::Ready(Err(error))
        }
    }
}

unsafe extern "C" fn drop_body<B: TaskBody>(this: *mut c_void) {
    let dropped = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(this as *mut B))));
    if let Err(payload) = dropped {
        eprintln!("asyncrt: a Rust future panicked while being dropped: {}", panic_message(&*payload));
        drop_payload(payload);
    }
}

/// Names the failure the poll is about to return, with its message.
unsafe fn fail(cx: *mut sys::asyncrt_context, error: &Error) {
    // The runtime copies the message; an interior NUL would cut it short.
    let message = CString::new(error.message().replace('\0', " ")).unwrap_or_default();
    let info = sys::asyncrt_error_info {
        size: mem::size_of::<sys::asyncrt_error_info>(),
        status: error.code(),
        task_id: 0,
        message: message.as_ptr(),
        value: ptr::null_mut(),
        value_free: None,
    };
    sys::asyncrt_context_fail_info(cx, &info);
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(a panic payload that is not a string)"
    }
}

/// A payload's drop may panic too: that second payload is leaked, not
/// dropped, so nothing unwinds into C.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        mem::forget(again);
    }
}
