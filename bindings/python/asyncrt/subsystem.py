"""Subsystems written in Python, and operation requests from coroutines.

A subsystem is a source of completions that the executor polls from its own
loop (see "Subsystems and operation requests" in asyncrt.h). Here it is any
object with

    poll(scx, budget) -> int         completions made (None counts as 0)

and optionally

    submit(scx, op)                  an op was submitted (start it, or leave it for poll)
    cancel(scx, op)                  please cancel op (complete it now or later)
    waiters_changed(scx, n)          ops in flight on this worker changed to n
    close()                          called once, when no other callback will run

registered with ``Executor.register_subsystem(obj, ...)``, which returns a
Subsystem handle. Coroutines submit ops with ``await sub.submit(opcode,
*args)``: an asyncrt_op_future run as a C task on the subsystem's executor, so
the op is submitted from a real C poll (see OwnedCFuture).

The callbacks are module-level CFUNCTYPE objects, alive as long as the module,
that find the Python object through user_data (a key in `_live`); the
finalize callback calls close() and releases it. They run on the thread of
the worker the registration belongs to -- for a local executor the Python
thread inside run, run_step, block_on or tick; for a thread-per-core one a
worker thread, which takes the GIL for each call -- one at a time per worker.

No Python exception crosses into C: a callback that raises is recorded in
``Subsystem.errors`` and printed (as for __del__), and then poll counts as an
empty poll (it returns -1), a submit that raised completes its op with
EFAILED (the awaiting coroutine gets Failed, caused by the exception), a cancel
that raised completes it with ECANCELLED (what asyncrt does for a subsystem
without cancel), and a raising waiters_changed or close is only recorded.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from ctypes import addressof, byref, c_void_p, cast, pointer, sizeof
from typing import Any, NamedTuple

from . import _lib
from ._host import report_ignored
from ._lib import (
    FINALIZE_FN,
    SUB_OP_FN,
    SUB_POLL_FN,
    SUB_WAITERS_FN,
    UINT64_MAX,
    asyncrt_future,
    asyncrt_op,
    asyncrt_op_future_state,
    asyncrt_subsystem_config,
    asyncrt_subsystem_stats,
    asyncrt_subsystem_vtable,
    check,
    lib,
)
from .cfuture import OwnedCFuture
from .errors import BadHandle, Status, error

MAX_ERRORS = 100  # exceptions kept in Subsystem.errors (the newest)
POLL_ERROR = -1


class SubsystemStats(NamedTuple):
    """Counters of a subsystem, or of an executor's timers (summed over workers)."""

    polls: int  # calls to poll (timers: ticks that looked at due timers)
    completions: int  # ops completed (timers: fired)
    empty_polls: int  # polls that completed nothing
    waiters: int  # ops in flight now (timers: armed)
    submits: int  # ops ever submitted
    cancels: int  # ops whose cancellation was sent (once per submission; timers: 0)
    failures: int  # completions with a status other than OK, cancellations included (timers: 0)
    workers: int  # workers it is registered on


def read_stats(stats):
    return SubsystemStats(*(getattr(stats, name) for name in SubsystemStats._fields))


_live: dict[int, _Registration] = {}  # user_data key -> _Registration, from registration until finalize
_keys = itertools.count(1)
_active = threading.local()  # .stack: the registrations whose callbacks run on this thread now


class _OpState:
    """The memory of one submitted op (the op and its future's state) and what
    Python attaches to it. Lives until the runtime drops the op future and the
    OpFuture is gone; the registration finds it by the op's address."""

    __slots__ = ("op", "future_state", "payload", "error", "__weakref__")

    def __init__(self, payload):
        self.op = asyncrt_op()
        self.future_state = asyncrt_op_future_state()
        self.payload = payload
        self.error = None  # (callback name, exception) if a callback raised and completed it


class _Registration:
    """The Python side of one registered subsystem."""

    __slots__ = ("impl", "name", "errors", "error_count", "ops", "finalized", "__weakref__")

    def __init__(self, impl, name):
        self.impl = impl
        self.name = name
        self.errors = []
        self.error_count = 0
        self.ops = weakref.WeakValueDictionary()  # op address -> _OpState
        self.finalized = False

    def record(self, exc, where):
        self.error_count += 1
        self.errors.append(exc)
        del self.errors[:-MAX_ERRORS]
        report_ignored(f"{where} of subsystem {self.name!r}")


def _enter(reg):
    stack = getattr(_active, "stack", None)
    if stack is None:
        stack = _active.stack = []
    stack.append(reg)
    return stack


def _in_callback(reg):
    return reg in getattr(_active, "stack", ())


class SubsystemContext:
    """What a callback receives: one worker's view of the subsystem
    (asyncrt_subsystem_cx). Valid only during the callback."""

    __slots__ = ("_scx", "_reg", "_valid")

    def __init__(self, scx, reg):
        self._scx = scx
        self._reg = reg
        self._valid = True

    def _live_cx(self):
        if not self._valid:
            raise RuntimeError("asyncrt: a subsystem context is valid only during its callback")
        return self._scx

    @property
    def worker(self) -> int:
        """The worker this callback runs for (0 on a local or foreign executor)."""
        return lib.asyncrt_subsystem_cx_worker(self._live_cx())

    @property
    def waiters(self) -> int:
        """Ops in flight on this worker."""
        return lib.asyncrt_subsystem_cx_waiters(self._live_cx())

    def ops(self, limit: int | None = None) -> list[Op]:
        """The ops in flight on this worker, oldest first (at most `limit`), as a
        list taken now: completing some of them does not disturb it."""
        found: list[Op] = []
        op = lib.asyncrt_subsystem_cx_first_op(self._live_cx())
        while op and (limit is None or len(found) < limit):
            found.append(Op(op, self._reg))
            op = lib.asyncrt_op_next(op)
        return found

    def complete_all(self, status: int = Status.OK, result: int = 0) -> int:
        """Completes every op in flight on this worker (waking every waiter);
        returns how many."""
        return lib.asyncrt_subsystem_cx_complete_all(self._live_cx(), int(status), result)

    def __repr__(self):
        return f"<asyncrt.SubsystemContext {self._reg.name!r}{'' if self._valid else ' stale'}>"


class Op:
    """An operation request (asyncrt_op) as the subsystem sees it. Ops submitted
    from Python (Subsystem.submit) stay readable after completion; an op
    submitted by C code belongs to its submitter again once complete, so do
    not keep its Op past that."""

    __slots__ = ("_ptr", "_c", "_state", "_reg")

    def __init__(self, ptr, reg):
        self._ptr = ptr
        self._c = ptr.contents
        self._reg = reg
        self._state = reg.ops.get(addressof(self._c))  # keeps a Python op's memory alive

    @property
    def opcode(self) -> int:
        """What the op asks for, in the subsystem's own numbering."""
        return self._c.opcode

    @property
    def flags(self) -> int:
        """The flags it was submitted with."""
        return self._c.flags

    @property
    def args(self) -> tuple[int, ...]:
        """Its four integer arguments."""
        return tuple(self._c.args)

    @property
    def payload(self) -> Any:
        """The `payload` given to Subsystem.submit (None for an op from C)."""
        return None if self._state is None else self._state.payload

    @property
    def done(self) -> bool:
        """Not in flight (complete)."""
        return bool(lib.asyncrt_op_done(self._ptr))

    @property
    def status(self):
        """Written at completion."""
        return self._c.status

    @property
    def result(self):
        """Written at completion."""
        return self._c.result

    def complete(self, status: int = Status.OK, result: int = 0) -> None:
        """Completes the op with `status` (Status.OK, an error Status, or a user
        value above 1000) and `result` (a signed 64-bit int), waking its
        submitter. Only inside this subsystem's callbacks; a second completion
        does nothing."""
        if not _in_callback(self._reg):
            raise RuntimeError("asyncrt: op.complete() works only inside its subsystem's callbacks")
        if not lib.asyncrt_op_done(self._ptr):
            lib.asyncrt_op_complete(self._ptr, int(status), result)

    def __repr__(self):
        return f"<asyncrt.Op opcode={self.opcode} args={self.args}{' done' if self.done else ''}>"


# -- the callbacks ---------------------------------------------------------------


def _call(key, scx, where, call):
    """Runs `call(impl, cx)` for the registration under `key`; returns its value
    or the exception it raised (recorded)."""
    reg = _live.get(key)
    if reg is None:
        return None
    cx = SubsystemContext(scx, reg)
    stack = _enter(reg)
    try:
        return call(reg.impl, cx)
    except BaseException as exc:
        reg.record(exc, where)
        return exc
    finally:
        cx._valid = False
        stack.pop()


def _poll_result(value):
    if value is None:
        return 0
    if isinstance(value, BaseException):
        return POLL_ERROR
    return max(-(1 << 31), min(int(value), (1 << 31) - 1))


@SUB_POLL_FN
def _poll(key, scx, budget):
    try:
        return _poll_result(_call(key, scx, "poll()", lambda impl, cx: impl.poll(cx, budget)))
    except BaseException as exc:  # int() of what poll returned
        reg = _live.get(key)
        if reg is not None:
            reg.record(exc, "poll() result")
        return POLL_ERROR


@SUB_OP_FN
def _submit(key, scx, op):
    def call(impl, cx):
        impl.submit(cx, Op(op, cx._reg))

    exc = _call(key, scx, "submit()", call)
    if isinstance(exc, BaseException):
        _fail_op(key, op, Status.EFAILED, "submit()", exc)


@SUB_OP_FN
def _cancel(key, scx, op):
    exc = _call(key, scx, "cancel()", lambda impl, cx: impl.cancel(cx, Op(op, cx._reg)))
    if isinstance(exc, BaseException):
        _fail_op(key, op, Status.ECANCELLED, "cancel()", exc)


def _fail_op(key, op, status, where, exc):
    """Completes an op whose callback raised (we are inside that callback)."""
    reg = _live.get(key)
    if reg is None or lib.asyncrt_op_done(op):
        return
    state = reg.ops.get(addressof(op.contents))
    if state is not None:
        state.error = (where, exc)
    lib.asyncrt_op_complete(op, int(status), 0)


@SUB_WAITERS_FN
def _waiters_changed(key, scx, waiters):
    _call(key, scx, "waiters_changed()", lambda impl, cx: impl.waiters_changed(cx, waiters))


@FINALIZE_FN
def _finalize(key):
    reg = _live.pop(key, None)
    if reg is None:
        return
    reg.finalized = True
    close = getattr(reg.impl, "close", None)
    if close is not None:
        try:
            close()
        except BaseException as exc:
            reg.record(exc, "close()")


# -- registering -----------------------------------------------------------------


def _fd(fd):
    if fd is None:
        return -1
    return fd if isinstance(fd, int) else fd.fileno()


def prepare(impl, priority=1, waiter_cap=64, poll_budget=64, worker=None, fd=-1, name=None):
    """Builds the C registration of a Python subsystem: (config, key, reg).
    The key is live in _live from now on; the library's finalize (called
    whether or not the registration succeeds) takes it out."""
    if not callable(getattr(impl, "poll", None)):
        raise TypeError(f"{impl!r} is not a subsystem: it has no poll(scx, budget) method")
    name = type(impl).__name__ if name is None else str(name)
    vtable = asyncrt_subsystem_vtable(size=sizeof(asyncrt_subsystem_vtable), poll=_poll, finalize=_finalize)
    if callable(getattr(impl, "submit", None)):
        vtable.submit = _submit
    if callable(getattr(impl, "cancel", None)):
        vtable.cancel = _cancel
    if callable(getattr(impl, "waiters_changed", None)):
        vtable.waiters_changed = _waiters_changed
    key = next(_keys)
    config = asyncrt_subsystem_config()
    lib.asyncrt_subsystem_config_init_size(byref(config), sizeof(config))
    config.vtable = pointer(vtable)  # copied by the library
    config.user_data = key
    config.priority = priority
    config.waiter_cap = waiter_cap
    config.poll_budget = poll_budget
    config.worker = _lib.SUBSYSTEM_ALL_WORKERS if worker is None else worker
    config.fd = _fd(fd)
    config.name = name.encode()
    reg = _live[key] = _Registration(impl, name)
    return config, key, reg


def register(executor, impl, priority, waiter_cap, poll_budget, worker, fd, name):
    """Executor.register_subsystem; see there."""
    if not callable(getattr(impl, "poll", None)):
        raise TypeError(f"{impl!r} is not a subsystem: it has no poll(scx, budget) method")
    handle = executor._live()
    config, key, reg = prepare(impl, priority, waiter_cap, poll_budget, worker, fd, name)
    sub = _lib.subsystem_p()
    status = lib.asyncrt_subsystem_register(handle, byref(config), byref(sub))
    if status:
        message = lib.asyncrt_last_error().decode(errors="replace")
        _live.pop(key, None)  # the library has called finalize already
        raise error(status, message)
    return Subsystem(executor, sub, reg, worker)


class Subsystem:
    """A registered subsystem (see the module docstring): ``stats()``,
    ``submit(...)`` to await an op, ``unregister()``. ``errors`` lists the
    exceptions its callbacks raised (the newest MAX_ERRORS); ``closed`` is
    true once close() ran (after unregister, or the executor's close)."""

    __slots__ = ("executor", "name", "worker", "_handle", "_reg", "_flags", "__weakref__")

    def __init__(self, executor, handle, reg, worker):
        self.executor = executor
        self.name = reg.name
        self.worker = worker
        self._handle = handle
        self._reg = reg
        self._flags = _lib.SPAWN_LOCAL if worker is None else _lib.spawn_worker(worker)

    @property
    def impl(self) -> Any:
        """The object whose callbacks the executor calls."""
        return self._reg.impl

    @property
    def errors(self) -> list[Any]:
        """The exceptions its callbacks raised, with where (recorded, never passed to C)."""
        return list(self._reg.errors)

    @property
    def closed(self) -> bool:
        """Whether it is unregistered."""
        return self._reg.finalized

    @property
    def handle(self):
        """The asyncrt_subsystem handle as an int, for C code (asyncrt_op_submit)."""
        return cast(self._handle, c_void_p).value

    def _live(self):
        if self._reg.finalized:
            raise BadHandle(f"asyncrt: subsystem {self.name!r} is unregistered")
        return self._handle

    def stats(self) -> SubsystemStats:
        """Its counters (asyncrt_subsystem_stats)."""
        stats = asyncrt_subsystem_stats(size=sizeof(asyncrt_subsystem_stats))
        check(lib.asyncrt_subsystem_stats_get(self._live(), byref(stats)))
        return read_stats(stats)

    def unregister(self) -> None:
        """Unregisters: ops in flight are offered to cancel(), the rest complete
        with ESHUTDOWN (their coroutines raise Shutdown), then close() runs.
        Idempotent; also done by the executor's close. Reentrant inside one of
        its callbacks."""
        if self._reg.finalized:
            return
        status = lib.asyncrt_subsystem_unregister(self._handle)
        if status == Status.EHANDLE and self._reg.finalized:  # unregistered meanwhile
            return
        check(status)

    def submit(self, opcode: int = 0, *args: int, flags: int = 0, payload: Any = None) -> OpFuture:
        """An op request to await: ``result = await sub.submit(opcode, arg, ...)``.

        Up to four int `args` (unsigned 64-bit; negative ints wrap), the op's
        `flags`, and any Python object as `payload` (op.payload on the
        subsystem's side). Awaited, it is submitted from a C task on the
        subsystem's executor (on its worker, if registered on one) and its
        value is the op's result; a status other than OK raises that status's
        exception, with the result in its ``result`` attribute. Dropping it
        while in flight cancels the op. It is an OwnedCFuture, so it can also
        be spawned on the subsystem's executor or wrapped in timeout()."""
        if len(args) > 4:
            raise ValueError(f"an op has four args, not {len(args)}")
        self._live()
        state = _OpState(payload)
        op = state.op
        op.opcode = opcode
        op.flags = flags
        for i, arg in enumerate(args):
            op.args[i] = arg & UINT64_MAX
        future = asyncrt_future()
        check(lib.asyncrt_op_future(byref(state.future_state), byref(op), self._handle, byref(future)))
        self._reg.ops[addressof(op)] = state
        return OpFuture(future, state, self)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.unregister()

    def __repr__(self):
        return f"<asyncrt.Subsystem {self.name!r}{' closed' if self.closed else ''}>"


class OpFuture(OwnedCFuture):
    """One op awaited as a future (asyncrt_op_future); see Subsystem.submit."""

    __slots__ = ("subsystem",)

    def __init__(self, future, state, subsystem):
        self.subsystem = subsystem
        super().__init__(future, state, subsystem.executor, subsystem._flags)

    @property
    def op(self):
        """The asyncrt_op (ctypes): status and result once it is done."""
        return self._state.op

    @property
    def result(self):
        return self._state.op.result

    @property
    def status(self):
        return self._state.op.status

    def _value(self, output):
        return self._state.op.result

    def _failure(self, exc):
        state = self._state
        status = exc.status
        callback, cause = state.error or (None, None)
        where = f"asyncrt: op {state.op.opcode} on subsystem {self.subsystem.name!r}"
        if cause is not None:
            message = f"{where}: its {callback} raised {cause!r}"
        else:
            message = f"{where} failed with {getattr(status, 'name', status)}"
        failure = error(status, message)
        failure.result = state.op.result
        failure.__cause__ = cause
        failure.__suppress_context__ = True
        return failure
