"""Scopes: joins, misuse, errors (first error, collect all), deadlines,
asynchronous cancellation of coroutines, shields, scopes on worker threads,
and the executor's dump. Time-dependent tests use a test clock and move it
by hand; waits on other threads are bounded."""

import contextlib
import io
import threading
import unittest
from pathlib import Path

import asyncrt
from asyncrt import Capability, Status, cfuture
from tests.support import WAIT, Counter, Parked, Raises, wait_until


def local(test, **options):
    ex = asyncrt.Executor(**options)
    test.addCleanup(ex.close)
    return ex


def with_test_clock(test):
    return local(test, clock="test")


class Logged(Parked):
    """A Parked future that logs its drop in `log` under `name`."""

    def __init__(self, log, name):
        super().__init__()
        self.log = log
        self.name = name

    def drop(self):
        super().drop()
        self.log.append(f"{self.name} dropped")


class CapabilityTest(unittest.TestCase):
    def test_every_kind_has_scopes(self):
        self.assertIn(Capability.SCOPES, local(self).capabilities())
        with asyncrt.Executor(kind="threads", workers=2, shutdown_timeout=WAIT) as ex:
            self.assertIn(Capability.SCOPES, ex.capabilities())


class TopScopeTest(unittest.TestCase):
    """Scopes at the top of a local executor: ``with ex.scope()``."""

    def setUp(self):
        self.ex = local(self)

    def test_leaving_waits_for_every_child(self):
        counters = [Counter(i, value=i) for i in range(10)]
        with self.ex.scope(join_timeout=WAIT, name="ten") as s:
            tasks = [s.spawn(counter) for counter in counters]
            self.assertEqual(s.status(), Status.EAGAIN)
        self.assertEqual([t.result() for t in tasks], list(range(10)))
        self.assertEqual([c.drops for c in counters], [1] * 10)
        self.assertEqual([c.polls for c in counters], [i + 1 for i in range(10)])
        self.assertEqual(s.status(), Status.OK)
        self.assertEqual(s.errors, [])
        self.assertEqual(self.ex.stats().tasks_live, 0)

    def test_ids_are_unique_with_the_task_ids(self):
        with self.ex.scope(join_timeout=WAIT) as s:
            tasks = [s.spawn(Counter(0)) for _ in range(3)]
        self.assertIsInstance(s.id, int)
        self.assertNotIn(s.id, {t.id for t in tasks})
        self.assertEqual(len({t.id for t in tasks}), 3)

    def test_children_may_spawn_siblings_while_the_join_waits(self):
        done = []

        async def leaf(i):
            await asyncrt.yield_now()
            done.append(i)

        async def spawner(s):
            await asyncrt.yield_now()
            s.spawn(leaf(1))
            s.spawn(leaf(2))

        with self.ex.scope(join_timeout=WAIT) as s:
            s.spawn(spawner(s))
        self.assertEqual(sorted(done), [1, 2])

    def test_spawn_after_the_join_raises_scope_error(self):
        s = self.ex.scope(join_timeout=WAIT).open()
        self.addCleanup(s.close)
        first = Counter(1)
        s.spawn(first)
        self.assertEqual(self.ex.block_on(s.join(), timeout=WAIT), Status.OK)
        self.assertEqual(first.drops, 1)
        late = Counter(0)
        with self.assertRaises(asyncrt.ScopeError):
            s.spawn(late)
        self.ex.run()
        self.assertEqual((late.polls, late.drops), (0, 1))

    def test_a_second_join_is_busy(self):
        s = self.ex.scope(join_timeout=WAIT).open()
        self.addCleanup(s.close)
        join = s.join()
        with self.assertRaises(asyncrt.Busy):
            s.join()
        self.assertEqual(self.ex.block_on(join, timeout=WAIT), Status.OK)

    def test_a_left_scope_is_closed(self):
        with self.ex.scope(join_timeout=WAIT) as s:
            pass
        late = Counter(0)
        with self.assertRaises(asyncrt.ScopeError):
            s.spawn(late)
        self.assertEqual(late.drops, 1)
        with self.assertRaises(asyncrt.ScopeError):
            with s:
                pass
        s.close()  # idempotent
        s.cancel()  # nothing to cancel
        self.assertEqual(s.status(), Status.OK)

    def test_a_join_timeout_bounds_the_wait_and_cancels(self):
        parked = Parked()
        with self.assertRaises(asyncrt.TimedOut):
            with self.ex.scope(join_timeout=0.01) as s:
                task = s.spawn(parked)
        self.ex.run()
        self.assertEqual(parked.drops, 1)
        self.assertEqual(task.status, Status.ECANCELLED)

    def test_spawn_into_a_cancelled_scope_raises_cancelled(self):
        with self.ex.scope(join_timeout=WAIT) as s:
            s.cancel()
            late = Counter(0)
            with self.assertRaises(asyncrt.Cancelled):
                s.spawn(late)
            self.assertEqual(late.drops, 1)
        self.assertEqual(s.status(), Status.ECANCELLED)
        self.ex.run()
        self.assertEqual((late.polls, late.drops), (0, 1))

    def test_cancel_drops_the_children_and_leaving_does_not_raise(self):
        parked = [Parked() for _ in range(3)]
        with self.ex.scope(join_timeout=WAIT) as s:
            tasks = [s.spawn(p) for p in parked]
            self.ex.run()
            s.cancel()
            s.cancel()
        self.assertEqual([p.drops for p in parked], [1, 1, 1])
        self.assertEqual([t.status for t in tasks], [Status.ECANCELLED] * 3)
        self.assertEqual(s.status(), Status.ECANCELLED)
        self.assertEqual(s.errors, [])

    def test_an_exception_in_the_body_cancels_the_children_and_goes_on(self):
        parked = Parked()
        with self.assertRaises(KeyError):
            with self.ex.scope(join_timeout=WAIT) as s:
                task = s.spawn(parked)
                self.ex.run()
                raise KeyError("body")
        self.assertEqual(parked.drops, 1)
        self.assertEqual(task.status, Status.ECANCELLED)

    def test_a_failing_python_child_raises_its_own_exception(self):
        boom = ValueError("boom")
        raises = Raises(boom)
        parked = Parked()
        with self.assertRaises(ValueError) as caught:
            with self.ex.scope(join_timeout=WAIT) as s:
                bad = s.spawn(raises)
                sibling = s.spawn(parked)
        self.assertIs(caught.exception, boom)
        self.assertEqual(sibling.status, Status.ECANCELLED)
        self.assertEqual((raises.drops, parked.drops), (1, 1))
        [record] = s.errors
        self.assertEqual((record.status, record.task_id), (Status.EFAILED, bad.id))
        self.assertIs(record.exception, boom)

    def test_with_is_refused_inside_a_task(self):
        async def main():
            with self.ex.scope(join_timeout=WAIT):
                pass

        with self.assertRaises(RuntimeError):
            self.ex.block_on(main(), timeout=WAIT)

    def test_async_scope_is_refused_outside_a_task(self):
        with self.assertRaises(RuntimeError):
            asyncrt.scope().open()


class OwnedScopeTest(unittest.TestCase):
    """``async with asyncrt.scope()`` inside coroutines, and the guarantee
    that a task never completes while a scope of its has live children."""

    def setUp(self):
        self.ex = local(self)

    def test_async_with_awaits_the_children(self):
        async def child(i):
            for _ in range(i):
                await asyncrt.yield_now()
            return i * 10

        async def main():
            async with asyncrt.scope() as s:
                tasks = [s.spawn(child(i)) for i in range(5)]
            return [t.result() for t in tasks], s.status()

        results, status = self.ex.block_on(main(), timeout=WAIT)
        self.assertEqual(results, [0, 10, 20, 30, 40])
        self.assertEqual(status, Status.OK)

    def test_a_task_that_returns_with_live_children_ends_with_scope_error(self):
        order = []
        keep = []
        child = Logged(order, "child")

        class Parent(asyncrt.Future):
            drops = 0

            def poll(self, cx):
                s = asyncrt.scope().open()  # and never joined
                keep.append(s)
                s.spawn(child)
                return asyncrt.Ready("returned")

            def drop(self):
                self.drops += 1
                order.append("parent dropped")

        parent = Parent()
        task = self.ex.spawn(parent)
        self.ex.run()
        self.assertEqual(task.status, Status.ESCOPE)
        with self.assertRaises(asyncrt.ScopeError) as caught:
            task.result()
        self.assertIn("live children", str(caught.exception))
        self.assertEqual(order, ["child dropped", "parent dropped"])
        self.assertEqual((child.drops, parent.drops), (1, 1))

    def test_a_coroutine_that_returns_with_live_children_ends_with_scope_error(self):
        keep = []
        parked = Parked()

        async def parent():
            s = asyncrt.scope().open()
            keep.append(s)
            s.spawn(parked)
            return "returned"

        task = self.ex.spawn(parent())
        self.ex.run()
        self.assertEqual(task.status, Status.ESCOPE)
        with self.assertRaises(asyncrt.ScopeError):
            task.result()
        self.assertEqual(parked.drops, 1)
        with self.assertRaises(asyncrt.ScopeError):
            self.ex.block_on(task, timeout=WAIT)

    def test_a_scope_whose_owner_finished_is_closed(self):
        keep = []

        async def parent():
            keep.append(asyncrt.scope().open())  # no child: the task may finish
            return "returned"

        self.assertEqual(self.ex.block_on(parent(), timeout=WAIT), "returned")
        late = Counter(0)
        with self.assertRaises(asyncrt.ScopeError):
            keep[0].spawn(late)
        self.assertEqual(late.drops, 1)
        self.assertEqual(keep[0].status(), Status.OK)

    def test_a_coroutine_dropped_inside_async_with_leaves_without_awaiting(self):
        order = []
        child = Logged(order, "child")

        async def parent():
            try:
                async with asyncrt.scope() as s:
                    s.spawn(child)
                    await Parked()
            finally:
                order.append("parent closed")

        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            task = self.ex.spawn(parent())
            self.ex.run()
            task.cancel()  # synchronous: the children go, then the coroutine is closed
            self.ex.run()
        self.assertEqual(task.status, Status.ECANCELLED)
        self.assertEqual(order, ["child dropped", "parent closed"])
        self.assertEqual(child.drops, 1)
        self.assertEqual(stderr.getvalue(), "")

    def test_a_scope_belongs_to_its_tasks_executor(self):
        other = local(self)

        async def main():
            async with other.scope():
                pass

        with self.assertRaises(ValueError):
            self.ex.block_on(main(), timeout=WAIT)


class ErrorTest(unittest.TestCase):
    def setUp(self):
        self.ex = with_test_clock(self)

    def test_first_error_reraises_the_childs_exception_and_cancels_the_siblings(self):
        boom = ValueError("boom")
        log = []
        tasks = {}
        scopes = []

        async def failing():
            await asyncrt.yield_now()
            raise boom

        async def sibling(i):
            try:
                await asyncrt.sleep(100)
                log.append(("finished", i))
            except asyncrt.Cancelled:
                log.append(("cancelled", i))
                raise
            finally:
                await asyncrt.sleep(0.5)  # a cleanup may await
                log.append(("cleaned", i))

        async def main():
            async with asyncrt.scope() as s:
                scopes.append(s)
                tasks["siblings"] = [s.spawn(sibling(i)) for i in range(3)]
                tasks["bad"] = s.spawn(failing())
            return "unreachable"

        task = self.ex.spawn(main())
        self.ex.run()
        self.assertFalse(task.done(), "the siblings' cleanups await their sleeps")
        self.assertEqual(sorted(log), [("cancelled", i) for i in range(3)])
        self.ex.advance_clock(0.5)
        self.ex.run()
        self.assertTrue(task.done())
        with self.assertRaises(ValueError) as caught:
            task.result()
        self.assertIs(caught.exception, boom)
        self.assertEqual(sorted(log), sorted([("cancelled", i) for i in range(3)] + [("cleaned", i) for i in range(3)]))
        self.assertEqual([t.status for t in tasks["siblings"]], [Status.ECANCELLED] * 3)
        self.assertEqual(tasks["bad"].status, Status.EFAILED)
        [record] = scopes[0].errors
        self.assertEqual((record.status, record.task_id), (Status.EFAILED, tasks["bad"].id))
        self.assertIs(record.exception, boom)

    def test_a_c_childs_failure_is_its_status_with_the_runtimes_message(self):
        with self.assertRaises(asyncrt.TimedOut) as caught:
            with self.ex.scope(join_timeout=WAIT) as s:
                bad = s.spawn(asyncrt.timeout(asyncrt.sleep(10), 0.5))
                self.ex.run()
                self.ex.advance_clock(0.5)
        [record] = s.errors
        self.assertEqual((record.status, record.task_id), (Status.ETIMEDOUT, bad.id))
        self.assertIs(record.exception, caught.exception)
        self.assertEqual(bad.status, Status.ETIMEDOUT)

    def test_collect_all_raises_every_failure_as_a_group(self):
        excs = [ValueError("a"), KeyError("b"), asyncrt.Busy("c")]
        scopes = []

        async def failing(exc, steps):
            for _ in range(steps):
                await asyncrt.yield_now()
            raise exc

        async def main():
            async with asyncrt.scope(collect_all=True) as s:
                scopes.append(s)
                ok = s.spawn(Counter(5, "ok"))
                for steps, exc in enumerate(excs):
                    s.spawn(failing(exc, steps))
            return ok

        task = self.ex.spawn(main())
        self.ex.run()
        with self.assertRaises(ExceptionGroup) as caught:
            task.result()
        self.assertEqual(list(caught.exception.exceptions), excs)  # in the order they failed
        self.assertEqual([r.status for r in scopes[0].errors], [Status.EFAILED, Status.EFAILED, Status.EBUSY])
        self.assertEqual(scopes[0].status(), Status.EFAILED)

    def test_collect_all_lets_the_siblings_finish(self):
        boom = ValueError("boom")
        with self.assertRaises(ExceptionGroup) as caught:
            with self.ex.scope(join_timeout=WAIT, collect_all=True) as s:
                s.spawn(Raises(boom))
                ok = s.spawn(Counter(3, "ok"))
        self.assertEqual(list(caught.exception.exceptions), [boom])  # one failure is a group too
        self.assertEqual(ok.result(), "ok")


class DeadlineTest(unittest.TestCase):
    def setUp(self):
        self.ex = with_test_clock(self)

    def advance(self, seconds):
        self.ex.advance_clock(seconds)
        self.ex.run()

    def test_a_deadline_cancels_the_children_and_raises_timed_out(self):
        cleaned = []
        tasks = []

        async def child(i):
            try:
                await asyncrt.sleep(10)
            finally:
                cleaned.append((i, self.ex.now_ns()))

        async def main():
            async with asyncrt.scope(timeout=1) as s:
                tasks.extend(s.spawn(child(i)) for i in range(3))

        task = self.ex.spawn(main())
        self.ex.run()
        self.advance(0.999999999)
        self.assertFalse(task.done())
        self.assertEqual(cleaned, [])
        self.advance(1e-9)
        self.assertTrue(task.done())
        with self.assertRaises(asyncrt.TimedOut):
            task.result()
        self.assertEqual(sorted(cleaned), [(i, 1_000_000_000) for i in range(3)])
        self.assertEqual([t.status for t in tasks], [Status.ECANCELLED] * 3)

    def test_a_top_scope_deadline_on_the_executors_clock(self):
        parked = Parked()
        with self.assertRaises(asyncrt.TimedOut):
            with self.ex.scope(join_timeout=WAIT, deadline=2) as s:
                task = s.spawn(parked)
                self.advance(1.5)
                self.assertFalse(task.done())
                self.ex.advance_clock(0.5)
        self.assertEqual(task.status, Status.ECANCELLED)
        self.assertEqual(parked.drops, 1)
        self.assertEqual(s.status(), Status.ETIMEDOUT)

    def test_nested_deadlines_the_inner_earlier(self):
        seen = []

        async def child():
            try:
                async with asyncrt.scope(timeout=1) as inner:
                    inner.spawn(asyncrt.sleep(10))
            except asyncrt.TimedOut:
                seen.append(("inner timed out", self.ex.now()))
            return "child ok"

        async def main():
            async with asyncrt.scope(timeout=5) as outer:
                task = outer.spawn(child())
            return task.result()

        task = self.ex.spawn(main())
        self.ex.run()
        self.advance(1)
        self.assertEqual(task.result(), "child ok")
        self.assertEqual(seen, [("inner timed out", 1.0)])

    def test_nested_deadlines_the_outer_earlier(self):
        seen = []
        cleaned = []

        async def grandchild():
            try:
                await asyncrt.sleep(10)
            finally:
                cleaned.append(self.ex.now())

        async def child():
            try:
                async with asyncrt.scope(timeout=5) as inner:
                    inner.spawn(grandchild())
                    await asyncrt.sleep(10)
            except BaseException as exc:
                seen.append((type(exc), self.ex.now()))
                raise

        async def main():
            async with asyncrt.scope(timeout=1) as outer:
                outer.spawn(child())

        task = self.ex.spawn(main())
        self.ex.run()
        self.advance(1)
        self.assertTrue(task.done())
        with self.assertRaises(asyncrt.TimedOut):
            task.result()
        self.assertEqual(seen, [(asyncrt.Cancelled, 1.0)])
        self.assertEqual(cleaned, [1.0])


class CancelTest(unittest.TestCase):
    """Asynchronous cancellation of coroutines: Cancelled thrown in, cleanups
    that await, cleanup deadlines, shields."""

    def setUp(self):
        self.ex = with_test_clock(self)
        self.log = []

    def advance(self, seconds):
        self.ex.advance_clock(seconds)
        self.ex.run()

    async def worker(self, flush):
        try:
            await asyncrt.sleep(100)
        finally:
            self.log.append(("finally", self.ex.now()))
            await asyncrt.sleep(flush)
            self.log.append(("flushed", self.ex.now()))

    def test_a_cleanup_runs_the_coroutines_finally_which_may_await(self):
        task = self.ex.spawn(self.worker(0.5))
        self.ex.run()
        task.cancel(cleanup_timeout=1)
        self.ex.run()
        self.assertEqual(self.log, [("finally", 0.0)])
        self.assertFalse(task.done())
        self.advance(0.5)
        self.assertEqual(self.log, [("finally", 0.0), ("flushed", 0.5)])
        self.assertEqual(task.status, Status.ECANCELLED)
        with self.assertRaises(asyncrt.Cancelled):
            task.result()

    def test_a_cleanup_that_outlasts_its_time_is_dropped(self):
        task = self.ex.spawn(self.worker(5))
        self.ex.run()
        task.cancel(cleanup_timeout=1)
        self.ex.run()
        self.advance(0.999999999)
        self.assertFalse(task.done())
        self.advance(1e-9)
        self.assertTrue(task.done())
        self.assertEqual(task.status, Status.ECANCELLED)
        self.assertEqual(self.log, [("finally", 0.0)])  # closed at its await: never flushed

    def test_a_synchronous_cancel_runs_no_cleanup(self):
        counter = Counter(10)
        task = self.ex.spawn(counter)
        task.cancel(cleanup_timeout=0)  # 0: as cancel()
        self.ex.run()
        self.assertEqual((counter.polls, counter.drops), (0, 1))
        self.assertEqual(task.status, Status.ECANCELLED)

    def test_a_future_without_cleanup_is_dropped_at_once(self):
        parked = Parked()
        task = self.ex.spawn(parked)
        self.ex.run()
        task.cancel(cleanup_timeout=1)
        self.ex.run()
        self.assertEqual(parked.drops, 1)
        self.assertEqual(task.status, Status.ECANCELLED)

    def test_a_shield_defers_the_cancel_to_the_first_await_after_it(self):
        async def child():
            try:
                with asyncrt.shield():
                    await asyncrt.sleep(0.5)
                    self.log.append(("shielded sleep done", self.ex.now()))
                self.log.append(("shield left", self.ex.now()))
                await asyncrt.yield_now()
                self.log.append(("not reached", self.ex.now()))
            except asyncrt.Cancelled:
                self.log.append(("cancelled", self.ex.now()))
                raise

        with self.ex.scope(join_timeout=WAIT) as s:
            task = s.spawn(child())
            self.ex.run()
            s.cancel()
            self.ex.run()
            self.assertEqual(self.log, [])
            self.advance(0.5)
        self.assertEqual(self.log, [("shielded sleep done", 0.5), ("shield left", 0.5), ("cancelled", 0.5)])
        self.assertEqual(task.status, Status.ECANCELLED)

    def test_without_a_shield_the_cancel_comes_at_once(self):
        async def child():
            try:
                await asyncrt.sleep(0.5)
            except asyncrt.Cancelled:
                self.log.append(("cancelled", self.ex.now()))
                raise

        with self.ex.scope(join_timeout=WAIT) as s:
            task = s.spawn(child())
            self.ex.run()
            s.cancel()
            self.ex.run()
        self.assertEqual(self.log, [("cancelled", 0.0)])
        self.assertEqual(task.status, Status.ECANCELLED)

    def test_shields_nest(self):
        async def child():
            with asyncrt.shield():
                with asyncrt.shield():
                    await asyncrt.sleep(0.5)
                await asyncrt.sleep(0.5)
                self.log.append(("outer section done", self.ex.now()))
            await asyncrt.yield_now()
            self.log.append(("not reached", self.ex.now()))

        with self.ex.scope(join_timeout=WAIT, cleanup_timeout=5) as s:
            task = s.spawn(child())
            self.ex.run()
            s.cancel()
            self.advance(0.5)
            self.advance(0.5)
        self.assertEqual(self.log, [("outer section done", 1.0)])
        self.assertEqual(task.status, Status.ECANCELLED)

    def test_shield_outside_a_task_is_refused(self):
        with self.assertRaises(RuntimeError):
            with asyncrt.shield():
                pass

    def test_a_shield_scope_ignores_its_owners_cancel(self):
        async def child():
            await asyncrt.sleep(1)
            self.log.append(("child done", self.ex.now()))

        async def parent():
            try:
                async with asyncrt.scope(shield=True) as s:
                    s.spawn(child())
            except asyncrt.Cancelled:
                self.log.append(("parent cancelled", self.ex.now()))
                raise

        task = self.ex.spawn(parent())
        self.ex.run()
        task.cancel(cleanup_timeout=5)
        self.ex.run()
        self.assertEqual(self.log, [])
        self.advance(1)
        self.assertEqual(self.log, [("child done", 1.0), ("parent cancelled", 1.0)])
        self.assertTrue(task.done())
        self.assertEqual(task.status, Status.ECANCELLED)


class ThreadsTest(unittest.TestCase):
    """Top scopes on a thread-per-core executor: C children on the workers."""

    def setUp(self):
        self.ex = asyncrt.Executor(kind="threads", workers=2, shutdown_timeout=WAIT)
        self.addCleanup(self.ex.close)

    def test_a_scope_of_c_children_cancelled_from_another_thread(self):
        owned = len(cfuture._owned)
        with self.ex.scope(join_timeout=WAIT, name="sleepers") as s:
            tasks = [s.spawn(asyncrt.sleep(1000), worker=i % 2, name=f"sleeper-{i}") for i in range(8)]
            wait_until(self, lambda: self.ex.timer_stats().waiters == 8, "the sleeps were not armed")
            canceller = threading.Thread(target=s.cancel)
            canceller.start()  # while this thread waits in the scope's exit
        canceller.join(WAIT)
        self.assertEqual([t.status for t in tasks], [Status.ECANCELLED] * 8)
        self.assertEqual(s.status(), Status.ECANCELLED)
        self.assertEqual(self.ex.timer_stats().waiters, 0)
        wait_until(self, lambda: self.ex.stats().tasks_live == 0, "tasks stayed live")
        self.assertEqual(len(cfuture._owned), owned, "each sleep's state is let go once it is dropped")

    def test_a_c_childs_failure_cancels_its_siblings_across_workers(self):
        with self.assertRaises(asyncrt.TimedOut):
            with self.ex.scope(join_timeout=WAIT) as s:
                sleepers = [s.spawn(asyncrt.sleep(1000), worker=i % 2) for i in range(4)]
                wait_until(self, lambda: self.ex.timer_stats().waiters == 4, "the sleeps were not armed")
                bad = s.spawn(asyncrt.timeout(asyncrt.sleep(1000), 0), worker=1)
        self.assertEqual([t.status for t in sleepers], [Status.ECANCELLED] * 4)
        self.assertEqual(bad.status, Status.ETIMEDOUT)
        self.assertEqual([r.task_id for r in s.errors], [bad.id])

    def test_python_children_are_refused(self):
        with self.ex.scope(join_timeout=WAIT) as s:
            counter = Counter(0)
            with self.assertRaises(asyncrt.NotSupported):
                s.spawn(counter)
            self.assertEqual(counter.drops, 1)
            s.spawn(asyncrt.sleep(0))
        self.assertEqual(s.status(), Status.OK)


class ForeignTest(unittest.TestCase):
    def test_scopes_in_coroutines_on_a_foreign_executor(self):
        ex = asyncrt.ForeignExecutor()
        self.addCleanup(ex.close)
        boom = ValueError("boom")

        async def child(i):
            await asyncrt.yield_now()
            if i == 2:
                raise boom
            return i

        async def main(n):
            async with asyncrt.scope() as s:
                tasks = [s.spawn(child(i)) for i in range(n)]
            return [t.result() for t in tasks]

        good, bad = ex.spawn(main(2)), ex.spawn(main(3))
        while ex.pending:
            ex.run_pending()
        self.assertEqual(good.result(), [0, 1])
        with self.assertRaises(ValueError) as caught:
            bad.result()
        self.assertIs(caught.exception, boom)


class DumpTest(unittest.TestCase):
    def setUp(self):
        self.ex = local(self)

    def test_the_dump_names_tasks_and_scopes(self):
        with self.ex.scope(join_timeout=WAIT, name="fanout") as s:
            tasks = [s.spawn(Parked(), name=f"child-{i}") for i in range(2)]
            self.ex.run()
            text = self.ex.dump()
            data = self.ex.dump_json()
            self.assertEqual(self.ex.dump("text").count("child-"), 2)
            s.cancel()
        self.assertEqual([t.name for t in tasks], ["child-0", "child-1"])
        for needle in ("fanout", "child-0", "child-1", str(s.id), str(tasks[0].id), str(tasks[1].id)):
            self.assertIn(needle, text)
        self.assertEqual(set(data), {"tasks", "scopes"})
        self.assertIn((s.id, "fanout"), [(entry.get("id"), entry.get("name")) for entry in data["scopes"]])
        named = {entry.get("id"): entry.get("name") for entry in data["tasks"]}
        self.assertEqual([named.get(t.id) for t in tasks], ["child-0", "child-1"])

    def test_a_task_renamed(self):
        task = self.ex.spawn(Parked())
        self.ex.run()
        task.name = "renamed"
        self.assertIn("renamed", self.ex.dump())
        task.name = None
        self.assertNotIn("renamed", self.ex.dump())
        task.cancel()

    def test_unknown_format(self):
        with self.assertRaises(ValueError):
            self.ex.dump("yaml")


class ExampleTest(unittest.TestCase):
    def test_fanout_example_succeeds(self):
        """examples/python/fanout.py: 100 children, one fails, the rest are cancelled and clean up."""
        import subprocess
        import sys
        example = Path(__file__).resolve().parents[3] / "examples" / "python" / "fanout.py"
        done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("fanout: success", done.stdout)


if __name__ == "__main__":
    unittest.main()
