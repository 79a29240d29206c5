"""The host side of an executor: runs Python futures through a host queue.

Each Python future is spawned as a host-queue future (asyncrt_hostq_future,
asyncrt_spawn) under a tag. A step of the driver runs the C executor
(asyncrt_run_step), takes the events it recorded in one batch
(asyncrt_hostq_take) -- POLL: poll the Python future; DROP: call its drop()
and forget it -- and reports back in one batch: the futures that finished
(asyncrt_hostq_complete) and the tasks whose borrowed waker was woken
(asyncrt_hostq_wake). No poll costs a call from C into Python.

Invariants:
- `records` maps tag -> _Record from the spawn until the DROP event;
  `status` is None until the future finished (0, or a failure status) or was
  dropped unfinished (ECANCELLED).
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
from ctypes import byref, c_int, c_size_t, c_uint64

from . import _lib
from ._lib import HOSTQ_DROP, HOSTQ_TAG_MASK, check, lib
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

_thread_state = threading.local()


def run_step(executor, max_polls, max_ns):
    """The C step of a local executor (asyncrt_run_step); ENOTSUP on other kinds."""
    polls = c_uint64()
    check(lib.asyncrt_run_step(executor, max_polls, max_ns, byref(polls)))
    return polls.value


def current_host():
    """The Host whose futures this thread is polling or dropping, or None."""
    return getattr(_thread_state, "host", None)


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


class _Record:
    """One Python future run as a task."""

    __slots__ = ("future", "cx", "status", "value", "waiters", "cancelled", "dropped")

    def __init__(self, future, cx):
        self.future = future
        self.cx = cx
        self.status = None  # None: running; 0: ready (value); else failed (value: exception or None)
        self.value = None
        self.waiters = None  # wakers to wake when the status is known
        self.cancelled = False  # cancel requested: poll no more
        self.dropped = False  # the runtime is done with the task

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
        self._poller = None

    # -- spawning ---------------------------------------------------------

    def spawn(self, future, flags):
        """Spawns a Python future; returns (task handle, record). On failure the
        future has been dropped, as asyncrt_spawn drops it."""
        me = threading.get_ident()
        with self.lock:
            try:
                self.check_spawn()
                if not self.hosted:
                    raise NotSupported(UNHOSTED)
                if self.driver not in (None, me):
                    raise Busy("asyncrt: the executor is driven by another thread; spawn from that thread")
                check(lib.asyncrt_hostq_future(self.hostq, self._tag_ref, self._future_ref))
            except AsyncrtError:
                self._drop_future(future)
                raise
            tag = self._tag_out.value
            record = _Record(future, Context(Waker(self, tag), self.owner))
            self.records[tag] = record  # stays until its DROP event, even if the spawn fails
            handle = _lib.task_p()
            status = lib.asyncrt_spawn(self.executor, self._future_ref, flags, byref(handle))
            if status:
                message = lib.asyncrt_last_error().decode(errors="replace")
                record.future = None
                record.status = status
                self._drop_future(future)
                raise error(status, message)
            return handle, record

    def spawn_c(self, future, flags):
        """Spawns a CFuture as a C task (no Python in its polls); returns the
        task handle. The runtime owns the C future from here on."""
        with self.lock:
            try:
                self.check_spawn()
            except AsyncrtError:
                future.drop()
                raise
            handle = _lib.task_p()
            check(lib.asyncrt_spawn(self.executor, byref(future.take()), flags, byref(handle)))
            return handle

    # -- driving ----------------------------------------------------------

    def enter(self):
        """Claims the executor for driving by this thread."""
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
        outer, _thread_state.host = current_host(), self
        try:
            if self.backlog:
                events, self.backlog = self.backlog, []
                handled += self._handle(events)
            while True:
                check(lib.asyncrt_hostq_take(self.hostq, self.events, EVENT_BATCH, self._count_ref))
                n = self._count.value
                if n:
                    handled += self._handle(self.events[:n])
                if n < EVENT_BATCH:
                    return handled
        finally:
            _thread_state.host = outer

    def _handle(self, events):
        records = self.records
        for i, event in enumerate(events):
            tag = event & HOSTQ_TAG_MASK
            record = records.get(tag)
            if record is None:
                continue
            if event & HOSTQ_DROP:
                del records[tag]
                self._forget(record)
                continue
            if record.status is not None or record.cancelled:
                continue
            try:
                result = record.future.poll(record.cx)
                if result is PENDING:
                    continue
                if not isinstance(result, Ready):
                    raise TypeError(f"{record.future!r}.poll() returned {result!r}, not PENDING or Ready(value)")
            except BaseException as exc:
                self._finish(tag, record, failure_status(exc), exc)
                if not isinstance(exc, Exception):
                    self.backlog = events[i + 1:]  # handled at the next drain
                    raise
            else:
                self._finish(tag, record, 0, result.value)
        return len(events)

    def _finish(self, tag, record, status, value):
        self.done_tags.append(tag)
        self.done_statuses.append(status)
        record.settle(status, value)

    def _forget(self, record):
        """The runtime dropped the task's future: settle it if it never finished,
        and call the Python future's drop() once."""
        record.dropped = True
        future, record.future = record.future, None
        if record.status is None:
            record.settle(Status.ECANCELLED, None)
        if future is not None:
            self._drop_future(future)

    @staticmethod
    def _drop_future(future):
        try:
            drop(future)
        except Exception:
            report_ignored(f"drop() of {future!r}")

    def _flush(self):
        if self.done_tags:
            tags, statuses = self.done_tags, self.done_statuses
            self.done_tags, self.done_statuses = [], []
            n = len(tags)
            check(lib.asyncrt_hostq_complete(self.hostq, (c_uint64 * n)(*tags), (c_int * n)(*statuses), n))
        if self.woken:
            tags, self.woken = self.woken, []
            n = len(tags)
            check(lib.asyncrt_hostq_wake(self.hostq, (c_uint64 * n)(*tags), n))

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
        worker did not stop in time is freed all the same, and TimedOut raised."""
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
            self.backlog = [event for event in self.backlog if event & HOSTQ_DROP]  # no polls now
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
