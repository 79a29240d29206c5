"""Futures implemented in C, held by Python.

A CFuture owns one asyncrt_future until it is handed to the runtime
(``spawn``, ``block_on``: the runtime drops it) or dropped (``drop()``, or
garbage collection). Spawned, it runs as a C task on any executor kind,
thread-per-core included. Awaited from Python (it has ``poll``), it is polled
through asyncrt_poll_with_waker with a clone of the polling task's waker.

An OwnedCFuture is a C future whose state is Python memory (a ctypes struct:
asyncrt_sleep, asyncrt_timeout, an op and its asyncrt_op_future_state). Two
things set it apart:

- Its state lives until the runtime drops the future, wherever and whenever
  that happens (a worker thread, an executor's free, the drop of a timeout
  around it): the future is handed out with a copy of its C vtable whose poll
  is the C function itself (no Python in a poll) and whose drop is a Python
  callback that calls the C drop and then lets the state go (`_owned`). It
  also lives as long as the Python object, so an op's result stays readable.
- Timers and operation requests need the context of an executor's poll
  (asyncrt_timer_poll and asyncrt_op_submit fail outside one), which a Python
  coroutine does not have: awaited from Python, an OwnedCFuture is spawned as a
  C task -- on the awaiting task's executor, or on the executor it must run on
  (an op's subsystem's) -- and the coroutine waits for that task's C join.
  Dropping the awaiting future cancels the task.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any
from ctypes import POINTER, Structure, addressof, byref, c_int, c_size_t, c_void_p, cast, create_string_buffer, sizeof

from ._lib import DROP_FN, POLL_FN, asyncrt_future, asyncrt_future_vtable, check, lib
from .errors import AsyncrtError, BadHandle, InvalidArgument, Status, error
from .futures import PENDING, Ready, awaiting

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

    def take(self) -> asyncrt_future:
        """Hands the asyncrt_future over (to asyncrt_spawn, asyncrt_block_on);
        this object no longer owns it."""
        future, self._future = self._live(), None
        return future

    def _live(self):
        if self._future is None:
            raise BadHandle("asyncrt: this C future was handed to the runtime or dropped")
        return self._future

    def poll(self, cx):
        """Polls the C future with a clone of the task's waker (awaited from Python)."""
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

    def drop(self) -> None:
        """Drops the C future through its vtable; idempotent."""
        future, self._future = self._future, None
        if future is not None and self._vtable.drop:
            self._vtable.drop(future.self)

    def __del__(self):
        if getattr(self, "_future", None) is not None:
            self.drop()

    def __await__(self) -> Generator[Any, Any, Any]:
        return awaiting(self)

    def __repr__(self):
        state = "" if self._future is not None else " taken"
        return f"<asyncrt.CFuture output_size={self.output_size}{state}>"


class _RawVtable(Structure):
    """An asyncrt_future_vtable read as addresses (the C functions are not
    called from Python, only copied)."""

    _fields_ = [
        ("size", c_size_t),
        ("output_size", c_size_t),
        ("poll", c_void_p),
        ("drop", c_void_p),
        ("cleanup", c_void_p),
    ]


_owned: dict[int, tuple[Any, Any]] = {}  # state address -> (state objects, the C drop or None): until the runtime drops the future
_wrappers: dict[tuple[int, int], asyncrt_future_vtable] = {}  # (C poll address, output_size) -> the vtable handed out: kept for the process's life
_wrappers_lock = threading.Lock()


@DROP_FN
def _drop_owned(address):
    # On whichever thread drops the future (a worker takes the GIL for this).
    entry = _owned.pop(address, None)
    if entry is None:
        return
    _state, c_drop = entry
    if c_drop is not None:
        c_drop(address)
    # _state goes here: asyncrt no longer touches the memory.


def _wrapper_vtable(poll, output_size):
    key = (poll, output_size)
    vtable = _wrappers.get(key)
    if vtable is None:
        with _wrappers_lock:
            vtable = _wrappers.get(key)
            if vtable is None:
                vtable = asyncrt_future_vtable(size=sizeof(asyncrt_future_vtable), output_size=output_size,
                                               poll=POLL_FN(poll), drop=_drop_owned)
                _wrappers[key] = vtable
    return vtable


class OwnedCFuture(CFuture):
    """A C future whose state is Python memory; see the module docstring.

    Spawn it on any executor (a thread-per-core one included), block_on it, or
    await it from a coroutine. Its value when awaited is its output as bytes
    (None when ``output_size`` is 0), unless a subclass says otherwise."""

    __slots__ = ("_state", "_target", "_flags", "_task", "_join")

    def __init__(self, future, state, target=None, flags=0):
        """`future` was just made by a C initializer over `state` (its self
        points into `state`); takes both. `target`: the executor it must run
        on when awaited (None: the awaiting task's); `flags`: its spawn flags
        there."""
        raw = cast(future.vtable, POINTER(_RawVtable)).contents
        wrapper = _wrapper_vtable(raw.poll, raw.output_size)
        self._state = state
        self._target = target
        self._flags = flags
        self._task = None
        self._join = None
        _owned[future.self] = (state, DROP_FN(raw.drop) if raw.drop else None)
        super().__init__(future.self, addressof(wrapper))

    def poll(self, cx):
        join = self._join
        if join is None:
            join = self._start(cx)
        try:
            result = join.poll(cx)
        except AsyncrtError as exc:
            self._finish()
            raise self._failure(exc)
        if result is PENDING:
            return PENDING
        self._finish()
        return Ready(self._value(result.value))

    def _start(self, cx):
        """Spawns the C future as a C task and makes its join."""
        self._live()
        executor = self._target if self._target is not None else cx.executor
        if executor is None:
            raise BadHandle("asyncrt: the executor that would run this C future is gone")
        handle = executor._host.spawn_c(self, self._flags)  # takes the C future
        join = asyncrt_future()
        status = lib.asyncrt_task_join(handle, byref(join))
        if status:
            message = lib.asyncrt_last_error().decode(errors="replace")
            lib.asyncrt_task_cancel(handle)
            lib.asyncrt_task_release(handle)
            raise error(status, message)
        self._task = handle
        self._join = CFuture(join)
        return self._join

    def _finish(self):
        """The task completed (its future is dropped): let go of it and its join."""
        task, self._task = self._task, None
        join, self._join = self._join, None
        if task is not None:
            lib.asyncrt_task_release(task)
        if join is not None:
            join.drop()

    def _value(self, output):
        return output

    def _failure(self, exc):
        return exc

    def drop(self):
        """Drops the C future, or, once an await spawned it, cancels its task
        (the runtime drops the future); idempotent."""
        task, self._task = self._task, None
        if task is not None:
            lib.asyncrt_task_cancel(task)
            lib.asyncrt_task_release(task)
            join, self._join = self._join, None
            if join is not None:
                join.drop()
        else:
            super().drop()

    def __del__(self):
        if getattr(self, "_task", None) is not None or getattr(self, "_future", None) is not None:
            self.drop()

    def __repr__(self):
        state = " running" if self._task is not None else "" if self._future is not None else " taken"
        return f"<asyncrt.{type(self).__name__} output_size={self.output_size}{state}>"
