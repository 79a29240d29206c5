//! An asyncrt future as a Rust future.
//!
//! Polled from inside an asyncrt task (a Rust future that asyncrt polls, see
//! `current.rs`), the asyncrt future gets that task's own context: timers,
//! subsystems and scopes work, and the waker is the task's. Polled from
//! anywhere else (another Rust executor, a thread of your own), it goes
//! through asyncrt_poll_with_waker with the Rust waker lent as an asyncrt
//! waker: everything that needs only a waker works (channels, joins,
//! synchronization), while timers fail with ASYNCRT_ENOTSUP since no
//! executor advances them there.

use std::future::Future;
use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};
use std::os::raw::{c_int, c_void};
use std::pin::Pin;
use std::ptr;
use std::task::{Context, Poll};

use crate::current;
use crate::error::Error;
use crate::sys;
use crate::waker;

/// An asyncrt future this side owns: polled from Rust polls, dropped through
/// its vtable exactly once (when it completes, or with this value).
pub(crate) struct RawFuture {
    raw: sys::asyncrt_future,
    live: bool,
}

/// A vtable must reach past `drop` (asyncrt's own rule).
const VTABLE_MIN_SIZE: usize = 4 * mem::size_of::<usize>();

impl RawFuture {
    /// Takes `raw`. A future asyncrt itself would refuse (NULL vtable or
    /// poll, output too large) is dropped if its vtable says how, and
    /// refused with ASYNCRT_EINVAL.
    ///
    /// # Safety
    /// `raw` is a live asyncrt future that nobody else polls or drops.
    pub(crate) unsafe fn new(raw: sys::asyncrt_future) -> Result<RawFuture, Error> {
        if raw.vtable.is_null() {
            return Err(Error::from_status(sys::ASYNCRT_EINVAL, Some("asyncrt future with a NULL vtable".into())));
        }
        let vtable = &*raw.vtable;
        if vtable.size < VTABLE_MIN_SIZE {
            return Err(Error::from_status(sys::ASYNCRT_EINVAL, Some("asyncrt future vtable too small".into())));
        }
        let mut future = RawFuture { raw, live: true };
        if vtable.poll.is_none() || vtable.output_size > sys::ASYNCRT_OUTPUT_MAX {
            future.release();
            return Err(Error::from_status(
                sys::ASYNCRT_EINVAL,
                Some("asyncrt future without a poll or with too large an output".into()),
            ));
        }
        Ok(future)
    }

    pub(crate) fn output_size(&self) -> usize {
        // SAFETY: checked in new; the vtable outlives the future.
        unsafe { (*self.raw.vtable).output_size }
    }

    /// Polls once, writing the output to `out` (output_size bytes; ignored
    /// when that is 0). Ready(Err(status)) for a failure. The future is
    /// dropped as soon as it is done.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>, out: *mut c_void) -> Poll<Result<(), c_int>> {
        assert!(self.live, "asyncrt: an asyncrt future was polled after it completed");
        let out = if self.output_size() == 0 { ptr::null_mut() } else { out };
        let (result, failure) = match current::context_for(cx) {
            // SAFETY: the task's context is valid for its poll, which is on
            // this thread's stack below us; poll is non-NULL (new).
            Some(task_cx) => unsafe {
                let poll = (*self.raw.vtable).poll.expect("checked in new");
                let result = poll(self.raw.self_, task_cx, out);
                let failure = if result == sys::ASYNCRT_POLL_ERROR { sys::asyncrt_context_failure(task_cx) } else { 0 };
                (result, failure)
            },
            None => {
                let lent = waker::lend_rust(cx.waker());
                let mut failure: c_int = 0;
                // SAFETY: the waker is lent for the call only; asyncrt
                // clones it to keep it.
                let result = unsafe { sys::asyncrt_poll_with_waker(&self.raw, &lent, out, &mut failure) };
                (result, failure)
            }
        };
        match result {
            sys::ASYNCRT_POLL_PENDING => Poll::Pending,
            sys::ASYNCRT_POLL_READY => {
                self.release();
                Poll::Ready(Ok(()))
            }
            sys::ASYNCRT_POLL_YIELDED => {
                // A stream's item: these bindings await futures, not streams.
                // As an executor does with a yielding task, the item is
                // dropped (left unread) and the future polled again later.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            sys::ASYNCRT_POLL_ERROR => {
                self.release();
                Poll::Ready(Err(if failure == 0 { sys::ASYNCRT_EFAILED } else { failure }))
            }
            negative if negative < 0 => Poll::Ready(Err(-negative)),
            _ => {
                self.release();
                Poll::Ready(Err(sys::ASYNCRT_EINVAL))
            }
        }
    }

    fn release(&mut self) {
        if mem::replace(&mut self.live, false) {
            // SAFETY: the vtable was checked in new; drop runs exactly once.
            unsafe {
                if let Some(drop) = (*self.raw.vtable).drop {
                    drop(self.raw.self_);
                }
            }
        }
    }
}

impl Drop for RawFuture {
    fn drop(&mut self) {
        self.release();
    }
}

/// An asyncrt future (a C future, a join, a channel receive, a Python
/// future...) awaited from Rust: its output is read as a `T`, its failure
/// is an [`Error`] carrying the status (the failure's message stays with
/// the runtime; the error message is the status's name).
pub struct AsyncrtFuture<T> {
    raw: RawFuture,
    output: MaybeUninit<T>,
    _output: PhantomData<T>,
}

// The output slot is written only during a poll, and asyncrt futures do not
// keep `out`: moving the Rust future between polls is fine.
impl<T> Unpin for AsyncrtFuture<T> {}

// SAFETY: from_raw's contract: whoever makes one from a future tied to a
// thread keeps it on that thread.
unsafe impl<T: Send> Send for AsyncrtFuture<T> {}

impl<T> AsyncrtFuture<T> {
    /// Takes the asyncrt future `raw`: it is dropped (through its vtable)
    /// when it completes or when the AsyncrtFuture is dropped, and on an
    /// error here. Fails with ASYNCRT_EINVAL when its output_size is not
    /// `size_of::<T>()` or when asyncrt would refuse it.
    ///
    /// # Safety
    /// `raw` is a live asyncrt future that nobody else polls or drops, its
    /// output bytes are a valid `T` (plain data: asyncrt copies outputs as
    /// bytes), and whatever it borrows outlives it. If it must be polled on
    /// one thread, the AsyncrtFuture is not sent to another.
    pub unsafe fn from_raw(raw: sys::asyncrt_future) -> Result<AsyncrtFuture<T>, Error> {
        let raw = RawFuture::new(raw)?;
        if raw.output_size() != mem::size_of::<T>() {
            let message = format!(
                "asyncrt future with output_size {} awaited as a {}-byte value",
                raw.output_size(),
                mem::size_of::<T>()
            );
            return Err(Error::from_status(sys::ASYNCRT_EINVAL, Some(message)));
        }
        Ok(AsyncrtFuture { raw, output: MaybeUninit::uninit(), _output: PhantomData })
    }
}

impl<T> Future for AsyncrtFuture<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, Error>> {
        let this = self.get_mut();
        match this.raw.poll(cx, this.output.as_mut_ptr() as *mut c_void) {
            Poll::Pending => Poll::Pending,
            // SAFETY: a ready poll wrote output_size == size_of::<T>() bytes
            // of a valid T (from_raw's contract); a zero-sized T has none.
            Poll::Ready(Ok(())) => Poll::Ready(Ok(unsafe { this.output.as_ptr().read() })),
            Poll::Ready(Err(code)) => Poll::Ready(Err(Error::from_status(code, None))),
        }
    }
}
