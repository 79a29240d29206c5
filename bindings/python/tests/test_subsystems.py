"""Subsystems written in Python: registration, the ops coroutines await, the
weighted polling policy, unregistering, and callbacks that raise. Polls are
driven by hand (run, tick) wherever a count matters."""

import contextlib
import gc
import io
import os
import threading
import unittest

import asyncrt
from asyncrt import Status, cfuture, subsystem
from tests.support import WAIT, finish, wait_until


class Idle:
    """Completes nothing until `release` is set, then completes every op with
    `status` and each op's first arg as result."""

    def __init__(self, status=Status.OK):
        self.release = False
        self.status = status
        self.budgets = []
        self.closed = 0

    def poll(self, scx, budget):
        self.budgets.append(budget)
        if not self.release:
            return 0
        ops = scx.ops()
        for op in ops:
            op.complete(self.status, op.args[0])
        return len(ops)

    def close(self):
        self.closed += 1


class Echo:
    """Completes each op at its next poll with result args[0] * 2, recording
    every callback."""

    def __init__(self):
        self.submitted = []
        self.waiters = []
        self.threads = set()
        self.workers = set()

    def poll(self, scx, budget):
        self.threads.add(threading.get_ident())
        self.workers.add(scx.worker)
        ops = scx.ops(budget)
        for op in ops:
            op.complete(Status.OK, op.args[0] * 2)
        return len(ops)

    def submit(self, scx, op):
        self.submitted.append((op.opcode, op.flags, op.args, op.payload))

    def waiters_changed(self, scx, waiters):
        self.waiters.append(waiters)


class Leaves(Idle):
    """Has a cancel callback that records the op and leaves it in flight."""

    def __init__(self):
        super().__init__()
        self.cancelled = []

    def cancel(self, scx, op):
        self.cancelled.append(op.args[0])


class Cancels(Idle):
    """Completes an op with ECANCELLED when asked to cancel it."""

    def __init__(self):
        super().__init__()
        self.cancelled = []

    def cancel(self, scx, op):
        self.cancelled.append(op.args[0])
        op.complete(Status.ECANCELLED)


async def outcome(awaitable):
    """The value, or (exception class name, status, result) of a failure."""
    try:
        return await awaitable
    except asyncrt.AsyncrtError as exc:
        return type(exc).__name__, exc.status, getattr(exc, "result", None)


class SubsystemTest(unittest.TestCase):
    def setUp(self):
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)

    def register(self, impl, **options):
        return self.ex.register_subsystem(impl, **options)

    def waiting(self, sub, n, arg=0):
        """n tasks, each awaiting one op of `sub`, all submitted."""
        tasks = [self.ex.spawn(outcome(sub.submit(0, arg + i))) for i in range(n)]
        self.ex.run()
        self.assertEqual(sub.stats().waiters, n)
        return tasks

    def test_ops_completed_by_poll_wake_their_coroutines(self):
        echo = Echo()
        sub = self.register(echo, name="echo")

        async def main():
            results = [asyncrt.spawn(outcome(sub.submit(7, i, 100 + i, flags=3, payload=f"p{i}"))) for i in range(3)]
            return [await task for task in results]

        self.assertEqual(finish(self, self.ex, main()), [0, 2, 4])
        self.assertEqual(echo.submitted, [(7, 3, (i, 100 + i, 0, 0), f"p{i}") for i in range(3)])
        self.assertEqual(echo.workers, {0})
        self.assertEqual(echo.threads, {threading.get_ident()})
        stats = sub.stats()
        self.assertEqual((stats.submits, stats.completions, stats.waiters), (3, 3, 0))
        self.assertGreaterEqual(stats.polls, 1)
        self.assertEqual(stats.empty_polls + 1, stats.polls, "more than the last poll was empty?")
        self.assertEqual(echo.waiters[:3], [1, 2, 3])
        self.assertEqual(echo.waiters[-1], 0)
        self.assertEqual(sub.errors, [])

    def test_poll_receives_its_budget(self):
        idle = Idle()
        sub = self.register(idle, poll_budget=7)
        self.waiting(sub, 1)
        self.assertTrue(idle.budgets)
        self.assertEqual(set(idle.budgets), {7})

    def test_the_op_future_keeps_status_and_result(self):
        idle = Idle(status=1001)  # a user status
        sub = self.register(idle)
        op = sub.submit(5, (1 << 64) - 3)  # args are unsigned: the result is that value as int64
        task = self.ex.spawn(outcome(op))
        self.ex.run()
        idle.release = True
        self.ex.run()
        self.assertEqual(task.result(), ("AsyncrtError", 1001, -3))
        self.assertEqual((op.status, op.result), (1001, -3))

    def test_an_error_status_raises_its_exception(self):
        idle = Idle(status=Status.EINVAL)
        sub = self.register(idle)

        async def main():
            with self.assertRaises(asyncrt.InvalidArgument) as caught:
                await sub.submit(0, 42)
            return caught.exception.result, caught.exception.message

        task = self.ex.spawn(main())
        self.ex.run()
        idle.release = True
        self.ex.run()
        result, message = task.result()
        self.assertEqual(result, 42)
        self.assertIn("EINVAL", message)

    def test_priority_two_gets_twice_the_polls_of_priority_one(self):
        high, low, unused = Idle(), Idle(), Idle()
        subs = [self.register(high, priority=2), self.register(low, priority=1), self.register(unused, priority=1000)]
        tasks = self.waiting(subs[0], 4) + self.waiting(subs[1], 4)
        before = [sub.stats().polls for sub in subs]
        ticks_before = self.ex.worker_stats(0).ticks
        ticks = 300
        for _ in range(ticks):
            self.ex.tick()
        polls = [sub.stats().polls - b for sub, b in zip(subs, before)]
        self.assertEqual(self.ex.worker_stats(0).ticks - ticks_before, ticks, "the worker counts every tick")
        self.assertEqual(polls[0] + polls[1], ticks, "each tick polls one subsystem with waiters")
        self.assertAlmostEqual(polls[0] / polls[1], 2, delta=0.2)
        self.assertEqual(subs[2].stats().polls, 0, "a subsystem without waiters was polled")
        self.assertEqual(unused.budgets, [])
        high.release = low.release = True
        self.ex.run()
        self.assertEqual(sorted(t.result() for t in tasks), [0, 0, 1, 1, 2, 2, 3, 3])

    def test_waiter_cap_bounds_the_weight(self):
        capped, uncapped = Idle(), Idle()
        subs = [self.register(capped, priority=2, waiter_cap=1), self.register(uncapped, priority=1)]
        self.waiting(subs[0], 4)
        self.waiting(subs[1], 4)
        before = [sub.stats().polls for sub in subs]
        for _ in range(300):
            self.ex.tick()
        polls = [sub.stats().polls - b for sub, b in zip(subs, before)]
        self.assertAlmostEqual(polls[1] / polls[0], 2, delta=0.2)  # weights 2 x 1 and 1 x 4

    def test_no_waiters_no_polls(self):
        idle = Idle()
        sub = self.register(idle)
        for _ in range(10):
            self.ex.tick()
        self.ex.run()
        self.assertEqual(sub.stats(), subsystem.SubsystemStats(0, 0, 0, 0, 0, 0, 0, 1))
        self.assertEqual(idle.budgets, [])

    def test_tick_reports_a_subsystem_that_wants_ticks(self):
        sub = self.register(Idle())
        self.assertEqual(self.ex.tick(), (None, False))
        self.waiting(sub, 1)
        self.assertEqual(self.ex.tick(), (None, True))

    def test_unregister_wakes_waiters_with_shutdown(self):
        leaves = Leaves()
        sub = self.register(leaves)
        tasks = self.waiting(sub, 3)
        sub.unregister()
        self.ex.run()
        self.assertEqual([t.result()[:2] for t in tasks], [("Shutdown", Status.ESHUTDOWN)] * 3)
        self.assertEqual(sorted(leaves.cancelled), [0, 1, 2], "each op is offered to cancel once")
        self.assertEqual(leaves.closed, 1)
        self.assertTrue(sub.closed)
        sub.unregister()  # idempotent
        with self.assertRaises(asyncrt.BadHandle):
            sub.stats()
        with self.assertRaises(asyncrt.BadHandle):
            sub.submit(0)
        self.assertEqual(self.ex.stats().tasks_live, 0)

    def test_unregister_without_a_cancel_callback_wakes_waiters_with_shutdown(self):
        idle = Idle()
        sub = self.register(idle)
        tasks = self.waiting(sub, 2)
        sub.unregister()
        self.ex.run()
        self.assertEqual([t.result()[:2] for t in tasks], [("Shutdown", Status.ESHUTDOWN)] * 2)
        self.assertEqual(idle.closed, 1)

    def test_unregister_lets_cancel_complete_ops(self):
        cancels = Cancels()
        sub = self.register(cancels)
        tasks = self.waiting(sub, 2)
        sub.unregister()
        self.ex.run()
        self.assertEqual([t.result()[:2] for t in tasks], [("Cancelled", Status.ECANCELLED)] * 2)
        self.assertEqual(self.ex.stats().ops_in_flight, 0)

    def test_closing_the_executor_unregisters(self):
        leaves = Leaves()
        sub = self.register(leaves)
        tasks = self.waiting(sub, 2)
        self.ex.close()
        self.assertTrue(sub.closed)
        self.assertEqual(leaves.closed, 1)
        self.assertEqual(sorted(leaves.cancelled), [0, 1])
        for task in tasks:
            self.assertIn(task.status, (Status.ECANCELLED, Status.ESHUTDOWN))
        sub.unregister()

    def test_cancelling_a_task_cancels_its_op(self):
        cancels = Cancels()
        sub = self.register(cancels)
        task, other = self.waiting(sub, 2)
        task.cancel()
        self.ex.run()
        self.assertEqual(task.status, Status.ECANCELLED)
        self.assertEqual(cancels.cancelled, [0])
        stats = sub.stats()
        self.assertEqual((stats.waiters, stats.cancels, stats.failures, stats.workers), (1, 1, 1, 1))
        self.assertEqual(self.ex.stats().ops_in_flight, 1)
        cancels.release = True
        self.ex.run()
        self.assertEqual(other.result(), 1)
        stats = sub.stats()
        self.assertEqual((stats.completions, stats.cancels, stats.failures), (2, 1, 1))
        self.assertEqual(self.ex.stats().ops_in_flight, 0)

    def test_an_op_cancelled_later_is_reaped_before_its_task_goes(self):
        gc.collect()
        owned = len(cfuture._owned)
        leaves = Leaves()
        sub = self.register(leaves)
        task = self.ex.spawn(sub.submit(0, 0))  # the op future itself, as a C task
        self.ex.run()
        task.cancel()
        self.ex.run()
        self.assertEqual(leaves.cancelled, [0])
        self.assertFalse(task.done(), "a task went while its op was in flight")
        self.assertEqual(len(cfuture._owned), owned + 1, "the op's memory went while it was in flight")
        leaves.release = True  # poll completes it now
        self.ex.run()
        self.assertEqual(task.status, Status.ECANCELLED)
        self.assertEqual(sub.stats().waiters, 0)
        self.assertEqual(len(cfuture._owned), owned)

    def test_a_cancelled_coroutine_leaves_its_op_to_the_subsystem(self):
        leaves = Leaves()
        sub = self.register(leaves)
        (task,) = self.waiting(sub, 1)
        task.cancel()
        self.ex.run()
        self.assertEqual(task.status, Status.ECANCELLED)  # the coroutine is gone at once...
        self.assertEqual(sub.stats().waiters, 1)  # ...its op (a C task) waits for the subsystem
        self.assertEqual(leaves.cancelled, [0])
        leaves.release = True
        self.ex.run()
        self.assertEqual(sub.stats().waiters, 0)
        self.assertEqual(self.ex.stats().tasks_live, 0)

    def test_run_returns_only_once_a_cancel_completion_ran(self):
        """A tick's cancel scan that completes an op wakes its task; the run
        must go on and drop it rather than return with it queued."""
        sub = self.register(Cancels())
        task = self.ex.spawn(sub.submit(0, 0))
        self.ex.run()
        task.cancel()
        self.ex.run()
        self.assertEqual(task.status, Status.ECANCELLED)

    def test_timeout_of_an_op_is_a_c_timeout_on_the_subsystems_executor(self):
        ex = asyncrt.Executor(clock="test")
        self.addCleanup(ex.close)
        cancels = Cancels()
        sub = ex.register_subsystem(cancels)
        limited = asyncrt.timeout(sub.submit(0, 9), 1)
        self.assertIsInstance(limited, asyncrt.CFuture)
        task = ex.spawn(outcome(limited))
        ex.run()
        self.assertEqual(sub.stats().waiters, 1)
        ex.advance_clock(1)
        ex.run()
        self.assertEqual(task.result()[:2], ("TimedOut", Status.ETIMEDOUT))
        self.assertEqual(cancels.cancelled, [9])

    def test_timeout_of_an_op_in_time_gives_its_result(self):
        ex = asyncrt.Executor(clock="test")
        self.addCleanup(ex.close)
        idle = Idle()
        sub = ex.register_subsystem(idle)
        task = ex.spawn(outcome(asyncrt.timeout(sub.submit(0, 9), 1)))
        ex.run()
        idle.release = True
        ex.run()
        self.assertEqual(task.result(), 9)

    def test_spawned_on_its_executor_as_a_c_task(self):
        idle = Idle()
        sub = self.register(idle)
        op = sub.submit(0, 11)
        task = self.ex.spawn(op)
        self.ex.run()
        idle.release = True
        self.ex.run()
        self.assertEqual(task.status, Status.OK)
        self.assertEqual(op.result, 11)

    def test_an_op_from_another_executor(self):
        idle = Idle()
        sub = self.register(idle)
        with asyncrt.Executor() as other:
            task = other.spawn(outcome(sub.submit(0, 5)))
            other.run()
            self.ex.run()
            self.assertEqual(sub.stats().waiters, 1)
            idle.release = True
            self.ex.run()
            self.assertEqual(finish(self, other, task), 5)

    def test_a_subsystem_with_an_fd_wakes_a_sleeping_executor(self):
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        self.addCleanup(os.close, read_end)
        self.addCleanup(os.close, write_end)

        class Pipe:
            def poll(self, scx, budget):
                try:
                    data = os.read(read_end, budget)
                except BlockingIOError:
                    return 0
                ops = scx.ops(len(data))
                for op, byte in zip(ops, data):
                    op.complete(Status.OK, byte)
                return len(ops)

        sub = self.register(Pipe(), fd=read_end)

        def writer():
            wait_until(self, lambda: sub.stats().waiters == 1, "the op was not submitted")
            os.write(write_end, b"\x2a")

        thread = threading.Thread(target=writer)
        thread.start()
        self.addCleanup(thread.join, WAIT)
        self.assertEqual(finish(self, self.ex, sub.submit()), 42)

    def test_registration_is_checked(self):
        with self.assertRaises(TypeError):
            self.register(object())
        for options in ({"priority": 0}, {"priority": 1001}, {"waiter_cap": 0}, {"poll_budget": 0},
                        {"worker": 1}):
            idle = Idle()
            with self.subTest(options=options), self.assertRaises(asyncrt.InvalidArgument):
                self.register(idle, **options)
            self.assertEqual(idle.closed, 1, "a refused registration still hands the object over")
        self.assertEqual([reg for reg in subsystem._live.values() if isinstance(reg.impl, Idle)], [])

    def test_context_and_ops_are_valid_only_in_callbacks(self):
        kept = []

        class Keeps(Idle):
            def submit(self, scx, op):
                kept.append((scx, op))

        sub = self.register(Keeps())
        self.waiting(sub, 1)
        scx, op = kept[0]
        with self.assertRaises(RuntimeError):
            scx.ops()
        with self.assertRaises(RuntimeError):
            op.complete()
        self.assertFalse(op.done)
        self.assertIn("stale", repr(scx))
        sub.unregister()
        self.ex.run()
        self.assertTrue(op.done)  # a Python op's memory outlives its completion
        self.assertEqual(op.status, Status.ESHUTDOWN)


class RaisingCallbacksTest(unittest.TestCase):
    """No exception crosses into C: each is recorded and printed, and the
    executor goes on."""

    def setUp(self):
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)
        self.stderr = io.StringIO()
        redirect = contextlib.redirect_stderr(self.stderr)
        redirect.__enter__()
        self.addCleanup(redirect.__exit__, None, None, None)

    def test_a_raising_poll_is_an_empty_poll(self):
        class Broken:
            calls = 0

            def poll(self, scx, budget):
                Broken.calls += 1
                if Broken.calls < 3:
                    raise ValueError(f"poll {Broken.calls}")
                return scx.complete_all(Status.OK, 7)

        sub = self.ex.register_subsystem(Broken(), name="broken")
        self.assertEqual(finish(self, self.ex, sub.submit()), 7)
        self.assertEqual([str(e) for e in sub.errors], ["poll 1", "poll 2"])
        self.assertEqual(sub.stats().empty_polls, 2)
        self.assertIn("poll() of subsystem 'broken'", self.stderr.getvalue())
        self.assertIn("ValueError: poll 1", self.stderr.getvalue())

    def test_a_poll_that_returns_garbage(self):
        class Garbage(Idle):
            def poll(self, scx, budget):
                scx.complete_all()
                return "many"

        sub = self.ex.register_subsystem(Garbage())
        self.assertEqual(finish(self, self.ex, sub.submit()), 0)
        self.assertIsInstance(sub.errors[0], ValueError)

    def test_a_raising_submit_fails_the_op(self):
        class Refuses(Idle):
            def submit(self, scx, op):
                raise KeyError("no such device")

        sub = self.ex.register_subsystem(Refuses())

        async def main():
            with self.assertRaises(asyncrt.Failed) as caught:
                await sub.submit(3)
            return caught.exception

        failure = finish(self, self.ex, main())
        self.assertIsInstance(failure.__cause__, KeyError)
        self.assertIn("submit()", str(failure))
        self.assertEqual(failure.status, Status.EFAILED)
        self.assertEqual(len(sub.errors), 1)

    def test_a_raising_cancel_cancels_the_op(self):
        class BadCancel(Idle):
            def cancel(self, scx, op):
                raise RuntimeError("cannot cancel")

        sub = self.ex.register_subsystem(BadCancel())
        task = self.ex.spawn(outcome(sub.submit()))
        self.ex.run()
        task.cancel()
        self.ex.run()
        self.assertEqual(task.status, Status.ECANCELLED)
        self.assertEqual(sub.stats().waiters, 0)
        self.assertEqual(sub.stats().completions, 1)
        self.assertIsInstance(sub.errors[0], RuntimeError)

    def test_raising_waiters_changed_and_close_are_recorded(self):
        class Noisy(Idle):
            def waiters_changed(self, scx, waiters):
                raise ArithmeticError(waiters)

            def close(self):
                raise OSError("close")

        noisy = Noisy()
        sub = self.ex.register_subsystem(noisy)
        task = self.ex.spawn(outcome(sub.submit(0, 4)))
        self.ex.run()
        noisy.release = True
        self.ex.run()
        self.assertEqual(task.result(), 4)
        sub.unregister()
        self.assertEqual([type(e) for e in sub.errors], [ArithmeticError, ArithmeticError, OSError])
        self.assertTrue(sub.closed)

    def test_a_close_callback_that_spawns_during_the_executors_close(self):
        ex = self.ex

        class Spawns(Idle):
            def close(self):
                ex.spawn(outcome(asyncrt.sleep(0)))

        sub = ex.register_subsystem(Spawns())
        closer = threading.Thread(target=ex.close, daemon=True)
        closer.start()
        closer.join(WAIT)
        self.assertFalse(closer.is_alive(), "close() hung")
        self.assertEqual([type(e) for e in sub.errors], [asyncrt.Shutdown])

    def test_callbacks_cannot_drive_or_unregister(self):
        seen = []

        class Reentrant(Idle):
            def __init__(self, ex):
                super().__init__()
                self.ex = ex

            def poll(self, scx, budget):
                for act in (self.ex.run, lambda: self.ex.tick(), lambda: self.sub.unregister()):
                    try:
                        act()
                    except asyncrt.AsyncrtError as exc:
                        seen.append(type(exc))
                return scx.complete_all()

        impl = Reentrant(self.ex)
        impl.sub = sub = self.ex.register_subsystem(impl)
        finish(self, self.ex, sub.submit())
        self.assertEqual(seen[:3], [asyncrt.Busy, asyncrt.Busy, asyncrt.Reentrant])
        self.assertEqual(sub.errors, [])


class ThreadsSubsystemTest(unittest.TestCase):
    def test_a_python_subsystem_on_a_worker(self):
        pool = asyncrt.Executor(kind="threads", workers=2, shutdown_timeout=WAIT)
        self.addCleanup(pool.close)
        echo = Echo()
        sub = pool.register_subsystem(echo, worker=1)

        async def main():
            return [await sub.submit(0, i) for i in range(3)]

        with asyncrt.Executor() as local:
            self.assertEqual(finish(self, local, main()), [0, 2, 4])
        self.assertEqual(echo.workers, {1})
        self.assertNotIn(threading.get_ident(), echo.threads)
        self.assertEqual(sub.stats().completions, 3)
        with self.assertRaises(asyncrt.NotSupported):
            pool.tick()
        pool.close()
        self.assertTrue(sub.closed)

    def test_every_worker(self):
        pool = asyncrt.Executor(kind="threads", workers=2, shutdown_timeout=WAIT)
        self.addCleanup(pool.close)
        echo = Echo()
        sub = pool.register_subsystem(echo)
        tasks = [pool.spawn(sub.submit(0, i), worker=i % 2) for i in range(4)]
        wait_until(self, lambda: all(t.done() for t in tasks), "the ops did not complete")
        self.assertEqual([t.status for t in tasks], [Status.OK] * 4)
        self.assertEqual(echo.workers, {0, 1})

    def test_unregister_from_another_thread_while_workers_wait(self):
        pool = asyncrt.Executor(kind="threads", workers=1, shutdown_timeout=WAIT)
        self.addCleanup(pool.close)
        leaves = Leaves()
        sub = pool.register_subsystem(leaves)
        task = pool.spawn(sub.submit(0, 1))
        wait_until(self, lambda: sub.stats().waiters == 1, "the op was not submitted")
        sub.unregister()
        wait_until(self, task.done, "unregister did not complete the op")
        self.assertEqual(task.status, Status.ESHUTDOWN)
        self.assertEqual(leaves.cancelled, [1])


class ForeignSubsystemTest(unittest.TestCase):
    def test_run_pending_polls_subsystems(self):
        fx = asyncrt.ForeignExecutor()
        self.addCleanup(fx.close)
        sub = fx.register_subsystem(Echo())
        task = fx.spawn(outcome(sub.submit(0, 21)))
        wait_until(self, lambda: fx.run_pending() is not None and task.done(), "the op did not complete")
        self.assertEqual(task.result(), 42)


if __name__ == "__main__":
    unittest.main()


class StaticSubsystemTest(unittest.TestCase):
    """Subsystems given to Executor(subsystems=...): registered by
    asyncrt_executor_new itself, before any task can run."""

    def test_registered_at_creation_in_order(self):
        first, second = Idle(), Idle()
        ex = asyncrt.Executor(subsystems=[first, (second, {"priority": 2, "name": "second"})])
        self.addCleanup(ex.close)
        self.assertEqual([s.impl for s in ex.subsystems], [first, second])
        self.assertEqual(ex.subsystems[1].name, "second")
        tasks = [ex.spawn(outcome(ex.subsystems[i].submit(0, 10 + i))) for i in (0, 1)]
        ex.run()
        self.assertEqual([s.stats().waiters for s in ex.subsystems], [1, 1])
        polls_before = [s.stats().polls for s in ex.subsystems]
        for _ in range(300):
            ex.tick()
        polls = [s.stats().polls - b for s, b in zip(ex.subsystems, polls_before)]
        self.assertAlmostEqual(polls[1] / polls[0], 2, delta=0.2)  # priority 2 vs 1
        first.release = second.release = True
        ex.run()
        self.assertEqual([t.result() for t in tasks], [10, 11])

    def test_a_refused_one_fails_the_executor_and_closes_them_all(self):
        good, bad = Idle(), Idle()
        with self.assertRaises(asyncrt.InvalidArgument):
            asyncrt.Executor(subsystems=[good, (bad, {"priority": 0})])
        self.assertEqual((good.closed, bad.closed), (1, 1))


class ExampleTest(unittest.TestCase):
    def test_shm_flag_example_succeeds(self):
        """examples/python/shm_flag.py: a Python subsystem fed by another process."""
        import subprocess
        import sys
        from pathlib import Path
        example = Path(__file__).resolve().parents[3] / "examples" / "python" / "shm_flag.py"
        done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("shm_flag: success", done.stdout)
