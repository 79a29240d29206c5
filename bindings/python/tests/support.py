"""Futures and helpers shared by the tests. Waits are bounded: a test that
would hang fails with a message instead."""

import threading
import time
from ctypes import addressof, sizeof

import asyncrt
from asyncrt import _lib

WAIT = 10.0  # seconds; a bound on waits, never a measured time


class Counter(asyncrt.Future):
    """Wakes itself and is pending `n` times, then ready with `value`."""

    def __init__(self, n, value=None):
        self.left = n
        self.value = value
        self.polls = 0
        self.drops = 0

    def poll(self, cx):
        self.polls += 1
        if self.left == 0:
            return asyncrt.Ready(self.value)
        self.left -= 1
        cx.waker.wake_by_ref()
        return asyncrt.PENDING

    def drop(self):
        self.drops += 1


class Parked(asyncrt.Future):
    """Pending until `release()`; keeps an owned clone of its waker so any
    thread may release it."""

    def __init__(self, value=None):
        self.value = value
        self.released = False
        self.waker = None
        self.drops = 0

    def poll(self, cx):
        if self.released:
            return asyncrt.Ready(self.value)
        if self.waker is None:
            self.waker = cx.waker.clone()
        return asyncrt.PENDING

    def release(self):
        self.released = True
        self.waker.wake_by_ref()

    def drop(self):
        self.drops += 1


class Raises(asyncrt.Future):
    def __init__(self, exc):
        self.exc = exc
        self.drops = 0

    def poll(self, cx):
        raise self.exc

    def drop(self):
        self.drops += 1


class Probe(asyncrt.Future):
    """Ready at its first poll with whatever `action(cx)` returned or raised
    (the exception object), so a test can act from inside a poll."""

    def __init__(self, action):
        self.action = action

    def poll(self, cx):
        try:
            return asyncrt.Ready(self.action(cx))
        except Exception as exc:
            return asyncrt.Ready(exc)


def finish(test, executor, future, timeout=WAIT):
    """block_on with a bound; a timeout fails the test with a message."""
    try:
        return executor.block_on(future, timeout=timeout)
    except asyncrt.TimedOut:
        test.fail(f"{future!r} did not finish within {timeout} s")


def wait_until(test, predicate, what, timeout=WAIT):
    """Waits, with a bound, for `predicate()` to hold (something another thread
    does); fails the test with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            test.fail(f"{what}: not within {timeout} s")
        time.sleep(0.001)


class Gate:
    """C futures that stay pending until open() (Python has no C futures of its
    own): the C join futures of Parked tasks on a local executor, which the
    thread calling open() drives."""

    def __init__(self, test):
        self.local = asyncrt.Executor()
        test.addCleanup(self.local.close)
        self.parked = []

    def future(self):
        parked = Parked()
        self.parked.append(parked)
        with self.local.spawn(parked) as task:
            self.local.run()  # polled once: its waker exists
            return task.c_join()

    def open(self):
        for parked in self.parked:
            parked.release()
        self.local.run()


class Blocker:
    """A C future whose poll calls `inside()` (if given), then holds the worker
    that runs it until release(), then is ready: a hand-made vtable whose
    functions are Python (each call takes the GIL). Keep it alive until
    `dropped` is set."""

    def __init__(self, inside=None):
        self.inside = inside
        self.entered = threading.Event()
        self.released = threading.Event()
        self.dropped = threading.Event()
        self._poll = _lib.POLL_FN(self._on_poll)
        self._drop = _lib.DROP_FN(self._on_drop)
        self.vtable = _lib.asyncrt_future_vtable(sizeof(_lib.asyncrt_future_vtable), 0, self._poll, self._drop)

    def future(self):
        return asyncrt.CFuture(None, addressof(self.vtable))

    def release(self):
        self.released.set()

    def _on_poll(self, _self, _cx, _out):
        if self.inside is not None:
            self.inside()
        self.entered.set()
        self.released.wait(WAIT)
        return 1  # ASYNCRT_POLL_READY

    def _on_drop(self, _self):
        self.dropped.set()


class Yielder:
    """A C future whose poll wakes its task and is pending `n` times, then is
    ready: a hand-made vtable whose poll is Python (each call takes the GIL),
    so thread-per-core workers can run it. Keep it alive until `dropped`."""

    def __init__(self, n):
        self.left = n
        self.polls = 0
        self.dropped = threading.Event()
        self._poll = _lib.POLL_FN(self._on_poll)
        self._drop = _lib.DROP_FN(self._on_drop)
        self.vtable = _lib.asyncrt_future_vtable(sizeof(_lib.asyncrt_future_vtable), 0, self._poll, self._drop)

    def future(self):
        return asyncrt.CFuture(None, addressof(self.vtable))

    def _on_poll(self, _self, cx, _out):
        self.polls += 1
        if self.left == 0:
            return 1  # ASYNCRT_POLL_READY
        self.left -= 1
        _lib.lib.asyncrt_waker_wake_by_ref(_lib.lib.asyncrt_context_waker(cx))
        return 0  # ASYNCRT_POLL_PENDING

    def _on_drop(self, _self):
        self.dropped.set()
