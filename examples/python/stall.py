"""stall.py -- the stall watchdog and the metrics from Python.

A C task whose poll blocks its worker (here a poll written with ctypes that
sleeps, as a blocking call in a C library would) is reported by the
watchdog while it is still inside: task id, name, worker, how long. The
poll stays until the report has come (at most 5 s), so the output does not
depend on timing. Then the executor's counters. Run from the repository
root after `make lib`:

    python3 examples/python/stall.py
"""

import sys
import threading
from ctypes import addressof, sizeof
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))

import asyncrt  # noqa: E402
from asyncrt import _lib  # noqa: E402

reported = threading.Event()


def on_stall(info):
    print(f"report: worker {info.worker} task {info.task_id} {info.task_name!r} has run "
          f"{info.duration_ns / 1e6:.1f} ms or more")
    reported.set()


def slow_poll(_self, _cx, _out):
    reported.wait(5.0)  # blocks the worker: what a poll must never do
    return 1  # ASYNCRT_POLL_READY


poll = _lib.POLL_FN(slow_poll)
drop = _lib.DROP_FN(lambda _self: None)
vtable = _lib.asyncrt_future_vtable(sizeof(_lib.asyncrt_future_vtable), 0, poll, drop)

with asyncrt.Executor(kind="threads", workers=2) as ex:
    ex.watch_stalls(threshold=0.010, report=on_stall)  # report=None: a line on stderr
    task = ex.spawn(asyncrt.CFuture(None, addressof(vtable)))
    task.name = "slow"
    ex.block_on(task.c_join(), timeout=10)
    ex.shutdown()  # the counters are final once the workers stopped
    stats = ex.stats()
    print(f"tasks: {stats.tasks_spawned} spawned, {stats.tasks_completed} completed; "
          f"stalls: {stats.stalls}")
    ok = reported.is_set() and stats.stalls >= 1
print("stall: success" if ok else "stall: FAILED")
sys.exit(0 if ok else 1)
