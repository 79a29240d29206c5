"""Futures and helpers shared by the tests. Waits are bounded: a test that
would hang fails with a message instead."""

import asyncrt

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
