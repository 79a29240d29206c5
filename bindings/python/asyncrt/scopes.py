"""Scopes (structured concurrency), shields and the executor's dump.

A scope owns the tasks spawned into it and is left only once every one of
them is gone (asyncrt_scope_*; see "Scopes" in asyncrt.h):

- ``with ex.scope() as s:`` opens a scope at the top of an executor
  (asyncrt_scope_open_top); leaving the block waits for its join with
  ``ex.block_on`` on the calling thread.
- ``async with asyncrt.scope() as s:`` inside a coroutine (or any Python
  future's poll) run by an executor opens a scope owned by that task
  (asyncrt_scope_open_for: the coroutine runs after the C poll returned, so
  asyncrt_scope_open, which needs that poll's context, cannot be used);
  leaving it awaits the join. The runtime keeps the task from completing
  while the scope has live children: a task that returns with live children
  ends with ScopeError.
- ``async with ex.scope() as s:`` in asyncio code, when the running loop
  drives `ex` (asyncrt.aio.run_in): a scope at the top of `ex` whose join the
  asyncio task awaits (through the executor's fd); cancelling the asyncio
  task cancels the scope.

Leaving the block: if the body raised, the scope is cancelled first and the
body's exception goes on once the children are gone. Otherwise the join's
outcome is raised: nothing when every child succeeded (or the scope's own
``cancel()`` ended it); under FIRST_ERROR (the default) the first failure --
the child's own exception when the child was a Python future or coroutine,
else the AsyncrtError of its status with the runtime's message, TimedOut for
the scope's deadline; under ``collect_all=True`` an ExceptionGroup of every
failure whenever a child failed, as asyncio.TaskGroup does (a deadline alone
still raises TimedOut). A Python child's failure reaches C as a status only
(its poll runs outside the C poll, where asyncrt_context_fail_info cannot be
called), so the binding keeps each Python child's exception by task id.

A child error under FIRST_ERROR cancels the siblings, not the scope's owner:
the body runs on until it leaves the block, and the error is raised there.

Cancellation of a coroutine (a scope's cancel or deadline, a sibling's error,
``task.cancel(cleanup_timeout=...)``) throws Cancelled in at the await where
it waits; its ``finally`` blocks may await, within the scope's
``cleanup_timeout`` (default 1 s), after which it is dropped (closed).
"""

from __future__ import annotations

from ctypes import byref, c_size_t, c_uint64, sizeof, string_at
from itertools import count
from typing import TYPE_CHECKING, Any, NamedTuple

from . import _lib
from ._current import current_host, running_asyncio_loop
from ._lib import DUMP_WRITE_FN, check, lib
from .cfuture import CFuture
from .errors import AsyncrtError, Cancelled, ScopeError, Status, TimedOut, error, to_status
from .futures import PENDING, Ready, as_future, drop
from .timers import positive_ns

if TYPE_CHECKING:
    from .executor import Task

NEW, OPEN, CLOSED = range(3)


class ScopeErrorRecord(NamedTuple):
    """A failure a scope recorded (asyncrt_scope_error_get)."""

    status: int  # a Status (or a user value)
    task_id: int  # the task that failed; 0 for the scope's deadline
    message: str  # the runtime's message, or None
    value: int  # the user value's address (asyncrt_context_fail_info), or None
    exception: BaseException  # what leaving the scope raises for it (see the module docstring)


class _Join(CFuture):
    """The scope's join future; its value is the join's status (0: every
    child succeeded), so a failing join is told from an exception thrown into
    the awaiting coroutine."""

    __slots__ = ()

    def poll(self, cx):
        try:
            result = super().poll(cx)
        except AsyncrtError as exc:
            return Ready(int(exc.status))
        return result if result is PENDING else Ready(0)


def _current_record():
    host = current_host()
    return None if host is None else host.current


class Scope:
    """A scope; see the module docstring. Made by ``Executor.scope(...)``
    (``with``, at the top of the executor) or ``asyncrt.scope(...)`` (``async
    with``, owned by the running task).

    Options: `timeout` (seconds from the opening) and `deadline` (an instant,
    in seconds on the executor's clock, as Executor.now()): at the earlier,
    the scope is cancelled and leaving it raises TimedOut; a scope inside a
    task of another scope also ends by the enclosing deadline, the earliest
    wins. `collect_all`: siblings go on after a failure and every failure is
    raised, as an ExceptionGroup. `shield`: the scope ignores the cancellation
    of its owner (its own cancel, deadline and errors still end it).
    `cleanup_timeout`: the time each child's cleanup gets when the scope is
    cancelled (None: the library's 1 s). `name`: shown by Executor.dump.
    `join_timeout`: a bound, in real seconds, on the wait when a ``with``
    block ends (block_on's timeout; None: none): past it the scope is
    cancelled, without waiting, and TimedOut raised.

    Members: spawn(), cancel(), join(), status(), id, errors, close()."""

    def __init__(self, executor=None, *, timeout=None, deadline=None, collect_all=False, shield=False, name=None,
                 cleanup_timeout=None, join_timeout=None):
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must not be negative, not {timeout}")
        if deadline is not None and deadline <= 0:
            raise ValueError(f"deadline is an instant on the executor's clock, after 0, not {deadline}")
        if cleanup_timeout is not None and cleanup_timeout < 0:
            raise ValueError(f"cleanup_timeout must not be negative, not {cleanup_timeout}")
        self.executor = executor
        self.collect_all = collect_all
        self.name = name
        self.join_timeout = join_timeout
        self._config = config = _lib.asyncrt_scope_config()
        lib.asyncrt_scope_config_init_size(byref(config), sizeof(config))
        config.flags = ((_lib.SCOPE_COLLECT_ALL if collect_all else _lib.SCOPE_FIRST_ERROR)
                        | (_lib.SCOPE_SHIELD if shield else 0))
        if timeout is not None:
            config.timeout_ns = positive_ns(timeout)  # 0 would mean none: a 0 timeout is 1 ns
        if deadline is not None:
            config.deadline_ns = positive_ns(deadline)
        if cleanup_timeout is not None:
            config.cleanup_timeout_ns = positive_ns(cleanup_timeout)
        config.name = None if name is None else name.encode()  # kept by the struct
        self._handle = None
        self._state = NEW
        self._id = None
        self._failures = {}  # task id -> the exception a Python child failed with
        self._errors = []  # ScopeErrorRecords read so far (their exceptions stay the same objects)
        self._final_status = None
        self._cancelled_here = False  # cancel() was called: its ECANCELLED is not raised

    # -- opening and closing ------------------------------------------------------

    def open(self) -> Scope:
        """Opens the scope: owned by the task whose poll runs on this thread
        (inside a coroutine), else at the top of its executor. ``with`` and
        ``async with`` call it; call it directly only to manage the scope by
        hand (join(), close()). Returns self."""
        if self._state != NEW:
            raise ScopeError("asyncrt: a scope is opened once")
        record = _current_record()
        handle = _lib.scope_p()
        if record is not None:
            owner = current_host().owner()
            if self.executor is not None and self.executor is not owner:
                raise ValueError("asyncrt: a scope opened inside a task belongs to that task's executor")
            if record.handle is None:
                raise ScopeError("asyncrt: the running task has no handle to own a scope")
            check(lib.asyncrt_scope_open_for(record.handle, byref(self._config), byref(handle)))
            record.settle_at_drop = True  # the runtime may end it with ESCOPE
            self.executor = owner
        else:
            if self.executor is None:
                raise RuntimeError("asyncrt.scope() opens a scope owned by the running task: use it inside a "
                                   "coroutine (async with); at the top of an executor use Executor.scope()")
            check(lib.asyncrt_scope_open_top(self.executor._live(), byref(self._config), byref(handle)))
        self._handle = handle
        self._state = OPEN
        scope_id = c_uint64()
        check(lib.asyncrt_scope_id(handle, byref(scope_id)))
        self._id = scope_id.value
        return self

    def close(self) -> None:
        """Frees the handle (asyncrt_scope_free): never blocks; a scope whose
        join has not completed is cancelled. Reads its errors and status first:
        they stay readable. Idempotent."""
        handle = self._handle
        if handle is None:
            self._state = CLOSED
            return
        try:
            self._read_errors()
            self._final_status = to_status(lib.asyncrt_scope_status(handle))
        finally:
            self._handle = None
            self._state = CLOSED
            lib.asyncrt_scope_free(handle)

    def __del__(self, _free=lib.asyncrt_scope_free):
        # _free is bound at definition: module globals may be gone at shutdown.
        if getattr(self, "_handle", None) is not None:
            _free(self._handle)

    def _live(self):
        if self._state == OPEN:
            return self._handle
        if self._state == NEW:
            raise ScopeError("asyncrt: the scope is not open (use it in a with block, or call open())")
        raise ScopeError(f"asyncrt: scope {self._id} is closed")

    # -- with / async with ----------------------------------------------------------

    def __enter__(self):
        if _current_record() is not None:
            raise RuntimeError("asyncrt: inside a task, use `async with asyncrt.scope()`: a with block would "
                               "block the executor that runs the children")
        return self.open()

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc is not None:
                lib.asyncrt_scope_cancel(self._handle)
            status = self._wait()
        finally:
            self.close()
        if exc is None:
            self._raise_for(status)
        return False

    async def __aenter__(self):
        # Inside an asyncrt coroutine: owned by its task. In asyncio code, a
        # scope at the top of an executor the loop drives (asyncrt.aio), whose
        # join the asyncio task awaits.
        if _current_record() is None and (self.executor is None or running_asyncio_loop() is None):
            raise RuntimeError("asyncrt: `async with asyncrt.scope()` works inside a coroutine run by an executor, "
                               "and `async with executor.scope()` in asyncio code whose loop drives the executor "
                               "(asyncrt.aio.run_in)")
        return self.open()

    async def __aexit__(self, exc_type, exc, tb):
        if isinstance(exc, GeneratorExit):  # the coroutine is being dropped: it cannot await
            self.close()  # the runtime dropped the children first
            return False
        try:
            if exc is not None:
                lib.asyncrt_scope_cancel(self._handle)
            status = await self.join()
        finally:
            self.close()
        if exc is None:
            self._raise_for(status)
        return False

    def _wait(self):
        """Waits on this thread for the join; returns its status."""
        try:
            return self.executor.block_on(self.join(), self.join_timeout) or 0  # a C block_on's value is None
        except AsyncrtError:
            status = lib.asyncrt_scope_status(self._handle)
            if status == Status.EAGAIN:  # block_on itself failed
                raise
            return status

    def _raise_for(self, status):
        if status == Status.OK:
            return
        errors = self.errors
        if not errors:
            if status == Status.ECANCELLED:
                if self._cancelled_here:
                    return
                raise Cancelled(f"asyncrt: scope {self._id} was cancelled")
            raise error(status, f"asyncrt: scope {self._id} ended with {getattr(to_status(status), 'name', status)}")
        if self.collect_all and any(e.task_id for e in errors):
            failed = sum(1 for e in errors if e.task_id)
            raise BaseExceptionGroup(f"asyncrt: {failed} task(s) of scope {self._id} failed",
                                     [e.exception for e in errors])  # an ExceptionGroup unless one is not an Exception
        raise errors[0].exception

    # -- the scope's operations ---------------------------------------------------------

    def spawn(self, future: Any, send: bool = False, worker: int | None = None, name: str | None = None) -> Task:
        """Spawns a child, as Executor.spawn does (a Python future, a coroutine
        or a CFuture; `send`, `worker`), and names it (`name`, for the dump).
        Returns its Task. ScopeError once the scope is closed (joined, or its
        owner finished); Cancelled once it was cancelled. If the spawn fails,
        the future has been dropped."""
        try:
            handle = self._live()
        except ScopeError:
            drop(future if isinstance(future, CFuture) else as_future(future))
            raise
        task = self.executor._spawn(future, send, worker, handle, self._failures)
        if name is not None:
            task.name = name
        return task

    def join(self) -> CFuture:
        """The join future (asyncrt_scope_join), a CFuture whose value is the
        join's status: 0 when no child failed and the scope was not cancelled,
        else the first error's status, ETIMEDOUT or ECANCELLED. It closes the
        scope when it completes. Once per scope (Busy for a second call);
        ``with`` and ``async with`` make it."""
        future = _lib.asyncrt_future()
        check(lib.asyncrt_scope_join(self._live(), byref(future)))
        return _Join(future)

    def cancel(self) -> None:
        """Cancels the scope and every descendant, asynchronously: each child's
        cleanup gets `cleanup_timeout`. Later spawns raise Cancelled. Leaving
        the block then raises nothing for it (only for failures). Any thread;
        does nothing once the scope is closed."""
        handle = self._handle
        if handle is None:
            return
        self._cancelled_here = True
        status = lib.asyncrt_scope_cancel(handle)
        if status and self._handle is not None:  # not a close on another thread meanwhile
            check(status)

    def status(self) -> Status | int:
        """Status.EAGAIN while a child lives or the scope is open; afterwards
        what its join reports (OK, the first error's status, ETIMEDOUT,
        ECANCELLED)."""
        if self._state == CLOSED:
            return self._final_status
        return to_status(lib.asyncrt_scope_status(self._live()))

    @property
    def id(self) -> int | None:
        """Unique with the task ids of its executor (None before it is opened)."""
        return self._id

    @property
    def errors(self) -> list[ScopeErrorRecord]:
        """The failures recorded so far, in the order they happened
        (ScopeErrorRecord); kept after the scope is closed."""
        if self._state == OPEN:
            self._read_errors()
        return list(self._errors)

    def _read_errors(self):
        n = c_size_t()
        check(lib.asyncrt_scope_error_count(self._handle, byref(n)))
        info = _lib.asyncrt_error_info()
        for index in range(len(self._errors), n.value):
            info.size = sizeof(info)
            check(lib.asyncrt_scope_error_get(self._handle, index, byref(info)))
            message = info.message.decode(errors="replace") if info.message else None
            status = to_status(info.status)
            exception = self._failures.get(info.task_id) if info.task_id else None
            if exception is None:
                if not info.task_id and status == Status.ETIMEDOUT:
                    exception = TimedOut(message or f"asyncrt: the deadline of scope {self._id} passed")
                else:
                    exception = error(status, message or f"asyncrt: task {info.task_id} failed")
            self._errors.append(ScopeErrorRecord(status, info.task_id, message, info.value, exception))

    def __repr__(self):
        state = ("new", "open", "closed")[self._state]
        name = f" {self.name!r}" if self.name is not None else ""
        return f"<asyncrt.Scope{name} id={self._id} {state}>"


def scope(timeout: float | None = None, deadline: float | None = None, collect_all: bool = False, shield: bool = False,
          name: str | None = None, cleanup_timeout: float | None = None) -> Scope:
    """A scope owned by the running task, for ``async with`` inside a
    coroutine; see Scope."""
    return Scope(None, timeout=timeout, deadline=deadline, collect_all=collect_all, shield=shield, name=name,
                 cleanup_timeout=cleanup_timeout)


class shield:
    """``with asyncrt.shield():`` inside a coroutine (or a Python future's
    poll) run by an executor: until the block ends, an asynchronous cancel of
    the task (a scope's cancel or deadline, a sibling's error,
    task.cancel(cleanup_timeout=...)) only records itself and the coroutine
    runs on as usual; it takes effect at the first await after the last
    section ended. Sections nest and may span awaits.

    The binding shields by itself rather than through asyncrt_shield_enter:
    that call needs the context of the task's C poll, and a Python future is
    polled from the host queue after that poll has returned. So the runtime
    sees the task as cancelled and in its cleanup: (1) the shield holds only
    until the cleanup time runs out (the scope's `cleanup_timeout`, or the
    task.cancel one), after which the future is dropped (a coroutine is
    closed); (2) a synchronous cancel (task.cancel() without a cleanup time,
    the executor's close) is not deferred; (3) the scopes the task opened are
    cancelled before its cleanup starts, so a shielded section that needs its
    own children alive should open them in ``asyncrt.scope(shield=True)``.
    """

    __slots__ = ("_record",)

    def __init__(self):
        self._record = None

    def __enter__(self):
        record = _current_record()
        if record is None:
            raise RuntimeError("asyncrt.shield() works inside a coroutine or poll run by an executor")
        record.shield += 1
        self._record = record
        return self

    def __exit__(self, *exc_info):
        record, self._record = self._record, None
        record.shield -= 1
        return False


# -- the dump ---------------------------------------------------------------------------

DUMP_FORMATS = {"text": _lib.DUMP_TEXT, "json": _lib.DUMP_JSON}
_dumps: dict[int, list[bytes]] = {}  # key -> chunks of the dump being written on some thread
_dump_keys = count(1)


@DUMP_WRITE_FN
def _dump_write(data, length, key):
    _dumps[key].append(string_at(data, length))


def dump(executor, format):
    """asyncrt_executor_dump of the executor handle, as a str."""
    if format not in DUMP_FORMATS:
        raise ValueError(f"format must be one of {sorted(DUMP_FORMATS)}, not {format!r}")
    key = next(_dump_keys)
    chunks = _dumps[key] = []
    try:
        check(lib.asyncrt_executor_dump(executor, DUMP_FORMATS[format], _dump_write, key))
    finally:
        del _dumps[key]
    return b"".join(chunks).decode(errors="replace")
