//! Executors: a local one, driven by the thread that owns it, and a
//! thread-per-core one, whose workers run the tasks. Each is freed when
//! dropped: tasks that have not completed are cancelled and their futures
//! dropped (a local executor's on the dropping thread).

use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};
use std::os::raw::{c_int, c_uint};
use std::pin::Pin;
use std::ptr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

use crate::error::{check, Error};
use crate::scope::{Scope, ScopeOptions};
use crate::spawn::spawn_with;
use crate::sys;
use crate::task::JoinHandle;
use crate::task_future::{into_raw_unchecked, poll_catching, TaskBody};
use crate::time::duration_ns;

fn new_executor(kind: c_uint, workers: c_uint) -> Result<*mut sys::asyncrt_executor, Error> {
    let mut config = MaybeUninit::<sys::asyncrt_executor_config>::uninit();
    let mut raw = ptr::null_mut();
    // SAFETY: init fills every field of a struct of the size it is given.
    unsafe {
        sys::asyncrt_executor_config_init_size(config.as_mut_ptr(), mem::size_of::<sys::asyncrt_executor_config>());
        let config = config.assume_init_mut();
        config.kind = kind;
        config.workers = workers;
        check(sys::asyncrt_executor_new(config, &mut raw))?;
    }
    Ok(raw)
}

fn timeout_arg(timeout: Option<Duration>) -> i64 {
    match timeout {
        None => sys::ASYNCRT_NO_TIMEOUT,
        Some(t) => duration_ns(t).min(i64::MAX as u64) as i64,
    }
}

/// A local (current-thread) executor: its tasks run on the thread that
/// drives it with `block_on` or `run_until_idle`. It stays on the thread
/// that made it (it is not `Send`), so its tasks need not be `Send` either.
pub struct LocalExecutor {
    raw: *mut sys::asyncrt_executor,
    _one_thread: PhantomData<*const ()>,
}

impl LocalExecutor {
    pub fn new() -> Result<LocalExecutor, Error> {
        Ok(LocalExecutor { raw: new_executor(sys::ASYNCRT_EXECUTOR_LOCAL, 0)?, _one_thread: PhantomData })
    }

    /// The executor handle, still owned by this value.
    pub fn as_raw(&self) -> *mut sys::asyncrt_executor {
        self.raw
    }

    /// Spawns a task; it runs when the executor is driven on this thread.
    pub fn spawn<B: TaskBody + 'static>(&self, body: B) -> Result<JoinHandle<B::Output>, Error> {
        // SAFETY: a local executor polls and drops its tasks on its driver,
        // this thread (the executor is not Send).
        unsafe { spawn_with(body, |f, out| sys::asyncrt_spawn(self.raw, f, sys::ASYNCRT_SPAWN_LOCAL, out)) }
    }

    /// Runs `body` to completion on this thread, with the executor's other
    /// tasks, and returns its output (or its failure). Fails with
    /// ASYNCRT_EREENTRANT inside a poll.
    pub fn block_on<B: TaskBody>(&self, body: B) -> Result<B::Output, Error> {
        self.block_on_bounded(body, None)
    }

    /// As block_on, but gives up after `timeout` of real time: the future
    /// is then dropped and ASYNCRT_ETIMEDOUT returned.
    pub fn block_on_timeout<B: TaskBody>(&self, body: B, timeout: Duration) -> Result<B::Output, Error> {
        self.block_on_bounded(body, Some(timeout))
    }

    fn block_on_bounded<B: TaskBody>(&self, body: B, timeout: Option<Duration>) -> Result<B::Output, Error> {
        // SAFETY: on a local executor block_on drops the future before it
        // returns, so the body may borrow from the caller; it runs on this
        // thread, the executor's only driver.
        unsafe { block_on(self.raw, body, timeout) }
    }

    /// Runs the tasks that are ready until none is, without sleeping;
    /// returns the number of polls made.
    pub fn run_until_idle(&self) -> Result<u64, Error> {
        let mut polls = 0u64;
        // SAFETY: the handle is live while self is.
        check(unsafe { sys::asyncrt_run(self.raw, &mut polls) })?;
        Ok(polls)
    }

    /// Opens a scope at the top of the executor (no owner task). Its local
    /// children run on this thread, as the executor's tasks do.
    pub fn scope(&self, options: &ScopeOptions) -> Result<Scope, Error> {
        // SAFETY: the handle is live while self is.
        unsafe { Scope::open_top(self.raw, options, Some(thread::current().id())) }
    }
}

impl Drop for LocalExecutor {
    fn drop(&mut self) {
        // Fails (EBUSY) only inside one of its own polls, where nothing can
        // be freed: the executor is then left as it is.
        // SAFETY: the handle is ours.
        unsafe {
            sys::asyncrt_executor_free(self.raw);
        }
    }
}

/// A thread-per-core executor: `workers` threads, each with its own tasks;
/// Send tasks may be stolen by idle workers. Spawn local (non-Send) futures
/// from inside its tasks with [`crate::spawn_local`].
pub struct ThreadExecutor {
    raw: *mut sys::asyncrt_executor,
}

// SAFETY: every executor function may be called from any thread; the
// futures it takes from outside its workers are Send.
unsafe impl Send for ThreadExecutor {}
unsafe impl Sync for ThreadExecutor {}

impl ThreadExecutor {
    /// `workers` threads; 0 for one per CPU the process may use.
    pub fn new(workers: usize) -> Result<ThreadExecutor, Error> {
        let workers = c_uint::try_from(workers)
            .map_err(|_| Error::from_status(sys::ASYNCRT_EINVAL, Some("too many workers".into())))?;
        Ok(ThreadExecutor { raw: new_executor(sys::ASYNCRT_EXECUTOR_THREADS, workers)? })
    }

    /// The executor handle, still owned by this value.
    pub fn as_raw(&self) -> *mut sys::asyncrt_executor {
        self.raw
    }

    /// Spawns a Send task (ASYNCRT_SPAWN_SEND): it runs on the workers, and
    /// an idle worker may steal it.
    pub fn spawn<B>(&self, body: B) -> Result<JoinHandle<B::Output>, Error>
    where
        B: TaskBody + Send + 'static,
        B::Output: Send,
    {
        // SAFETY: Send and 'static suit any placement.
        unsafe { spawn_with(body, |f, out| sys::asyncrt_spawn(self.raw, f, sys::ASYNCRT_SPAWN_SEND, out)) }
    }

    /// Runs `body` on the workers and waits for its output. Not from one of
    /// the executor's own workers (ASYNCRT_EREENTRANT / EBUSY).
    pub fn block_on<B>(&self, body: B) -> Result<B::Output, Error>
    where
        B: TaskBody + Send + 'static,
        B::Output: Send,
    {
        self.block_on_bounded(body, None)
    }

    /// As block_on, but gives up after `timeout` of real time: the future
    /// is cancelled and ASYNCRT_ETIMEDOUT returned.
    pub fn block_on_timeout<B>(&self, body: B, timeout: Duration) -> Result<B::Output, Error>
    where
        B: TaskBody + Send + 'static,
        B::Output: Send,
    {
        self.block_on_bounded(body, Some(timeout))
    }

    fn block_on_bounded<B>(&self, body: B, timeout: Option<Duration>) -> Result<B::Output, Error>
    where
        B: TaskBody + Send + 'static,
        B::Output: Send,
    {
        // SAFETY: 'static and Send suit the workers.
        unsafe { block_on(self.raw, body, timeout) }
    }

    /// Opens a scope at the top of the executor (no owner task). Its
    /// children run on the workers, so they must be Send.
    pub fn scope(&self, options: &ScopeOptions) -> Result<Scope, Error> {
        // SAFETY: the handle is live while self is.
        unsafe { Scope::open_top(self.raw, options, None) }
    }
}

impl Drop for ThreadExecutor {
    fn drop(&mut self) {
        // Fails (EBUSY) only on one of its own workers; ETIMEDOUT still frees
        // the handle (a stuck worker finishes on its own).
        // SAFETY: the handle is ours.
        unsafe {
            sys::asyncrt_executor_free(self.raw);
        }
    }
}

/// asyncrt_block_on of `body`. A thread-per-core executor's block_on may
/// time out while a worker is still inside the future's poll, so the output
/// is never written to this stack frame: it comes through a shared slot.
///
/// # Safety
/// `executor` is live, and polls and drops the body where B allows (see
/// spawn_with); a body that is not 'static is dropped before this returns.
unsafe fn block_on<B: TaskBody>(
    executor: *mut sys::asyncrt_executor,
    body: B,
    timeout: Option<Duration>,
) -> Result<B::Output, Error> {
    let (deliver, slot) = Deliver::new(body);
    let future = into_raw_unchecked(deliver);
    let code = sys::asyncrt_block_on(executor, &future, ptr::null_mut(), timeout_arg(timeout));
    Deliver::<B>::outcome(code, &slot)
}

/// The body block_on runs: it hands the output, or the body's own error
/// (with its message, which block_on's status alone would lose), over
/// through a shared slot.
struct Deliver<B: TaskBody> {
    body: Pin<Box<B>>,
    slot: Arc<DeliverySlot<B::Output>>,
}

type DeliverySlot<T> = Mutex<Option<Result<T, Error>>>;

impl<B: TaskBody> Deliver<B> {
    fn new(body: B) -> (Deliver<B>, Arc<DeliverySlot<B::Output>>) {
        let slot = Arc::new(Mutex::new(None));
        (Deliver { body: Box::pin(body), slot: Arc::clone(&slot) }, slot)
    }

    /// What block_on returns, given the status asyncrt_block_on returned.
    fn outcome(code: c_int, slot: &DeliverySlot<B::Output>) -> Result<B::Output, Error> {
        // Read the runtime's message before anything else can replace it.
        let failure = check(code).err();
        let delivered = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        match (failure, delivered) {
            (None, Some(Ok(value))) => Ok(value),
            (Some(failure), Some(Err(error))) if error.code() == failure.code() => Err(error),
            (Some(failure), _) => Err(failure),
            (None, _) => Err(Error::from_status(
                sys::ASYNCRT_EINTERNAL,
                Some("asyncrt: block_on succeeded without the output".into()),
            )),
        }
    }
}

impl<B: TaskBody> TaskBody for Deliver<B> {
    type Output = ();

    fn poll_body(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let polled = poll_catching(self.body.as_mut(), cx);
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                let failure = result.as_ref().err().cloned();
                *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                match failure {
                    None => Poll::Ready(Ok(())),
                    Some(error) => Poll::Ready(Err(error)),
                }
            }
        }
    }
}
