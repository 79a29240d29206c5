"""Executor lifecycle, driving and limits."""

import asyncio
import gc
import select
import threading
import unittest

import asyncrt
from tests.support import WAIT, Counter, Parked, Probe, finish


def readable(fd):
    return bool(select.select([fd], [], [], 0)[0])


class LifecycleTest(unittest.TestCase):
    def test_close_is_idempotent(self):
        ex = asyncrt.Executor()
        ex.close()
        ex.close()
        self.assertTrue(ex.closed)

    def test_use_after_close_raises(self):
        ex = asyncrt.Executor()
        ex.close()
        uses = {
            "fd": ex.fd,
            "stats": ex.stats,
            "run": ex.run,
            "run_step": ex.run_step,
            "spawn": lambda: ex.spawn(Counter(0)),
            "block_on": lambda: ex.block_on(Counter(0)),
        }
        for name, use in uses.items():
            with self.subTest(use=name), self.assertRaises(asyncrt.BadHandle):
                use()

    def test_context_manager_closes(self):
        with asyncrt.Executor() as ex:
            self.assertFalse(ex.closed)
        self.assertTrue(ex.closed)

    def test_close_drops_pending_futures_once(self):
        ex = asyncrt.Executor()
        parked = [Parked() for _ in range(3)]
        unpolled = Counter(5)
        tasks = [ex.spawn(f) for f in parked]
        ex.run()
        tasks.append(ex.spawn(unpolled))
        ex.close()
        ex.close()
        for future in parked + [unpolled]:
            self.assertEqual(future.drops, 1)
        self.assertEqual(ex._host.records, {}, "a DROP event is missing")
        for task in tasks:
            self.assertEqual(task.status, asyncrt.Status.ECANCELLED)
            with self.assertRaises(asyncrt.Cancelled):
                task.result()

    def test_garbage_collected_executor_drops_futures(self):
        parked = Parked()
        ex = asyncrt.Executor()
        ex.spawn(parked).close()
        ex.run()
        del ex
        gc.collect()
        self.assertEqual(parked.drops, 1)

    def test_stats(self):
        with asyncrt.Executor(memory_limit=1 << 20) as ex:
            finish(self, ex, Counter(3))
            stats = ex.stats()
        self.assertEqual(stats.tasks_spawned, 1)
        self.assertEqual(stats.tasks_live, 0)
        self.assertGreaterEqual(stats.polls, 4)
        self.assertEqual(stats.memory_limit, 1 << 20)


class DrivingTest(unittest.TestCase):
    def setUp(self):
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)

    def test_fd_is_readable_while_work_is_pending(self):
        fd = self.ex.fd()
        self.assertFalse(readable(fd))
        parked = Parked()
        self.ex.spawn(parked)
        self.assertTrue(readable(fd))
        self.ex.run()
        self.assertFalse(readable(fd))
        threading.Thread(target=parked.release).start()
        ready, _, _ = select.select([fd], [], [], WAIT)
        self.assertTrue(ready, f"a wake from another thread did not make the fd readable within {WAIT} s")
        self.ex.run()
        self.assertFalse(readable(fd))

    def test_driven_by_asyncio_through_the_fd(self):
        async def main():
            loop = asyncio.get_running_loop()
            done = loop.create_future()
            task = self.ex.spawn(Counter(20, "from asyncio"))

            def on_readable():
                self.ex.run_step()
                if task.done() and not done.done():
                    done.set_result(task.result())

            fd = self.ex.fd()
            loop.add_reader(fd, on_readable)
            try:
                return await asyncio.wait_for(done, WAIT)
            finally:
                loop.remove_reader(fd)

        try:
            self.assertEqual(asyncio.run(main()), "from asyncio")
        except asyncio.TimeoutError:
            self.fail(f"asyncio's reader did not finish the task within {WAIT} s")

    def test_run_step_is_bounded(self):
        counters = [Counter(100) for _ in range(10)]
        for counter in counters:
            self.ex.spawn(counter)
        for _ in range(5):
            before = sum(c.polls for c in counters)
            polls = self.ex.run_step(max_polls=3)
            self.assertLessEqual(polls, 3)
            self.assertLessEqual(sum(c.polls for c in counters) - before, 3)
            self.assertTrue(readable(self.ex.fd()), "work is left, so the fd stays readable")
        self.assertTrue(any(c.left for c in counters))

    def test_run_returns_when_nothing_is_runnable(self):
        parked = Parked()
        counter = Counter(10)
        self.ex.spawn(parked)
        task = self.ex.spawn(counter)
        self.assertGreater(self.ex.run(), 0)
        self.assertTrue(task.done())
        self.assertEqual(self.ex.run(), 0)
        self.assertEqual(parked.drops, 0)

    def test_memory_limit_raises_limit_exceeded(self):
        limit = 4096
        spawned = []
        with asyncrt.Executor(memory_limit=limit) as ex:
            with self.assertRaises(asyncrt.LimitExceeded) as caught:
                for _ in range(10_000):
                    future = Parked()
                    spawned.append(future)
                    ex.spawn(future)
            self.assertTrue(caught.exception.message)
            self.assertEqual(spawned[-1].drops, 1, "a future whose spawn failed is dropped")
            self.assertLessEqual(ex.stats().memory_in_use, limit)
        self.assertTrue(all(f.drops == 1 for f in spawned))
        self.assertEqual(ex._host.records, {}, "a DROP event is missing")

    def test_block_on_inside_a_poll_is_reentrant(self):
        other = asyncrt.Executor()
        self.addCleanup(other.close)
        uses = {
            "block_on": lambda cx: self.ex.block_on(Counter(0)),
            "run": lambda cx: self.ex.run(),
            "run_step": lambda cx: self.ex.run_step(),
            "other executor": lambda cx: other.block_on(Counter(0)),
        }
        for name, use in uses.items():
            with self.subTest(use=name):
                self.assertIsInstance(finish(self, self.ex, Probe(use)), asyncrt.Reentrant)

    def test_close_inside_a_poll_is_busy(self):
        got = finish(self, self.ex, Probe(lambda cx: cx.executor.close()))
        self.assertIsInstance(got, asyncrt.Busy)
        self.assertFalse(self.ex.closed)

    def test_second_driver_is_busy(self):
        errors = []

        def drive_elsewhere(cx):
            def run():
                try:
                    self.ex.run()
                except asyncrt.AsyncrtError as exc:
                    errors.append(exc)

            thread = threading.Thread(target=run)
            thread.start()
            thread.join(WAIT)
            return thread.is_alive()

        self.assertFalse(finish(self, self.ex, Probe(drive_elsewhere)), "the second driver did not return")
        self.assertEqual([type(e) for e in errors], [asyncrt.Busy])

    def test_block_on_times_out_and_drops_the_future(self):
        parked = Parked()
        with self.assertRaises(asyncrt.TimedOut):
            self.ex.block_on(parked, timeout=0.05)
        self.assertEqual(parked.drops, 1)

    def test_block_on_zero_timeout_still_finishes_ready_work(self):
        self.assertEqual(self.ex.block_on(Counter(0, "now"), timeout=0), "now")


class ModuleLevelTest(unittest.TestCase):
    def test_block_on_uses_a_fresh_executor(self):
        self.assertEqual(asyncrt.block_on(Counter(3, "value"), timeout=WAIT), "value")

    def test_spawn_outside_a_poll_raises(self):
        with self.assertRaises(RuntimeError):
            asyncrt.spawn(Counter(0))


if __name__ == "__main__":
    unittest.main()
