//! Scopes (structured concurrency): a scope owns the tasks spawned into it
//! and its join completes once they are all gone. A child that fails
//! records an error in its scope, which (by default) cancels the siblings
//! and fails the join. See "Scopes" in asyncrt.h.
//!
//! Scopes are shared with other languages: a Rust future can be spawned
//! into a scope that C or Python opened ([`spawn_in_scope`], or
//! [`Scope::from_raw`]), next to their own children.

use std::ffi::CString;
use std::future::Future;
use std::mem;
use std::os::raw::c_uint;
use std::pin::Pin;
use std::ptr;
use std::task::{Context, Poll};
use std::thread::{self, ThreadId};
use std::time::Duration;

use crate::current;
use crate::error::{check, copy_c_str, Error};
use crate::ffi_future::RawFuture;
use crate::spawn::{keeps_local_tasks_in_place, spawn_with};
use crate::sys;
use crate::task::JoinHandle;
use crate::task_future::TaskBody;
use crate::time::duration_ns;

/// How a scope is opened; `Default` is the library's default (first error
/// cancels the siblings, no deadline, 1 s of cleanup time).
#[derive(Clone, Debug, Default)]
pub struct ScopeOptions {
    /// Siblings go on after a failure; every failure is recorded
    /// (ASYNCRT_SCOPE_COLLECT_ALL). The join still fails with the first.
    pub collect_all: bool,
    /// The scope ignores its owner's cancellation (ASYNCRT_SCOPE_SHIELD).
    pub shield: bool,
    /// Cancels the scope this long after it opens, on the executor's clock;
    /// its join then fails with ASYNCRT_ETIMEDOUT.
    pub timeout: Option<Duration>,
    /// Time each child's cleanup gets when the scope is cancelled.
    pub cleanup_timeout: Option<Duration>,
    /// A name for the executor's dump.
    pub name: Option<String>,
}

impl ScopeOptions {
    /// The C config. The returned CString holds the name the config points
    /// to: keep it until the scope is open (the runtime copies it).
    fn to_config(&self) -> (sys::asyncrt_scope_config, Option<CString>) {
        let mut config = sys::asyncrt_scope_config {
            size: 0,
            flags: 0,
            deadline_ns: 0,
            timeout_ns: 0,
            cleanup_timeout_ns: 0,
            name: ptr::null(),
        };
        // SAFETY: fills a struct of the size given.
        unsafe { sys::asyncrt_scope_config_init_size(&mut config, mem::size_of::<sys::asyncrt_scope_config>()) };
        config.flags = (if self.collect_all { sys::ASYNCRT_SCOPE_COLLECT_ALL } else { sys::ASYNCRT_SCOPE_FIRST_ERROR })
            | (if self.shield { sys::ASYNCRT_SCOPE_SHIELD } else { 0 });
        // 0 would mean "none": the shortest timeout is 1 ns.
        if let Some(timeout) = self.timeout {
            config.timeout_ns = duration_ns(timeout).max(1);
        }
        if let Some(cleanup) = self.cleanup_timeout {
            config.cleanup_timeout_ns = duration_ns(cleanup).max(1);
        }
        let name = self.name.as_ref().map(|n| CString::new(n.replace('\0', " ")).unwrap_or_default());
        if let Some(name) = &name {
            config.name = name.as_ptr();
        }
        (config, name)
    }
}

/// A failure a scope recorded: the failing task (0 for the scope's own
/// deadline) and its error, with the message the child gave.
#[derive(Clone, Debug)]
pub struct ScopeError {
    pub task_id: u64,
    pub error: Error,
}

/// A scope handle. Dropping it never blocks: a scope whose join has not
/// completed is cancelled, and lives on until its last child is gone.
pub struct Scope {
    raw: *mut sys::asyncrt_scope,
    /// The thread that polls the scope's local children, when it is known
    /// to be one thread: only there may a future that is not Send be
    /// spawned into it.
    local_thread: Option<ThreadId>,
}

// SAFETY: every scope function may be called from any thread; spawn_local
// checks the thread itself.
unsafe impl Send for Scope {}
unsafe impl Sync for Scope {}

impl Scope {
    /// Opens a scope owned by the task running on this thread: the task
    /// does not complete while the scope has live children. Call it from
    /// inside a Rust future run by an asyncrt executor (ASYNCRT_ENOTSUP
    /// elsewhere).
    pub fn open(options: &ScopeOptions) -> Result<Scope, Error> {
        let cx = current::context().ok_or_else(|| {
            Error::from_status(
                sys::ASYNCRT_ENOTSUP,
                Some("asyncrt: Scope::open works inside a task run by an asyncrt executor".into()),
            )
        })?;
        let (config, _name) = options.to_config();
        let mut raw = ptr::null_mut();
        // SAFETY: cx is the context of the poll running on this thread.
        check(unsafe { sys::asyncrt_scope_open(cx, &config, &mut raw) })?;
        // Made at once, so that an error below frees the handle.
        let mut scope = Scope { raw, local_thread: None };
        // Local children run on the thread where the scope was opened --
        // unless a foreign executor's host runs them where it likes.
        // SAFETY: the scope opened, so the poll is an executor's, whose
        // executor is live.
        if unsafe { keeps_local_tasks_in_place(sys::asyncrt_context_executor(cx)) }? {
            scope.local_thread = Some(thread::current().id());
        }
        Ok(scope)
    }

    /// # Safety
    /// `executor` is live.
    pub(crate) unsafe fn open_top(
        executor: *mut sys::asyncrt_executor,
        options: &ScopeOptions,
        local_thread: Option<ThreadId>,
    ) -> Result<Scope, Error> {
        let (config, _name) = options.to_config();
        let mut raw = ptr::null_mut();
        check(sys::asyncrt_scope_open_top(executor, &config, &mut raw))?;
        Ok(Scope { raw, local_thread })
    }

    /// Takes a scope handle someone else opened (it is freed when the Scope
    /// is dropped). Its children must be Send: which thread runs its local
    /// children is not known here.
    ///
    /// # Safety
    /// `raw` is a live scope handle that nobody else frees.
    pub unsafe fn from_raw(raw: *mut sys::asyncrt_scope) -> Scope {
        Scope { raw, local_thread: None }
    }

    /// The scope handle, still owned by the Scope.
    pub fn as_raw(&self) -> *mut sys::asyncrt_scope {
        self.raw
    }

    /// Gives up the handle without freeing it.
    pub fn into_raw(self) -> *mut sys::asyncrt_scope {
        let raw = self.raw;
        mem::forget(self);
        raw
    }

    /// The scope's id (unique with the task ids of its executor).
    pub fn id(&self) -> Result<u64, Error> {
        let mut id = 0u64;
        // SAFETY: the handle is live while self is.
        check(unsafe { sys::asyncrt_scope_id(self.raw, &mut id) })?;
        Ok(id)
    }

    /// Spawns a Send child (ASYNCRT_SPAWN_SEND), from any thread.
    pub fn spawn<B>(&self, body: B) -> Result<JoinHandle<B::Output>, Error>
    where
        B: TaskBody + Send + 'static,
        B::Output: Send,
    {
        // SAFETY: the handle is live; Send and 'static suit any placement.
        unsafe { spawn_in_scope(self.raw, body, sys::ASYNCRT_SPAWN_SEND) }
    }

    /// Spawns a local child, which runs on the thread that runs the scope's
    /// local children: allowed only on that thread (the task that opened the
    /// scope, or the thread of a LocalExecutor's top scope), else
    /// ASYNCRT_EINVAL.
    pub fn spawn_local<B: TaskBody + 'static>(&self, body: B) -> Result<JoinHandle<B::Output>, Error> {
        if self.local_thread != Some(thread::current().id()) {
            return Err(Error::from_status(
                sys::ASYNCRT_EINVAL,
                Some("asyncrt: Scope::spawn_local from a thread that does not run the scope's local children".into()),
            ));
        }
        // SAFETY: checked above: the child is polled on this thread.
        unsafe { spawn_in_scope(self.raw, body, sys::ASYNCRT_SPAWN_LOCAL) }
    }

    /// Cancels the scope and every descendant (asynchronously: Rust children
    /// are dropped, C children run their cleanup). Later spawns fail with
    /// ASYNCRT_ECANCELLED.
    pub fn cancel(&self) -> Result<(), Error> {
        // SAFETY: the handle is live while self is.
        check(unsafe { sys::asyncrt_scope_cancel(self.raw) })
    }

    /// A future that completes once the scope has no live child, and closes
    /// the scope (later spawns fail with ASYNCRT_ESCOPE). Ok when no child
    /// failed and the scope was not cancelled; otherwise the first error
    /// (with the failing child's message), ASYNCRT_ETIMEDOUT for the
    /// deadline, or ASYNCRT_ECANCELLED. One join per scope (ASYNCRT_EBUSY).
    pub fn join(&self) -> ScopeJoin<'_> {
        ScopeJoin { scope: self, join: None }
    }

    /// None while the scope is open or a child lives; otherwise what its
    /// join reports.
    pub fn status(&self) -> Option<Result<(), Error>> {
        // SAFETY: the handle is live while self is.
        match unsafe { sys::asyncrt_scope_status(self.raw) } {
            sys::ASYNCRT_EAGAIN => None,
            sys::ASYNCRT_OK => Some(Ok(())),
            code => Some(Err(self.failure(code))),
        }
    }

    /// The failures recorded so far, in the order they happened.
    pub fn errors(&self) -> Result<Vec<ScopeError>, Error> {
        let mut count = 0usize;
        // SAFETY: the handle is live while self is; each message is copied
        // before the next call.
        unsafe {
            check(sys::asyncrt_scope_error_count(self.raw, &mut count))?;
            let mut errors = Vec::with_capacity(count);
            for index in 0..count {
                let mut info = empty_error_info();
                check(sys::asyncrt_scope_error_get(self.raw, index, &mut info))?;
                errors.push(ScopeError {
                    task_id: info.task_id,
                    error: Error::from_status(info.status, copy_c_str(info.message)),
                });
            }
            Ok(errors)
        }
    }

    /// The join's error for `code`: the first recorded error when it is the
    /// one the join reports (it carries the child's message).
    fn failure(&self, code: i32) -> Error {
        match self.errors() {
            Ok(errors) => match errors.into_iter().next() {
                Some(first) if first.error.code() == code => first.error,
                _ => Error::from_status(code, None),
            },
            Err(_) => Error::from_status(code, None),
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        // SAFETY: the handle is ours; freeing never blocks.
        unsafe {
            sys::asyncrt_scope_free(self.raw);
        }
    }
}

fn empty_error_info() -> sys::asyncrt_error_info {
    sys::asyncrt_error_info {
        size: mem::size_of::<sys::asyncrt_error_info>(),
        status: 0,
        task_id: 0,
        message: ptr::null(),
        value: ptr::null_mut(),
        value_free: None,
    }
}

/// Spawns `body` as a child of `scope`, a scope handle from anywhere (C,
/// Python, another crate). `flags` are asyncrt_scope_spawn's:
/// ASYNCRT_SPAWN_SEND, or ASYNCRT_SPAWN_LOCAL to place the child on the
/// thread of the scope's owner, optionally with a worker placement.
///
/// # Safety
/// `scope` is a live scope handle. Unless `flags` has ASYNCRT_SPAWN_SEND
/// and B is Send, the child must be polled on this thread: the scope was
/// opened by the task running on this thread, or at the top of a local
/// executor this thread drives.
pub unsafe fn spawn_in_scope<B: TaskBody + 'static>(
    scope: *mut sys::asyncrt_scope,
    body: B,
    flags: c_uint,
) -> Result<JoinHandle<B::Output>, Error> {
    spawn_with(body, |f, out| sys::asyncrt_scope_spawn(scope, f, flags, out))
}

/// The join of a [`Scope`]; see [`Scope::join`].
pub struct ScopeJoin<'a> {
    scope: &'a Scope,
    join: Option<RawFuture>,
}

// SAFETY: asyncrt's scope join may be polled from any task on any thread.
unsafe impl Send for ScopeJoin<'_> {}

impl Future for ScopeJoin<'_> {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.join.is_none() {
            let mut raw = sys::asyncrt_future::NULL;
            // SAFETY: the scope handle is live while the borrow is; the join
            // future is ours from here.
            let made =
                unsafe { check(sys::asyncrt_scope_join(this.scope.raw, &mut raw)).and_then(|()| RawFuture::new(raw)) };
            match made {
                Ok(join) => this.join = Some(join),
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
        let join = this.join.as_mut().expect("made above");
        match join.poll(cx, ptr::null_mut()) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(code)) => Poll::Ready(Err(this.scope.failure(code))),
        }
    }
}
