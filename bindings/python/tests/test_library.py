"""Loading, the version probe and the exception classes."""

import os
import re
import select
import signal
import unittest
from ctypes import byref, c_int, c_void_p, sizeof
from pathlib import Path
from unittest import mock

import asyncrt
from asyncrt import _lib
from asyncrt.errors import ERROR_CLASSES, Status, error
from tests.support import WAIT

CLASS_NAMES = {
    Status.EINVAL: "InvalidArgument",
    Status.EHANDLE: "BadHandle",
    Status.ESHUTDOWN: "Shutdown",
    Status.ENOMEM: "OutOfMemory",
    Status.ELIMIT: "LimitExceeded",
    Status.ECANCELLED: "Cancelled",
    Status.EREENTRANT: "Reentrant",
    Status.EBUSY: "Busy",
    Status.ETIMEDOUT: "TimedOut",
    Status.EFORKED: "Forked",
    Status.EVERSION: "VersionMismatch",
    Status.EINTERNAL: "InternalError",
    Status.EFAILED: "Failed",
    Status.EAGAIN: "WouldBlock",
    Status.ENOTSUP: "NotSupported",
    Status.ESCOPE: "ScopeError",
    Status.ECLOSED: "Closed",
    Status.ELAGGED: "Lagged",
    Status.EOS: "SystemCallFailed",
}


class VersionTest(unittest.TestCase):
    def test_loaded_version_matches_binding(self):
        self.assertEqual(asyncrt.library_version(), asyncrt.__version__)
        self.assertEqual(_lib.lib.asyncrt_version(), _lib.VERSION_HEX)

    def test_newer_minor_is_refused_with_advice(self):
        with self.assertRaises(asyncrt.VersionMismatch) as caught:
            _lib.load(expected=_lib.VERSION_HEX + 0x100)
        self.assertEqual(caught.exception.status, Status.EVERSION)
        self.assertIn("make lib", str(caught.exception))
        self.assertIn(_lib.LIBRARY_ENV, str(caught.exception))

    def test_other_major_is_refused(self):
        with self.assertRaises(asyncrt.VersionMismatch):
            _lib.load(expected=0x010000)

    def test_env_override_is_the_only_candidate(self):
        with mock.patch.dict(os.environ, {_lib.LIBRARY_ENV: "/nonexistent/libasyncrt.so"}):
            self.assertEqual([str(p) for p in _lib.candidates()], ["/nonexistent/libasyncrt.so"])
            with self.assertRaises(ImportError) as caught:
                _lib.load()
        self.assertIn("/nonexistent/libasyncrt.so", str(caught.exception))
        self.assertIn(_lib.LIBRARY_ENV, str(caught.exception))

    def test_search_ends_at_a_repository_build(self):
        with mock.patch.dict(os.environ):
            os.environ.pop(_lib.LIBRARY_ENV, None)
            paths = _lib.candidates()
        self.assertEqual(paths[0].name, "libasyncrt.so")
        self.assertEqual(paths[0].parent.name, "asyncrt")
        self.assertTrue(all(p.parent.name == "build" for p in paths[1:]))


# sizeof and field offsets of asyncrt.h's structs on LP64 (x86-64, aarch64),
# as gcc gives them for this asyncrt.h: the binding's ctypes layouts must match.
STRUCT_LAYOUTS = {
    "asyncrt_future_vtable": (40, {"poll": 16, "drop": 24}),
    "asyncrt_thread_hooks": (56, {"user_data": 40, "finalize": 48}),
    "asyncrt_executor_config": (112, {"hooks": 64, "shutdown_timeout_ns": 72, "clock": 80, "subsystems": 88,
                                      "subsystem_count": 96, "subsystem_handles": 104}),
    "asyncrt_executor_stats": (168, {"workers": 48, "tasks_completed": 56, "stalls": 160}),
    "asyncrt_worker_stats": (152, {"parked_ns": 40, "ticks": 48, "wakes_local": 56, "memory_in_use": 144}),
    "asyncrt_stall_info": (72, {"executor": 8, "worker": 16, "task_id": 24, "task_name": 32, "duration_ns": 40,
                                "poll": 48, "poll_symbol": 56, "poll_object": 64}),
    "asyncrt_stall_config": (48, {"threshold_ns": 8, "period_ns": 16, "report": 24, "user_data": 32,
                                  "finalize": 40}),
    "asyncrt_task_storage": (40, {"release": 24}),
    "asyncrt_foreign_vtable": (24, {"finalize": 16}),
    "asyncrt_timer": (64, {}),
    "asyncrt_sleep": (88, {"deadline_ns": 64, "duration_ns": 72, "flags": 80}),
    "asyncrt_timeout": (152, {"inner": 40, "sleep": 56, "flags": 144}),
    "asyncrt_op": (136, {"args": 8, "status": 40, "result": 48, "subsystem_data": 56, "opaque": 72}),
    "asyncrt_op_future_state": (24, {"sub": 8, "flags": 16}),
    "asyncrt_subsystem_vtable": (48, {"poll": 8, "submit": 16, "cancel": 24, "waiters_changed": 32,
                                      "finalize": 40}),
    "asyncrt_subsystem_config": (56, {"priority": 24, "waiter_cap": 28, "poll_budget": 32, "worker": 36,
                                      "fd": 40, "name": 48}),
    "asyncrt_subsystem_stats": (72, {"submits": 40, "cancels": 48, "workers": 64}),
    "asyncrt_scope_config": (48, {"flags": 8, "deadline_ns": 16, "timeout_ns": 24, "cleanup_timeout_ns": 32,
                                  "name": 40}),
    "asyncrt_error_info": (48, {"status": 8, "task_id": 16, "message": 24, "value": 32, "value_free": 40}),
    "asyncrt_channel_config": (56, {"kind": 8, "flags": 12, "elem_size": 16, "capacity": 24, "value_drop": 32,
                                    "user": 40, "initial": 48}),
    "asyncrt_chan_op": (64, {}),
    "asyncrt_wait": (64, {}),
    "asyncrt_stream_next_state": (32, {"item": 16, "flags": 24}),
    "asyncrt_io_config": (40, {"backend": 8, "ring_entries": 12, "priority": 16, "pool_threads": 20,
                               "pool_queue": 24, "pool_idle_ns": 32}),
    "asyncrt_io_future_state": (24, {"io": 8, "flags": 16}),
    "asyncrt_io_stats": (104, {"backend": 8, "workers": 12, "submits": 16, "syscalls": 56, "ticks": 64,
                              "pool_rejected": 96}),
    "asyncrt_process_config": (48, {"argv": 8, "envp": 16, "stdin_fd": 24, "stdout_fd": 28, "stderr_fd": 32,
                                    "cwd": 40}),
}

HEADER = Path(__file__).resolve().parents[3] / "include" / "asyncrt.h"


class LayoutTest(unittest.TestCase):
    @unittest.skipUnless(sizeof(c_void_p) == 8, "the sizes are LP64's")
    def test_struct_layouts_match_the_header(self):
        for name, (size, offsets) in STRUCT_LAYOUTS.items():
            with self.subTest(struct=name):
                struct = getattr(_lib, name)
                self.assertEqual(sizeof(struct), size)
                for field, offset in offsets.items():
                    self.assertEqual(getattr(struct, field).offset, offset, field)

    @unittest.skipUnless(HEADER.is_file(), "the repository's header is not here")
    def test_every_header_function_is_declared_in_order(self):
        declared = re.findall(r"^ASYNCRT_API\b[^;{]*?\b(asyncrt_\w+)\s*\(", HEADER.read_text(), re.M | re.S)
        self.assertEqual(list(_lib.SIGNATURES), declared)

    def test_config_init_fills_the_03_struct(self):
        config = _lib.asyncrt_executor_config(clock=7, subsystem_count=3)
        _lib.lib.asyncrt_executor_config_init_size(byref(config), sizeof(config))
        self.assertEqual(config.size, sizeof(config))
        self.assertEqual((config.clock, config.subsystem_count), (_lib.CLOCK_MONOTONIC, 0))
        sub = _lib.asyncrt_subsystem_config()
        _lib.lib.asyncrt_subsystem_config_init_size(byref(sub), sizeof(sub))
        self.assertEqual((sub.size, sub.priority, sub.waiter_cap, sub.poll_budget, sub.worker, sub.fd),
                         (sizeof(sub), 1, 64, 64, _lib.SUBSYSTEM_ALL_WORKERS, -1))


class ErrorTest(unittest.TestCase):
    def test_one_class_per_status(self):
        for status, name in CLASS_NAMES.items():
            with self.subTest(status=status):
                cls = getattr(asyncrt, name)
                self.assertIs(ERROR_CLASSES[status], cls)
                self.assertTrue(issubclass(cls, asyncrt.AsyncrtError))
                exc = error(status, "the message")
                self.assertIs(type(exc), cls)
                self.assertEqual(exc.status, status)
                self.assertEqual(exc.message, "the message")
                self.assertEqual(cls("x").status, status)

    def test_status_enum_matches_library_names(self):
        lib = _lib.lib
        for status in Status:
            with self.subTest(status=status):
                name = lib.asyncrt_status_str(status).decode()
                self.assertTrue(name.startswith(f"ASYNCRT_{status.name}"), f"got {name!r}")
        self.assertEqual(len(CLASS_NAMES), len(Status) - 1)

    def test_user_status_maps_to_base_class(self):
        exc = error(1001, "mine")
        self.assertIs(type(exc), asyncrt.AsyncrtError)
        self.assertEqual(exc.status, 1001)

    def test_calls_in_a_forked_child_raise_forked(self):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report which class Executor() raised, then leave at once
            try:
                asyncrt.Executor()
                verdict = b"no error"
            except asyncrt.AsyncrtError as exc:
                verdict = type(exc).__name__.encode()
            os.write(write_end, verdict)
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            if not select.select([pipe], [], [], WAIT)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                self.fail(f"the forked child did not answer within {WAIT} s")
            verdict = pipe.read().decode()
        os.waitpid(pid, 0)
        self.assertEqual(verdict, "Forked")

    def test_failed_call_carries_library_message(self):
        lib = _lib.lib
        with self.assertRaises(asyncrt.InvalidArgument) as caught:
            _lib.check(lib.asyncrt_executor_fd(None, byref(c_int())))
        self.assertTrue(caught.exception.message)
        self.assertEqual(caught.exception.message, lib.asyncrt_last_error().decode())
        self.assertEqual(lib.asyncrt_last_status(), Status.EINVAL)


if __name__ == "__main__":
    unittest.main()
