//! Task handles: a spawned task's join as a Rust future, its cancellation
//! and its state.

use std::future::Future;
use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};
use std::os::raw::c_void;
use std::pin::Pin;
use std::ptr;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::error::{check, copy_c_str, Error};
use crate::ffi_future::RawFuture;
use crate::output::{Output, Slot};
use crate::sys;
use crate::time::duration_ns;

/// A handle to a task whose output is a `T`. Awaiting it gives the output,
/// or the task's failure: `Err` with ASYNCRT_ECANCELLED for a cancelled
/// task, or the failure's status and message. Dropping the handle detaches
/// the task (it runs on); an output nobody awaits is leaked, not dropped.
pub struct JoinHandle<T> {
    task: *mut sys::asyncrt_task,
    join: Option<RawFuture>,
    output: MaybeUninit<Slot<T>>,
    _output: PhantomData<T>,
}

// The output slot is written only during a poll, and asyncrt futures do not
// keep `out`.
impl<T> Unpin for JoinHandle<T> {}
// SAFETY: every task function may be called from any thread; what crosses
// threads through a handle is the output, a T.
unsafe impl<T: Send> Send for JoinHandle<T> {}
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// Takes the task handle `task` (released when the JoinHandle is
    /// dropped).
    ///
    /// # Safety
    /// `task` is a live task handle nobody else releases, and the task's
    /// output is a `T` as this crate writes it: a task spawned by this
    /// crate with a body whose output is T, or a C task whose output is the
    /// bytes of a plain-data T no larger than ASYNCRT_OUTPUT_MAX. Awaiting
    /// checks the output's size.
    pub unsafe fn from_raw(task: *mut sys::asyncrt_task) -> JoinHandle<T> {
        JoinHandle { task, join: None, output: MaybeUninit::uninit(), _output: PhantomData }
    }

    /// The task handle, still owned by the JoinHandle.
    pub fn as_raw(&self) -> *mut sys::asyncrt_task {
        self.task
    }

    /// Gives up the handle without releasing it.
    pub fn into_raw(self) -> *mut sys::asyncrt_task {
        let task = self.task;
        mem::forget(self);
        task
    }

    /// The task's id, unique within its executor.
    pub fn id(&self) -> Result<u64, Error> {
        let mut id = 0u64;
        // SAFETY: the handle is live while self is.
        check(unsafe { sys::asyncrt_task_id(self.task, &mut id) })?;
        Ok(id)
    }

    /// Cancels the task now (asyncrt_task_cancel): its future is dropped on
    /// its executor's thread the next time that executor runs, and its join
    /// fails with ASYNCRT_ECANCELLED. Does nothing to a completed task.
    pub fn cancel(&self) -> Result<(), Error> {
        // SAFETY: as in id.
        check(unsafe { sys::asyncrt_task_cancel(self.task) })
    }

    /// Cancels the task asynchronously (asyncrt_task_cancel_ex): a Rust
    /// future has no cleanup to run, so it is dropped, after its own scopes
    /// are cancelled and drained, within `cleanup_timeout`.
    pub fn cancel_with_cleanup(&self, cleanup_timeout: Duration) -> Result<(), Error> {
        // SAFETY: as in id.
        check(unsafe { sys::asyncrt_task_cancel_ex(self.task, duration_ns(cleanup_timeout).max(1)) })
    }

    /// None while the task runs; Some(Ok) once it succeeded; Some(Err) once
    /// it failed or was cancelled (with its failure's message).
    pub fn status(&self) -> Option<Result<(), Error>> {
        // SAFETY: as in id.
        match unsafe { sys::asyncrt_task_status(self.task) } {
            sys::ASYNCRT_EAGAIN => None,
            sys::ASYNCRT_OK => Some(Ok(())),
            failure => Some(Err(self.failure(failure))),
        }
    }

    /// True once the task completed, failed or was cancelled.
    pub fn is_finished(&self) -> bool {
        self.status().is_some()
    }

    /// The error of a task that ended with `code`, with the message the
    /// task's failure recorded.
    fn failure(&self, code: i32) -> Error {
        let mut info = sys::asyncrt_error_info {
            size: mem::size_of::<sys::asyncrt_error_info>(),
            status: 0,
            task_id: 0,
            message: ptr::null(),
            value: ptr::null_mut(),
            value_free: None,
        };
        // SAFETY: the message is borrowed until the handle is released; it
        // is copied at once.
        let message = unsafe {
            if sys::asyncrt_task_error_get(self.task, &mut info) == sys::ASYNCRT_OK && info.status == code {
                copy_c_str(info.message)
            } else {
                None
            }
        };
        Error::from_status(code, message)
    }

    fn join_future(&mut self) -> Result<&mut RawFuture, Error> {
        if self.join.is_none() {
            let mut raw = sys::asyncrt_future::NULL;
            // SAFETY: the handle is live; the join is owned by us from here.
            check(unsafe { sys::asyncrt_task_join(self.task, &mut raw) })?;
            let join = unsafe { RawFuture::new(raw) }?;
            if join.output_size() != Output::<T>::SIZE {
                let message = format!(
                    "task output of {} bytes awaited as a {}-byte value",
                    join.output_size(),
                    Output::<T>::SIZE
                );
                return Err(Error::from_status(sys::ASYNCRT_EINVAL, Some(message)));
            }
            self.join = Some(join);
        }
        Ok(self.join.as_mut().expect("made above"))
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, Error>> {
        let this = self.get_mut();
        let out = this.output.as_mut_ptr() as *mut c_void;
        let polled = match this.join_future() {
            Ok(join) => join.poll(cx, out),
            Err(error) => return Poll::Ready(Err(error)),
        };
        match polled {
            Poll::Pending => Poll::Pending,
            // SAFETY: the join wrote the task's output, which this crate (or
            // from_raw's caller) wrote as a T.
            Poll::Ready(Ok(())) => Poll::Ready(Ok(unsafe { Output::<T>::read(out) })),
            Poll::Ready(Err(code)) => Poll::Ready(Err(this.failure(code))),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // The join goes first: it holds a reference of its own to the task.
        self.join = None;
        // SAFETY: the handle is live and ours; releasing detaches the task.
        unsafe {
            sys::asyncrt_task_release(self.task);
        }
    }
}
