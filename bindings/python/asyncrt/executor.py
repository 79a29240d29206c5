"""Executors and the tasks they run."""

from __future__ import annotations

import atexit
import enum
import itertools
import json
import sys
import threading
import time
import weakref
from ctypes import byref, c_uint, c_uint64, create_string_buffer, pointer, sizeof
from collections.abc import Generator
from typing import Any, NamedTuple

from . import _lib, hooks as thread_hooks, scopes, stalls, subsystem as subsystems_mod
from ._current import current_host, running_asyncio_loop
from ._host import STEP_POLLS, UNHOSTED, Host, report_ignored, run_step
from ._lib import check, lib
from .cfuture import CFuture
from .errors import BadHandle, Busy, NotSupported, Reentrant, Status, TimedOut, WouldBlock, error, to_status
from .futures import PENDING, Future, Ready, as_future, asyncio_await, drop, yield_to_runner
from .subsystem import read_stats
from .timers import duration_ns, positive_ns


class Stats(NamedTuple):
    """An executor's counters: its workers' summed (see WorkerStats), and its
    settings. For every reading, tasks_spawned == tasks_completed +
    tasks_failed + tasks_cancelled + tasks_live."""

    tasks_spawned: int
    tasks_live: int  # not yet ended (now)
    polls: int
    memory_in_use: int  # bytes of task memory held now
    memory_limit: int  # the cap, 0 for none
    workers: int  # threads that run its tasks: 1 for a local executor
    tasks_completed: int  # ended with their value
    tasks_failed: int  # ended with an exception or another failure (not a cancellation)
    tasks_cancelled: int  # ended cancelled
    wakes_local: int
    wakes_remote: int  # the workers' `wakes`
    steals: int
    parks: int
    parked_ns: int
    ticks: int
    budget_yields: int
    timers_armed: int  # now
    timers_fired: int
    ops_in_flight: int  # subsystem operations in flight now
    stalls: int  # polls the stall watchdog reported


class WorkerStats(NamedTuple):
    """One worker's counters (asyncrt_worker_stats); exact once the executor
    is shut down. A local executor's worker 0 is the thread that drives it."""

    polls: int  # polls this worker made
    wakes: int  # tasks queued from outside its run loop (other threads; Python futures' wakes)
    steals: int  # Send tasks it took from other workers
    parks: int  # times it slept in the kernel (a thread-per-core worker)
    parked_ns: int  # time it spent asleep
    ticks: int  # ticks of its timers and subsystems
    wakes_local: int  # tasks queued by a wake inside its run loop (a C task waking itself: once per poll)
    budget_yields: int  # ticks forced by its budget while tasks kept it busy
    timers_armed: int  # now
    timers_fired: int
    ops_in_flight: int  # subsystem operations in flight on it now
    stalls: int  # its polls that the stall watchdog reported
    tasks_spawned: int  # tasks spawned onto it (a stolen Send task stays counted here)
    tasks_live: int
    tasks_completed: int
    tasks_failed: int
    tasks_cancelled: int
    memory_in_use: int


def _read(cls, stats):
    return cls(*(getattr(stats, name) for name in cls._fields))


class Capability(enum.IntFlag):
    """What an executor can do (ASYNCRT_CAP_*, value for value); see capabilities()."""

    SPAWN_LOCAL = 1 << 0  # accepts local (non-Send) tasks
    SPAWN_SEND = 1 << 1  # accepts spawn(..., send=True)
    WORK_STEALING = 1 << 2  # Send tasks may move to an idle thread
    TASK_REMOVAL = 1 << 3  # cancel() takes a queued task out
    STEPPED = 1 << 4  # a host drives it: run, run_step, fd
    BLOCK_ON = 1 << 5  # block_on works
    MULTI_THREAD = 1 << 6  # tasks run on more than one thread
    PLACEMENT = 1 << 7  # spawn(..., worker=i) places a task
    SHUTDOWN = 1 << 8  # shutdown() works
    TIMERS = 1 << 9  # timers: sleep, timeout
    SUBSYSTEMS = 1 << 10  # register_subsystem works
    TEST_CLOCK = 1 << 11  # made with a test clock: advance_clock works
    SCOPES = 1 << 12  # scopes, asynchronous cancel, shields and scope deadlines work


KINDS = {"local": _lib.EXECUTOR_LOCAL, "threads": _lib.EXECUTOR_THREADS}
DEFAULT_SHUTDOWN_TIMEOUT = 5.0  # seconds: the library's default shutdown_timeout
CLOCKS = {"monotonic": _lib.CLOCK_MONOTONIC, "test": _lib.CLOCK_TEST}
SHUTDOWN_MODES = {"graceful": _lib.SHUTDOWN_GRACEFUL, "immediate": _lib.SHUTDOWN_IMMEDIATE}


def timeout_ns(seconds: float | None) -> int:
    """A timeout in seconds (None: no bound) as asyncrt's nanoseconds."""
    return _lib.NO_TIMEOUT if seconds is None else max(0, int(seconds * 1e9))


def spawn_flags(send: bool, worker: int | None) -> int:
    flags = _lib.SPAWN_SEND if send else _lib.SPAWN_LOCAL
    if worker is not None:
        if worker < 0:
            raise ValueError(f"worker must be a worker index, not {worker}")
        flags |= _lib.spawn_worker(worker)
    return flags


class BaseExecutor:
    """What every executor kind shares: spawning, counters, capabilities,
    shutdown and closing. Subclasses create the handle and a Host for it."""

    def __init__(self, executor, run_c, hosted, after_free=None):
        self._host = Host(executor, weakref.ref(self), run_c, hosted, after_free)
        self._finalizer = weakref.finalize(self, self._host.close)
        _track(self)

    def close(self):
        """Frees the executor, cancelling the tasks still running; idempotent.
        Raises Busy while it is being driven."""
        self._host.close()
        self._finalizer.detach()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def closed(self) -> bool:
        """Whether close() has freed the executor."""
        return self._host.closed

    def _live(self):
        self._host.check_open()
        return self._host.executor

    def stats(self) -> Stats:
        """The executor's counters, read while it runs."""
        stats = _lib.asyncrt_executor_stats(size=sizeof(_lib.asyncrt_executor_stats))
        check(lib.asyncrt_executor_stats_get(self._live(), byref(stats)))
        return _read(Stats, stats)

    def worker_stats(self, worker: int) -> WorkerStats:
        """Worker `worker`'s counters, read while it runs (a local executor has
        worker 0 only). InvalidArgument past the last worker."""
        stats = _lib.asyncrt_worker_stats(size=sizeof(_lib.asyncrt_worker_stats))
        check(lib.asyncrt_worker_stats_get(self._live(), worker, byref(stats)))
        return _read(WorkerStats, stats)

    # -- stall detection ----------------------------------------------------

    def watch_stalls(self, threshold=0.1, report=None, period=None, manual=False):
        """Reports a poll (or drop) of this executor's tasks that has run
        `threshold` seconds on the executor's clock, once, while it still runs:
        `report(info)` gets a StallInfo (worker, task_id, task_name,
        duration_ns, poll, poll_symbol, poll_object); without `report` the
        library logs one line on standard error. A worker stuck in its timers
        or a subsystem's callbacks is reported with task_id 0.

        A watchdog thread samples the workers every `period` seconds of real
        time (None: threshold/4 within 1 ms .. 1 s); `manual=True` starts no
        thread: only check_stalls() samples. The report runs on that thread,
        taking the GIL, or on check_stalls()'s caller; it must not wait for
        the stalled task, nor close, re-watch or check this executor
        (Reentrant). A call replaces the previous watch; threshold None or 0
        turns it off. Under a test clock (``clock="test"``) a poll runs long
        when advance_clock() moves the clock between two check_stalls().
        Python futures are polled by the host between the executor's runs, so
        a long Python poll is not seen: C futures' polls are. NotSupported on a
        foreign executor."""
        if (threshold or 0) < 0 or (period or 0) < 0:
            raise ValueError("threshold and period are durations in seconds, not negative")
        threshold_ns = 0 if not threshold else positive_ns(threshold)
        period_ns = _lib.STALL_MANUAL if manual else (0 if period is None else positive_ns(period))
        stalls.watch(self._live(), threshold_ns, report, period_ns)

    def check_stalls(self):
        """Samples the workers once on this thread, as the watchdog does, and
        makes the reports that are due (on this thread); returns how many."""
        return stalls.check_now(self._live())

    def capabilities(self) -> Capability:
        """What this executor can do (asyncrt_executor_capabilities)."""
        caps = c_uint()
        check(lib.asyncrt_executor_capabilities(self._live(), byref(caps)))
        return Capability(caps.value)

    # -- time ---------------------------------------------------------------

    def now_ns(self) -> int:
        """The executor's clock in nanoseconds (an int): CLOCK_MONOTONIC, or a
        test clock where advance_clock left it (it starts at 0)."""
        now = c_uint64()
        check(lib.asyncrt_executor_now(self._live(), byref(now)))
        return now.value

    def now(self) -> float:
        """The executor's clock in seconds (a float); see now_ns()."""
        return self.now_ns() / 1e9

    def advance_clock(self, seconds: float) -> None:
        """Moves a test clock (``clock="test"``) forward by `seconds` (rounded
        to the nearest nanosecond) and wakes the executor: the timers now due
        fire at its next run (run, run_step, block_on; a thread-per-core
        executor's workers at once). InvalidArgument for any other clock.
        Any thread."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward, not by {seconds} s")
        check(lib.asyncrt_clock_advance(self._live(), duration_ns(seconds)))

    def timer_stats(self) -> subsystems_mod.SubsystemStats:
        """The counters of the executor's timers, summed over its workers:
        polls are ticks that looked at due timers, completions timers fired,
        waiters timers armed now (a SubsystemStats)."""
        stats = _lib.asyncrt_subsystem_stats(size=sizeof(_lib.asyncrt_subsystem_stats))
        check(lib.asyncrt_timer_stats_get(self._live(), byref(stats)))
        return read_stats(stats)

    def tick(self) -> tuple[int | None, bool]:
        """One tick of the executor's timers and subsystems on the calling
        thread: fires the timers due and polls one subsystem (by weighted round
        robin), as the executor does between polls of its tasks; the tasks they
        wake run at the next run. Returns (the clock time in ns at which the
        next timer is due, or None; whether a subsystem without an fd has
        waiters, so it wants more ticks). Local and foreign executors, one
        driving thread at a time; NotSupported on a thread-per-core one, whose
        workers tick themselves."""
        host = self._host
        host.enter()
        try:
            return host.tick()
        finally:
            host.leave()

    # -- subsystems ---------------------------------------------------------

    def register_subsystem(self, subsystem: Any, priority: int = 1, waiter_cap: int = 64, poll_budget: int = 64,
                           worker: int | None = None, fd: Any = -1, name: str | None = None) -> subsystems_mod.Subsystem:
        """Registers a subsystem written in Python (see asyncrt.subsystem): an
        object with poll(scx, budget) and optionally submit(scx, op),
        cancel(scx, op), waiters_changed(scx, n) and close(). Returns its
        Subsystem handle.

        Each tick of a worker polls one subsystem, by smooth weighted round
        robin over priority (1..1000) x min(waiters, waiter_cap); one without
        waiters is never polled. poll receives `poll_budget`. `worker`: a
        worker index, or None for every worker. `fd` (an int or an object with
        fileno(); -1 for none): readable when poll has something to reap,
        watched edge-triggered while there are waiters, and must stay open
        until close(). `name` defaults to the class name."""
        return subsystems_mod.register(self, subsystem, priority, waiter_cap, poll_budget, worker, fd, name)

    def shutdown(self, mode: str = "graceful", timeout: float | None = None) -> None:
        """Stops a thread-per-core executor's workers (NotSupported on other
        kinds); the executor stays open until close(). "immediate" cancels every
        task now; "graceful" lets them finish and cancels the rest once
        `timeout` seconds (None: no bound) have passed. Afterwards spawns raise
        Shutdown. TimedOut if a worker stuck in a poll outlasted `timeout`."""
        if mode not in SHUTDOWN_MODES:
            raise ValueError(f"mode must be one of {sorted(SHUTDOWN_MODES)}, not {mode!r}")
        check(lib.asyncrt_executor_shutdown(self._live(), SHUTDOWN_MODES[mode], timeout_ns(timeout)))

    # -- scopes ---------------------------------------------------------------

    def dump(self, format: str = "text") -> str:
        """A snapshot of the executor's tasks and scopes (asyncrt_executor_dump)
        as a str: "text", an indented tree, one line per task or scope (id,
        name, state, worker, what it waits on); or "json", one object
        {"tasks": [...], "scopes": [...]}. Consistent per task, not as a whole:
        the workers are never stopped. Any thread, also inside a poll."""
        return scopes.dump(self._live(), format)

    def dump_json(self) -> dict[str, Any]:
        """dump("json"), parsed."""
        return json.loads(self.dump("json"))

    def spawn(self, future: Any, send: bool = False, worker: int | None = None) -> Task:
        """Runs a future as a task: a Python future (an object with poll(cx)), a
        coroutine or an awaitable, or a CFuture (run as a C task). `send=True`
        lets the task move between the executor's threads; `worker=i` places it
        on worker i of a thread-per-core executor. If the spawn fails, the
        future has been dropped."""
        if send or worker is not None or isinstance(future, CFuture):
            return self._spawn(future, send, worker)
        return Task(self, *self._host.spawn(as_future(future), _lib.SPAWN_LOCAL))  # the common case, directly

    def _spawn(self, future, send, worker, scope=None, failures=None):
        """spawn, into `scope` (an asyncrt_scope handle) if given; `failures`:
        the scope's map task id -> exception."""
        flags = spawn_flags(send, worker)
        if isinstance(future, CFuture):
            return Task(self, self._host.spawn_c(future, flags, scope), None)
        handle, record = self._host.spawn(as_future(future), flags, scope, failures)
        return Task(self, handle, record)


class Executor(BaseExecutor):
    """An asyncrt executor of kind "local" (the default) or "threads".

    **local**: runs on the thread that drives it (run, run_step, block_on, or
    an event loop through fd()), one thread at a time; spawn from that thread,
    or from any thread while nobody drives. It runs Python futures, coroutines
    and C futures.

    **threads** (thread-per-core): `workers` threads (0: one per CPU) poll its
    tasks; run, run_step and fd raise NotSupported. It runs C futures only
    (CFuture, ``task.join()`` of a C task): a Python future is polled by the
    Python thread that drives its executor's host queue, and these workers are
    no Python thread, so spawning one raises NotSupported (the future is
    dropped). Run Python futures on a local executor and spawn their
    ``task.c_join()`` here to make worker tasks wait for them. block_on(C
    future) waits on the calling thread, with the GIL released, while a worker
    runs it. `pin` pins worker i to the i-th CPU; `spin_ns` is how long an
    idle worker spins before it sleeps (None: the library's default);
    `budget_polls`/`budget_ns` bound a worker's run between its control
    duties (0: default); `shutdown_timeout` bounds, in seconds, how long
    close() waits for the workers (None: the library's default); `hooks` is a
    ThreadHooks whose callables run on the workers, taking the GIL.

    ``memory_limit`` caps the bytes of task memory held at once (0: no cap); a
    spawn past it raises LimitExceeded. Closing cancels the tasks still
    running and drops their futures.

    ``clock`` is "monotonic" (the default: CLOCK_MONOTONIC) or "test": a clock
    that starts at 0 and stands still until advance_clock() moves it, so
    time-dependent code (sleep, timeout) runs deterministically. Either kind.
    """

    def __init__(self, memory_limit=0, *, kind="local", workers=0, pin=False, spin_ns=None, budget_polls=0,
                 budget_ns=0, shutdown_timeout=None, hooks=None, clock="monotonic", subsystems=()):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, not {kind!r}")
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {sorted(CLOCKS)}, not {clock!r}")
        threads_options = (workers, pin, spin_ns is not None, budget_polls, budget_ns, shutdown_timeout is not None,
                           hooks is not None)
        if kind == "local" and any(threads_options):
            raise ValueError("workers, pin, spin_ns, budget_polls, budget_ns, shutdown_timeout and hooks "
                             "apply to kind='threads' only")
        if shutdown_timeout is not None and shutdown_timeout <= 0:
            raise ValueError("shutdown_timeout must be positive (None: the library's default)")
        config = _lib.asyncrt_executor_config()
        lib.asyncrt_executor_config_init_size(byref(config), sizeof(config))  # the 0.3 struct, clock included
        config.kind = KINDS[kind]
        config.clock = CLOCKS[clock]
        config.memory_limit = memory_limit
        config.workers = workers
        config.flags = _lib.EXECUTOR_PIN if pin else 0
        if spin_ns is not None:
            config.spin_ns = spin_ns
        config.budget_polls = budget_polls
        config.budget_ns = budget_ns
        if shutdown_timeout is not None:
            config.shutdown_timeout_ns = max(1, timeout_ns(shutdown_timeout))
        hooks_key = None
        if kind == "threads":
            # Hooks even when none were given: their finalize says when the
            # workers are gone, which interpreter exit waits for (_at_exit).
            c_hooks, hooks_key = thread_hooks.register(hooks or thread_hooks.ThreadHooks())
            config.hooks = pointer(c_hooks)  # copied by the library
        # Static subsystems: each an object, or (object, {register_subsystem
        # keyword: value}); registered by asyncrt_executor_new itself, in order.
        static = []
        for entry in subsystems:
            impl, options = entry if isinstance(entry, tuple) else (entry, {})
            static.append(subsystems_mod.prepare(impl, **options))
        if static:
            configs = (_lib.asyncrt_subsystem_config * len(static))(*(c for c, _, _ in static))
            handles = (_lib.subsystem_p * len(static))()
            config.subsystems = configs
            config.subsystem_count = len(static)
            config.subsystem_handles = handles
        executor = _lib.executor_p()
        status = lib.asyncrt_executor_new(config, byref(executor))
        if status:
            message = lib.asyncrt_last_error().decode(errors="replace")
            if hooks_key is not None:
                thread_hooks.release(hooks_key)
            raise error(status, message)
        self.kind = kind
        self.clock = clock
        # How long a timed-out block_on waits for a worker to drop the future.
        self._drop_bound = shutdown_timeout if shutdown_timeout is not None else DEFAULT_SHUTDOWN_TIMEOUT
        super().__init__(executor, run_step, hosted=kind == "local")
        #: the Subsystem handles of `subsystems`, in order
        self.subsystems = [subsystems_mod.Subsystem(self, handles[i], reg, options.get("worker"))
                           for i, ((_, _, reg), entry) in enumerate(zip(static, subsystems))
                           for options in [entry[1] if isinstance(entry, tuple) else {}]]

    def scope(self, timeout: float | None = None, deadline: float | None = None, collect_all: bool = False,
              shield: bool = False, name: str | None = None, cleanup_timeout: float | None = None,
              join_timeout: float | None = None) -> scopes.Scope:
        """A scope at the top of this executor, for ``with``: its tasks
        (``s.spawn``) are waited for when the block ends, by block_on on the
        calling thread. See asyncrt.Scope."""
        return scopes.Scope(self, timeout=timeout, deadline=deadline, collect_all=collect_all, shield=shield,
                            name=name, cleanup_timeout=cleanup_timeout, join_timeout=join_timeout)

    def fd(self) -> int:
        """A descriptor that is readable while the executor has work to do
        (level-triggered): for select/poll or asyncio's loop.add_reader."""
        return self._host.fd()

    def run_step(self, max_polls: int = STEP_POLLS, max_ns: int = 0) -> int:
        """Runs at most `max_polls` polls and about `max_ns` ns (0: no bound),
        handles the Python futures they polled, and returns the number of
        polls. Never sleeps."""
        host = self._host
        host.enter()
        try:
            return host.step(max_polls, max_ns)[0]
        finally:
            host.leave()

    def run(self) -> int:
        """Runs tasks until none is runnable; returns the number of polls.
        Never sleeps."""
        host = self._host
        host.enter()
        try:
            return host.run_all()
        finally:
            host.leave()

    def block_on(self, future: Any, timeout: float | None = None) -> Any:
        """Runs `future` (a future, coroutine, awaitable, CFuture or Task) to
        completion and returns its value, sleeping while nothing is runnable. A
        local executor runs its other tasks meanwhile; a thread-per-core one
        runs a C future on a worker while this thread waits. After `timeout`
        seconds the future is cancelled (a Task passed in is not: only the wait
        ends) and TimedOut is raised.

        The wait sleeps in slices of at most PARK_SLICE, so a signal handler
        -- Ctrl-C's KeyboardInterrupt -- runs while it waits; an exception
        it raises ends the wait, cancels the future (not a Task passed in)
        and propagates."""
        if not self._host.hosted:
            return self._block_on_c(future, timeout)
        return self._wait(as_future(future), timeout)

    def _wait(self, future, timeout, on_timeout=None, on_error=None, drop_bound=None):
        """Runs `future` as a task on this (hosted) executor until it is
        dropped; block_on's core. At the timeout, on_timeout() (default:
        cancel the task) ends it, and TimedOut is raised once it is dropped,
        after at most `drop_bound` more seconds (None: no bound). on_error()
        runs when the wait ends with an exception."""
        host = self._host
        host.enter()
        try:
            handle, record = host.spawn(future, _lib.SPAWN_LOCAL)
            try:
                deadline = None if timeout is None else time.monotonic() + timeout
                if not host.run_until(lambda: record.dropped, deadline):
                    (on_timeout or (lambda: _cancel(handle, record)))()
                    bound = None if drop_bound is None else time.monotonic() + drop_bound
                    if not host.run_until(lambda: record.dropped, bound):
                        _cancel(handle, record)  # the wait ends: the task keeps its cancel
                        host.run_until(lambda: record.dropped, None)
                    if record.status == Status.ECANCELLED:
                        raise TimedOut(f"asyncrt: block_on timed out after {timeout} s")
            except BaseException:
                if on_error is not None:
                    on_error()
                _cancel(handle, record)
                raise
            finally:
                record.release()
            return record.outcome()
        finally:
            host.leave()

    def _block_on_c(self, future, timeout):
        """block_on where the executor's own threads run the future: C only.

        A C future is spawned as a Send task and this thread waits for the
        task's C join on a local executor of its own (_waiter), as block_on of
        a local executor waits: in slices, so KeyboardInterrupt reaches it. A
        single asyncrt_block_on would sleep in the library until the future
        ended, with no signal handler running meanwhile. At the timeout, or
        when an exception ends the wait, the task is cancelled; a timed-out
        wait ends once the worker dropped the future (within the executor's
        shutdown_timeout), as asyncrt_block_on's does."""
        of_task = isinstance(future, Task)
        if of_task:
            future = future.join()
        if not isinstance(future, CFuture):
            drop(as_future(future))
            raise NotSupported(UNHOSTED)
        if current_host() is not None:
            future.drop()
            raise Reentrant("asyncrt: block_on cannot wait inside a poll or drop of a Python future")
        if of_task:  # its C join: when the wait ends, the task runs on
            return _waiter()._wait(future, timeout)
        return self._run_c(future, timeout)

    def _run_c(self, future, timeout):
        """_block_on_c of a C future: its Send task and the wait for its join."""
        task = self._host.spawn_c(future, _lib.SPAWN_SEND)  # takes the future
        cancel = lambda: lib.asyncrt_task_cancel(task)  # noqa: E731
        try:
            join = _lib.asyncrt_future()
            check(lib.asyncrt_task_join(task, byref(join)))
            return _waiter()._wait(CFuture(join), timeout, on_timeout=cancel, on_error=cancel,
                                   drop_bound=self._drop_bound)
        except BaseException:
            cancel()  # again is harmless; covers an exception before the wait began
            raise
        finally:
            lib.asyncrt_task_release(task)

    def __repr__(self):
        return f"<asyncrt.Executor {self.kind}{' closed' if self.closed else ''}>"


def _cancel(handle, record):
    if record is not None:
        if record.status is not None:
            return
        record.cancelled = True
    check(lib.asyncrt_task_cancel(handle))


class Task:
    """A spawned future. ``await task`` (in a coroutine) or ``task.join()``
    (a future) waits for its value; ``close()`` releases the handle and
    leaves the task running, detached.

    A task of a CFuture (a C task) has no Python value: result() returns None
    once it succeeded, and join() is its C join future (``c_join()``)."""

    __slots__ = ("executor", "_handle", "_record", "_name")

    def __init__(self, executor, handle, record):
        self.executor = executor
        self._handle = handle
        self._record = record  # None for a C task; else it shares the handle (see _host._Record)
        self._name = None

    def close(self):
        """Releases the handle; idempotent. The task keeps running."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        if self._record is not None:
            self._record.release()
        else:
            check(lib.asyncrt_task_release(handle))

    def __del__(self, _release=lib.asyncrt_task_release):
        # _release is bound at definition: module globals may be gone at shutdown.
        if getattr(self, "_handle", None) is not None:
            record = self._record
            if record is not None:
                record.release()
            else:
                _release(self._handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _live(self):
        if self._handle is None:
            raise BadHandle("asyncrt: the task handle is closed")
        return self._handle

    @property
    def id(self) -> int:
        """Unique within the executor, never 0."""
        task_id = c_uint64()
        check(lib.asyncrt_task_id(self._live(), byref(task_id)))
        return task_id.value

    @property
    def status(self) -> Status | int:
        """Status.EAGAIN while running; OK once it completed; ECANCELLED or its
        failure status otherwise."""
        handle = self._live()
        _lib.refuse_in_child()  # the library's answer would be EFORKED, not a task status
        status = None if self._record is None else self._record.status
        if status is None:
            status = lib.asyncrt_task_status(handle)
        return to_status(status)

    def done(self) -> bool:
        """Whether the task has ended: completed, failed or cancelled."""
        return self.status != Status.EAGAIN

    def result(self) -> Any:
        """The value; raises what the future raised, Cancelled if the task was
        cancelled, or WouldBlock while it runs."""
        handle, record = self._live(), self._record
        if record is not None and record.status is not None:
            return record.outcome()
        status = lib.asyncrt_task_status(handle)
        if status == Status.EAGAIN:
            raise WouldBlock("asyncrt: the task has not completed")
        if record is None and status == Status.OK:
            return None
        raise error(status, "asyncrt: the task did not complete")

    def cancel(self, cleanup_timeout: float | None = None) -> None:
        """Requests cancellation. Without `cleanup_timeout` (or with 0): the
        future is polled no more and is dropped the next time the executor
        runs. With it (seconds on the executor's clock; asyncrt_task_cancel_ex):
        the task's scopes are cancelled and drained first, then its future's
        cleanup runs -- for a coroutine, Cancelled is thrown in where it
        waits, and its ``finally`` blocks may await -- until it ends or the
        time runs out; then the future is dropped. Does nothing once the task
        finished."""
        if cleanup_timeout is None or duration_ns(cleanup_timeout) == 0:
            _cancel(self._live(), self._record)
            return
        handle, record = self._live(), self._record
        if record is not None and (record.status is not None or record.reported):
            return
        check(lib.asyncrt_task_cancel_ex(handle, positive_ns(cleanup_timeout)))

    @property
    def name(self) -> str | None:
        """The name given to the task (shown by Executor.dump), or None."""
        return self._name

    @name.setter
    def name(self, name: str | None) -> None:
        check(lib.asyncrt_task_set_name(self._live(), None if name is None else name.encode()))
        self._name = name

    def join(self) -> Future | CFuture:
        """A future whose value is the task's value (or that raises its failure).
        For a C task: its C join future, as c_join()."""
        self._live()
        if self._record is None:
            return self.c_join()
        return _Join(self.executor, self._record)

    def c_join(self) -> CFuture:
        """The task's C join future (asyncrt_task_join), a CFuture that any
        executor can run, a thread-per-core one included: it completes when the
        task does and carries its status (a Python value stays with
        join()/result()). One per task: a second call raises Busy."""
        future = _lib.asyncrt_future()
        check(lib.asyncrt_task_join(self._live(), byref(future)))
        return CFuture(future)

    def __await__(self) -> Generator[Any, Any, Any]:
        if running_asyncio_loop() is not None:
            return asyncio_await(self)
        return yield_to_runner(self.join())

    def __repr__(self):
        if self._handle is None:
            return "<asyncrt.Task closed>"
        status = self.status
        return f"<asyncrt.Task id={self.id} {getattr(status, 'name', status)}>"


class _Join(Future):
    __slots__ = ("_executor", "_record", "_waker")

    def __init__(self, executor, record):
        self._executor = executor
        self._record = record
        self._waker = None

    def poll(self, cx):
        record = self._record
        if record.status is not None:
            self._waker = None
            return Ready(record.outcome())
        if self._waker is None:
            waker = cx.waker
            if cx.executor is not self._executor:
                waker = waker.clone()  # the other executor may settle the task on another thread
            self._waker = waker
            if record.waiters is None:
                record.waiters = []
            record.waiters.append(waker)
            if record.status is not None:  # settled by another thread meanwhile
                return self.poll(cx)
        return PENDING

    def drop(self):
        waker, self._waker = self._waker, None
        waiters = self._record.waiters
        if waker is not None and waiters and waker in waiters:
            waiters.remove(waker)
            waker.drop()


# ---- interpreter exit ------------------------------------------------------
# Workers call into Python -- thread hooks, subsystems on their executor,
# drops of Python-owned C futures, C futures with Python functions -- taking
# the GIL from threads Python never made. Once the interpreter's finalization
# has begun CPython lets no such thread run Python: it ends the thread
# (CPython 3.13 and before) or blocks it forever (3.14), with the worker's
# executor in the middle of a call. So at exit, before finalization, asyncrt
# closes every executor still open, newest first, and waits until the
# workers of every thread-per-core executor are gone (their hooks finalized):
# after that nothing of asyncrt calls into Python from a thread of its own.
# A worker stuck in a poll past its executor's shutdown_timeout gets
# EXIT_WAIT more seconds; if it is still stuck then, stderr says so, and a
# callback it makes later does not run.
EXIT_WAIT = 5.0
_open = weakref.WeakValueDictionary()  # creation number -> executor not garbage yet
_created = itertools.count()
_exit_registered = False


def _track(executor):
    """Remembers `executor` for _at_exit. The handler is registered after the
    first executor's weakref.finalize (which registers weakref's own exit
    handler), so it runs before weakref's: atexit runs the newest first."""
    global _exit_registered
    _open[next(_created)] = executor
    if not _exit_registered:
        _exit_registered = True
        atexit.register(_at_exit)


def _at_exit():
    if _lib.in_forked_child():  # the executors and workers are the parent's
        return
    for executor in reversed(list(_open.values())):
        try:
            executor.close()
        except TimedOut:
            pass  # a worker stuck in a poll: waited for below
        except Busy:
            pass  # driven by a thread still running (a daemon thread): left to it
        except Exception:
            report_ignored(f"closing {executor!r} at exit")
    left = thread_hooks.wait_finalized(EXIT_WAIT)
    if left:
        sys.stderr.write(f"asyncrt: at exit, workers of {left} thread-per-core executor(s) were still inside a poll "
                         f"{EXIT_WAIT} s after their shutdown; a call they make into Python from now on will not "
                         f"run\n")


_waiting = threading.local()


def _waiter():
    """This thread's own local executor, on which block_on of a thread-per-core
    executor waits for its task's C join. Made at the first such wait, closed
    when the thread ends (or at exit)."""
    executor = getattr(_waiting, "executor", None)
    if executor is None or executor.closed:
        executor = _waiting.executor = Executor()
    return executor


def spawn(future: Any) -> Task:
    """Spawns onto the executor whose future is being polled on this thread
    (inside a poll or a coroutine); see Executor.spawn."""
    host = current_host()
    if host is None:
        raise RuntimeError("asyncrt.spawn() works inside a poll; elsewhere use Executor.spawn()")
    executor = host.owner()
    if isinstance(future, CFuture):
        return executor.spawn(future)
    return Task(executor, *host.spawn(as_future(future), _lib.SPAWN_LOCAL))  # Executor.spawn's common case


def block_on(future: Any, timeout: float | None = None) -> Any:
    """Runs `future` on a new executor, closed afterwards; see Executor.block_on."""
    with Executor() as executor:
        return executor.block_on(future, timeout)
