"""asyncio interop: an asyncio event loop drives a local asyncrt executor, and
asyncio code awaits asyncrt tasks and futures. No helper threads.

    async def main():
        with asyncrt.aio.run_in() as driver:        # this loop drives a new local executor
            task = driver.executor.spawn(work())    # an asyncrt task
            return await task                       # asyncio awaits it (asyncrt.aio.wrap)

    asyncrt.aio.run(main())                         # or asyncio.run(main())

Driving. run_in() registers the executor's pollable fd (asyncrt_executor_fd:
level-triggered, readable while the executor has work) with
``loop.add_reader``. When it is readable the loop calls the driver, which runs
one bounded step -- at most STEP_POLLS polls and about STEP_NS ns, the Python
futures those polls asked for included (the host queue's batch) -- and
returns to the loop. Work left keeps the fd readable, so the loop calls again
after its other ready callbacks: the loop is never blocked for longer than a
step. A step that finds nothing to do ticks the executor instead (due timers
fire, a subsystem is polled): the fd was readable for the timerfd or a
subsystem's fd it includes. While a subsystem without an fd has waiters, the
driver ticks it with loop.call_later, backing off from 50 us to 1 ms.

Awaiting. wrap(x) -- what ``await x`` does in asyncio code for a Task, a
Future subclass or a CFuture -- returns an asyncio.Future and runs a bridge
task on the driver's executor that awaits x and then sets the future's
outcome. The bridge completes during a step, which the loop ran because the
fd was readable: a completion from another thread (a C task on a
thread-per-core executor, a wake through a cloned waker) reaches the loop as
that fd's readiness, not through a thread of ours.

Cancelling. Cancelling the asyncio future -- or the asyncio Task awaiting it
-- cancels the asyncrt task: the Task given to wrap(), else the bridge (which
drops what it awaits). An asyncrt task that ends cancelled (Cancelled, or its
future dropped by a cancel or the executor's close) makes the asyncio future
cancelled, so its awaiter gets asyncio.CancelledError.

One loop thread drives the executor: spawn from that thread (inside tasks,
or in asyncio code), and leave run, run_step and block_on alone while the
loop drives it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, TypeVar

from ._current import current_host
from ._host import BUSY_MAX, BUSY_MIN
from .errors import AsyncrtError, BadHandle, Busy, Cancelled
from .executor import Executor, Task
from .futures import as_future, drop

T = TypeVar("T")

STEP_POLLS = 1024
STEP_NS = 2_000_000  # the loop's other callbacks wait about this long at most
RETRY_BUSY = 0.001  # the executor is driven by another thread: look again after this

_drivers: dict[asyncio.AbstractEventLoop, list[LoopDriver]] = {}


class LoopDriver:
    """An asyncio event loop driving a local asyncrt Executor through its fd;
    made by run_in(). ``executor`` is the executor, ``loop`` the loop.
    close() (or leaving ``with`` / ``async with``) stops the driving, and
    closes the executor if run_in() made it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, executor: Executor, owned: bool) -> None:
        self.loop = loop
        self.executor = executor
        self._owned = owned
        self._host = executor._host
        self._fd = executor.fd()  # NotSupported for a thread-per-core executor: its workers drive it
        self._later: asyncio.TimerHandle | None = None  # the next tick of a busy subsystem, or a retry
        self._backoff = 0.0
        self.closed = False
        loop.add_reader(self._fd, self._drive)
        _drivers.setdefault(loop, []).append(self)

    # -- driving -------------------------------------------------------------

    def _drive(self) -> None:
        """One bounded step (the fd was readable), or a tick when it found nothing."""
        if self._later is not None:
            self._later.cancel()
            self._later = None
        host = self._host
        try:
            host.enter()
        except BadHandle:  # the executor was closed under the driver
            self.close()
            return
        except Busy:  # another thread drives it for now: do not spin on its fd meanwhile
            self.loop.remove_reader(self._fd)
            self._later = self.loop.call_later(RETRY_BUSY, self._resume)
            return
        try:
            polls, events = host.step(STEP_POLLS, STEP_NS)
            if polls or events:
                self._backoff = 0.0
                return
            busy = host.tick()[1]  # what it wakes makes the fd readable again
        finally:
            host.leave()
        if busy:
            self._backoff = min(max(self._backoff * 2, BUSY_MIN), BUSY_MAX)
            self._later = self.loop.call_later(self._backoff, self._drive)
        else:
            self._backoff = 0.0

    def _resume(self) -> None:
        self._later = None
        if not self.closed:
            self.loop.add_reader(self._fd, self._drive)

    # -- awaiting ------------------------------------------------------------

    def wrap(self, awaitable: Any, cleanup_timeout: float | None = None) -> asyncio.Future[Any]:
        """An asyncio.Future with the outcome of `awaitable` -- a Task (of any
        executor), a coroutine or Python future (run here as a task), a
        CFuture -- once it ends: its value, its exception, or cancelled. See
        the module docstring for cancellation; `cleanup_timeout` is passed
        to Task.cancel when the asyncio side cancels. Call it on the loop's
        thread."""
        if self.closed:
            _drop_unrun(awaitable)
            raise BadHandle("asyncrt.aio: this driver is closed")
        done = self.loop.create_future()
        future = awaitable.join() if isinstance(awaitable, Task) else as_future(awaitable)
        bridge = self.executor.spawn(_bridge(done, future))
        target = awaitable if isinstance(awaitable, Task) else bridge
        done.add_done_callback(functools.partial(_cancel_if_cancelled, target, bridge, cleanup_timeout))
        return done

    # -- closing -------------------------------------------------------------

    def close(self) -> None:
        """Stops driving the executor, and closes it if run_in() made it (its
        tasks are cancelled: their asyncio futures end cancelled). Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._later is not None:
            self._later.cancel()
            self._later = None
        if not self.loop.is_closed():
            self.loop.remove_reader(self._fd)
        stack = _drivers.get(self.loop, [])
        if self in stack:
            stack.remove(self)
        if not stack:
            _drivers.pop(self.loop, None)
        if self._owned:
            self.executor.close()

    def __enter__(self) -> LoopDriver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> LoopDriver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<asyncrt.aio.LoopDriver fd={self._fd}{' closed' if self.closed else ''}>"


class _Awaiting:
    """Makes any asyncrt future awaitable inside an asyncrt coroutine: yields
    it to the task's runner, which polls it."""

    __slots__ = ("future",)

    def __init__(self, future: Any) -> None:
        self.future = future

    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield self.future)


async def _bridge(done: asyncio.Future[Any], future: Any) -> None:
    """The asyncrt task behind wrap(): awaits `future`, then settles `done`."""
    try:
        value = await _Awaiting(future)
    except (Cancelled, GeneratorExit):  # cancelled (the awaited task, or this one), or dropped
        _settle(done, None, cancelled=True)
        raise
    except BaseException as exc:
        _settle(done, exc)
        if not isinstance(exc, Exception):
            raise
    else:
        _settle(done, value)


def _settle(done: asyncio.Future[Any], outcome: Any, cancelled: bool = False) -> None:
    """Sets the future's outcome: at once on the loop's running thread (the
    bridge runs inside a step), else through call_soon_threadsafe (an
    executor closed from another thread)."""
    loop = done.get_loop()
    if asyncio._get_running_loop() is loop:
        _set(done, outcome, cancelled)
    elif not loop.is_closed():
        loop.call_soon_threadsafe(_set, done, outcome, cancelled)


def _set(done: asyncio.Future[Any], outcome: Any, cancelled: bool) -> None:
    if done.done():
        return
    if cancelled:
        done.cancel("asyncrt: the task was cancelled")
    elif isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


def _cancel_if_cancelled(target: Task, bridge: Task, cleanup_timeout: float | None, done: asyncio.Future[Any]) -> None:
    """asyncio cancelled the future: cancel the asyncrt task behind it (a
    no-op once that task has ended). Then let go of the bridge's handle."""
    try:
        if done.cancelled():
            target.cancel(cleanup_timeout)
    except AsyncrtError:  # its executor is gone: nothing left to cancel
        pass
    finally:
        bridge.close()


def run_in(loop: asyncio.AbstractEventLoop | None = None, executor: Executor | None = None) -> LoopDriver:
    """Makes `loop` (None: the running loop) drive `executor` (None: a new
    local Executor, closed with the driver) through the executor's fd.
    Returns the LoopDriver, a context manager; wrap() and ``await`` of asyncrt
    tasks in this loop use the latest driver opened in it."""
    if loop is None:
        loop = asyncio.get_running_loop()
    if executor is not None:
        return LoopDriver(loop, executor, owned=False)
    executor = Executor()
    try:
        return LoopDriver(loop, executor, owned=True)
    except BaseException:
        executor.close()
        raise


def driver(loop: asyncio.AbstractEventLoop | None = None) -> LoopDriver:
    """The latest open driver of `loop` (None: the running loop); RuntimeError
    if there is none."""
    if loop is None:
        loop = asyncio.get_running_loop()
    stack = _drivers.get(loop)
    if not stack:
        raise RuntimeError("asyncrt.aio: no asyncrt executor is driven by this asyncio loop; "
                           "open one with `with asyncrt.aio.run_in():` or run under asyncrt.aio.run()")
    return stack[-1]


def wrap(awaitable: Any, cleanup_timeout: float | None = None) -> asyncio.Future[Any]:
    """LoopDriver.wrap on the running loop's driver: an asyncio.Future for an
    asyncrt Task, coroutine, future or CFuture. In asyncio code, ``await
    task`` (or an asyncrt Future or CFuture) does this."""
    try:
        if current_host() is not None:
            raise RuntimeError("asyncrt.aio.wrap is for asyncio code; inside an asyncrt task, await it directly")
        loop_driver = driver()
    except RuntimeError:
        _drop_unrun(awaitable)
        raise
    return loop_driver.wrap(awaitable, cleanup_timeout)


def _drop_unrun(awaitable: Any) -> None:
    """What wrap() cannot run is dropped (a coroutine closed), as a failed
    spawn drops its future; a Task is left alone."""
    if not isinstance(awaitable, Task):
        drop(as_future(awaitable))


def run(main: Coroutine[Any, Any, T] | Awaitable[T], *, debug: bool | None = None) -> T:
    """asyncio.run(main) with a local asyncrt executor driven by its loop for
    the whole run (closed at the end)."""

    async def with_driver() -> T:
        with run_in():
            return await main

    return asyncio.run(with_driver(), debug=debug)
