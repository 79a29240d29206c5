"""Tasks of Python futures and coroutines: results, joins, cancellation, drops."""

import asyncio
import threading
import types
import unittest

import asyncrt
from asyncrt import Status
from tests.support import WAIT, Counter, Parked, Probe, Raises, finish


class TaskTest(unittest.TestCase):
    def setUp(self):
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)

    def test_result_of_a_self_waking_future(self):
        counter = Counter(5, "five")
        task = self.ex.spawn(counter)
        with self.assertRaises(asyncrt.WouldBlock):
            task.result()
        self.assertEqual(task.status, Status.EAGAIN)
        self.assertFalse(task.done())
        self.ex.run()
        self.assertEqual(task.result(), "five")
        self.assertEqual(task.status, Status.OK)
        self.assertEqual(counter.polls, 6)
        self.assertEqual(counter.drops, 1)

    def test_ids_are_unique_and_nonzero(self):
        tasks = [self.ex.spawn(Counter(0)) for _ in range(5)]
        ids = {task.id for task in tasks}
        self.assertEqual(len(ids), 5)
        self.assertNotIn(0, ids)

    def test_exception_fails_the_task(self):
        boom = ValueError("boom")
        raises = Raises(boom)
        task = self.ex.spawn(raises)
        self.ex.run()
        self.assertEqual(task.status, Status.EFAILED)
        with self.assertRaises(ValueError) as caught:
            task.result()
        self.assertIs(caught.exception, boom)
        self.assertEqual(raises.drops, 1)

    def test_asyncrt_error_names_the_status(self):
        task = self.ex.spawn(Raises(asyncrt.Busy("mine")))
        self.ex.run()
        self.assertEqual(task.status, Status.EBUSY)

    def test_bad_poll_result_fails_the_task(self):
        class BadPoll:
            def poll(self, cx):
                return "neither PENDING nor Ready"

        task = self.ex.spawn(BadPoll())
        self.ex.run()
        with self.assertRaises(TypeError):
            task.result()

    def test_cancel_drops_once_and_reports_cancelled(self):
        parked = Parked()
        task = self.ex.spawn(parked)
        self.ex.run()
        task.cancel()
        task.cancel()
        self.ex.run()
        self.assertEqual(parked.drops, 1)
        self.assertEqual(task.status, Status.ECANCELLED)
        with self.assertRaises(asyncrt.Cancelled):
            task.result()

    def test_cancel_before_first_poll(self):
        counter = Counter(3)
        task = self.ex.spawn(counter)
        task.cancel()
        self.ex.run()
        self.assertEqual(counter.polls, 0)
        self.assertEqual(counter.drops, 1)
        self.assertEqual(task.status, Status.ECANCELLED)

    def test_cancel_after_completion_does_nothing(self):
        task = self.ex.spawn(Counter(0, "kept"))
        self.ex.run()
        task.cancel()
        self.ex.run()
        self.assertEqual(task.result(), "kept")

    def test_cancel_from_inside_another_poll_stops_polling(self):
        counter = Counter(1000)
        victim = self.ex.spawn(counter)
        self.ex.run_step(max_polls=2)
        finish(self, self.ex, Probe(lambda cx: victim.cancel()))
        polls = counter.polls
        self.ex.run()
        self.assertEqual(counter.polls, polls)
        self.assertEqual(counter.drops, 1)

    def test_close_releases_the_handle_and_task_runs_on(self):
        counter = Counter(3)
        task = self.ex.spawn(counter)
        task.close()
        task.close()
        for use in (task.result, task.cancel, task.done, task.join, lambda: task.id):
            with self.assertRaises(asyncrt.BadHandle):
                use()
        self.ex.run()
        self.assertEqual(counter.drops, 1)
        self.assertEqual(counter.left, 0)

    def test_task_context_manager_releases(self):
        with self.ex.spawn(Counter(0)) as task:
            self.ex.run()
        with self.assertRaises(asyncrt.BadHandle):
            task.result()

    def test_join_future_from_a_hand_written_future(self):
        first = self.ex.spawn(Counter(3, 1))
        second = self.ex.spawn(Counter(7, 2))

        class Sum(asyncrt.Future):
            def __init__(self):
                self.joins = [first.join(), second.join()]
                self.values = []

            def poll(self, cx):
                while self.joins:
                    result = self.joins[0].poll(cx)
                    if result is asyncrt.PENDING:
                        return asyncrt.PENDING
                    self.values.append(result.value)
                    self.joins.pop(0)
                return asyncrt.Ready(sum(self.values))

        self.assertEqual(finish(self, self.ex, Sum()), 3)

    def test_block_on_a_task_does_not_cancel_it_on_timeout(self):
        parked = Parked("late")
        task = self.ex.spawn(parked)
        with self.assertRaises(asyncrt.TimedOut):
            self.ex.block_on(task, timeout=0.01)
        self.assertEqual(parked.drops, 0)
        parked.release()
        self.assertEqual(finish(self, self.ex, task), "late")

    def test_send_and_placement_flags_on_a_local_executor(self):
        sent = self.ex.spawn(Counter(1, "sent"), send=True)
        placed = self.ex.spawn(Counter(1, "placed"), worker=0)
        self.ex.run()
        self.assertEqual((sent.result(), placed.result()), ("sent", "placed"))
        counter = Counter(0)
        with self.assertRaises(asyncrt.InvalidArgument):
            self.ex.spawn(counter, worker=1)  # a local executor has worker 0 only
        self.assertEqual(counter.drops, 1)
        with self.assertRaises(ValueError):
            self.ex.spawn(Counter(0), worker=-1)

    def test_spawn_inside_a_poll(self):
        inner = Counter(2, "inner")
        task = finish(self, self.ex, Probe(lambda cx: cx.executor.spawn(inner)))
        self.assertEqual(finish(self, self.ex, task), "inner")


class CoroutineTest(unittest.TestCase):
    def setUp(self):
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)

    def test_yield_now_and_return(self):
        order = []

        async def worker(name, n):
            for i in range(n):
                order.append((name, i))
                await asyncrt.yield_now()
            return name

        a = self.ex.spawn(worker("a", 3))
        b = self.ex.spawn(worker("b", 3))
        self.ex.run()
        self.assertEqual((a.result(), b.result()), ("a", "b"))
        self.assertEqual(order, [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)])

    def test_await_tasks(self):
        async def main():
            first = asyncrt.spawn(Counter(4, 10))
            second = asyncrt.spawn(Counter(2, 20))
            return await first + await second

        self.assertEqual(finish(self, self.ex, main()), 30)

    def test_await_a_future(self):
        async def main():
            return await Counter(3, "counted")

        self.assertEqual(finish(self, self.ex, main()), "counted")

    def test_awaited_failure_propagates(self):
        async def main():
            task = asyncrt.spawn(Raises(KeyError("k")))
            try:
                await task
            except KeyError as exc:
                return exc.args

        self.assertEqual(finish(self, self.ex, main()), ("k",))

    def test_awaiting_a_cancelled_task_raises_cancelled(self):
        parked = Parked()
        victim = self.ex.spawn(parked)

        async def main():
            await asyncrt.yield_now()
            victim.cancel()
            await victim

        with self.assertRaises(asyncrt.Cancelled):
            finish(self, self.ex, main())

    def test_cancelled_coroutine_runs_finally_and_drops_awaited_future(self):
        parked = Parked()
        cleaned = []

        async def main():
            try:
                await parked
            finally:
                cleaned.append(True)

        task = self.ex.spawn(main())
        self.ex.run()
        task.cancel()
        self.ex.run()
        self.assertEqual(cleaned, [True])
        self.assertEqual(parked.drops, 1)

    def test_unspawned_coroutine_is_closed_on_failed_spawn(self):
        async def never():
            pass

        coro = never()
        with asyncrt.Executor(memory_limit=1) as ex:
            with self.assertRaises(asyncrt.LimitExceeded):
                ex.spawn(coro)
        with self.assertRaises(RuntimeError):  # closed: cannot be started
            coro.send(None)

    def test_a_bare_yield_is_a_yield_to_the_executor(self):
        """A bare `yield` (None) from an awaitable -- types.coroutine, as
        yield_now() and asyncio.sleep(0) do -- wakes the task and lets the
        other runnable tasks run first."""
        order = []

        @types.coroutine
        def bare_yield():
            yield

        async def worker(name, pause):
            for i in range(2):
                order.append((name, i))
                await pause()
            return name

        a = self.ex.spawn(worker("a", bare_yield))
        b = self.ex.spawn(worker("b", lambda: asyncio.sleep(0)))
        self.ex.run()
        self.assertEqual((a.result(), b.result()), ("a", "b"))
        self.assertEqual(order, [("a", 0), ("b", 0), ("a", 1), ("b", 1)])

    def test_yield_now_polled_directly_is_pending_once(self):
        seen = []

        def poll_twice(cx):
            future = asyncrt.yield_now()
            seen.append(future.poll(cx))
            seen.append(future.poll(cx))

        finish(self, self.ex, Probe(poll_twice))
        self.assertIs(seen[0], asyncrt.PENDING)
        self.assertIsInstance(seen[1], asyncrt.Ready)

    def test_context_and_borrowed_waker(self):
        def inspect(cx):
            return (isinstance(cx, asyncrt.Context), isinstance(cx.waker, asyncrt.Waker), cx.executor,
                    isinstance(cx.waker.clone(), asyncrt.Waker))

        self.assertEqual(finish(self, self.ex, Probe(inspect)), (True, True, self.ex, True))

    def test_awaiting_a_foreign_awaitable_raises_type_error(self):
        class Foreign:
            def __await__(self):
                yield "not an asyncrt future"

        async def main():
            await Foreign()

        with self.assertRaises(TypeError):
            finish(self, self.ex, main())

    def test_join_across_executors_and_threads(self):
        other = asyncrt.Executor()
        self.addCleanup(other.close)
        parked = Parked("across")
        remote = other.spawn(parked)
        other.run()
        outcome = []
        thread = threading.Thread(target=lambda: outcome.append(other.block_on(remote, timeout=WAIT)))

        async def main():
            thread.start()
            parked.release()
            return await remote

        self.assertEqual(finish(self, self.ex, main()), "across")
        thread.join(WAIT)
        self.assertFalse(thread.is_alive(), "the other executor's driver did not finish")
        self.assertEqual(outcome, ["across"])


if __name__ == "__main__":
    unittest.main()
