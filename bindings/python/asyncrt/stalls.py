"""Stall detection: the watchdog that reports a poll running longer than a
threshold (asyncrt.h, "Stall detection").

A report runs on the watchdog's thread, a thread of the library's own that
takes the GIL for the call (ctypes does that for a callback), or on the
thread that calls Executor.check_stalls(). The C side sees one module-level
CFUNCTYPE callback, alive as long as the module, that finds the executor's
Python callable through user_data (a key in `_live`); the finalize callback,
which the library calls once the callable is no longer used, releases it.
A report that raises is printed (as for __del__) and the watchdog goes on.
"""

import itertools
from ctypes import byref, c_uint, sizeof
from typing import NamedTuple, Optional

from ._host import report_ignored
from ._lib import FINALIZE_FN, STALL_FN, asyncrt_stall_config, check, lib


class StallInfo(NamedTuple):
    """A poll that has run at least `duration_ns` (on the executor's clock)."""

    worker: int  # the stuck worker (0 on a local executor)
    task_id: int  # 0: no task's poll (timers, subsystems), or a task that ended before it was named
    task_name: Optional[str]  # Task.name, if it was given one
    duration_ns: int
    poll: Optional[int]  # the address of the task's poll function
    poll_symbol: Optional[str]  # its symbol (dladdr), if the library could name it
    poll_object: Optional[str]  # the file that holds it


def _text(value):
    return value.decode(errors="replace") if value is not None else None


def read_info(info):
    return StallInfo(info.worker, info.task_id, _text(info.task_name), info.duration_ns, info.poll or None,
                     _text(info.poll_symbol), _text(info.poll_object))


_live = {}  # user_data key -> the report callable, from registration until finalize
_keys = itertools.count(1)


@STALL_FN
def _report(info, key):
    fn = _live.get(key)
    if fn is not None:
        try:
            fn(read_info(info.contents))
        except BaseException:
            report_ignored("a stall report")


@FINALIZE_FN
def _finalize(key):
    _live.pop(key, None)


def watch(executor, threshold_ns, report, period_ns):
    """asyncrt_executor_watch_stalls with a Python callable (None: the log);
    period_ns 0: the library's default, STALL_MANUAL: no watchdog thread."""
    config = asyncrt_stall_config()
    lib.asyncrt_stall_config_init_size(byref(config), sizeof(config))
    config.threshold_ns = threshold_ns
    config.period_ns = period_ns
    if report is not None:
        key = next(_keys)
        _live[key] = report
        config.report = _report
        config.user_data = key
        config.finalize = _finalize  # also called when the call fails
    check(lib.asyncrt_executor_watch_stalls(executor, byref(config)))


def check_now(executor):
    reported = c_uint()
    check(lib.asyncrt_executor_check_stalls(executor, byref(reported)))
    return reported.value
