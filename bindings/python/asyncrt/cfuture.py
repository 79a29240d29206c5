"""Futures implemented in C, held by Python.

A CFuture owns one asyncrt_future until it is handed to the runtime
(``spawn``, ``block_on``: the runtime drops it) or dropped (``drop()``, or
garbage collection). Spawned, it runs as a C task on any executor kind,
thread-per-core included. Awaited from Python (it has ``poll``), it is polled
through asyncrt_poll_with_waker with a clone of the polling task's waker.
"""

from ctypes import POINTER, byref, c_int, cast, create_string_buffer

from ._lib import asyncrt_future, asyncrt_future_vtable, check, lib
from .errors import BadHandle, InvalidArgument, Status, error
from .futures import PENDING, Ready

POLL_PENDING, POLL_READY, POLL_YIELDED, POLL_ERROR = range(4)


class CFuture:
    """An asyncrt_future made in C: by a C library (pass its self and vtable
    pointers, as integers or an asyncrt_future), or by ``task.join()`` of a
    task that runs a C future. Takes ownership of it.

    Its value, when awaited from Python, is its output as bytes (None when
    ``output_size`` is 0). A C task's output is not read by the binding: its
    Task reports the status only.
    """

    __slots__ = ("_future", "_vtable", "output_size")

    def __init__(self, self_ptr, vtable_ptr=None):
        future = self_ptr if isinstance(self_ptr, asyncrt_future) else asyncrt_future(self_ptr, vtable_ptr)
        self._future = None
        if not future.vtable:
            raise InvalidArgument("asyncrt: a CFuture needs a vtable")
        self._vtable = cast(future.vtable, POINTER(asyncrt_future_vtable)).contents
        self.output_size = self._vtable.output_size
        self._future = asyncrt_future(future.self, future.vtable)

    def take(self):
        """Hands the asyncrt_future over (to asyncrt_spawn, asyncrt_block_on);
        this object no longer owns it."""
        future, self._future = self._live(), None
        return future

    def _live(self):
        if self._future is None:
            raise BadHandle("asyncrt: this C future was handed to the runtime or dropped")
        return self._future

    def poll(self, cx):
        future = self._live()
        out = create_string_buffer(self.output_size) if self.output_size else None
        failure = c_int()
        waker = cx.waker.clone()  # borrowed by the C poll, which clones what it keeps
        try:
            result = lib.asyncrt_poll_with_waker(byref(future), waker._c, out, byref(failure))
        finally:
            waker.drop()
        if result < 0:
            check(-result)
        if result == POLL_READY:
            return Ready(out.raw if out is not None else None)
        if result == POLL_ERROR:
            raise error(failure.value or Status.EFAILED, "asyncrt: the C future failed")
        if result == POLL_YIELDED:  # an item nobody reads: poll again, as a task would
            cx.waker.wake_by_ref()
        return PENDING

    def drop(self):
        """Drops the C future through its vtable; idempotent."""
        future, self._future = self._future, None
        if future is not None and self._vtable.drop:
            self._vtable.drop(future.self)

    def __del__(self):
        if getattr(self, "_future", None) is not None:
            self.drop()

    def __await__(self):
        return (yield self)

    def __repr__(self):
        state = "" if self._future is not None else " taken"
        return f"<asyncrt.CFuture output_size={self.output_size}{state}>"
