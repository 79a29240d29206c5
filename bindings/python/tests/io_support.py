"""What the IO tests share: one test class per backend, and bounded waits.

A test case written once against ``self.io`` (and ``self.run(coro)``) runs
on each backend through ``for_each_backend``, which makes one subclass per
backend: EpollX and IoUringX. The io_uring one is skipped, with the reason,
when this kernel refuses io_uring (asyncrt.io.uring_available)."""

import unittest

import asyncrt
import asyncrt.io
from tests.support import WAIT, finish

BACKENDS = ("epoll", "io_uring")
_uring = None


def uring_refusal():
    """None if io_uring works here, else why not (asked once)."""
    global _uring
    if _uring is None:
        try:
            _uring = "" if asyncrt.io.uring_available() else "this kernel refuses io_uring"
        except asyncrt.AsyncrtError as exc:
            _uring = f"io_uring could not be opened: {exc}"
    return _uring or None


class IOCase(unittest.TestCase):
    """A local executor and its driver on BACKEND, closed after the test."""

    BACKEND = "auto"

    def setUp(self):
        if self.BACKEND == "io_uring":
            reason = uring_refusal()
            if reason:
                self.skipTest(reason)
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)
        self.io = self.ex.io(backend=self.BACKEND)
        self.addCleanup(self.io.close)

    def run_coro(self, coro, timeout=WAIT):
        """Runs a coroutine on the executor, bounded: a hang fails the test."""
        return finish(self, self.ex, coro, timeout)

    def wait_for(self, predicate, what, steps=100000):
        """A coroutine that yields until `predicate()` holds, failing after
        `steps` rounds (each round lets every other task run once)."""

        async def waiting():
            for _ in range(steps):
                if predicate():
                    return
                await asyncrt.yield_now()
            self.fail(f"{what}: not after {steps} rounds")

        return waiting()


def for_each_backend(base):
    """Makes Epoll<Base> and IoUring<Base> from a mixin of test methods and
    puts them in the caller's module."""
    import sys

    module = sys.modules[base.__module__]
    for backend, prefix in (("epoll", "Epoll"), ("io_uring", "IoUring")):
        name = prefix + base.__name__
        cls = type(name, (base, IOCase), {"BACKEND": backend, "__module__": base.__module__})
        setattr(module, name, cls)
    return base
