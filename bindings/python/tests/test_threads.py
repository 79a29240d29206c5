"""Thread-per-core executors: C futures on worker threads, Python futures
refused, placement, counters, hooks and shutdown."""

import contextlib
import gc
import io
import threading
import time
import unittest
import weakref

import asyncrt
from asyncrt import Capability, Status, hooks
from tests.support import WAIT, Blocker, Counter, Gate, wait_until

WORKERS = 2


def threads(test, **options):
    options.setdefault("workers", WORKERS)
    options.setdefault("shutdown_timeout", WAIT)
    ex = asyncrt.Executor(kind="threads", **options)
    test.addCleanup(ex.close)
    return ex


def polled_on(test, ex, worker, polls=1):
    wait_until(test, lambda: ex.worker_stats(worker).polls >= polls, f"worker {worker} did not poll its task")


class CapabilityTest(unittest.TestCase):
    def test_local(self):
        with asyncrt.Executor() as ex:
            caps = ex.capabilities()
        self.assertIsInstance(caps, Capability)
        want = Capability.SPAWN_LOCAL | Capability.SPAWN_SEND | Capability.STEPPED | Capability.BLOCK_ON
        self.assertEqual(caps & want, want, f"got {caps!r}")
        for cap in (Capability.SHUTDOWN, Capability.MULTI_THREAD, Capability.WORK_STEALING):
            self.assertNotIn(cap, caps)

    def test_threads(self):
        caps = threads(self).capabilities()
        want = (Capability.SPAWN_LOCAL | Capability.SPAWN_SEND | Capability.WORK_STEALING | Capability.BLOCK_ON
                | Capability.MULTI_THREAD | Capability.PLACEMENT | Capability.SHUTDOWN)
        self.assertEqual(caps & want, want, f"got {caps!r}")
        self.assertNotIn(Capability.STEPPED, caps)


class ConfigTest(unittest.TestCase):
    def test_threads_options_are_refused_on_a_local_executor(self):
        for option in ({"workers": 2}, {"pin": True}, {"spin_ns": 0}, {"hooks": asyncrt.ThreadHooks()}):
            with self.subTest(option=option), self.assertRaises(ValueError):
                asyncrt.Executor(**option)

    def test_unknown_kind(self):
        with self.assertRaises(ValueError):
            asyncrt.Executor(kind="fibers")

    def test_a_refused_config_releases_its_hooks(self):
        before = dict(hooks._live)
        with self.assertRaises(asyncrt.InvalidArgument) as caught:
            asyncrt.Executor(kind="threads", workers=1 << 20, hooks=asyncrt.ThreadHooks(on_start=print))
        self.assertIn("workers", caught.exception.message)
        self.assertEqual(hooks._live, before)

    def test_every_option_is_accepted(self):
        ex = threads(self, pin=True, spin_ns=0, budget_polls=16, budget_ns=100_000)
        self.assertEqual(ex.stats().workers, WORKERS)
        self.assertEqual(repr(ex), "<asyncrt.Executor threads>")


class DrivingTest(unittest.TestCase):
    def setUp(self):
        self.ex = threads(self)
        self.gate = Gate(self)

    def test_host_driving_is_not_supported(self):
        for name in ("run", "run_step", "fd"):
            with self.subTest(call=name), self.assertRaises(asyncrt.NotSupported) as caught:
                getattr(self.ex, name)()
            self.assertIn("not supported", caught.exception.message)

    def test_python_futures_are_refused_and_dropped(self):
        counter = Counter(0)
        with self.assertRaises(asyncrt.NotSupported) as caught:
            self.ex.spawn(counter)
        self.assertIn("local", str(caught.exception))
        self.assertEqual(counter.drops, 1)

        async def coroutine():
            pass

        coro = coroutine()
        with self.assertRaises(asyncrt.NotSupported):
            self.ex.block_on(coro, timeout=WAIT)
        with self.assertRaises(RuntimeError):  # closed: cannot be started
            coro.send(None)
        self.assertEqual(self.ex.stats().tasks_spawned, 0)

    def test_c_future_runs_on_a_worker(self):
        task = self.ex.spawn(self.gate.future(), worker=1)
        polled_on(self, self.ex, 1)
        self.assertEqual(task.status, Status.EAGAIN)
        self.gate.open()
        self.assertIsNone(self.ex.block_on(task, timeout=WAIT))
        self.assertEqual(task.status, Status.OK)
        self.assertIsNone(task.result())

    def test_block_on_a_c_future(self):
        future = self.gate.future()
        self.gate.open()
        self.assertIsNone(self.ex.block_on(future, timeout=WAIT))
        self.assertIn("taken", repr(future))

    def test_block_on_times_out(self):
        with self.assertRaises(asyncrt.TimedOut):
            self.ex.block_on(self.gate.future(), timeout=0.01)

    def test_send_tasks_complete(self):
        tasks = [self.ex.spawn(self.gate.future(), send=True) for _ in range(4)]
        self.gate.open()
        for task in tasks:
            self.assertIsNone(self.ex.block_on(task, timeout=WAIT))

    def test_a_python_coroutine_awaits_a_worker_task(self):
        task = self.ex.spawn(self.gate.future(), worker=0)
        local = self.gate.local

        async def main():
            return await task.join()  # a C join, polled here, woken from the worker

        waiter = local.spawn(main())
        local.run()
        self.gate.open()
        self.assertIsNone(local.block_on(waiter, timeout=WAIT))
        self.assertEqual(task.status, Status.OK)

    def test_close_cancels_running_tasks(self):
        tasks = [self.ex.spawn(self.gate.future(), worker=i) for i in range(WORKERS)]
        for i in range(WORKERS):
            polled_on(self, self.ex, i)
        self.ex.close()
        for task in tasks:
            self.assertEqual(task.status, Status.ECANCELLED)
        with self.assertRaises(asyncrt.BadHandle):
            self.ex.spawn(self.gate.future())


class StatsTest(unittest.TestCase):
    def test_workers_while_running(self):
        ex = threads(self)
        gate = Gate(self)
        tasks = [ex.spawn(gate.future(), worker=i) for i in range(WORKERS)]
        for i in range(WORKERS):
            polled_on(self, ex, i)
        stats = ex.stats()
        self.assertEqual(stats.workers, WORKERS)
        self.assertEqual(stats.tasks_live, WORKERS)
        gate.open()
        for task in tasks:
            ex.block_on(task, timeout=WAIT)
        for i in range(WORKERS):
            # A worker publishes its poll count when a run ends, which can be
            # just after the task completed: wait (bounded) for it.
            deadline = time.monotonic() + WAIT
            got = ex.worker_stats(i)
            while got.polls < 2 and time.monotonic() < deadline:
                time.sleep(0.001)
                got = ex.worker_stats(i)
            self.assertIsInstance(got, asyncrt.WorkerStats)
            self.assertGreaterEqual(got.polls, 2, f"worker {i}: {got}")
            self.assertGreaterEqual(got.wakes, 1, f"worker {i}: its task was woken from this thread; {got}")
        with self.assertRaises(asyncrt.InvalidArgument):
            ex.worker_stats(WORKERS)

    def test_counters_add_up_after_shutdown(self):
        ex = threads(self)
        gate = Gate(self)
        tasks = [ex.spawn(gate.future(), send=True) for _ in range(6)]
        gate.open()
        for task in tasks:
            ex.block_on(task, timeout=WAIT)
        ex.shutdown("graceful", timeout=WAIT)
        stats = ex.stats()
        per_worker = [ex.worker_stats(i) for i in range(WORKERS)]
        self.assertEqual(sum(w.polls for w in per_worker), stats.polls, f"{per_worker} vs {stats}")
        self.assertEqual(stats.tasks_live, 0)

    def test_a_local_executor_has_one_worker(self):
        with asyncrt.Executor() as ex:
            ex.block_on(Counter(2), timeout=WAIT)
            self.assertEqual(ex.stats().workers, 1)
            self.assertGreaterEqual(ex.worker_stats(0).polls, 3)
            with self.assertRaises(asyncrt.InvalidArgument):
                ex.worker_stats(1)

    def test_no_worker_past_the_last(self):
        ex = threads(self)
        future = Gate(self).future()
        with self.assertRaises(asyncrt.InvalidArgument):
            ex.spawn(future, worker=WORKERS)
        self.assertIn("taken", repr(future))


class StealingTest(unittest.TestCase):
    def steal_from_busy_worker_0(self, spawn_inside):
        """Holds worker 0 in a poll with Send tasks queued on it, spawned from
        inside that poll or placed from this thread; worker 1 must take them."""
        ex = threads(self)
        gate = Gate(self)
        futures = [gate.future() for _ in range(3)]
        tasks = []

        def spawn_send_tasks():
            tasks.extend(ex.spawn(future, send=True, worker=0) for future in futures)

        blocker = Blocker(spawn_send_tasks if spawn_inside else None)
        self.addCleanup(blocker.dropped.wait, WAIT)
        self.addCleanup(blocker.release)
        ex.spawn(blocker.future(), worker=0)
        self.assertTrue(blocker.entered.wait(WAIT), "worker 0 did not poll the blocker")
        if not spawn_inside:
            spawn_send_tasks()
        wait_until(self, lambda: ex.worker_stats(1).steals >= 1, "worker 1 stole nothing from busy worker 0")
        wait_until(self, lambda: ex.worker_stats(1).polls >= len(futures), "worker 1 did not poll what it stole")
        blocker.release()
        gate.open()
        for task in tasks:
            ex.block_on(task, timeout=WAIT)

    def test_send_tasks_a_busy_worker_spawned(self):
        self.steal_from_busy_worker_0(spawn_inside=True)

    def test_send_tasks_placed_on_a_busy_worker_from_outside(self):
        self.steal_from_busy_worker_0(spawn_inside=False)


class StuckWorkerTest(unittest.TestCase):
    """A worker held inside a poll cannot stop: the waits for it are bounded."""

    def setUp(self):
        self.ex = threads(self, shutdown_timeout=0.05)
        self.blocker = Blocker()
        self.addCleanup(lambda: self.assertTrue(self.blocker.dropped.wait(WAIT), "the blocker was never dropped"))
        self.addCleanup(self.blocker.release)
        self.task = self.ex.spawn(self.blocker.future())
        self.assertTrue(self.blocker.entered.wait(WAIT), "no worker polled the blocker")

    def test_close_frees_the_handle_and_times_out(self):
        with self.assertRaises(asyncrt.TimedOut):
            self.ex.close()
        self.assertTrue(self.ex.closed)
        self.ex.close()
        with self.assertRaises(asyncrt.BadHandle):
            self.ex.stats()

    def test_shutdown_times_out_and_goes_on(self):
        with self.assertRaises(asyncrt.TimedOut):
            self.ex.shutdown("immediate", timeout=0.01)
        self.blocker.release()
        wait_until(self, lambda: self.task.done(), "the task did not end once its poll returned")
        self.assertTrue(self.blocker.dropped.wait(WAIT))
        with self.assertRaises(asyncrt.Shutdown):
            self.ex.spawn(Gate(self).future())


class HooksTest(unittest.TestCase):
    def test_hooks_run_on_the_workers(self):
        calls = {"start": [], "stop": [], "park": [], "unpark": []}

        def record(kind):
            def hook(worker):
                calls[kind].append((worker, threading.get_ident()))  # under the GIL

            return hook

        hooks = asyncrt.ThreadHooks(on_start=record("start"), on_stop=record("stop"), on_park=record("park"),
                                    on_unpark=record("unpark"))
        ex = asyncrt.Executor(kind="threads", workers=WORKERS, spin_ns=0, shutdown_timeout=WAIT, hooks=hooks)
        released = threading.Event()
        weakref.finalize(hooks.on_start, released.set)
        del hooks
        try:
            wait_until(self, lambda: len(calls["start"]) == WORKERS, "on_start was not called on every worker")
            wait_until(self, lambda: {w for w, _ in calls["park"]} == set(range(WORKERS)),
                       "on_park was not called on every idle worker (spin_ns=0)")
            self.assertTrue(all(ex.worker_stats(i).parks >= 1 for i in range(WORKERS)))
            gate = Gate(self)
            task = ex.spawn(gate.future(), worker=1)  # wakes the sleeping worker 1
            wait_until(self, lambda: 1 in {w for w, _ in calls["unpark"]}, "on_unpark was not called")
            gate.open()
            ex.block_on(task, timeout=WAIT)
        finally:
            ex.close()
        main = threading.get_ident()
        self.assertEqual(sorted(w for w, _ in calls["start"]), list(range(WORKERS)))
        self.assertNotIn(main, {t for _, t in calls["start"]})
        self.assertEqual(len({t for _, t in calls["start"]}), WORKERS, "one thread per worker")
        self.assertEqual(sorted(calls["stop"]), sorted(calls["start"]), "on_stop: once per worker, on its thread")
        gc.collect()
        self.assertTrue(released.wait(WAIT), "the hooks were not released after the workers stopped")

    def test_a_hook_that_raises_is_reported(self):
        def on_start(worker):
            raise RuntimeError(f"hook of worker {worker}")

        stderr = io.StringIO()
        gate = Gate(self)
        with contextlib.redirect_stderr(stderr):
            ex = threads(self, hooks=asyncrt.ThreadHooks(on_start=on_start))
            task = ex.spawn(gate.future())
            gate.open()
            ex.block_on(task, timeout=WAIT)
            ex.close()
        self.assertIn("thread hook on_start", stderr.getvalue())
        self.assertIn("RuntimeError: hook of worker", stderr.getvalue())


class ShutdownTest(unittest.TestCase):
    def setUp(self):
        self.ex = threads(self)
        self.gate = Gate(self)

    def parked_tasks(self):
        tasks = [self.ex.spawn(self.gate.future(), worker=i) for i in range(WORKERS)]
        for i in range(WORKERS):
            polled_on(self, self.ex, i)
        return tasks

    def test_other_kinds_do_not_support_it(self):
        with asyncrt.Executor() as ex, self.assertRaises(asyncrt.NotSupported):
            ex.shutdown()

    def test_unknown_mode(self):
        with self.assertRaises(ValueError):
            self.ex.shutdown("eventually")

    def test_immediate_cancels_every_task(self):
        tasks = self.parked_tasks()
        self.ex.shutdown("immediate", timeout=WAIT)
        self.assertEqual([t.status for t in tasks], [Status.ECANCELLED] * WORKERS)
        self.assertEqual(self.ex.stats().tasks_live, 0)
        future = self.gate.future()
        with self.assertRaises(asyncrt.Shutdown):
            self.ex.spawn(future)
        self.assertIn("taken", repr(future))
        with self.assertRaises(asyncrt.Shutdown):
            self.ex.block_on(self.gate.future(), timeout=WAIT)
        self.ex.close()

    def test_graceful_lets_tasks_finish(self):
        tasks = self.parked_tasks()
        go = threading.Event()
        opener = threading.Thread(target=lambda: go.wait(WAIT) and self.gate.open())
        opener.start()
        go.set()  # the gate opens while (or just before) the shutdown waits
        self.ex.shutdown("graceful", timeout=WAIT)
        opener.join(WAIT)
        self.assertFalse(opener.is_alive())
        self.assertEqual([t.status for t in tasks], [Status.OK] * WORKERS)
        with self.assertRaises(asyncrt.Shutdown):
            self.ex.spawn(self.gate.future())

    def test_graceful_cancels_at_the_deadline(self):
        tasks = self.parked_tasks()
        try:
            self.ex.shutdown("graceful", timeout=0.05)
        except asyncrt.TimedOut:
            pass  # the header leaves open whether the deadline itself is reported
        for task in tasks:
            wait_until(self, lambda: task.status == Status.ECANCELLED, "a task outlived the shutdown deadline")


if __name__ == "__main__":
    unittest.main()
