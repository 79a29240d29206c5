"""The host side of an executor: runs Python futures through a host queue.

Each Python future is spawned as a host-queue future (asyncrt_hostq_future,
asyncrt_spawn) under a tag. A step of the driver runs the C executor
(asyncrt_run_step), takes the events it recorded in one batch
(asyncrt_hostq_take) -- POLL: poll the Python future; DROP: call its drop()
and forget it -- and reports back in one batch: the futures that finished
(asyncrt_hostq_complete) and the tasks whose borrowed waker was woken
(asyncrt_hostq_wake). No poll costs a call from C into Python.

A third event, CLEANUP, says that the task was cancelled asynchronously (a
scope's cancel or deadline, a sibling's error, asyncrt_task_cancel_ex): from
then on each step runs the future's cleanup(cx) instead of poll(cx) -- for a
coroutine, Cancelled thrown in where it waits, then stepped as usual -- and
its end is reported with asyncrt_hostq_complete like a poll's; the runtime
then drops the future (DROP), or drops it at the cleanup deadline.

Shields: asyncrt_shield_enter needs the context of the C poll, and a Python
future is polled after that poll returned, so the binding shields by itself
(asyncrt.shield()): while a task's `shield` count is above 0 a CLEANUP only
marks the record, and the future is polled as usual; the cleanup starts when
the poll in which the last section ended returns pending.

Invariants:
- `records` maps tag -> _Record from the spawn until the DROP event;
  `status` is None until the future finished (0, or a failure status) or was
  dropped unfinished (ECANCELLED). A record whose outcome the runtime may
  still change -- its task opened a scope, or was cancelled asynchronously --
  is settled at its DROP event, from the task's C status.
- Each record holds a reference to its task handle until its DROP event,
  the Task (or block_on) the other: the handle is released with the last.
- `current` is the record being polled on the driving thread, or None.
- hostq calls, polls and drops happen on one thread at a time: the driving
  thread (`driver`), or a thread that spawns or closes while nobody drives;
  `lock` makes that choice atomic.
- `thread` is the thread that drove last: where borrowed wakers append.
- Only a `hosted` executor (one a Python thread drives: local, foreign) has
  a host queue and Python futures; a thread-per-core one runs C tasks only.
"""

import select
import sys
import threading
import time
import traceback
from array import array
from ctypes import byref, c_int, c_size_t, c_uint32, c_uint64, sizeof
from threading import get_ident

from . import _lib
from ._current import current_host, set_current_host
from ._lib import HOSTQ_CLEANUP, HOSTQ_DROP, HOSTQ_KIND_MASK, HOSTQ_TAG_MASK, check, lib
from .errors import AsyncrtError, BadHandle, Busy, NotSupported, Reentrant, Shutdown, Status, error
from .futures import PENDING, Context, Ready, drop
from .waker import Waker

EVENT_BATCH = 1024
STEP_POLLS = 1024
STEP_NS = 10_000_000
PARK_SLICE = 0.05
# While a subsystem without an fd has waiters, an idle driver ticks it after
# sleeps that double from BUSY_MIN to BUSY_MAX (the C drivers' policy; the
# fd wait below has millisecond resolution).
BUSY_MIN = 0.00005
BUSY_MAX = 0.001

UNHOSTED = ("asyncrt: Python futures run on an executor that a Python thread drives -- Executor() "
            "(kind='local') or ForeignExecutor -- as host-queue futures polled by that thread. A "
            "thread-per-core executor's workers poll its tasks, so it runs C futures only (CFuture): "
            "run the Python future on a local executor and spawn its task.c_join() here to wait for it.")

# Untyped entry points for the calls made per task or per step. A typed
# ctypes call converts and checks every argument against its argtypes,
# which costs about as much again as the call itself (~200 ns here); these
# are given arguments that already have their C types (handles, byref
# out-parameters, ctypes integers, small Python ints for C ints) and return
# a C int, the status.
_hostq_future = lib["asyncrt_hostq_future"]
_hostq_take = lib["asyncrt_hostq_take"]
_hostq_complete = lib["asyncrt_hostq_complete"]
_hostq_wake = lib["asyncrt_hostq_wake"]
_spawn = lib["asyncrt_spawn"]
_scope_spawn = lib["asyncrt_scope_spawn"]
_run_step = lib["asyncrt_run_step"]
_task_release = lib["asyncrt_task_release"]


def run_step(executor, max_polls, max_ns):
    """The C step of a local executor (asyncrt_run_step); ENOTSUP on other kinds."""
    polls = c_uint64()
    check(_run_step(executor, c_uint32(max_polls), c_uint64(max_ns), byref(polls)))
    return polls.value


def failure_status(exc):
    """The status a task fails with: an AsyncrtError's own, else EFAILED."""
    if isinstance(exc, AsyncrtError) and exc.status:
        return int(exc.status)
    return Status.EFAILED


def report_ignored(where):
    """An exception in a drop() or a callback from C cannot fail anything:
    print it, as Python does for __del__."""
    print(f"Exception ignored in {where}:", file=sys.stderr)
    traceback.print_exc()


def task_failure(handle):
    """(status, message) of a completed task's failure (asyncrt_task_error_get)."""
    info = _lib.asyncrt_error_info(size=sizeof(_lib.asyncrt_error_info))
    if lib.asyncrt_task_error_get(handle, byref(info)):
        return lib.asyncrt_task_status(handle), None
    return info.status, info.message.decode(errors="replace") if info.message else None


def task_id(handle):
    out = c_uint64()
    check(lib.asyncrt_task_id(handle, byref(out)))
    return out.value


_handle_lock = threading.Lock()

# _Record.cleanup
CLEANUP_NONE = 0
CLEANUP_ASKED = 1  # a CLEANUP event came while a shield section was open
CLEANUP_RUNNING = 2  # cleanup(cx) is being stepped


class _Record(Waker, Context):
    """One Python future run as a task. It is also the task's Context and its
    borrowed Waker (what polls receive), so a spawn makes one object, not three."""

    __slots__ = ("waker", "future", "status", "value", "waiters", "cancelled", "dropped", "handle", "refs", "reported",
                 "ended", "cleanup", "shield", "settle_at_drop", "failures")

    def __init__(self, host, tag, future, failures=None):
        self._host = host
        self._tag = tag
        self._c = None  # borrowed: Waker.clone() makes an owned one
        # Context.waker as a slot, not a property: read at every yield. The
        # cycle is broken when the runtime drops the task (_forget).
        self.waker = self
        self.future = future
        self.status = None  # None: running; 0: ready (value); else failed (value: exception or None)
        self.value = None
        self.waiters = None  # wakers to wake when the status is known
        self.cancelled = False  # cancel requested: poll no more
        self.dropped = False  # the runtime is done with the task
        self.handle = None  # the task handle, shared with its Task (see release)
        self.refs = 0
        self.reported = False  # its end was reported to the runtime: poll no more
        self.ended = None  # (status, value) reported, while settle_at_drop defers the settling
        self.cleanup = CLEANUP_NONE
        self.shield = 0  # open asyncrt.shield() sections
        self.settle_at_drop = False
        self.failures = failures  # its scope's map task id -> exception, for a scope's child

    @property
    def executor(self):
        return self._host.owner()

    def settle(self, status, value):
        self.status = status
        self.value = value
        waiters, self.waiters = self.waiters, None
        for waker in waiters or ():
            waker.wake()

    def outcome(self):
        """The value, or raises the failure; only once `status` is known."""
        if self.status == 0:
            return self.value
        if self.value is not None:
            raise self.value
        raise error(self.status, "the task was cancelled" if self.status == Status.ECANCELLED else "the task failed")

    def release(self, _lock=_handle_lock, _release=_task_release, _forked=_lib.in_forked_child):
        """Gives up one reference to the task handle; the last releases it.
        Nothing in a forked child (the handle is the parent's)."""
        if _forked():
            return
        with _lock:
            self.refs -= 1
            last = self.refs == 0
        if last and self.handle is not None:
            _release(self.handle)


class Host:
    """The Python side of one executor: its handle, and the host queue through
    which a thread that drives the executor runs its Python futures."""

    def __init__(self, executor, owner_ref, run_c, hosted, after_free=None):
        """Takes ownership of `executor`. `run_c(executor, max_polls, max_ns)`
        runs a step of its C side on the calling thread and returns the polls
        made. `hosted`: a Python thread drives it, so it runs Python futures
        (a host queue is single-threaded); otherwise it runs C futures only.
        `after_free()` is called once the executor has been freed."""
        self.executor = executor
        self.hosted = hosted
        self.hostq = None
        if hosted:
            self.hostq = _lib.hostq_p()
            status = lib.asyncrt_hostq_new(executor, byref(self.hostq))
            if status:
                message = lib.asyncrt_last_error().decode(errors="replace")
                lib.asyncrt_executor_free(executor)
                raise error(status, message)
        self.run_c = run_c
        self.after_free = after_free
        self.owner = owner_ref
        self.records = {}
        self.woken = []
        self.done_tags = []
        self.done_statuses = []
        self.backlog = []
        self.events = (c_uint64 * EVENT_BATCH)()
        self._count = c_size_t()
        self._count_ref = byref(self._count)
        self._batch = c_size_t(EVENT_BATCH)
        self._tag_out = c_uint64()  # out-parameters of spawn, reused under `lock`
        self._tag_ref = byref(self._tag_out)
        self._future_ref = byref(_lib.asyncrt_future())
        # Reentrant: close() holds it while the library runs callbacks (a
        # subsystem's cancel or close, a C future's drop) that may spawn.
        self.lock = threading.RLock()
        self.thread = threading.get_ident()
        self.driver = None
        self.closed = False
        self.closing = False  # inside close(), freeing the executor
        self.current = None  # the record being polled
        self._poller = None

    # -- spawning ---------------------------------------------------------

    def spawn(self, future, flags, scope=None, failures=None):
        """Spawns a Python future, into `scope` (an asyncrt_scope handle) if
        given; returns (task handle, record), the record holding a second
        reference to the handle (see _Record.release). `failures`: the scope's
        map of task id -> exception. On failure the future has been dropped, as
        asyncrt_spawn drops it."""
        if _lib.in_forked_child():
            self._drop_future(future)
            _lib.refuse_in_child()
        me = get_ident()
        with self.lock:
            if self.closed or self.closing or not self.hosted or self.driver not in (None, me):
                self._refuse_spawn(future, me)
            future_ref = self._future_ref
            status = _hostq_future(self.hostq, self._tag_ref, future_ref)
            if status:
                self._spawn_failed(status, future)
            tag = self._tag_out.value
            record = _Record(self, tag, future, failures)
            self.records[tag] = record  # stays until its DROP event, even if the spawn fails
            handle = _lib.task_p()
            if scope is None:
                status = _spawn(self.executor, future_ref, flags, byref(handle))
            else:
                status = _scope_spawn(scope, future_ref, flags, byref(handle))
            if status:
                record.future = None
                record.status = status
                self._spawn_failed(status, future)
            record.handle = handle
            record.refs = 2
            return handle, record

    def _refuse_spawn(self, future, me):
        """Raises why this thread cannot spawn a Python future now, having
        dropped it."""
        try:
            self.check_spawn()
            if not self.hosted:
                raise NotSupported(UNHOSTED)
            if self.driver not in (None, me):
                raise Busy("asyncrt: the executor is driven by another thread; spawn from that thread")
        finally:
            self._drop_future(future)

    def _spawn_failed(self, status, future):
        message = lib.asyncrt_last_error().decode(errors="replace")
        self._drop_future(future)
        raise error(status, message)

    def spawn_c(self, future, flags, scope=None):
        """Spawns a CFuture as a C task (no Python in its polls), into `scope`
        if given; returns the task handle. The runtime owns the C future from
        here on. In a forked child it raises Forked and leaves the C future
        alone: its drop would run asyncrt code, which the child must not."""
        _lib.refuse_in_child()
        with self.lock:
            try:
                self.check_spawn()
            except AsyncrtError:
                future.drop()
                raise
            handle = _lib.task_p()
            if scope is None:
                check(lib.asyncrt_spawn(self.executor, byref(future.take()), flags, byref(handle)))
            else:
                check(lib.asyncrt_scope_spawn(scope, byref(future.take()), flags, byref(handle)))
            return handle

    # -- driving ----------------------------------------------------------

    def enter(self):
        """Claims the executor for driving by this thread."""
        _lib.refuse_in_child()
        if current_host() is not None:
            raise Reentrant("asyncrt: an executor cannot be driven from inside a poll or drop of a Python future")
        me = threading.get_ident()
        with self.lock:
            self.check_open()
            if self.driver is not None:
                raise Busy("asyncrt: the executor is already being driven")
            self.driver = self.thread = me

    def leave(self):
        self.driver = None

    def step(self, max_polls, max_ns):
        """One run_step and the batch it produced; returns (C polls, events)."""
        self._flush()
        polls = self.run_c(self.executor, max_polls, max_ns)
        events = self._drain()
        self._flush()
        return polls, events

    def run_all(self):
        """Steps until nothing is runnable; returns the number of C polls."""
        total = 0
        while True:
            polls, events = self.step(STEP_POLLS, 0)
            total += polls
            if not polls and not events:
                return total

    def run_until(self, done, deadline):
        """Steps until done() is true (True) or `deadline` (time.monotonic()) passes
        (False); sleeps on the executor's fd while nothing is runnable.

        The fd is taken before the first step: from then on the library keeps
        a timerfd in it armed for the next timer, and a subsystem's fd in it
        while the subsystem has waiters. A subsystem without an fd is ticked
        after short sleeps instead (BUSY_MIN..BUSY_MAX)."""
        self._watch()
        backoff = 0.0
        busy = None
        while True:
            polls, events = self.step(STEP_POLLS, STEP_NS)
            if done():
                return True
            if polls or events:
                backoff, busy = 0.0, None
                continue
            if busy is None:
                busy = self.tick()[1]
                continue  # what the tick woke runs before any sleep
            slice_ = PARK_SLICE
            if busy:
                backoff = min(max(backoff * 2, BUSY_MIN), BUSY_MAX)
                slice_ = backoff
            else:
                backoff = 0.0
            busy = None
            if deadline is not None:
                slice_ = min(slice_, deadline - time.monotonic())
                if slice_ <= 0:
                    return False
            self._park(slice_)

    def tick(self):
        """asyncrt_executor_tick on the calling thread (the driver): returns
        (next timer's deadline in ns or None, busy)."""
        next_deadline = c_uint64()
        busy = c_int()
        check(lib.asyncrt_executor_tick(self.executor, byref(next_deadline), byref(busy)))
        return (None if next_deadline.value == _lib.UINT64_MAX else next_deadline.value), bool(busy.value)

    def fd(self):
        self.check_open()
        fd = c_int()
        check(lib.asyncrt_executor_fd(self.executor, byref(fd)))
        return fd.value

    def _watch(self):
        if self._poller is None:
            self._poller = select.poll()
            self._poller.register(self.fd(), select.POLLIN)

    def _park(self, seconds):
        self._watch()
        self._poller.poll(max(1, int(seconds * 1000)))

    def _drain(self):
        """Takes every pending event and handles it; returns how many."""
        if self.hostq is None:
            return 0
        handled = 0
        outer = set_current_host(self)
        try:
            if self.backlog:
                events, self.backlog = self.backlog, []
                handled += self._handle(events)
            while True:
                check(_hostq_take(self.hostq, self.events, self._batch, self._count_ref))
                n = self._count.value
                if n:
                    handled += self._handle(self.events[:n])
                if n < EVENT_BATCH:
                    return handled
        finally:
            set_current_host(outer)

    def _handle(self, events):
        records = self.records
        for i, event in enumerate(events):
            tag = event & HOSTQ_TAG_MASK
            record = records.get(tag)
            if record is None:
                continue
            kind = event & HOSTQ_KIND_MASK
            if kind == HOSTQ_DROP:
                del records[tag]
                self._forget(record)
                continue
            if record.reported or record.cancelled:
                continue
            if kind == HOSTQ_CLEANUP and record.cleanup == CLEANUP_NONE:
                # A shield defers it: the future is polled on (this event may stand for a wake too).
                record.settle_at_drop = True
                record.cleanup = CLEANUP_ASKED
            self.current = record
            try:
                # The common case, a plain poll, without _step's call.
                result = record.future.poll(record) if record.cleanup == CLEANUP_NONE else self._step(record)
                if result is PENDING:
                    continue
                if not isinstance(result, Ready):
                    method = "cleanup" if record.cleanup == CLEANUP_RUNNING else "poll"
                    raise TypeError(f"{record.future!r}.{method}() returned {result!r}, not PENDING or Ready(value)")
            except BaseException as exc:
                cleaning = record.cleanup == CLEANUP_RUNNING
                if cleaning and isinstance(exc, AsyncrtError) and exc.status == Status.ECANCELLED:
                    self._finish(tag, record, 0, None)  # the cancellation ran its course
                    continue
                self._finish(tag, record, failure_status(exc), exc)
                if not isinstance(exc, Exception):
                    self.backlog = events[i + 1:]  # handled at the next drain
                    raise
            else:
                self._finish(tag, record, 0, result.value)
            finally:
                self.current = None
        return len(events)

    @staticmethod
    def _step(record):
        """Polls the future, or steps its cleanup once the task was cancelled
        and no shield section is open."""
        if record.cleanup == CLEANUP_NONE or record.shield:
            result = record.future.poll(record)
            if result is not PENDING or record.cleanup == CLEANUP_NONE or record.shield:
                return result
            # The last shield section ended in this poll: the cancel takes effect now.
        record.cleanup = CLEANUP_RUNNING
        cleanup = getattr(record.future, "cleanup", None)
        if cleanup is None:
            return Ready()  # nothing to clean up: dropped next
        return cleanup(record)

    def _finish(self, tag, record, status, value):
        self.done_tags.append(tag)
        self.done_statuses.append(status)
        record.reported = True
        if status and record.failures is not None and record.handle is not None:
            record.failures[task_id(record.handle)] = value
        if record.settle_at_drop:
            record.ended = (status, value)
        else:
            record.settle(status, value)

    def _forget(self, record):
        """The runtime dropped the task's future: settle it if it is not, call
        the Python future's drop() once, and let go of the task handle."""
        record.dropped = True
        record.waker = None  # the cycle to itself
        future, record.future = record.future, None
        if record.status is None:
            if record.settle_at_drop:
                self._settle_from_task(record)
            else:
                record.settle(Status.ECANCELLED, None)
        if record.handle is not None:
            record.release()
        if future is not None:
            self._drop_future(future)

    @staticmethod
    def _settle_from_task(record):
        """Settles with the task's own status: the runtime decides the end of a
        task that opened a scope (ESCOPE) or was cancelled asynchronously."""
        ended_status, ended_value = record.ended or (Status.ECANCELLED, None)
        status = lib.asyncrt_task_status(record.handle) if record.handle is not None else Status.EHANDLE
        if status in (Status.EAGAIN, Status.EHANDLE):  # no C verdict (the executor is gone): the host's
            status = ended_status
        if status == ended_status:
            record.settle(status, ended_value)
        elif status == Status.ECANCELLED:
            record.settle(status, None)
        else:
            status, message = task_failure(record.handle)
            record.settle(status, error(status, message or f"asyncrt: the task failed ({status})"))

    @staticmethod
    def _drop_future(future):
        try:
            drop(future)
        except Exception:
            report_ignored(f"drop() of {future!r}")

    def _flush(self):
        # array.array converts a list in C; a ctypes array built from one
        # (`(c_uint64 * n)(*tags)`) costs ~45 ns an element, a sixth of a yield.
        if self.done_tags:
            tags, statuses = array("Q", self.done_tags), array("i", self.done_statuses)
            self.done_tags, self.done_statuses = [], []
            n = len(tags)
            check(_hostq_complete(self.hostq, (c_uint64 * n).from_buffer(tags), (c_int * n).from_buffer(statuses),
                                  c_size_t(n)))
        if self.woken:
            tags, self.woken = array("Q", self.woken), []
            n = len(tags)
            check(_hostq_wake(self.hostq, (c_uint64 * n).from_buffer(tags), c_size_t(n)))

    # -- closing ----------------------------------------------------------

    def check_open(self):
        if self.closed:
            raise BadHandle("asyncrt: the executor is closed")

    def check_spawn(self):
        self.check_open()
        if self.closing:
            raise Shutdown("asyncrt: the executor is being closed")

    def close(self):
        """Frees the executor (cancelling its tasks), drops their Python futures,
        frees the host queue. Idempotent. A thread-per-core executor whose
        worker did not stop in time is freed all the same, and TimedOut raised.
        In a forked child it only marks the host closed: the executor is the
        parent's, and nothing of asyncrt can run in the child."""
        if _lib.in_forked_child():
            self.closed = True
            return
        with self.lock:
            if self.closed:
                return
            if self.driver is not None:
                raise Busy("asyncrt: cannot close an executor while it is being driven")
            self.closing = True
            try:
                status = lib.asyncrt_executor_free(self.executor)
            finally:
                self.closing = False
            if status not in (0, Status.ETIMEDOUT):
                check(status)
            message = lib.asyncrt_last_error().decode(errors="replace") if status else ""
            self.closed = True
        self.driver = self.thread = threading.get_ident()
        try:
            self.backlog = [event for event in self.backlog if (event & HOSTQ_KIND_MASK) == HOSTQ_DROP]  # no polls now
            self._drain()
        finally:
            self.driver = None
            lib.asyncrt_hostq_free(self.hostq)
            self.hostq = self.executor = self._poller = None
            self.woken, self.done_tags, self.done_statuses = [], [], []
            if self.after_free is not None:
                self.after_free()
        if status:
            raise error(status, message)
