"""Time: sleep and timeout, on the clock of the executor that runs them.

Both are built on asyncrt's C timers (asyncrt_sleep_for, asyncrt_timeout_for):
a timer is armed in a poll of an executor's task and fires at that
executor's tick, never early. A Python coroutine has no C poll of its own,
so awaiting one of these C futures runs it as a C task on the coroutine's
executor and waits for that task (see OwnedCFuture). Times are in seconds
(int, float, Fraction or Decimal), rounded to the nearest nanosecond.

timeout() of a C future is a C timeout around it (one C task). A Python
future, coroutine or Task cannot be polled from C, so its timeout is a Python
future that polls it and a C sleep side by side: whichever is ready first
wins, exactly as asyncrt_timeout_for does (the inner future is polled first,
and dropped when the time is up).
"""

from __future__ import annotations

from ctypes import byref
from typing import Any

from ._lib import UINT64_MAX, asyncrt_future, asyncrt_sleep, asyncrt_timeout, check, lib
from .cfuture import CFuture, OwnedCFuture
from .errors import TimedOut
from .futures import PENDING, Future, Ready, as_future, drop


def duration_ns(seconds):
    """`seconds` as whole nanoseconds (rounded; negative: 0; capped at UINT64_MAX)."""
    ns = round(seconds * 1_000_000_000)
    return min(max(ns, 0), UINT64_MAX)


def positive_ns(seconds):
    """duration_ns, at least 1: for the C fields where 0 means "none" or "the default"."""
    return max(1, duration_ns(seconds))


class Sleep(OwnedCFuture):
    """A C sleep future (asyncrt_sleep_for); see sleep()."""

    __slots__ = ("seconds",)

    def __init__(self, seconds):
        state = asyncrt_sleep()
        future = asyncrt_future()
        check(lib.asyncrt_sleep_for(byref(state), duration_ns(seconds), byref(future)))
        self.seconds = seconds
        super().__init__(future, state)

    def __repr__(self):
        return f"<asyncrt.Sleep {self.seconds} s{' taken' if self._future is None and self._task is None else ''}>"


class CTimeout(OwnedCFuture):
    """A C timeout around a C future (asyncrt_timeout_for); see timeout()."""

    __slots__ = ("seconds", "_inner")

    def __init__(self, inner, seconds):
        state = asyncrt_timeout()
        future = asyncrt_future()
        self.seconds = seconds
        self._inner = inner  # keeps an OwnedCFuture's state readable (an op's result)
        check(lib.asyncrt_timeout_for(byref(state), byref(inner.take()), duration_ns(seconds), byref(future)))
        # An inner future that must run on a given executor (an op: its subsystem's) takes its timeout there.
        super().__init__(future, state, getattr(inner, "_target", None), getattr(inner, "_flags", 0))

    def _value(self, output):
        inner = self._inner
        return inner._value(output) if isinstance(inner, OwnedCFuture) else output

    def _failure(self, exc):
        if isinstance(exc, TimedOut):
            return TimedOut(f"asyncrt: timed out after {self.seconds} s")
        inner = self._inner
        return inner._failure(exc) if isinstance(inner, OwnedCFuture) else exc


class Timeout(Future):
    """A Python future, coroutine or Task raced against a C sleep; see timeout()."""

    __slots__ = ("seconds", "_inner", "_sleep")

    def __init__(self, inner, seconds):
        self.seconds = seconds
        self._inner = as_future(inner)
        self._sleep = None

    def poll(self, cx):
        inner = self._inner
        if inner is None:
            raise RuntimeError("asyncrt: a timeout polled after it finished")
        result = inner.poll(cx)
        if result is not PENDING:
            if not isinstance(result, Ready):
                raise TypeError(f"{inner!r}.poll() returned {result!r}, not PENDING or Ready(value)")
            return result
        if self._sleep is None:
            self._sleep = Sleep(self.seconds)
        if self._sleep.poll(cx) is PENDING:
            return PENDING
        self.drop()  # the inner future goes now, as a C timeout drops its inner future
        raise TimedOut(f"asyncrt: timed out after {self.seconds} s")

    def drop(self):
        inner, self._inner = self._inner, None
        sleeper, self._sleep = self._sleep, None
        try:
            if inner is not None:
                drop(inner)
        finally:
            if sleeper is not None:
                sleeper.drop()


def sleep(seconds: float) -> Sleep:
    """A future that completes once `seconds` have passed on its executor's
    clock, counted from its first poll; never earlier. ``await
    asyncrt.sleep(0.5)`` in a coroutine on a local or foreign executor; or
    spawn / block_on it anywhere, thread-per-core included (it is a CFuture).
    Under a test clock (``Executor(clock="test")``) only advance_clock moves
    time. Its value is None."""
    return Sleep(seconds)


def timeout(awaitable: Any, seconds: float | None) -> Any:
    """`awaitable` with a time limit: its value, or TimedOut once `seconds`
    have passed on the executor's clock (counted from the first poll) before
    it completed -- it is then dropped (a coroutine is closed; a Task is not
    cancelled: only the wait ends). Its failures pass through. None: no limit.

    A CFuture (a C join, a sleep, ``sub.submit(...)``) gets a C timeout
    (asyncrt_timeout_for), itself a CFuture that may be spawned anywhere; the
    timeout takes the C future over. Anything else gets a Python future that
    races it against a C sleep (see the module docstring)."""
    if seconds is None:
        return awaitable
    if isinstance(awaitable, CFuture):
        return CTimeout(awaitable, seconds)
    return Timeout(awaitable, seconds)
