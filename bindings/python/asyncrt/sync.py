"""Synchronization: asyncrt's async Mutex, Semaphore, Notify and Barrier.

Each wait is a C future in an asyncrt_wait the waiting future owns, polled in
place with the awaiting task's waker (see polled.py). Dropping a waiting
future -- its task cancelled, a timeout or a select that another branch won --
takes it out of the queue, and a lock or permits it had been granted but
never saw go on to the next waiter: asyncrt's guarantee that a cancelled
waiter never ends up holding anything.

Every object may be used from any thread (`local=True` promises one thread
and skips the lock in C). A pending wait keeps its object alive; ``close()``
frees it, and raises Busy while someone waits.
"""

from __future__ import annotations

import threading
from ctypes import byref, c_uint32, c_uint64
from typing import TYPE_CHECKING, Any

from ._lib import (
    SYNC_LOCAL,
    asyncrt_future,
    asyncrt_wait,
    barrier_p,
    check,
    in_forked_child,
    lib,
    mutex_p,
    notify_p,
    semaphore_p,
)
from .errors import BadHandle, WouldBlock
from .polled import PolledCFuture

if TYPE_CHECKING:
    from .futures import Future


class _Wait(PolledCFuture):
    """One waiter: `start(handle, wait, future)` is the C call that makes it."""

    __slots__ = ("_owner", "_value")

    def __init__(self, owner, start, value=None):
        wait, future = asyncrt_wait(), asyncrt_future()
        check(start(owner._live(), byref(wait), byref(future)))
        self._owner = owner  # alive while this waits
        self._value = value
        super().__init__(future, wait)

    def _ready(self, out):
        return self._value(out) if self._value is not None else None


class _Handle:
    """A C sync object: freed by close() (Busy while waited on) or at
    garbage collection."""

    __slots__ = ("_handle", "_lock", "__weakref__")
    _c_free: Any = None

    def __init__(self, new, *args):
        handle = self._pointer_type()
        check(new(*args, byref(handle)))
        self._handle = handle
        self._lock = threading.Lock()

    def _live(self):
        handle = self._handle
        if handle is None:
            raise BadHandle(f"asyncrt: this {type(self).__name__} is closed")
        return handle

    def close(self) -> None:
        """Frees the object (idempotent). Raises Busy if a task waits on it.
        In a forked child it only forgets the handle (it is the parent's)."""
        if in_forked_child():
            self._handle = None
            return
        with self._lock:
            handle = self._handle
            if handle is None:
                return
            check(type(self)._c_free(handle))
            self._handle = None

    def __del__(self):
        if getattr(self, "_handle", None) is not None:
            type(self)._c_free(self._handle)

    def __repr__(self):
        return f"<asyncrt.{type(self).__name__}{' closed' if self._handle is None else ''}>"


def _flags(local):
    return SYNC_LOCAL if local else 0


def _taken(status):
    """True for OK, False for EAGAIN; raises for anything else."""
    if status == WouldBlock.status:
        return False
    check(status)
    return True


class Mutex(_Handle):
    """An async mutex, fair (FIFO). ``async with m:`` holds it for the block;
    or ``await m.lock()`` ... ``m.unlock()``."""

    __slots__ = ()
    _pointer_type = mutex_p
    _c_free = staticmethod(lib.asyncrt_mutex_free)

    def __init__(self, local=False):
        super().__init__(lib.asyncrt_mutex_new, _flags(local))

    def lock(self) -> Future:
        """A future that completes holding the lock."""
        return _Wait(self, lib.asyncrt_mutex_lock)

    def try_lock(self) -> None:
        """Takes the lock if it is free and nobody waits: True, else False."""
        return _taken(lib.asyncrt_mutex_try_lock(self._live()))

    def unlock(self) -> None:
        """Releases the lock: the longest waiter gets it. InvalidArgument if not held."""
        check(lib.asyncrt_mutex_unlock(self._live()))

    def __aenter__(self):
        return self.lock()

    async def __aexit__(self, *exc_info):
        self.unlock()


class Semaphore(_Handle):
    """A counting semaphore, FIFO: a large request is not starved by small
    ones. ``async with s:`` holds one permit for the block."""

    __slots__ = ()
    _pointer_type = semaphore_p
    _c_free = staticmethod(lib.asyncrt_semaphore_free)

    def __init__(self, permits, local=False):
        super().__init__(lib.asyncrt_semaphore_new, _flags(local), permits)

    def acquire(self, n: int = 1) -> Future:
        """A future that completes holding `n` permits."""
        return _Wait(self, lambda handle, wait, future: lib.asyncrt_semaphore_acquire(handle, n, wait, future))

    def try_acquire(self, n: int = 1) -> None:
        """Takes `n` permits if they are there and nobody waits: True, else False."""
        return _taken(lib.asyncrt_semaphore_try_acquire(self._live(), n))

    def release(self, n: int = 1) -> None:
        """Gives `n` permits back, to the waiters first, in order."""
        check(lib.asyncrt_semaphore_release(self._live(), n))

    def available(self) -> int:
        """The permits free now."""
        permits = c_uint64()
        check(lib.asyncrt_semaphore_available(self._live(), byref(permits)))
        return permits.value

    def __aenter__(self):
        return self.acquire(1)

    async def __aexit__(self, *exc_info):
        self.release(1)


class Notify(_Handle):
    """tokio's Notify: ``await n.wait()`` completes at the next notify_one()
    aimed at it or notify_all(), or at once if notify_one() stored a permit
    while nobody waited."""

    __slots__ = ()
    _pointer_type = notify_p
    _c_free = staticmethod(lib.asyncrt_notify_free)

    def __init__(self, local=False):
        super().__init__(lib.asyncrt_notify_new, _flags(local))

    def wait(self) -> Future:
        """A future that completes at the next notify aimed at it, or at once on a stored permit."""
        return _Wait(self, lib.asyncrt_notify_wait)

    def notify_one(self) -> None:
        """Wakes the longest waiter, or stores one permit if none waits."""
        check(lib.asyncrt_notify_one(self._live()))

    def notify_all(self) -> None:
        """Wakes every current waiter (stores no permit)."""
        check(lib.asyncrt_notify_all(self._live()))


class Barrier(_Handle):
    """A barrier for `parties` waiters that resets after each release.
    ``await b.wait()`` is True for the one leader of each round, else False.
    A dropped waiter leaves: it is not counted."""

    __slots__ = ()
    _pointer_type = barrier_p
    _c_free = staticmethod(lib.asyncrt_barrier_free)

    def __init__(self, parties, local=False):
        super().__init__(lib.asyncrt_barrier_new, _flags(local), parties)

    def wait(self) -> Future:
        """A future that completes when `parties` waiters have arrived; its value: True for the round's leader."""
        return _Wait(self, lib.asyncrt_barrier_wait, lambda out: c_uint32.from_buffer_copy(out.raw).value == 1)
