"""Process hazards: fork (os.fork and multiprocessing's fork start method),
Ctrl-C while block_on waits, interpreter exit with workers still running, a
signal handler installed after the library loaded, and a second copy of the
library. Most run a script in a child interpreter, bounded by WAIT, so that
what they do to signals, threads and exit stays out of the test runner."""

import ctypes
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

import asyncrt
from asyncrt import _lib
from tests.support import WAIT

PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])  # bindings/python: asyncrt and tests


def script_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["ASYNCRT_LIBRARY"] = _lib.lib._name  # the library this run tests
    env.pop("PYTHONWARNINGS", None)
    return env


def run_script(test, source, timeout=WAIT * 3):
    """Runs `source` in a child interpreter; returns (status, stdout, stderr).
    A child that outlives `timeout` is killed and fails the test."""
    try:
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True, text=True,
                              timeout=timeout, env=script_env())
    except subprocess.TimeoutExpired as exc:
        test.fail(f"the script did not end within {timeout} s (a hang); its stderr so far:\n{exc.stderr}")
    return done.returncode, done.stdout, done.stderr


# ---- fork ---------------------------------------------------------------------

FORK_SCRIPT = """
    import os, sys, threading, time
    import asyncrt
    from tests.support import WAIT, Blocker, Parked

    local = asyncrt.Executor()
    parked = Parked()
    task = local.spawn(parked)
    local.run()
    tx, rx = asyncrt.channel(kind="mpsc", capacity=4)
    tx.try_send("before the fork")

    # A thread of the parent is inside pool.close() at the fork, holding the
    # binding's lock of that executor: its worker is stuck in a poll.
    pool = asyncrt.Executor(kind="threads", workers=1, shutdown_timeout=WAIT)
    blocker = Blocker()
    pool.spawn(blocker.future())
    assert blocker.entered.wait(WAIT)
    spares = [Blocker(), Blocker()]  # C futures made without asyncrt, for the child
    spare_futures = [spare.future() for spare in spares]
    closer = threading.Thread(target=pool.close)
    closer.start()
    deadline = time.monotonic() + WAIT
    while not pool._host.closing:
        assert time.monotonic() < deadline, "pool.close() did not start"

    pid = os.fork()
    if pid == 0:
        answers = []
        for what, call in [
            ("Executor()", asyncrt.Executor),
            ("local.spawn", lambda: local.spawn(Parked())),
            ("local.block_on", lambda: local.block_on(Parked(), timeout=1)),
            ("task.status", lambda: task.status),
            ("pool.spawn", lambda: pool.spawn(spare_futures[0])),
            ("pool.block_on", lambda: pool.block_on(spare_futures[1], timeout=1)),
            ("tx.try_send", lambda: tx.try_send(1)),
            ("rx.try_recv", rx.try_recv),
            ("asyncrt.block_on", lambda: asyncrt.block_on(Parked(), timeout=1)),
        ]:
            try:
                call()
                answers.append(f"{what}: no error")
            except asyncrt.Forked:
                answers.append(f"{what}: Forked")
            except Exception as exc:
                answers.append(f"{what}: {type(exc).__name__}: {exc}")
        pool.close()   # the parent's: nothing to do, no error
        local.close()
        tx.close()
        print("\\n".join(answers), flush=True)
        sys.exit(0)    # a normal exit: finalizers and exit handlers run
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status), flush=True)

    blocker.release()
    closer.join(WAIT)
    parked.release()
    local.run()
    print("parent task", task.status.name, "channel", rx.try_recv(), flush=True)
    local.close()
"""


def forked_child(queue):
    """multiprocessing target: what asyncrt answers in a forked child."""
    answers = []
    for what, call in [("Executor()", asyncrt.Executor),
                       ("asyncrt.block_on", lambda: asyncrt.block_on(asyncrt.sleep(0), timeout=1)),
                       ("channel", lambda: asyncrt.channel(kind="mpsc", capacity=1))]:
        try:
            call()
            answers.append(f"{what}: no error")
        except asyncrt.AsyncrtError as exc:
            answers.append(f"{what}: {type(exc).__name__}")
    queue.put(answers)


class ForkTest(unittest.TestCase):
    def test_a_forked_child_gets_errors_not_hangs(self):
        status, out, err = run_script(self, FORK_SCRIPT)
        self.assertEqual(status, 0, f"stdout:\n{out}\nstderr:\n{err}")
        lines = out.splitlines()
        answers = [line for line in lines if ": " in line]
        self.assertEqual(len(answers), 9, out)
        for line in answers:
            self.assertTrue(line.endswith(": Forked"), f"in the child, {line}")
        self.assertIn("child exit 0", lines)
        self.assertIn("parent task OK channel before the fork", lines)
        self.assertNotIn("Traceback", err)
        self.assertNotIn("Exception ignored", err)

    def test_multiprocessing_fork_start_method(self):
        with asyncrt.Executor(kind="threads", workers=1) as pool:
            self.assertIsNone(pool.block_on(asyncrt.sleep(0), timeout=WAIT))  # workers exist at the fork
            context = multiprocessing.get_context("fork")
            queue = context.Queue()
            child = context.Process(target=forked_child, args=(queue,))
            child.start()
            try:
                answers = queue.get(timeout=WAIT)
            finally:
                child.join(WAIT)
                if child.exitcode is None:
                    child.kill()
                    child.join()
            self.assertEqual(child.exitcode, 0)
            self.assertEqual(answers, ["Executor(): Forked", "asyncrt.block_on: Forked", "channel: Forked"])
            self.assertIsNone(pool.block_on(asyncrt.sleep(0), timeout=WAIT))  # the parent goes on


# ---- Ctrl-C -------------------------------------------------------------------

INTERRUPT_SCRIPT = """
    import os, sys, time, traceback
    import asyncrt
    from tests.support import WAIT, Blocker

    kind = sys.argv[1]

    class Waits(asyncrt.Future):
        \"\"\"Pending for ever; says so at its first poll, inside block_on.\"\"\"
        def __init__(self):
            self.drops = 0
            self.polled = False
        def poll(self, cx):
            if not self.polled:
                self.polled = True
                print("waiting", flush=True)
            return asyncrt.PENDING
        def drop(self):
            self.drops += 1

    if kind == "local":
        ex = asyncrt.Executor()
        future = Waits()
        waited = future
    else:
        ex = asyncrt.Executor(kind="threads", workers=1)
        blocker = Blocker(inside=lambda: print("waiting", flush=True))
        future = blocker.future()
    try:
        ex.block_on(future)  # no timeout: only the signal ends it
        print("block_on returned")
    except KeyboardInterrupt as exc:
        inside = any(frame.name == "block_on" for frame in traceback.extract_tb(exc.__traceback__))
        print("KeyboardInterrupt from block_on" if inside else "KeyboardInterrupt elsewhere", flush=True)
    if kind == "local":
        ex.run()  # the cancelled task is dropped at the next run
        print("dropped", waited.drops)
    else:
        blocker.release()
        assert blocker.dropped.wait(WAIT), "the cancelled task was not dropped"
        print("dropped", 1)
    print("still works", ex.block_on(asyncrt.sleep(0), timeout=WAIT), flush=True)
    ex.close()
"""


class InterruptTest(unittest.TestCase):
    def interrupt(self, kind):
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(INTERRUPT_SCRIPT), kind],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=script_env())
        try:
            line = child.stdout.readline()
            self.assertEqual(line, "waiting\n", "the script did not start waiting")
            child.send_signal(signal.SIGINT)  # as Ctrl-C does
            out, err = child.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
            self.fail(f"block_on ({kind}) did not end within {WAIT} s of SIGINT; stderr:\n{err}")
        self.assertEqual(child.returncode, 0, f"stdout:\n{out}\nstderr:\n{err}")
        self.assertEqual(out.splitlines(), ["KeyboardInterrupt from block_on", "dropped 1", "still works None"])

    def test_ctrl_c_reaches_block_on_of_a_local_executor(self):
        self.interrupt("local")

    def test_ctrl_c_reaches_block_on_of_a_thread_per_core_executor(self):
        self.interrupt("threads")


# ---- interpreter exit -----------------------------------------------------------

EXIT_SCRIPT = """
    import os, sys, time
    import asyncrt
    from tests.support import Blocker

    def hook(name):
        def called(worker):
            os.write(1, f"{name} {worker} finalizing={sys.is_finalizing()}\\n".encode())
        return called

    hooks = asyncrt.ThreadHooks(on_start=hook("start"), on_stop=hook("stop"), on_park=hook("park"),
                                on_unpark=hook("unpark"))
    pool = asyncrt.Executor(kind="threads", workers=2, hooks=hooks, shutdown_timeout=0.2)
    # Stuck in a poll for a while after exit begins, past shutdown_timeout.
    blocker = Blocker()
    stuck_until = time.monotonic() + 1.0
    blocker.released.wait = lambda timeout=None, wait=blocker.released.wait: wait(stuck_until - time.monotonic())
    pool.spawn(blocker.future(), worker=0)
    assert blocker.entered.wait(5)
    # Timers due during exit wake the other worker (park, unpark hooks).
    for k in range(1, 20):
        pool.spawn(asyncrt.sleep(0.05 * k), worker=1).close()
    # A second executor nobody closes.
    idle = asyncrt.Executor(kind="threads", workers=1, hooks=hooks)

    def threads(listdir=os.listdir, len=len):
        return len(listdir("/proc/self/task"))

    class Teardown:
        # Runs while the interpreter finalizes: a worker's call into Python
        # now would end (or block) that thread.
        def __del__(self, write=os.write, sleep=time.sleep, threads=threads, fin=sys.is_finalizing):
            before = threads()
            sleep(1.5)
            write(1, f"teardown finalizing={fin()} threads {before} -> {threads()}\\n".encode())

    keep = Teardown()
    print("exiting", flush=True)
"""


class ExitTest(unittest.TestCase):
    def test_no_callback_into_python_once_finalization_began(self):
        status, out, err = run_script(self, EXIT_SCRIPT)
        self.assertEqual(status, 0, f"stdout:\n{out}\nstderr:\n{err}")
        lines = out.splitlines()
        late = [line for line in lines if "finalizing=True" in line and not line.startswith("teardown")]
        self.assertEqual(late, [], "hooks ran after finalization began")
        stops = sorted(line.split()[:2][1] for line in lines if line.startswith("stop "))
        self.assertEqual(stops, ["0", "0", "1"], f"each worker's on_stop before finalization:\n{out}")
        teardown = [line for line in lines if line.startswith("teardown")]
        self.assertEqual(len(teardown), 1, out)
        words = teardown[0].split()
        self.assertEqual(words[1], "finalizing=True")
        self.assertEqual(words[3], words[5], f"a thread ended while the interpreter finalized: {teardown[0]}")
        self.assertNotIn("Traceback", err)
        self.assertNotIn("still inside a poll", err)


# ---- signals --------------------------------------------------------------------

SIGNAL_SCRIPT = """
    import ctypes, os, signal, threading, time
    import asyncrt
    from tests.support import WAIT, Blocker

    SA_ONSTACK = 0x08000000

    class sigaction_t(ctypes.Structure):  # glibc's struct sigaction
        _fields_ = [("handler", ctypes.c_void_p), ("mask", ctypes.c_ulong * 16), ("flags", ctypes.c_int),
                    ("restorer", ctypes.c_void_p)]

    def flags(signum):
        action = sigaction_t()
        assert ctypes.CDLL(None).sigaction(signum, None, ctypes.byref(action)) == 0
        return action.flags

    pool = asyncrt.Executor(kind="threads", workers=2)  # the runtime's threads exist
    handled = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: handled.append(threading.get_ident()))
    print("onstack", bool(flags(signal.SIGUSR1) & SA_ONSTACK))

    # Blocked on this thread: the kernel hands SIGUSR1 to another thread, the
    # runtime's; Python's C handler runs there and this thread runs the
    # Python handler afterwards.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    busy = [pool.spawn(asyncrt.sleep(0.001 * k)) for k in range(50)]
    for i in range(1, 21):
        os.kill(os.getpid(), signal.SIGUSR1)
        deadline = time.monotonic() + WAIT
        while len(handled) < i and time.monotonic() < deadline:
            time.sleep(0.001)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    print("handled", len(handled), "on the main thread", set(handled) == {threading.get_ident()})
    print("pool works", pool.block_on(asyncrt.sleep(0), timeout=WAIT))
    pool.close()
"""


class SignalTest(unittest.TestCase):
    def test_a_handler_installed_after_load_keeps_working(self):
        status, out, err = run_script(self, SIGNAL_SCRIPT)
        self.assertEqual(status, 0, f"stdout:\n{out}\nstderr:\n{err}")
        # Python's signal.signal sets SA_ONSTACK (3.10+), as the runtime's
        # threads need.
        self.assertEqual(out.splitlines(), ["onstack True", "handled 20 on the main thread True",
                                            "pool works None"])


# ---- loading the library twice ----------------------------------------------------

class LoadTwiceTest(unittest.TestCase):
    def test_the_same_file_is_the_same_library(self):
        again = ctypes.CDLL(_lib.lib._name)
        self.assertEqual(again._handle, _lib.lib._handle)

    def test_a_copy_refuses(self):
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "libasyncrt_copy.so"
            shutil.copyfile(_lib.lib._name, copy)
            other = ctypes.CDLL(str(copy))
            other.asyncrt_last_error.restype = ctypes.c_char_p
            out = ctypes.c_void_p()
            self.assertEqual(other.asyncrt_executor_new(None, ctypes.byref(out)), asyncrt.Status.EVERSION)
            self.assertIn(str(copy), other.asyncrt_last_error().decode())
            with asyncrt.Executor() as ex:  # the library loaded first serves on
                self.assertIsNone(ex.block_on(asyncrt.sleep(0), timeout=WAIT))

    def test_the_binding_says_when_its_library_is_the_second_copy(self):
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "libasyncrt_copy.so"
            shutil.copyfile(_lib.lib._name, copy)
            status, out, err = run_script(self, f"""
                import ctypes
                ctypes.CDLL({str(copy)!r})  # another package's copy, loaded first
                try:
                    import asyncrt
                    print("imported")
                except Exception as exc:  # the package did not import: name the class
                    print(f"{{type(exc).__name__}}: {{exc}}")
            """)
        self.assertEqual(status, 0, err)
        self.assertTrue(out.startswith("VersionMismatch:"), out)
        self.assertIn("refuses every call", out)
        self.assertIn(str(copy), out)


if __name__ == "__main__":
    unittest.main()
