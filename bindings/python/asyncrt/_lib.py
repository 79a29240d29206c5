"""Finds and loads libasyncrt, declares its C types and every signature.

The library is searched for in this order:

1. the path in the environment variable ASYNCRT_LIBRARY (no fallback if set);
2. ``libasyncrt.so`` next to this package (an installed wheel);
3. ``build/libasyncrt.so`` in the nearest directory above this package that
   has one (the repository's own build, ``make lib``).

Right after loading, the library is asked whether it serves the version this
binding was written against (asyncrt_check_version).
"""

import ctypes
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int,
    c_int32,
    c_int64,
    c_size_t,
    c_uint,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path

from ._version import VERSION
from .errors import VersionMismatch, error

VERSION_HEX = (VERSION[0] << 16) | (VERSION[1] << 8) | VERSION[2]
LIBRARY_ENV = "ASYNCRT_LIBRARY"
LIBRARY_NAME = "libasyncrt.so"

# Host queue event kinds (ASYNCRT_HOSTQ_*).
HOSTQ_POLL = 1 << 62
HOSTQ_DROP = 2 << 62
HOSTQ_CLEANUP = 3 << 62
HOSTQ_KIND_MASK = 3 << 62
HOSTQ_TAG_MASK = ~HOSTQ_KIND_MASK & 0xFFFF_FFFF_FFFF_FFFF

EXECUTOR_LOCAL = 0
EXECUTOR_THREADS = 1
EXECUTOR_PIN = 1
SPAWN_LOCAL = 0
SPAWN_SEND = 1
SHUTDOWN_GRACEFUL = 0
SHUTDOWN_IMMEDIATE = 1
NO_TIMEOUT = -1
CLOCK_MONOTONIC = 0
CLOCK_TEST = 1
SUBSYSTEM_ALL_WORKERS = 0xFFFF_FFFF
UINT64_MAX = 0xFFFF_FFFF_FFFF_FFFF
SCOPE_FIRST_ERROR = 0
SCOPE_COLLECT_ALL = 1 << 0
SCOPE_SHIELD = 1 << 1
DUMP_TEXT = 0
DUMP_JSON = 1
CHANNEL_ONESHOT = 0
CHANNEL_MPSC = 1
CHANNEL_BROADCAST = 2
CHANNEL_WATCH = 3
CHANNEL_LOCAL = 1 << 0
CHANNEL_ELEM_MAX = 256
SYNC_LOCAL = 1 << 0


def spawn_worker(i):
    """ASYNCRT_SPAWN_WORKER(i): the spawn flag that places a task on worker i."""
    return (i + 1) << 8


# Opaque handles: one pointer type each, so ctypes refuses to pass one for another.
class asyncrt_executor(Structure):
    pass


class asyncrt_task(Structure):
    pass


class asyncrt_hostq(Structure):
    pass


class asyncrt_context(Structure):
    pass


class asyncrt_runnable(Structure):
    pass


class asyncrt_subsystem(Structure):
    pass


class asyncrt_subsystem_cx(Structure):
    pass


class asyncrt_scope(Structure):
    pass


class asyncrt_sender(Structure):
    pass


class asyncrt_receiver(Structure):
    pass


class asyncrt_mutex(Structure):
    pass


class asyncrt_semaphore(Structure):
    pass


class asyncrt_notify(Structure):
    pass


class asyncrt_barrier(Structure):
    pass


executor_p = POINTER(asyncrt_executor)
task_p = POINTER(asyncrt_task)
hostq_p = POINTER(asyncrt_hostq)
context_p = POINTER(asyncrt_context)
runnable_p = POINTER(asyncrt_runnable)
subsystem_p = POINTER(asyncrt_subsystem)
subsystem_cx_p = POINTER(asyncrt_subsystem_cx)
scope_p = POINTER(asyncrt_scope)
sender_p = POINTER(asyncrt_sender)
receiver_p = POINTER(asyncrt_receiver)
mutex_p = POINTER(asyncrt_mutex)
semaphore_p = POINTER(asyncrt_semaphore)
notify_p = POINTER(asyncrt_notify)
barrier_p = POINTER(asyncrt_barrier)

# Callback types. The binding's callbacks are module-level CFUNCTYPE objects
# (hooks.py, foreign.py, subsystem.py, cfuture.py's owned-future drop) that
# find their Python state through user_data (or the future's state address),
# so they live as long as the library may call them.
POLL_FN = CFUNCTYPE(c_int, c_void_p, context_p, c_void_p)
DROP_FN = CFUNCTYPE(None, c_void_p)
HOOK_FN = CFUNCTYPE(None, c_uint, c_void_p)
FINALIZE_FN = CFUNCTYPE(None, c_void_p)
SCHEDULE_FN = CFUNCTYPE(None, c_void_p, runnable_p)
DUMP_WRITE_FN = CFUNCTYPE(None, c_void_p, c_size_t, c_void_p)  # data is not NUL-terminated: read it with string_at
VALUE_DROP_FN = CFUNCTYPE(None, c_void_p, c_void_p)


class asyncrt_future_vtable(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("output_size", c_size_t),
        ("poll", POLL_FN),
        ("drop", DROP_FN),
        ("cleanup", c_void_p),
    ]


class asyncrt_future(Structure):
    # Untyped, as most futures only pass through; CFuture reads it as an asyncrt_future_vtable.
    _fields_ = [("self", c_void_p), ("vtable", c_void_p)]


class asyncrt_waker(Structure):
    _fields_ = [("data", c_void_p), ("vtable", c_void_p)]


class asyncrt_thread_hooks(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("on_start", HOOK_FN),
        ("on_stop", HOOK_FN),
        ("on_park", HOOK_FN),
        ("on_unpark", HOOK_FN),
        ("user_data", c_void_p),
        ("finalize", FINALIZE_FN),
    ]


# The stats structs grow at the end (the header's "Metrics"); these are the
# 0.6 structs, passed with their ctypes size.
class asyncrt_executor_stats(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("tasks_spawned", c_uint64),
        ("tasks_live", c_uint64),
        ("polls", c_uint64),
        ("memory_in_use", c_uint64),
        ("memory_limit", c_uint64),
        ("workers", c_uint64),
    ] + [(name, c_uint64) for name in (  # 0.6
        "tasks_completed", "tasks_failed", "tasks_cancelled", "wakes_local", "wakes_remote", "steals", "parks",
        "parked_ns", "ticks", "budget_yields", "timers_armed", "timers_fired", "ops_in_flight", "stalls")]


class asyncrt_worker_stats(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("polls", c_uint64),
        ("wakes", c_uint64),
        ("steals", c_uint64),
        ("parks", c_uint64),
        ("parked_ns", c_uint64),
        ("ticks", c_uint64),  # 0.3
    ] + [(name, c_uint64) for name in (  # 0.6
        "wakes_local", "budget_yields", "timers_armed", "timers_fired", "ops_in_flight", "stalls", "tasks_spawned",
        "tasks_live", "tasks_completed", "tasks_failed", "tasks_cancelled", "memory_in_use")]


class asyncrt_stall_info(Structure):  # 0.6
    _fields_ = [
        ("size", c_size_t),
        ("executor", executor_p),
        ("worker", c_uint),
        ("task_id", c_uint64),
        ("task_name", c_char_p),
        ("duration_ns", c_uint64),
        ("poll", c_void_p),
        ("poll_symbol", c_char_p),
        ("poll_object", c_char_p),
    ]


STALL_FN = CFUNCTYPE(None, POINTER(asyncrt_stall_info), c_void_p)
STALL_MANUAL = UINT64_MAX  # asyncrt_stall_config.period_ns: no watchdog thread


class asyncrt_stall_config(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("threshold_ns", c_uint64),
        ("period_ns", c_uint64),
        ("report", STALL_FN),
        ("user_data", c_void_p),
        ("finalize", FINALIZE_FN),
    ]


class asyncrt_foreign_vtable(Structure):
    _fields_ = [("size", c_size_t), ("schedule", SCHEDULE_FN), ("finalize", FINALIZE_FN)]


class asyncrt_task_storage(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("memory", c_void_p),
        ("length", c_size_t),
        ("release", c_void_p),
        ("user_data", c_void_p),
    ]


# ---- asyncrt 0.3: time and timers -------------------------------------------


class asyncrt_timer(Structure):
    _fields_ = [("opaque", c_uint64 * 8)]


class asyncrt_sleep(Structure):
    _fields_ = [
        ("timer", asyncrt_timer),
        ("deadline_ns", c_uint64),
        ("duration_ns", c_uint64),
        ("flags", c_uint32),
        ("reserved", c_uint32),
    ]


class asyncrt_timeout(Structure):
    # The vtable is the asyncrt_future_vtable that lives inside the state.
    _fields_ = [
        ("vtable", asyncrt_future_vtable),
        ("inner", asyncrt_future),
        ("sleep", asyncrt_sleep),
        ("flags", c_uint64),
    ]


# ---- asyncrt 0.3: subsystems and operation requests ---------------------------


class asyncrt_op(Structure):
    _fields_ = [
        ("opcode", c_uint32),
        ("flags", c_uint32),
        ("args", c_uint64 * 4),
        ("status", c_int32),
        ("reserved", c_int32),
        ("result", c_int64),
        ("subsystem_data", c_void_p * 2),
        ("opaque", c_uint64 * 8),
    ]


op_p = POINTER(asyncrt_op)


class asyncrt_op_future_state(Structure):
    _fields_ = [("op", op_p), ("sub", subsystem_p), ("flags", c_uint64)]


SUB_POLL_FN = CFUNCTYPE(c_int, c_void_p, subsystem_cx_p, c_uint32)
SUB_OP_FN = CFUNCTYPE(None, c_void_p, subsystem_cx_p, op_p)
SUB_WAITERS_FN = CFUNCTYPE(None, c_void_p, subsystem_cx_p, c_uint64)


class asyncrt_subsystem_vtable(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("poll", SUB_POLL_FN),
        ("submit", SUB_OP_FN),
        ("cancel", SUB_OP_FN),
        ("waiters_changed", SUB_WAITERS_FN),
        ("finalize", FINALIZE_FN),
    ]


class asyncrt_subsystem_config(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("vtable", POINTER(asyncrt_subsystem_vtable)),
        ("user_data", c_void_p),
        ("priority", c_uint32),
        ("waiter_cap", c_uint32),
        ("poll_budget", c_uint32),
        ("worker", c_uint32),
        ("fd", c_int),
        ("name", c_char_p),
    ]


class asyncrt_subsystem_stats(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("polls", c_uint64),
        ("completions", c_uint64),
        ("empty_polls", c_uint64),
        ("waiters", c_uint64),
        ("submits", c_uint64),
        ("cancels", c_uint64),  # 0.6
        ("failures", c_uint64),
        ("workers", c_uint64),
    ]


class asyncrt_executor_config(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("kind", c_uint),
        ("memory_limit", c_size_t),
        ("allocator", c_void_p),
        ("workers", c_uint),
        ("flags", c_uint),
        ("spin_ns", c_uint64),
        ("budget_polls", c_uint32),
        ("budget_ns", c_uint64),
        ("hooks", POINTER(asyncrt_thread_hooks)),
        ("shutdown_timeout_ns", c_uint64),
        # asyncrt 0.3
        ("clock", c_uint),
        ("subsystems", POINTER(asyncrt_subsystem_config)),
        ("subsystem_count", c_size_t),
        ("subsystem_handles", POINTER(subsystem_p)),
    ]


# ---- asyncrt 0.4: scopes -------------------------------------------------------


class asyncrt_scope_config(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("flags", c_uint),
        ("deadline_ns", c_uint64),
        ("timeout_ns", c_uint64),
        ("cleanup_timeout_ns", c_uint64),
        ("name", c_char_p),
    ]


class asyncrt_error_info(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("status", c_int),
        ("task_id", c_uint64),
        ("message", c_char_p),
        ("value", c_void_p),
        ("value_free", c_void_p),  # reported only: the runtime calls it
    ]


# ---- asyncrt 0.5: channels, synchronization, combinators and streams -----------


class asyncrt_channel_config(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("kind", c_uint),
        ("flags", c_uint),
        ("elem_size", c_size_t),
        ("capacity", c_size_t),
        ("value_drop", VALUE_DROP_FN),
        ("user", c_void_p),
        ("initial", c_void_p),
    ]


class asyncrt_chan_op(Structure):
    _fields_ = [("opaque", c_uint64 * 8)]


class asyncrt_wait(Structure):
    _fields_ = [("opaque", c_uint64 * 8)]


class asyncrt_stream_next_state(Structure):
    _fields_ = [("stream", asyncrt_future), ("item", c_void_p), ("flags", c_uint64)]


future_p = POINTER(asyncrt_future)
waker_p = POINTER(asyncrt_waker)
u64_p = POINTER(c_uint64)
error_info_p = POINTER(asyncrt_error_info)
scope_config_p = POINTER(asyncrt_scope_config)
chan_op_p = POINTER(asyncrt_chan_op)
wait_p = POINTER(asyncrt_wait)


# ---- asyncrt 0.7: IO drivers, sockets, processes ------------------------------
# (The Pythonic layer, asyncrt.io and asyncrt.net, is built on these.)

IO_AUTO = 0
IO_EPOLL = 1
IO_URING = 2
IO_OP_NOP = 1
IO_OP_READ = 2
IO_OP_WRITE = 3
IO_OP_READV = 4
IO_OP_WRITEV = 5
IO_OP_RECV = 6
IO_OP_SEND = 7
IO_OP_ACCEPT = 8
IO_OP_CONNECT = 9
IO_OP_CLOSE = 10
IO_OP_FSYNC = 11
IO_OP_POLL = 12
IO_OP_TIMEOUT = 13
IO_OP_OPENAT = 14
IO_OP_SHUTDOWN = 15
IO_OP_BLOCKING = 16
IO_OP_SIGNAL = 17
IO_OP_WAITPID = 18
IO_OP_RECVMSG = 19
IO_OP_SENDMSG = 20
IO_FSYNC_DATASYNC = 1
LISTEN_REUSEPORT = 1
LISTEN_V6ONLY = 2
SOCKOPT_NODELAY = 1
SOCKOPT_KEEPALIVE = 2
SOCKOPT_REUSEADDR = 3
SOCKOPT_RCVBUF = 4
SOCKOPT_SNDBUF = 5
SOCKOPT_LINGER = 6
SOCKOPT_REUSEPORT = 7
SOCKOPT_ERROR = 8


class asyncrt_io(Structure):
    pass


io_p = POINTER(asyncrt_io)


class asyncrt_io_config(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("backend", c_uint),
        ("ring_entries", c_uint32),
        ("priority", c_uint32),
        ("pool_threads", c_uint32),
        ("pool_queue", c_uint32),
        ("pool_idle_ns", c_uint64),
    ]


class asyncrt_io_future_state(Structure):
    _fields_ = [("op", op_p), ("io", io_p), ("flags", c_uint64)]


class asyncrt_io_stats(Structure):
    _fields_ = [("size", c_size_t), ("backend", c_uint32), ("workers", c_uint32)] + [
        (name, c_uint64)
        for name in (
            "submits", "completions", "failures", "cancels", "in_flight", "syscalls", "ticks",
            "pool_threads", "pool_queued", "pool_jobs", "pool_rejected",
        )
    ]


class asyncrt_process_config(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("argv", POINTER(c_char_p)),
        ("envp", POINTER(c_char_p)),
        ("stdin_fd", c_int),
        ("stdout_fd", c_int),
        ("stderr_fd", c_int),
        ("cwd", c_char_p),
    ]


class asyncrt_io_addrinfo(Structure):
    _fields_ = [
        ("host", c_char_p),
        ("port", c_uint16),
        ("reserved", c_uint16),
        ("family", c_int),
        ("addrlen", c_uint32),
        ("reserved2", c_uint32),
        ("addr", c_uint64 * 16),
    ]


BLOCKING_FN = CFUNCTYPE(c_int64, c_void_p)
io_config_p = POINTER(asyncrt_io_config)

# name: (restype, argtypes). Every function of asyncrt.h, in the header's order.
SIGNATURES = {
    "asyncrt_version": (c_uint, []),
    "asyncrt_version_string": (c_char_p, []),
    "asyncrt_check_version": (c_int, [c_uint]),
    "asyncrt_status_str": (c_char_p, [c_int]),
    "asyncrt_last_error": (c_char_p, []),
    "asyncrt_last_status": (c_int, []),
    "asyncrt_context_waker": (waker_p, [context_p]),
    "asyncrt_context_executor": (executor_p, [context_p]),
    "asyncrt_context_fail": (None, [context_p, c_int]),
    "asyncrt_context_failure": (c_int, [context_p]),
    "asyncrt_waker_clone": (None, [waker_p, waker_p]),
    "asyncrt_waker_wake": (None, [waker_p]),
    "asyncrt_waker_wake_by_ref": (None, [waker_p]),
    "asyncrt_waker_drop": (None, [waker_p]),
    "asyncrt_waker_will_wake": (c_int, [waker_p, waker_p]),
    "asyncrt_poll_with_waker": (c_int, [future_p, waker_p, c_void_p, POINTER(c_int)]),
    "asyncrt_executor_config_init_size": (None, [POINTER(asyncrt_executor_config), c_size_t]),
    "asyncrt_executor_config_init": (None, [POINTER(asyncrt_executor_config)]),
    "asyncrt_executor_new": (c_int, [POINTER(asyncrt_executor_config), POINTER(executor_p)]),
    "asyncrt_executor_free": (c_int, [executor_p]),
    "asyncrt_executor_shutdown": (c_int, [executor_p, c_int, c_int64]),
    "asyncrt_executor_capabilities": (c_int, [executor_p, POINTER(c_uint)]),
    "asyncrt_executor_fd": (c_int, [executor_p, POINTER(c_int)]),
    "asyncrt_worker_stats_get": (c_int, [executor_p, c_uint, POINTER(asyncrt_worker_stats)]),
    "asyncrt_executor_stats_get": (c_int, [executor_p, POINTER(asyncrt_executor_stats)]),
    "asyncrt_stall_config_init_size": (None, [POINTER(asyncrt_stall_config), c_size_t]),
    "asyncrt_executor_watch_stalls": (c_int, [executor_p, POINTER(asyncrt_stall_config)]),
    "asyncrt_executor_check_stalls": (c_int, [executor_p, POINTER(c_uint)]),
    "asyncrt_spawn": (c_int, [executor_p, future_p, c_uint, POINTER(task_p)]),
    "asyncrt_task_storage_size": (c_size_t, [c_size_t]),
    "asyncrt_spawn_in": (c_int, [executor_p, future_p, c_uint, POINTER(asyncrt_task_storage), POINTER(task_p)]),
    "asyncrt_task_join": (c_int, [task_p, future_p]),
    "asyncrt_task_cancel": (c_int, [task_p]),
    "asyncrt_task_status": (c_int, [task_p]),
    "asyncrt_task_id": (c_int, [task_p, u64_p]),
    "asyncrt_task_release": (c_int, [task_p]),
    "asyncrt_block_on": (c_int, [executor_p, future_p, c_void_p, c_int64]),
    "asyncrt_run": (c_int, [executor_p, u64_p]),
    "asyncrt_run_step": (c_int, [executor_p, c_uint32, c_uint64, u64_p]),
    "asyncrt_hostq_new": (c_int, [executor_p, POINTER(hostq_p)]),
    "asyncrt_hostq_free": (c_int, [hostq_p]),
    "asyncrt_hostq_future": (c_int, [hostq_p, u64_p, future_p]),
    "asyncrt_hostq_take": (c_int, [hostq_p, u64_p, c_size_t, POINTER(c_size_t)]),
    "asyncrt_hostq_complete": (c_int, [hostq_p, u64_p, POINTER(c_int), c_size_t]),
    "asyncrt_hostq_wake": (c_int, [hostq_p, u64_p, c_size_t]),
    "asyncrt_hostq_waker": (c_int, [hostq_p, c_uint64, waker_p]),
    # time and timers
    "asyncrt_executor_now": (c_int, [executor_p, u64_p]),
    "asyncrt_context_now": (c_uint64, [context_p]),
    "asyncrt_clock_advance": (c_int, [executor_p, c_uint64]),
    "asyncrt_timer_poll": (c_int, [POINTER(asyncrt_timer), context_p, c_uint64]),
    "asyncrt_timer_cancel": (None, [POINTER(asyncrt_timer)]),
    "asyncrt_timer_armed": (c_int, [POINTER(asyncrt_timer)]),
    "asyncrt_sleep_for": (c_int, [POINTER(asyncrt_sleep), c_uint64, future_p]),
    "asyncrt_sleep_until": (c_int, [POINTER(asyncrt_sleep), c_uint64, future_p]),
    "asyncrt_timeout_for": (c_int, [POINTER(asyncrt_timeout), future_p, c_uint64, future_p]),
    # subsystems and operation requests
    "asyncrt_subsystem_config_init_size": (None, [POINTER(asyncrt_subsystem_config), c_size_t]),
    "asyncrt_subsystem_register": (c_int, [executor_p, POINTER(asyncrt_subsystem_config), POINTER(subsystem_p)]),
    "asyncrt_subsystem_unregister": (c_int, [subsystem_p]),
    "asyncrt_subsystem_stats_get": (c_int, [subsystem_p, POINTER(asyncrt_subsystem_stats)]),
    "asyncrt_timer_stats_get": (c_int, [executor_p, POINTER(asyncrt_subsystem_stats)]),
    "asyncrt_op_submit": (c_int, [context_p, subsystem_p, op_p]),
    "asyncrt_op_poll": (c_int, [op_p, context_p]),
    "asyncrt_op_done": (c_int, [op_p]),
    "asyncrt_op_cancel": (c_int, [op_p]),
    "asyncrt_op_complete": (None, [op_p, c_int, c_int64]),
    "asyncrt_op_future": (c_int, [POINTER(asyncrt_op_future_state), op_p, subsystem_p, future_p]),
    "asyncrt_subsystem_cx_worker": (c_uint, [subsystem_cx_p]),
    "asyncrt_subsystem_cx_waiters": (c_uint64, [subsystem_cx_p]),
    "asyncrt_subsystem_cx_first_op": (op_p, [subsystem_cx_p]),
    "asyncrt_op_next": (op_p, [op_p]),
    "asyncrt_subsystem_cx_complete_all": (c_size_t, [subsystem_cx_p, c_int, c_int64]),
    "asyncrt_executor_tick": (c_int, [executor_p, u64_p, POINTER(c_int)]),
    "asyncrt_executor_new_foreign": (c_int, [POINTER(asyncrt_foreign_vtable), c_void_p, POINTER(executor_p)]),
    "asyncrt_runnable_run": (c_int, [runnable_p]),
    "asyncrt_runnable_drop": (c_int, [runnable_p]),
    "asyncrt_runnable_task_id": (c_uint64, [runnable_p]),
    # scopes (0.4)
    "asyncrt_scope_config_init_size": (None, [scope_config_p, c_size_t]),
    "asyncrt_scope_open": (c_int, [context_p, scope_config_p, POINTER(scope_p)]),
    "asyncrt_scope_open_for": (c_int, [task_p, scope_config_p, POINTER(scope_p)]),
    "asyncrt_scope_open_top": (c_int, [executor_p, scope_config_p, POINTER(scope_p)]),
    "asyncrt_scope_spawn": (c_int, [scope_p, future_p, c_uint, POINTER(task_p)]),
    "asyncrt_scope_spawn_in": (c_int, [scope_p, future_p, c_uint, POINTER(asyncrt_task_storage), POINTER(task_p)]),
    "asyncrt_scope_join": (c_int, [scope_p, future_p]),
    "asyncrt_scope_cancel": (c_int, [scope_p]),
    "asyncrt_scope_status": (c_int, [scope_p]),
    "asyncrt_scope_free": (c_int, [scope_p]),
    "asyncrt_scope_id": (c_int, [scope_p, u64_p]),
    "asyncrt_context_fail_info": (None, [context_p, error_info_p]),
    "asyncrt_scope_error_count": (c_int, [scope_p, POINTER(c_size_t)]),
    "asyncrt_scope_error_get": (c_int, [scope_p, c_size_t, error_info_p]),
    "asyncrt_task_error_get": (c_int, [task_p, error_info_p]),
    "asyncrt_task_cancel_ex": (c_int, [task_p, c_uint64]),
    "asyncrt_shield_enter": (c_int, [context_p]),
    "asyncrt_shield_exit": (c_int, [context_p]),
    "asyncrt_task_set_name": (c_int, [task_p, c_char_p]),
    "asyncrt_context_set_name": (c_int, [context_p, c_char_p]),
    "asyncrt_executor_dump": (c_int, [executor_p, c_uint, DUMP_WRITE_FN, c_void_p]),
    # channels (0.5)
    "asyncrt_channel_config_init_size": (None, [POINTER(asyncrt_channel_config), c_size_t]),
    "asyncrt_channel_new": (c_int, [POINTER(asyncrt_channel_config), POINTER(sender_p), POINTER(receiver_p)]),
    "asyncrt_sender_clone": (c_int, [sender_p, POINTER(sender_p)]),
    "asyncrt_sender_subscribe": (c_int, [sender_p, POINTER(receiver_p)]),
    "asyncrt_sender_free": (c_int, [sender_p]),
    "asyncrt_receiver_free": (c_int, [receiver_p]),
    "asyncrt_try_send": (c_int, [sender_p, c_void_p]),
    "asyncrt_try_recv": (c_int, [receiver_p, c_void_p]),
    "asyncrt_send": (c_int, [sender_p, c_void_p, chan_op_p, future_p]),
    "asyncrt_recv": (c_int, [receiver_p, chan_op_p, future_p]),
    "asyncrt_send_poll": (c_int, [sender_p, c_void_p, context_p, chan_op_p]),
    "asyncrt_recv_poll": (c_int, [receiver_p, c_void_p, context_p, chan_op_p]),
    "asyncrt_chan_op_cancel": (None, [chan_op_p]),
    "asyncrt_channel_len": (c_int, [receiver_p, POINTER(c_size_t)]),
    # synchronization (0.5)
    "asyncrt_mutex_new": (c_int, [c_uint, POINTER(mutex_p)]),
    "asyncrt_mutex_lock": (c_int, [mutex_p, wait_p, future_p]),
    "asyncrt_mutex_try_lock": (c_int, [mutex_p]),
    "asyncrt_mutex_unlock": (c_int, [mutex_p]),
    "asyncrt_mutex_free": (c_int, [mutex_p]),
    "asyncrt_semaphore_new": (c_int, [c_uint, c_uint64, POINTER(semaphore_p)]),
    "asyncrt_semaphore_acquire": (c_int, [semaphore_p, c_uint64, wait_p, future_p]),
    "asyncrt_semaphore_try_acquire": (c_int, [semaphore_p, c_uint64]),
    "asyncrt_semaphore_release": (c_int, [semaphore_p, c_uint64]),
    "asyncrt_semaphore_available": (c_int, [semaphore_p, u64_p]),
    "asyncrt_semaphore_free": (c_int, [semaphore_p]),
    "asyncrt_notify_new": (c_int, [c_uint, POINTER(notify_p)]),
    "asyncrt_notify_wait": (c_int, [notify_p, wait_p, future_p]),
    "asyncrt_notify_one": (c_int, [notify_p]),
    "asyncrt_notify_all": (c_int, [notify_p]),
    "asyncrt_notify_free": (c_int, [notify_p]),
    "asyncrt_barrier_new": (c_int, [c_uint, c_uint32, POINTER(barrier_p)]),
    "asyncrt_barrier_wait": (c_int, [barrier_p, wait_p, future_p]),
    "asyncrt_barrier_free": (c_int, [barrier_p]),
    # IO (0.7); struct sockaddr, iovec and msghdr are passed as void pointers
    "asyncrt_io_config_init_size": (None, [io_config_p, c_size_t]),
    "asyncrt_io_open": (c_int, [executor_p, io_config_p, POINTER(io_p)]),
    "asyncrt_io_close": (c_int, [io_p]),
    "asyncrt_io_backend": (c_int, [io_p]),
    "asyncrt_io_backend_name": (c_char_p, [c_uint]),
    "asyncrt_io_fd": (c_int, [io_p, POINTER(c_int)]),
    "asyncrt_io_close_fd": (c_int, [io_p, c_int]),
    "asyncrt_io_submit": (c_int, [context_p, io_p, op_p]),
    "asyncrt_io_future": (c_int, [POINTER(asyncrt_io_future_state), io_p, op_p, future_p]),
    "asyncrt_io_stats_get": (c_int, [io_p, POINTER(asyncrt_io_stats)]),
    "asyncrt_io_prep_nop": (None, [op_p]),
    "asyncrt_io_prep_read": (None, [op_p, c_int, c_void_p, c_size_t, c_int64]),
    "asyncrt_io_prep_write": (None, [op_p, c_int, c_void_p, c_size_t, c_int64]),
    "asyncrt_io_prep_readv": (None, [op_p, c_int, c_void_p, c_int, c_int64]),
    "asyncrt_io_prep_writev": (None, [op_p, c_int, c_void_p, c_int, c_int64]),
    "asyncrt_io_prep_recv": (None, [op_p, c_int, c_void_p, c_size_t, c_int]),
    "asyncrt_io_prep_send": (None, [op_p, c_int, c_void_p, c_size_t, c_int]),
    "asyncrt_io_prep_recvmsg": (None, [op_p, c_int, c_void_p, c_int]),
    "asyncrt_io_prep_sendmsg": (None, [op_p, c_int, c_void_p, c_int]),
    "asyncrt_io_prep_accept": (None, [op_p, c_int, c_void_p, POINTER(c_uint32)]),
    "asyncrt_io_prep_connect": (None, [op_p, c_int, c_void_p, c_uint32]),
    "asyncrt_io_prep_close": (None, [op_p, c_int]),
    "asyncrt_io_prep_fsync": (None, [op_p, c_int, c_uint]),
    "asyncrt_io_prep_poll": (None, [op_p, c_int, c_uint]),
    "asyncrt_io_prep_timeout": (None, [op_p, c_uint64]),
    "asyncrt_io_prep_openat": (None, [op_p, c_int, c_char_p, c_int, c_uint]),
    "asyncrt_io_prep_shutdown": (None, [op_p, c_int, c_int]),
    "asyncrt_io_prep_blocking": (None, [op_p, BLOCKING_FN, c_void_p]),
    "asyncrt_io_prep_signal": (None, [op_p, c_int]),
    "asyncrt_io_prep_waitpid": (None, [op_p, c_int]),
    "asyncrt_last_errno": (c_int, []),
    "asyncrt_sockaddr": (c_int, [c_char_p, c_uint16, c_void_p, POINTER(c_uint32)]),
    "asyncrt_unix_sockaddr": (c_int, [c_char_p, c_void_p, POINTER(c_uint32)]),
    "asyncrt_socket": (c_int, [c_int, c_int, POINTER(c_int)]),
    "asyncrt_tcp_listen": (c_int, [c_char_p, c_uint16, c_int, c_uint, POINTER(c_int)]),
    "asyncrt_udp_bind": (c_int, [c_char_p, c_uint16, POINTER(c_int)]),
    "asyncrt_unix_listen": (c_int, [c_char_p, c_int, POINTER(c_int)]),
    "asyncrt_local_port": (c_int, [c_int, POINTER(c_uint16)]),
    "asyncrt_socket_set_option": (c_int, [c_int, c_int, c_int]),
    "asyncrt_socket_get_option": (c_int, [c_int, c_int, POINTER(c_int)]),
    "asyncrt_pipe": (c_int, [POINTER(c_int)]),
    "asyncrt_fd_set_nonblock": (c_int, [c_int]),
    "asyncrt_process_config_init_size": (None, [POINTER(asyncrt_process_config), c_size_t]),
    "asyncrt_process_spawn": (c_int, [POINTER(asyncrt_process_config), POINTER(c_int), POINTER(c_int)]),
    "asyncrt_process_kill": (c_int, [c_int, c_int]),
    "asyncrt_io_signal_release": (c_int, [io_p, c_int]),
    "asyncrt_io_prep_getaddrinfo": (None, [op_p, POINTER(asyncrt_io_addrinfo)]),
    # combinators and streams (0.5)
    "asyncrt_join_all_size": (c_size_t, [c_size_t]),
    "asyncrt_join_all": (c_int, [c_void_p, future_p, c_size_t, c_void_p, future_p]),
    "asyncrt_join_all_index": (c_size_t, [c_void_p]),
    "asyncrt_select_size": (c_size_t, [c_size_t]),
    "asyncrt_select": (c_int, [c_void_p, future_p, c_size_t, c_void_p, future_p]),
    "asyncrt_select_index": (c_size_t, [c_void_p]),
    "asyncrt_stream_next": (c_int, [POINTER(asyncrt_stream_next_state), future_p, c_void_p, future_p]),
}


def candidates():
    """The paths tried, in order (see the module docstring)."""
    override = os.environ.get(LIBRARY_ENV)
    if override:
        return [Path(override)]
    here = Path(__file__).resolve().parent
    found = [here / LIBRARY_NAME]
    found += [d / "build" / LIBRARY_NAME for d in here.parents]
    return found


def load(expected=VERSION_HEX):
    """Loads the library, declares its signatures and checks its version."""
    tried = candidates()
    path = next((p for p in tried if p.is_file()), None)
    if path is None:
        where = "\n  ".join(str(p) for p in tried)
        raise ImportError(
            f"asyncrt: {LIBRARY_NAME} not found; tried:\n  {where}\n"
            f"Build it with `make lib` at the repository root, "
            f"or set {LIBRARY_ENV}=/path/to/{LIBRARY_NAME}."
        )
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise ImportError(f"asyncrt: cannot load {path}: {exc}. Rebuild it or point {LIBRARY_ENV} at a good copy.") from exc
    for name, (restype, argtypes) in SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise ImportError(f"asyncrt: {path} lacks {name}; it is not a libasyncrt this binding can use. Rebuild it (`make lib`).") from None
        fn.restype = restype
        fn.argtypes = argtypes
    status = lib.asyncrt_check_version(expected)
    version = lib.asyncrt_version()
    if status != 0 and version >> 16 == expected >> 16 and (version >> 8) & 0xFF >= (expected >> 8) & 0xFF:
        # The right version refusing: a second copy of the library in this
        # process (or a forked child); the library says which.
        said = lib.asyncrt_last_error().decode(errors="replace")
        raise error(status, f"asyncrt: {path} refuses every call: {said}")
    if status != 0:
        found = lib.asyncrt_version_string().decode()
        want = f"{expected >> 16}.{(expected >> 8) & 0xFF}.{expected & 0xFF}"
        said = lib.asyncrt_last_error().decode(errors="replace")
        raise VersionMismatch(
            f"{path} is asyncrt {found}, but this binding needs a library compatible with {want}"
            f"{f' ({said})' if said else ''}. Rebuild the library (`make lib` at the repository root) "
            f"or set {LIBRARY_ENV} to a matching build.",
            status,
        )
    return lib


lib = load()
path = Path(lib._name)  # the file loaded (CDLL keeps the name it was given)


def check(status):
    """Raises the exception for a failed call's status, with the library's message."""
    if status:
        raise error(status, lib.asyncrt_last_error().decode(errors="replace"))


# ---- fork -------------------------------------------------------------------
# In a child forked after the library was loaded every asyncrt call fails with
# EFORKED. The binding refuses too, before it takes a lock of its own: a lock
# that another thread of the parent held at the fork stays held forever in the
# child, and waiting for it would hang instead of failing.
_forked = False


def _mark_forked():
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_mark_forked)


def in_forked_child():
    """True in a child forked after the library was loaded."""
    return _forked


def refuse_in_child():
    """Raises Forked (with the library's message) in a forked child."""
    if _forked:
        check(lib.asyncrt_check_version(VERSION_HEX))
