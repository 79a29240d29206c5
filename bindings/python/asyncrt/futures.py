"""Futures written in Python, and Python coroutines run as futures.

A future is any object with a ``poll(cx)`` method that returns ``PENDING``
(after arranging for ``cx.waker`` to be woken) or ``Ready(value)``, or raises
(the task fails with that exception). It may have a ``drop()`` method, called
exactly once when the runtime is done with it: after it completed, failed or
was cancelled. Subclassing Future is optional; it adds ``await`` support.

A coroutine (``async def``) runs as a future too. It may await asyncrt
futures (Future subclasses, ``yield_now()``) and Tasks. A bare ``yield`` of
None from an awaitable (a ``types.coroutine``, as ``yield_now()`` and
``asyncio.sleep(0)`` do) yields to the executor: the task is woken and runs
again after the others that are runnable.

Asynchronous cancellation: a future may also have a ``cleanup(cx)`` method.
When its task is cancelled asynchronously (a scope's cancel or deadline, a
sibling's error under FIRST_ERROR, ``task.cancel(cleanup_timeout=...)``), the
runtime stops polling it and calls ``cleanup(cx)`` instead, on every wake,
until it returns ``Ready`` or raises (an exception other than Cancelled is
recorded as the task's failure), or until the cleanup time runs out; then
``drop()``. A coroutine's cleanup throws ``Cancelled`` in at the await where
it waits and runs it on, so its ``finally`` blocks may await. A future
without ``cleanup`` is dropped at once.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any, Union
from types import CoroutineType

from ._current import running_asyncio_loop
from .errors import Cancelled

if TYPE_CHECKING:
    from .executor import Executor
    from .waker import Waker


class _Pending:
    __slots__ = ()

    def __repr__(self):
        return "asyncrt.PENDING"


PENDING = _Pending()
"""What poll returns when the future is not done."""


class Ready:
    """What poll returns when the future is done: ``Ready(value)``."""

    __slots__ = ("value",)

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __repr__(self):
        return f"asyncrt.Ready({self.value!r})"


Poll = Union[Ready, _Pending]
"""What poll(cx) returns: ``PENDING`` or ``Ready(value)``."""


class Context:
    """What a poll receives: ``waker`` (a Waker) wakes the polled task;
    ``executor`` is the Executor that runs it (use it to spawn sibling
    tasks), or None once that is gone. Made by the runtime: for a task, the
    host's record of it, which is also its borrowed waker (see _host._Record)."""

    __slots__ = ()

    @property
    def waker(self) -> Waker:
        """Wakes the polled task; borrowed: clone() it to keep it past the poll or use it on another thread."""
        raise NotImplementedError

    @property
    def executor(self) -> Executor | None:
        """The Executor running the task, or None once it is gone."""
        raise NotImplementedError


class Future:
    """Base class for futures written in Python. Override ``poll``; override
    ``drop`` if the future holds something to release."""

    __slots__ = ()

    def poll(self, cx: Context) -> Poll:
        """PENDING (having arranged for cx.waker to be woken) or Ready(value); raise to fail."""
        raise NotImplementedError

    def drop(self) -> None:
        """Called once when the runtime is done with the future: release what it holds."""
        pass

    def __await__(self) -> Generator[Any, Any, Any]:
        return awaiting(self)


def awaiting(future: Any) -> Generator[Any, Any, Any]:
    """What ``await future`` runs for an asyncrt future: inside an asyncrt
    task, a yield of the future to the task's runner, which polls it; in
    asyncio code (a loop runs on this thread and no asyncrt poll does),
    asyncio_await(future)."""
    if running_asyncio_loop() is not None:
        return asyncio_await(future)
    return yield_to_runner(future)


def asyncio_await(awaitable: Any) -> Generator[Any, Any, Any]:
    """The iterator of asyncrt.aio.wrap(awaitable): an asyncio future that the
    running loop's driver settles."""
    from .aio import wrap

    return wrap(awaitable).__await__()


def yield_to_runner(future: Any) -> Generator[Any, Any, Any]:
    """Yields `future` to the coroutine runner (_AwaitableFuture), which
    polls it and sends its value back."""
    return (yield future)


class _YieldNow(Future):
    # No __init__: `await yield_now()` never polls it (see __await__), so the
    # flag is set at the first poll only.
    __slots__ = ("_yielded",)

    def poll(self, cx):
        try:
            self._yielded
        except AttributeError:
            self._yielded = True
            cx.waker.wake_by_ref()
            return PENDING
        return Ready()

    def __await__(self):
        # A bare yield: the coroutine's runner wakes the task and returns
        # pending, as poll would, without polling this object twice.
        yield


def yield_now() -> Future:
    """A future that is pending once (waking itself) and then ready: lets the
    executor run other tasks. ``await asyncrt.yield_now()``."""
    return _YieldNow()


def drop(future: Any) -> None:
    """Calls the future's ``drop()``, if it has one."""
    release = getattr(future, "drop", None)
    if release is not None:
        release()


class _AwaitableFuture:
    """Runs a coroutine (or an ``__await__`` iterator) as a future. The
    awaitables it meets yield the asyncrt future they wait for; this polls
    that future with the task's context and sends its value back in. A bare
    ``yield`` (None; what ``yield_now()`` does) is a yield to the executor:
    the task's waker is woken and the poll returns pending."""

    __slots__ = ("_coro", "_awaiting", "_cancelled")

    def __init__(self, coro):
        self._coro = coro
        self._awaiting = None
        self._cancelled = False  # Cancelled was thrown in: cleanup() only runs it on

    def poll(self, cx):
        if self._awaiting is not None:
            return self._run(cx, None, None)
        # The coroutine waits for nothing (its first poll, or after a yield):
        # resume it here, the common path of a yielding coroutine.
        try:
            awaiting = self._coro.send(None)
        except StopIteration as stop:
            return Ready(stop.value)
        if awaiting is None:
            cx.waker.wake_by_ref()
            return PENDING
        return self._run(cx, awaiting, None)

    def cleanup(self, cx):
        """The first call drops what the coroutine waits for and throws
        Cancelled in there; every call runs it on until it ends."""
        if self._cancelled:
            return self._run(cx, None, None)
        self._cancelled = True
        awaiting, self._awaiting = self._awaiting, None
        if awaiting is not None:
            drop(awaiting)
        return self._run(cx, None, Cancelled("asyncrt: the task was cancelled"))

    def _run(self, cx, yielded, error):
        """Runs the coroutine until it waits or ends. `yielded`: what it just
        yielded and is not yet being awaited (None: nothing); `error`: an
        exception to throw in (then `yielded` is None)."""
        value = None
        while True:
            if yielded is not None:
                if not hasattr(yielded, "poll"):
                    error = TypeError(f"asyncrt cannot await {yielded!r}: it is not an asyncrt future")
                else:
                    self._awaiting = yielded
                yielded = None
            awaiting = self._awaiting
            if awaiting is not None:
                try:
                    result = awaiting.poll(cx)
                    if result is PENDING:
                        return PENDING
                    if not isinstance(result, Ready):
                        raise TypeError(f"{awaiting!r}.poll() returned {result!r}, not PENDING or Ready(value)")
                    value = result.value
                except Exception as exc:
                    error = exc
                self._awaiting = None
                drop(awaiting)
            try:
                if error is not None:
                    yielded, error = self._coro.throw(error), None
                else:
                    yielded = self._coro.send(value)
            except StopIteration as stop:
                return Ready(stop.value)
            if yielded is None:
                cx.waker.wake_by_ref()
                return PENDING
            value = None

    def drop(self):
        awaiting, self._awaiting = self._awaiting, None
        try:
            self._coro.close()
        finally:
            if awaiting is not None:
                drop(awaiting)


def as_future(obj: Any) -> Any:
    """The future that runs `obj`: a future itself, or a coroutine or other
    awaitable wrapped to run as one."""
    if type(obj) is CoroutineType:  # the common case, without the ABC checks below
        return _AwaitableFuture(obj)
    if hasattr(obj, "poll"):
        return obj
    if isinstance(obj, Coroutine):
        return _AwaitableFuture(obj)
    if hasattr(obj, "__await__"):
        return _AwaitableFuture(obj.__await__())
    raise TypeError(f"{obj!r} is not a future (no poll method), a coroutine or an awaitable")
