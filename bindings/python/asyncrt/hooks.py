"""Thread hooks of a thread-per-core executor, written in Python.

Every hook runs on a worker thread and takes the GIL for the call (ctypes
does that for a callback), so a worker waits while another Python thread
holds the GIL: keep hooks short, and expect on_park/on_unpark, called each
time a worker sleeps and wakes, to slow the workers down. A hook that raises
is reported (printed, as for __del__) and the worker goes on.

The C side sees four module-level CFUNCTYPE callbacks, alive as long as the
module, that find an executor's hooks through user_data (a key in `_live`).
The hooks' finalize callback, which the library calls once no hook will run
again, releases the Python callables. Every thread-per-core executor the
binding makes registers hooks (none of the four set, when the user gave
none), so that finalize says when its workers are gone (`wait_finalized`).
"""

import itertools
import threading
import time
from ctypes import sizeof
from typing import Callable, NamedTuple, Optional

from ._host import report_ignored
from ._lib import FINALIZE_FN, HOOK_FN, asyncrt_thread_hooks

HOOKS = ("on_start", "on_stop", "on_park", "on_unpark")


class ThreadHooks(NamedTuple):
    """Callables taking the worker's index; any may be None.

    on_start: on the worker, before its first poll. on_stop: after its last
    poll. on_park: before it sleeps in the kernel. on_unpark: after it woke.
    They must not drive an executor (block_on, run, shutdown, close).
    """

    on_start: Optional[Callable[[int], None]] = None
    on_stop: Optional[Callable[[int], None]] = None
    on_park: Optional[Callable[[int], None]] = None
    on_unpark: Optional[Callable[[int], None]] = None


_live: dict[int, ThreadHooks] = {}  # user_data key -> ThreadHooks, from registration until finalize
_keys = itertools.count(1)
_finalized = threading.Condition()  # notified at each finalize


def _dispatch(name):
    def hook(worker, key):
        fn = getattr(_live.get(key), name, None)
        if fn is not None:
            try:
                fn(worker)
            except BaseException:
                report_ignored(f"thread hook {name}({worker})")

    return HOOK_FN(hook)


_CALLBACKS = {name: _dispatch(name) for name in HOOKS}


@FINALIZE_FN
def _finalize(key):
    with _finalized:
        _live.pop(key, None)
        _finalized.notify_all()


def register(hooks):
    """Keeps `hooks` for the library; returns (asyncrt_thread_hooks, key).
    Pass the key to release() if the executor could not be created."""
    key = next(_keys)
    _live[key] = hooks
    c_hooks = asyncrt_thread_hooks(size=sizeof(asyncrt_thread_hooks), user_data=key, finalize=_finalize)
    for name in HOOKS:
        if getattr(hooks, name) is not None:
            setattr(c_hooks, name, _CALLBACKS[name])
    return c_hooks, key


def release(key):
    with _finalized:
        _live.pop(key, None)
        _finalized.notify_all()


def wait_finalized(timeout):
    """Waits until the library has finalized every registered set of hooks --
    every worker of every thread-per-core executor has exited -- for at most
    `timeout` seconds; returns how many are left."""
    deadline = time.monotonic() + timeout
    with _finalized:
        while _live:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            _finalized.wait(left)
        return len(_live)


def registered(key):
    """Whether the library may still call the hooks under `key`."""
    return key in _live
