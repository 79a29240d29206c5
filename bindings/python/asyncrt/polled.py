"""C futures that need only a waker, polled in place from a Python poll.

Channel operations, synchronization waits and asyncrt_stream_next are C
futures whose state is Python memory (an asyncrt_chan_op, an asyncrt_wait,
an asyncrt_stream_next_state). Unlike timers and operation requests they need
no executor context, only a waker, so the awaiting task polls them itself
with asyncrt_poll_with_waker (as CFuture does): no C task, no executor hop.

A PolledCFuture is a Python future, not a CFuture: it is not handed to C
(spawn, the C combinators), because its Python side -- turning a channel's
bytes back into an object, giving a withdrawn value back -- must run at its
completion and its drop. Its storage does not move (ctypes memory), as the
ops require while pending.
"""

from ctypes import POINTER, byref, c_int, cast, create_string_buffer

from ._lib import asyncrt_future, asyncrt_future_vtable, check, lib
from .errors import BadHandle, Status, error
from .futures import PENDING, Future, Ready

POLL_PENDING, POLL_READY, POLL_YIELDED, POLL_ERROR = range(4)

MESSAGES = {
    Status.ECLOSED: "asyncrt: the channel is closed",
    Status.ELAGGED: "asyncrt: the receiver fell behind; the values it missed are gone",
}


class PolledCFuture(Future):
    """Owns one C future made over `storage`; polls it with the awaiting
    task's waker. Subclasses turn the output into a value (`_ready`) and a
    failure status into an exception (`_failed`), and may release what they
    hold in `drop` (after calling this one)."""

    __slots__ = ("_future", "_storage", "_out", "_drop_fn", "_waker")

    def __init__(self, future, storage):
        vtable = cast(future.vtable, POINTER(asyncrt_future_vtable)).contents
        self._future = asyncrt_future(future.self, future.vtable)
        self._storage = storage
        self._out = create_string_buffer(vtable.output_size) if vtable.output_size else None
        self._drop_fn = vtable.drop
        self._waker = None

    def _c_waker(self, cx):
        """A C waker for the polling task, cloned once and kept while it is
        the same task's (the C poll clones what it keeps)."""
        waker = cx.waker
        if waker._c is not None:
            return waker._c
        kept = self._waker
        if kept is None or kept._tag != waker._tag or kept._host is not waker._host:
            self._waker = kept = waker.clone()
        return kept._c

    def poll(self, cx):
        future = self._future
        if future is None:
            raise BadHandle("asyncrt: this future was dropped")
        failure = c_int()
        result = lib.asyncrt_poll_with_waker(byref(future), self._c_waker(cx), self._out, byref(failure))
        if result < 0:
            check(-result)
        if result == POLL_READY:
            return Ready(self._ready(self._out))
        if result == POLL_ERROR:
            raise self._failed(failure.value or Status.EFAILED)
        if result == POLL_YIELDED:  # an item nobody reads: poll again, as a task would
            cx.waker.wake_by_ref()
        return PENDING

    def _ready(self, out):
        return out.raw if out is not None else None

    def _failed(self, status):
        return error(status, MESSAGES.get(status, "asyncrt: the C future failed"))

    def drop(self):
        """Drops the C future (a pending op is withdrawn); idempotent."""
        future, self._future = self._future, None
        waker, self._waker = self._waker, None
        if waker is not None:
            waker.drop()
        if future is not None and self._drop_fn:
            self._drop_fn(future.self)

    def __del__(self):
        if getattr(self, "_future", None) is not None:
            self.drop()
