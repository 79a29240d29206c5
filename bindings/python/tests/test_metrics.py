"""Metrics: Executor.stats(), worker_stats(i) and Subsystem.stats() move as
the workload says. Exact values where the order of events is fixed: a local
executor run by this thread, or a one-worker thread-per-core executor read
after its shutdown. Nothing is timed."""

import unittest

import asyncrt
from asyncrt import _lib
from tests.support import WAIT, Counter, Parked, Raises, Yielder, wait_until


def threads(test, **options):
    ex = asyncrt.Executor(kind="threads", workers=1, shutdown_timeout=WAIT, **options)
    test.addCleanup(ex.close)
    return ex


def task_sum(stats):
    return stats.tasks_completed + stats.tasks_failed + stats.tasks_cancelled + stats.tasks_live


class TaskCountersTest(unittest.TestCase):
    def test_tasks_by_outcome(self):
        with asyncrt.Executor() as ex:
            for _ in range(3):
                ex.spawn(Counter(2)).close()
            for _ in range(2):
                ex.spawn(Raises(ValueError("boom"))).close()
            parked = [ex.spawn(Parked()) for _ in range(2)]
            stats = ex.stats()
            self.assertEqual((stats.tasks_spawned, stats.tasks_live), (7, 7))
            ex.run()
            stats = ex.stats()
            self.assertEqual((stats.tasks_completed, stats.tasks_failed, stats.tasks_cancelled, stats.tasks_live),
                             (3, 2, 0, 2))
            self.assertGreater(stats.memory_in_use, 0)
            for task in parked:
                task.cancel()
                task.close()
            ex.run()
            stats = ex.stats()
            self.assertEqual((stats.tasks_completed, stats.tasks_failed, stats.tasks_cancelled, stats.tasks_live),
                             (3, 2, 2, 0))
            self.assertEqual(task_sum(stats), stats.tasks_spawned)
            self.assertEqual(stats.memory_in_use, 0)
            worker = ex.worker_stats(0)
            self.assertEqual((worker.tasks_spawned, worker.tasks_completed, worker.tasks_failed,
                              worker.tasks_cancelled), (7, 3, 2, 2))

    def test_python_futures_are_woken_from_outside_the_run_loop(self):
        # The host polls Python futures between the executor's runs, so
        # their wakes reach the worker as `wakes`, never `wakes_local`.
        with asyncrt.Executor() as ex:
            ex.spawn(Counter(3)).close()
            ex.run()
            worker = ex.worker_stats(0)
        self.assertEqual(worker.wakes_local, 0)
        self.assertGreaterEqual(worker.wakes, 1 + 3)  # the spawn, and each wake
        self.assertEqual(worker.tasks_completed, 1)

    def test_fields_are_the_structs(self):
        # Every field of the C structs reaches Python, in their order.
        self.assertEqual(asyncrt.Stats._fields, tuple(name for name, _ in _lib.asyncrt_executor_stats._fields_[1:]))
        self.assertEqual(asyncrt.WorkerStats._fields,
                         tuple(name for name, _ in _lib.asyncrt_worker_stats._fields_[1:]))
        self.assertEqual(asyncrt.SubsystemStats._fields,
                         tuple(name for name, _ in _lib.asyncrt_subsystem_stats._fields_[1:]))


class WorkerCountersTest(unittest.TestCase):
    def test_a_worker_after_its_shutdown(self):
        # Four C tasks that each wake themselves five times: every spawn from
        # this thread is a remote queueing, every self-wake a local one.
        ex = threads(self)
        yielders = [Yielder(5) for _ in range(4)]
        for y in yielders:
            ex.spawn(y.future()).close()
        for y in yielders:
            self.assertTrue(y.dropped.wait(WAIT), "a yielder did not finish")
        ex.shutdown("graceful", timeout=WAIT)
        worker = ex.worker_stats(0)
        self.assertEqual(worker.polls, 4 * 6)
        self.assertEqual(worker.wakes_local, 4 * 5)
        self.assertEqual(worker.wakes, 4)
        self.assertEqual((worker.tasks_spawned, worker.tasks_completed, worker.tasks_live), (4, 4, 0))
        self.assertEqual(worker.memory_in_use, 0)
        stats = ex.stats()
        self.assertEqual((stats.wakes_local, stats.wakes_remote, stats.polls), (20, 4, 24))

    def test_budget_yields_and_timers(self):
        # A timer armed (under a test clock it never fires by itself) makes
        # the worker tick every budget_polls polls of a busy task.
        ex = threads(self, clock="test", budget_polls=10, budget_ns=3600 * 10**9)
        sleeper = ex.spawn(asyncrt.sleep(1.0))
        wait_until(self, lambda: ex.stats().timers_armed == 1, "the sleep did not arm its timer")
        busy = Yielder(95)
        ex.spawn(busy.future()).close()
        self.assertTrue(busy.dropped.wait(WAIT), "the busy task did not finish")
        worker = ex.worker_stats(0)
        self.assertEqual(worker.budget_yields, 96 // 10)
        self.assertEqual((worker.timers_armed, worker.timers_fired), (1, 0))
        ex.advance_clock(1.0)
        wait_until(self, lambda: sleeper.done(), "the sleep did not end")
        sleeper.close()
        worker = ex.worker_stats(0)
        self.assertEqual((worker.timers_armed, worker.timers_fired), (0, 1))
        self.assertEqual(worker.budget_yields, 96 // 10)
        self.assertEqual(ex.stats().timers_fired, 1)

    def test_an_idle_worker_parks(self):
        ex = threads(self, spin_ns=0)
        wait_until(self, lambda: ex.worker_stats(0).parks >= 1, "the idle worker never slept")
        ex.block_on(asyncrt.sleep(0.001), timeout=WAIT)  # it wakes, and sleeps again for the timer
        wait_until(self, lambda: ex.worker_stats(0).parks >= 2, "the worker did not sleep for the timer")
        self.assertGreater(ex.worker_stats(0).parked_ns, 0)
        self.assertGreaterEqual(ex.stats().parks, 2)


if __name__ == "__main__":
    unittest.main()
