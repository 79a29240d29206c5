"""Wakers of tasks that run Python futures.

``cx.waker`` is borrowed from the task: waking it is a list append, no call
into C, and it works on the thread that drives the executor. ``clone()`` makes
an owned waker backed by a C waker (asyncrt_hostq_waker), which any thread may
wake at any time -- a wake from another thread ends the driver's sleep.

A task's borrowed waker is the host's record of the task itself (a Waker
subclass, see _host._Record), so a spawn makes no extra object for it.
"""

from threading import get_ident

from ._lib import asyncrt_waker, check, lib


class Waker:
    """Wakes one task: ``wake_by_ref()``, ``wake()``, ``drop()``, ``clone()``."""

    __slots__ = ("_host", "_tag", "_c")

    def __init__(self, host, tag, c_waker=None):
        self._host = host
        self._tag = tag
        self._c = c_waker

    def wake_by_ref(self) -> None:
        """Wakes the task; the waker stays usable."""
        if self._c is not None:
            lib.asyncrt_waker_wake_by_ref(self._c)
        elif get_ident() == self._host.thread:
            self._host.woken.append(self._tag)
        else:
            raise RuntimeError("cx.waker is borrowed and works on the driving thread only; "
                               "call cx.waker.clone() during poll to wake from another thread")

    def wake(self) -> None:
        """Wakes the task and releases this waker (a released waker does nothing)."""
        self.wake_by_ref()
        self.drop()

    def drop(self) -> None:
        """Releases this waker without waking. Borrowed wakers have nothing to release."""
        if self._c is not None:
            lib.asyncrt_waker_drop(self._c)  # zeroes it: later calls do nothing

    def clone(self) -> "Waker":
        """An owned waker for the same task, usable from any thread. Clone a
        borrowed waker during poll (on the driving thread)."""
        c_waker = asyncrt_waker()
        if self._c is not None:
            lib.asyncrt_waker_clone(self._c, c_waker)
        elif get_ident() == self._host.thread:
            check(lib.asyncrt_hostq_waker(self._host.hostq, self._tag, c_waker))
        else:
            raise RuntimeError("clone cx.waker on the driving thread, during poll")
        return _OwnedWaker(self._host, self._tag, c_waker)

    def __repr__(self):
        kind = "borrowed" if self._c is None else "owned"
        return f"<asyncrt.Waker {kind} tag={self._tag}>"


class _OwnedWaker(Waker):
    """A clone: owns its C waker, dropped with it at the latest."""

    __slots__ = ()

    def __del__(self, _drop=lib.asyncrt_waker_drop):
        # _drop is bound at definition: module globals may be gone at shutdown.
        if getattr(self, "_c", None) is not None:
            _drop(self._c)
