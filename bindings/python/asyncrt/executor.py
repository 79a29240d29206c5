"""Executors and the tasks they run."""

import time
import weakref
from ctypes import byref, c_uint64, sizeof
from typing import NamedTuple

from . import _lib
from ._host import STEP_POLLS, Host, current_host
from ._lib import check, lib
from .errors import BadHandle, Status, TimedOut, error, to_status
from .futures import PENDING, Future, Ready, as_future


class Stats(NamedTuple):
    tasks_spawned: int
    tasks_live: int
    polls: int
    memory_in_use: int
    memory_limit: int


class Executor:
    """A local asyncrt executor running Python futures and coroutines.

    Driven by one thread at a time (run, run_step, block_on); spawn from that
    thread, or from any thread while nobody drives. ``memory_limit`` caps the
    bytes of task memory held at once (0: no cap); a spawn past it raises
    LimitExceeded. Closing cancels the tasks still running and drops their
    futures.
    """

    def __init__(self, memory_limit=0):
        self._host = Host(memory_limit, weakref.ref(self))
        self._finalizer = weakref.finalize(self, self._host.close)

    def close(self):
        """Frees the executor; idempotent. Raises Busy while it is being driven."""
        self._host.close()
        self._finalizer.detach()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def closed(self):
        return self._host.closed

    def fd(self):
        """A descriptor that is readable while the executor has work to do
        (level-triggered): for select/poll or asyncio's loop.add_reader."""
        return self._host.fd()

    def stats(self):
        host = self._host
        host.check_open()
        stats = _lib.asyncrt_executor_stats(size=sizeof(_lib.asyncrt_executor_stats))
        check(lib.asyncrt_executor_stats_get(host.executor, byref(stats)))
        return Stats(stats.tasks_spawned, stats.tasks_live, stats.polls, stats.memory_in_use, stats.memory_limit)

    def spawn(self, future):
        """Runs a future (an object with poll(cx)), a coroutine or an awaitable
        as a task. If the spawn fails, the future has been dropped."""
        handle, record = self._host.spawn(as_future(future))
        return Task(self, handle, record)

    def run_step(self, max_polls=STEP_POLLS, max_ns=0):
        """Runs at most `max_polls` polls and about `max_ns` ns (0: no bound),
        handles the Python futures they polled, and returns the number of
        polls. Never sleeps."""
        host = self._host
        host.enter()
        try:
            return host.step(max_polls, max_ns)[0]
        finally:
            host.leave()

    def run(self):
        """Runs tasks until none is runnable; returns the number of polls.
        Never sleeps."""
        host = self._host
        host.enter()
        try:
            total = 0
            while True:
                polls, events = host.step(STEP_POLLS, 0)
                total += polls
                if not polls and not events:
                    return total
        finally:
            host.leave()

    def block_on(self, future, timeout=None):
        """Runs `future` (a future, coroutine, awaitable or Task) to completion
        and returns its value, running the other tasks meanwhile and sleeping
        while nothing is runnable. After `timeout` seconds the future is
        cancelled (a Task passed in is not: only the wait ends) and TimedOut
        is raised."""
        host = self._host
        host.enter()
        try:
            handle, record = host.spawn(as_future(future))
            try:
                deadline = None if timeout is None else time.monotonic() + timeout
                if not host.run_until(lambda: record.dropped, deadline):
                    _cancel(handle, record)
                    host.run_until(lambda: record.dropped, None)
                    if record.status == Status.ECANCELLED:
                        raise TimedOut(f"asyncrt: block_on timed out after {timeout} s")
            except BaseException:
                _cancel(handle, record)
                raise
            finally:
                lib.asyncrt_task_release(handle)
            return record.outcome()
        finally:
            host.leave()

    def __repr__(self):
        return f"<asyncrt.Executor{' closed' if self.closed else ''}>"


def _cancel(handle, record):
    if record.status is None:
        record.cancelled = True
        check(lib.asyncrt_task_cancel(handle))


class Task:
    """A spawned future. ``await task`` (in a coroutine) or ``task.join()``
    (a future) waits for its value; ``close()`` releases the handle and
    leaves the task running, detached."""

    __slots__ = ("executor", "_handle", "_record")

    def __init__(self, executor, handle, record):
        self.executor = executor
        self._handle = handle
        self._record = record

    def close(self):
        """Releases the handle; idempotent. The task keeps running."""
        handle, self._handle = self._handle, None
        if handle is not None:
            check(lib.asyncrt_task_release(handle))

    def __del__(self, _release=lib.asyncrt_task_release):
        # _release is bound at definition: module globals may be gone at shutdown.
        if getattr(self, "_handle", None) is not None:
            _release(self._handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _live(self):
        if self._handle is None:
            raise BadHandle("asyncrt: the task handle is closed")
        return self._handle

    @property
    def id(self):
        """Unique within the executor, never 0."""
        task_id = c_uint64()
        check(lib.asyncrt_task_id(self._live(), byref(task_id)))
        return task_id.value

    @property
    def status(self):
        """Status.EAGAIN while running; OK once it completed; ECANCELLED or its
        failure status otherwise."""
        handle = self._live()
        status = self._record.status
        if status is None:
            status = lib.asyncrt_task_status(handle)
        return to_status(status)

    def done(self):
        return self.status != Status.EAGAIN

    def result(self):
        """The value; raises what the future raised, Cancelled if the task was
        cancelled, or WouldBlock while it runs."""
        handle = self._live()
        if self._record.status is None:
            status = lib.asyncrt_task_status(handle)
            raise error(status, "asyncrt: the task has not completed" if status == Status.EAGAIN
                        else "asyncrt: the task ended before its future finished")
        return self._record.outcome()

    def cancel(self):
        """Requests cancellation: the future is polled no more and is dropped
        the next time the executor runs. Does nothing once the task finished."""
        _cancel(self._live(), self._record)

    def join(self):
        """A future whose value is the task's value (or that raises its failure)."""
        self._live()
        return _Join(self.executor, self._record)

    def __await__(self):
        return (yield self.join())

    def __repr__(self):
        if self._handle is None:
            return "<asyncrt.Task closed>"
        status = self.status
        return f"<asyncrt.Task id={self.id} {getattr(status, 'name', status)}>"


class _Join(Future):
    __slots__ = ("_executor", "_record", "_waker")

    def __init__(self, executor, record):
        self._executor = executor
        self._record = record
        self._waker = None

    def poll(self, cx):
        record = self._record
        if record.status is not None:
            self._waker = None
            return Ready(record.outcome())
        if self._waker is None:
            waker = cx.waker
            if cx.executor is not self._executor:
                waker = waker.clone()  # the other executor may settle the task on another thread
            self._waker = waker
            if record.waiters is None:
                record.waiters = []
            record.waiters.append(waker)
            if record.status is not None:  # settled by another thread meanwhile
                return self.poll(cx)
        return PENDING

    def drop(self):
        waker, self._waker = self._waker, None
        waiters = self._record.waiters
        if waker is not None and waiters and waker in waiters:
            waiters.remove(waker)
            waker.drop()


def spawn(future):
    """Spawns onto the executor whose future is being polled on this thread
    (inside a poll or a coroutine); see Executor.spawn."""
    host = current_host()
    if host is None:
        raise RuntimeError("asyncrt.spawn() works inside a poll; elsewhere use Executor.spawn()")
    return host.owner().spawn(future)


def block_on(future, timeout=None):
    """Runs `future` on a new executor, closed afterwards; see Executor.block_on."""
    with Executor() as executor:
        return executor.block_on(future, timeout)
