//! Spawning Rust futures as asyncrt tasks, from the executors, the scopes,
//! and from inside a running task onto its own executor.

use std::os::raw::{c_int, c_uint};
use std::ptr;

use crate::current;
use crate::error::{check, Error};
use crate::sys;
use crate::task::JoinHandle;
use crate::task_future::{into_raw_unchecked, TaskBody};

/// Hands `body` to `spawn_call` (asyncrt_spawn or asyncrt_scope_spawn with
/// the executor or scope and flags bound), which takes the future whatever
/// it returns: on a failure, asyncrt has dropped it already.
///
/// # Safety
/// The spawn_call's placement of the task suits B: a future that is not
/// Send is polled and dropped on this thread only, and one that is not
/// 'static is dropped before what it borrows goes away.
pub(crate) unsafe fn spawn_with<B: TaskBody>(
    body: B,
    spawn_call: impl FnOnce(*const sys::asyncrt_future, *mut *mut sys::asyncrt_task) -> c_int,
) -> Result<JoinHandle<B::Output>, Error> {
    let future = into_raw_unchecked(body);
    let mut task = ptr::null_mut();
    check(spawn_call(&future, &mut task))?;
    Ok(JoinHandle::from_raw(task))
}

/// Spawns a Send task on the executor running the current task (the one
/// whose poll is on this thread's stack); it may run on any of the
/// executor's threads. Fails with ASYNCRT_ENOTSUP outside an asyncrt task.
pub fn spawn<B>(body: B) -> Result<JoinHandle<B::Output>, Error>
where
    B: TaskBody + Send + 'static,
    B::Output: Send,
{
    let executor = current_executor()?;
    // SAFETY: B is Send and 'static: any placement suits it.
    unsafe { spawn_with(body, |f, out| sys::asyncrt_spawn(executor, f, sys::ASYNCRT_SPAWN_SEND, out)) }
}

/// Spawns a local task on the executor running the current task: it never
/// leaves this thread (a thread-per-core executor places a local task
/// spawned on a worker on that worker), so the future need not be Send.
/// Fails with ASYNCRT_ENOTSUP outside an asyncrt task, and on foreign
/// executors, whose host may run tasks on any thread.
pub fn spawn_local<B>(body: B) -> Result<JoinHandle<B::Output>, Error>
where
    B: TaskBody + 'static,
{
    let executor = current_executor()?;
    // SAFETY: the executor of a poll in progress is live.
    if !unsafe { keeps_local_tasks_in_place(executor) }? {
        return Err(Error::from_status(
            sys::ASYNCRT_ENOTSUP,
            Some("asyncrt::spawn_local: a foreign executor may run the task on another thread".into()),
        ));
    }
    // SAFETY: checked above: a local task spawned from inside a poll stays
    // on this thread.
    unsafe { spawn_with(body, |f, out| sys::asyncrt_spawn(executor, f, sys::ASYNCRT_SPAWN_LOCAL, out)) }
}

fn current_executor() -> Result<*mut sys::asyncrt_executor, Error> {
    // SAFETY: the context is valid during the poll that set it.
    let executor = current::context().map_or(ptr::null_mut(), |cx| unsafe { sys::asyncrt_context_executor(cx) });
    if executor.is_null() {
        Err(Error::from_status(
            sys::ASYNCRT_ENOTSUP,
            Some("asyncrt: spawn and spawn_local work inside a task run by an asyncrt executor".into()),
        ))
    } else {
        Ok(executor)
    }
}

/// True if a local task spawned from inside one of `executor`'s polls (or
/// a local child of a scope opened there) runs on the spawning thread:
/// local and thread-per-core executors. They can block_on; foreign ones
/// cannot, and only their hosts decide where a task runs.
///
/// # Safety
/// `executor` is live.
pub(crate) unsafe fn keeps_local_tasks_in_place(executor: *mut sys::asyncrt_executor) -> Result<bool, Error> {
    let mut caps: c_uint = 0;
    check(sys::asyncrt_executor_capabilities(executor, &mut caps))?;
    Ok(caps & sys::ASYNCRT_CAP_BLOCK_ON != 0)
}
