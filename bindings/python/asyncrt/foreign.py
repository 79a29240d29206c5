"""Foreign executors: Python decides when asyncrt's tasks run.

ForeignExecutor has the shape of asyncrt_executor_new_foreign: asyncrt keeps
the tasks (headers, wakers, joins, cancellation) and hands each runnable task
to the executor's `schedule` callback -- here one that appends it to a deque
-- and run_pending() runs them (asyncrt_runnable_run) on the calling thread.

The callbacks are two module-level CFUNCTYPE objects that find the deque
through user_data (a key in `_queues`); the library's finalize callback, once
it will schedule no more, releases the deque.
"""

from __future__ import annotations

import functools
import itertools
from collections import deque
from ctypes import byref, sizeof

from . import _lib
from ._lib import FINALIZE_FN, SCHEDULE_FN, check, lib
from .errors import error
from .executor import BaseExecutor

_queues: dict[int, deque] = {}  # user_data key -> deque of runnables, from creation until finalize
_keys = itertools.count(1)


@SCHEDULE_FN
def _schedule(key, runnable):
    # Any thread, possibly inside asyncrt_runnable_run; a deque append is atomic.
    _queues[key].append(runnable)


@FINALIZE_FN
def _finalize(key):
    _queues.pop(key, None)


def _run_queued(queue, executor, max_polls, max_ns):
    """The C step of the host driver: runs up to `max_polls` queued runnables.
    When the queue runs dry it ticks the executor once (asyncrt_executor_tick:
    due timers fire, one subsystem is polled) and goes on with what that woke:
    a foreign executor's timers and subsystems advance only when its host
    ticks it."""
    ran = 0
    ticked = False
    while ran < max_polls:
        if not queue:
            if ticked:
                break
            check(lib.asyncrt_executor_tick(executor, None, None))
            ticked = True
            continue
        check(lib.asyncrt_runnable_run(queue.popleft()))
        ran += 1
    return ran


def _release_queued(queue):
    # Each runnable must be run or dropped once; its task was cancelled by the free.
    while queue:
        lib.asyncrt_runnable_drop(queue.popleft())


class ForeignExecutor(BaseExecutor):
    """An executor whose runnable tasks wait in a deque until run_pending()
    runs them on the calling thread.

    It runs Python futures (run_pending is the thread that drives their host
    queue, as run() is for a local executor), coroutines and C futures.
    run_pending also ticks it (due timers fire, a subsystem is polled) each
    time the queue runs dry; nothing else does, so a sleep on it ends at the
    first run_pending after its deadline (its clock is CLOCK_MONOTONIC).
    spawn, a waker woken from any thread, and a task waking itself queue a
    runnable; nothing else tells the host: call run_pending() when
    ``pending`` is not 0. There is no block_on (the host drives it: await a
    join from another executor instead), no run_step and no fd. Closing
    cancels the tasks left, dropping their futures on the calling thread, and
    discards the runnables still queued (asyncrt_runnable_drop).
    """

    def __init__(self):
        self._key = key = next(_keys)
        self._queue = _queues[key] = deque()
        vtable = _lib.asyncrt_foreign_vtable(sizeof(_lib.asyncrt_foreign_vtable), _schedule, _finalize)
        executor = _lib.executor_p()
        status = lib.asyncrt_executor_new_foreign(vtable, key, byref(executor))
        if status:
            message = lib.asyncrt_last_error().decode(errors="replace")
            _queues.pop(key, None)
            raise error(status, message)
        # Neither callable may hold self: the finalizer keeps the host alive.
        super().__init__(executor, functools.partial(_run_queued, self._queue), hosted=True,
                         after_free=functools.partial(_release_queued, self._queue))

    @property
    def pending(self) -> int:
        """How many runnables wait for run_pending()."""
        return len(self._queue)

    def queued(self) -> list[int]:
        """The ids of the tasks whose runnables wait, oldest first
        (asyncrt_runnable_task_id; they match Task.id)."""
        return [lib.asyncrt_runnable_task_id(r) for r in list(self._queue)]

    def run_pending(self) -> int:
        """Runs queued runnables, and the Python futures they poll, until none is
        queued; returns how many ran. One thread at a time."""
        host = self._host
        host.enter()
        try:
            return host.run_all()
        finally:
            host.leave()

    def __repr__(self):
        return f"<asyncrt.ForeignExecutor pending={self.pending}{' closed' if self.closed else ''}>"
