"""Time: the test clock, sleep and timeout. Every test that checks when a
timer fires uses a test clock and moves it by hand; nothing here measures
real time (a few tests sleep briefly on the monotonic clock, with bounded
waits, only to see that the real timers fire at all)."""

import gc
import unittest

import asyncrt
from asyncrt import Capability, Status, cfuture
from tests.support import WAIT, Counter, Gate, Parked, Raises, finish, wait_until

NS = 1_000_000_000


def test_clock(test, **options):
    ex = asyncrt.Executor(clock="test", **options)
    test.addCleanup(ex.close)
    return ex


class ClockTest(unittest.TestCase):
    def test_a_test_clock_starts_at_zero_and_moves_only_when_advanced(self):
        ex = test_clock(self)
        self.assertEqual(ex.clock, "test")
        self.assertEqual(ex.now_ns(), 0)
        ex.run()
        self.assertEqual(ex.now_ns(), 0)
        ex.advance_clock(1.5)
        self.assertEqual(ex.now_ns(), 1_500_000_000)
        self.assertEqual(ex.now(), 1.5)
        ex.advance_clock(1e-9)
        self.assertEqual(ex.now_ns(), 1_500_000_001)

    def test_capabilities(self):
        caps = test_clock(self).capabilities()
        self.assertIn(Capability.TIMERS, caps)
        self.assertIn(Capability.SUBSYSTEMS, caps)
        self.assertIn(Capability.TEST_CLOCK, caps)
        with asyncrt.Executor() as ex:
            caps = ex.capabilities()
        self.assertIn(Capability.TIMERS, caps)
        self.assertNotIn(Capability.TEST_CLOCK, caps)

    def test_only_a_test_clock_advances(self):
        with asyncrt.Executor() as ex:
            self.assertGreater(ex.now_ns(), 0)
            with self.assertRaises(asyncrt.InvalidArgument):
                ex.advance_clock(1)

    def test_a_clock_does_not_go_back(self):
        with self.assertRaises(ValueError):
            test_clock(self).advance_clock(-1)

    def test_unknown_clock(self):
        with self.assertRaises(ValueError):
            asyncrt.Executor(clock="sundial")

    def test_thread_per_core_with_a_test_clock(self):
        ex = test_clock(self, kind="threads", workers=2, shutdown_timeout=WAIT)
        self.assertIn(Capability.TEST_CLOCK, ex.capabilities())
        ex.advance_clock(2)
        self.assertEqual(ex.now_ns(), 2 * NS)


class SleepTest(unittest.TestCase):
    def setUp(self):
        self.ex = test_clock(self)
        self.woke = []

    def sleeper(self, name, seconds):
        async def sleeper():
            await asyncrt.sleep(seconds)
            self.woke.append((name, self.ex.now_ns()))
            return name

        return self.ex.spawn(sleeper())

    def advance(self, seconds):
        self.ex.advance_clock(seconds)
        self.ex.run()

    def test_sleeps_end_in_deadline_order_and_never_early(self):
        deadlines = {"a": 300_000_000, "b": 100_000_000, "c": 200_000_000}
        tasks = [self.sleeper(name, ns / NS) for name, ns in deadlines.items()]
        self.ex.run()
        self.assertEqual(self.woke, [])
        self.assertEqual(self.ex.timer_stats().waiters, 3)
        self.advance(0.05)
        self.assertEqual(self.woke, [])
        self.advance(0.05)  # 0.1: b is due
        self.assertEqual([name for name, _ in self.woke], ["b"])
        self.advance(0.099999999)  # one nanosecond before c
        self.assertEqual([name for name, _ in self.woke], ["b"])
        self.advance(1e-9)
        self.assertEqual([name for name, _ in self.woke], ["b", "c"])
        self.advance(5)
        self.assertEqual([name for name, _ in self.woke], ["b", "c", "a"])
        for name, at in self.woke:
            self.assertGreaterEqual(at, deadlines[name], f"{name} woke early")
        self.assertEqual([t.result() for t in tasks], ["a", "b", "c"])
        stats = self.ex.timer_stats()
        self.assertEqual((stats.completions, stats.waiters), (3, 0))

    def test_a_sleep_counts_from_its_first_poll(self):
        gate = Parked()

        async def late():
            await gate
            await asyncrt.sleep(1)
            return self.ex.now_ns()

        task = self.ex.spawn(late())
        self.advance(10)
        gate.release()
        self.ex.run()  # the sleep starts now, at 10 s
        self.advance(0.999999999)
        self.assertFalse(task.done())
        self.advance(1e-9)
        self.assertEqual(task.result(), 11 * NS)

    def test_a_zero_sleep_ends_without_the_clock_moving(self):
        task = self.sleeper("now", 0)
        self.ex.run()
        self.assertEqual(task.result(), "now")
        self.assertEqual(self.ex.now_ns(), 0)

    def test_cancelling_a_sleeping_task_disarms_its_timer(self):
        task = self.sleeper("never", 1)
        other = self.sleeper("other", 2)
        self.ex.run()
        self.assertEqual(self.ex.timer_stats().waiters, 2)
        task.cancel()
        self.ex.run()
        self.assertEqual(task.status, Status.ECANCELLED)
        self.assertEqual(self.ex.timer_stats().waiters, 1)
        self.advance(5)
        self.assertEqual([name for name, _ in self.woke], ["other"])
        self.assertEqual(other.result(), "other")
        self.assertEqual(self.ex.stats().tasks_live, 0)

    def test_sleep_state_is_released_when_the_runtime_drops_it(self):
        gc.collect()
        before = len(cfuture._owned)
        tasks = [self.sleeper(i, i + 1) for i in range(3)]
        self.ex.run()
        self.assertEqual(len(cfuture._owned), before + 3)
        self.advance(1)  # one fires
        tasks[1].cancel()  # one is cancelled
        self.ex.run()
        self.assertEqual(len(cfuture._owned), before + 1)
        self.ex.close()  # one is dropped by the executor's free
        self.assertEqual(len(cfuture._owned), before)
        self.assertEqual(tasks[2].status, Status.ECANCELLED)

    def test_a_sleep_never_awaited_is_dropped_by_the_collector(self):
        gc.collect()
        before = len(cfuture._owned)
        sleeper = asyncrt.sleep(1)
        self.assertEqual(len(cfuture._owned), before + 1)
        del sleeper
        gc.collect()
        self.assertEqual(len(cfuture._owned), before)

    def test_spawned_as_a_c_task(self):
        task = self.ex.spawn(asyncrt.sleep(1))
        self.ex.run()
        self.assertFalse(task.done())
        self.advance(1)
        self.assertIsNone(task.result())

    def test_block_on_a_sleep_on_the_monotonic_clock(self):
        with asyncrt.Executor() as ex:
            start = ex.now_ns()

            async def main():
                await asyncrt.sleep(0.002)
                return ex.now_ns()

            self.assertGreaterEqual(finish(self, ex, main()), start + 2_000_000)
            self.assertEqual(ex.timer_stats().completions, 1)


class ThreadsSleepTest(unittest.TestCase):
    def test_sleep_on_a_worker_under_a_test_clock(self):
        ex = test_clock(self, kind="threads", workers=2, shutdown_timeout=WAIT)
        task = ex.spawn(asyncrt.sleep(1), worker=0)
        wait_until(self, lambda: ex.timer_stats().waiters == 1, "the sleep was not armed")
        ex.advance_clock(0.999999999)
        # A zero sleep on the same worker ends at a tick that read the new time;
        # that tick would have fired the first sleep too, were it due.
        probe = ex.spawn(asyncrt.sleep(0), worker=0)
        wait_until(self, probe.done, "the probe did not end")
        self.assertFalse(task.done(), "a sleep ended before its deadline")
        ex.advance_clock(1e-9)
        wait_until(self, task.done, "the sleep did not end at its deadline")
        self.assertIsNone(task.result())

    def test_block_on_a_sleep_on_the_monotonic_clock(self):
        with asyncrt.Executor(kind="threads", workers=1, shutdown_timeout=WAIT) as ex:
            self.assertIsNone(ex.block_on(asyncrt.sleep(0.001), timeout=WAIT))


class ForeignSleepTest(unittest.TestCase):
    def test_run_pending_ticks_the_timers(self):
        fx = asyncrt.ForeignExecutor()
        self.addCleanup(fx.close)

        async def main():
            await asyncrt.sleep(0)
            return "slept"

        task = fx.spawn(main())
        wait_until(self, lambda: fx.run_pending() is not None and task.done(), "the sleep did not end")
        self.assertEqual(task.result(), "slept")


class TimeoutTest(unittest.TestCase):
    def setUp(self):
        self.ex = test_clock(self)

    def advance(self, seconds):
        self.ex.advance_clock(seconds)
        self.ex.run()

    def test_a_python_future_that_finishes_in_time_passes_its_value(self):
        self.assertEqual(finish(self, self.ex, asyncrt.timeout(Counter(3, "value"), 1)), "value")

    def test_a_coroutine_that_finishes_in_time_passes_its_value(self):
        async def slow():
            await asyncrt.sleep(0.5)
            return "in time"

        async def main():
            return await asyncrt.timeout(slow(), 1)

        task = self.ex.spawn(main())
        self.ex.run()
        self.assertEqual(self.ex.timer_stats().waiters, 2)
        self.advance(0.5)
        self.assertEqual(task.result(), "in time")
        self.assertEqual(self.ex.timer_stats().waiters, 0, "the timeout's timer is still armed")

    def test_a_python_future_that_runs_late_times_out_and_is_dropped(self):
        parked = Parked()

        async def main():
            with self.assertRaises(asyncrt.TimedOut):
                await asyncrt.timeout(parked, 1)
            return parked.drops

        task = self.ex.spawn(main())
        self.ex.run()
        self.advance(0.999999999)
        self.assertFalse(task.done())
        self.advance(1e-9)
        self.assertEqual(task.result(), 1)

    def test_a_failure_passes_through(self):
        failing = Raises(ValueError("inner"))
        with self.assertRaises(ValueError):
            finish(self, self.ex, asyncrt.timeout(failing, 1))
        self.assertEqual(failing.drops, 1)

    def test_no_limit(self):
        counter = Counter(1, "v")
        self.assertIs(asyncrt.timeout(counter, None), counter)

    def test_a_c_future_gets_a_c_timeout(self):
        gate = Gate(self)
        limited = asyncrt.timeout(gate.future(), 1)
        self.assertIsInstance(limited, asyncrt.CFuture)
        task = self.ex.spawn(limited)
        self.ex.run()
        gate.open()
        self.ex.run()
        self.assertEqual(task.status, Status.OK)

    def test_a_c_timeout_fires(self):
        join = Gate(self).future()

        async def main():
            return await asyncrt.timeout(join, 1)

        task = self.ex.spawn(main())
        self.ex.run()
        self.advance(0.999999999)
        self.assertFalse(task.done())
        self.advance(1e-9)
        with self.assertRaises(asyncrt.TimedOut) as caught:
            task.result()
        self.assertIn("1 s", str(caught.exception))
        self.assertEqual(self.ex.stats().tasks_live, 0)

    def test_a_c_timeout_on_a_thread_per_core_executor(self):
        pool = test_clock(self, kind="threads", workers=1, shutdown_timeout=WAIT)
        task = pool.spawn(asyncrt.timeout(Gate(self).future(), 1))
        wait_until(self, lambda: pool.timer_stats().waiters == 1, "the timeout was not armed")
        pool.advance_clock(1)
        wait_until(self, task.done, "the timeout did not fire")
        self.assertEqual(task.status, Status.ETIMEDOUT)

    def test_a_timeout_taken_by_its_timeout_cannot_be_reused(self):
        inner = asyncrt.sleep(1)
        asyncrt.timeout(inner, 2)
        with self.assertRaises(asyncrt.BadHandle):
            self.ex.spawn(inner)


if __name__ == "__main__":
    unittest.main()
