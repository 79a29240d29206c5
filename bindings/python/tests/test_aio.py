"""asyncio interop (asyncrt.aio): an asyncio loop drives a local executor
through its fd, asyncio code awaits asyncrt tasks and futures, and
cancellation crosses both ways. Every wait is bounded by asyncio.wait_for."""

import asyncio
import threading
import unittest

import asyncrt
from asyncrt import Status, aio
from tests.support import WAIT, Parked


def run(test, coro):
    """asyncio.run with a bound; a timeout fails the test with a message."""

    async def bounded():
        return await asyncio.wait_for(coro, WAIT)

    try:
        return asyncio.run(bounded())
    except asyncio.TimeoutError:
        test.fail(f"the asyncio program did not finish within {WAIT} s")


async def wait_for_asyncrt(test, predicate, what):
    """Lets the loop (and so the driven executor) run until predicate() holds."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            test.fail(f"{what}: not within {WAIT} s")
        await asyncio.sleep(0.001)


async def add_after_yields(a, b, yields):
    for _ in range(yields):
        await asyncrt.yield_now()
    return a + b


class DrivingTest(unittest.TestCase):
    def test_the_loop_runs_python_and_c_tasks_through_the_fd(self):
        async def main():
            with aio.run_in() as driver:
                ex = driver.executor
                python_task = ex.spawn(add_after_yields(20, 22, 10))
                c_task = ex.spawn(asyncrt.sleep(0.01))  # a C future: a timer, fired through the fd's timerfd
                return await python_task, await c_task, c_task.status

        self.assertEqual(run(self, main()), (42, None, Status.OK))

    def test_a_long_asyncrt_run_does_not_block_the_loop(self):
        """One step is bounded (STEP_POLLS, STEP_NS): asyncio callbacks run
        between the steps of an asyncrt task that yields many times."""
        yields = 20 * aio.STEP_POLLS
        seen_while_running = []

        async def main():
            with aio.run_in() as driver:
                task = driver.executor.spawn(add_after_yields(1, 1, yields))

                async def watch():
                    while not task.done():
                        seen_while_running.append(driver.executor.stats().polls)
                        await asyncio.sleep(0)

                watcher = asyncio.ensure_future(watch())
                value = await task
                await watcher
                return value

        self.assertEqual(run(self, main()), 2)
        self.assertGreater(len(seen_while_running), 5, "asyncio ran between few steps, or none")
        self.assertLess(seen_while_running[0], yields, "the first asyncio callback came after the whole run")

    def test_a_wake_from_another_thread_reaches_the_loop_through_the_fd(self):
        parked = Parked("released")

        async def main():
            with aio.run_in() as driver:
                task = driver.executor.spawn(parked)
                await wait_for_asyncrt(self, lambda: parked.waker is not None, "the parked future's first poll")
                threading.Timer(0.02, parked.release).start()  # a thread of the test's, not of asyncrt.aio
                return await task

        self.assertEqual(run(self, main()), "released")

    def test_awaits_a_c_task_of_a_thread_per_core_executor(self):
        async def main():
            with asyncrt.Executor(kind="threads", workers=1) as pool, aio.run_in():
                task = pool.spawn(asyncrt.sleep(0.01))  # completes on the worker thread
                return await task, task.status

        self.assertEqual(run(self, main()), (None, Status.OK))

    def test_the_driver_waits_while_another_driver_holds_the_executor(self):
        """Busy: the executor is being driven elsewhere (here: held by the
        test, as a block_on on another thread would). The loop stops
        watching its fd for a while, then runs the task once it is free."""

        async def main():
            with aio.run_in() as driver:
                host = driver.executor._host
                host.enter()  # another driver
                task = driver.executor.spawn(add_after_yields(4, 4, 2))
                try:
                    await asyncio.sleep(5 * aio.RETRY_BUSY)
                    self.assertFalse(task.done(), "the task ran while another driver held the executor")
                finally:
                    host.leave()
                return await task

        self.assertEqual(run(self, main()), 8)

    def test_an_executor_given_to_run_in_stays_open(self):
        ex = asyncrt.Executor()
        self.addCleanup(ex.close)

        async def main():
            async with aio.run_in(executor=ex) as driver:
                self.assertIs(driver.executor, ex)
                return await ex.spawn(add_after_yields(2, 3, 1))

        self.assertEqual(run(self, main()), 5)
        self.assertFalse(ex.closed)
        self.assertEqual(ex.block_on(add_after_yields(1, 2, 1), timeout=WAIT), 3)

    def test_aio_run_drives_an_executor_for_the_whole_program(self):
        async def main():
            executor = aio.driver().executor
            return await aio.wrap(add_after_yields(3, 4, 2)), executor

        value, executor = aio.run(asyncio.wait_for(main(), WAIT))
        self.assertEqual(value, 7)
        self.assertTrue(executor.closed, "aio.run did not close the executor it made")

    def test_wrap_needs_a_driver_and_drops_what_it_cannot_run(self):
        async def never_started():
            pass

        coroutine = never_started()

        async def main():
            with self.assertRaises(RuntimeError):
                aio.wrap(coroutine)

        run(self, main())
        with self.assertRaises(RuntimeError):  # closed, as a failed spawn closes it
            coroutine.send(None)


class AwaitTest(unittest.TestCase):
    def test_wrap_runs_coroutines_python_futures_and_c_futures(self):
        class Ready:
            def poll(self, cx):
                return asyncrt.Ready("polled")

        async def main():
            with aio.run_in():
                return (await aio.wrap(add_after_yields(1, 2, 3)), await aio.wrap(Ready()),
                        await aio.wrap(asyncrt.sleep(0.001)))

        self.assertEqual(run(self, main()), (3, "polled", None))

    def test_an_asyncrt_failure_is_raised_in_asyncio(self):
        async def fails():
            await asyncrt.yield_now()
            raise KeyError("from asyncrt")

        async def main():
            with aio.run_in() as driver:
                task = driver.executor.spawn(fails())
                with self.assertRaises(KeyError) as caught:
                    await task
                return caught.exception.args

        self.assertEqual(run(self, main()), ("from asyncrt",))

    def test_a_python_future_subclass_is_awaitable_in_asyncio(self):
        async def main():
            with aio.run_in():
                notify = asyncrt.Notify()
                notify.notify_one()  # a stored permit: the wait completes at its first poll
                return await notify.wait()

        self.assertIsNone(run(self, main()))


class CancelTest(unittest.TestCase):
    def test_cancelling_the_asyncio_task_cancels_the_asyncrt_task(self):
        parked = Parked()

        async def main():
            with aio.run_in() as driver:
                task = driver.executor.spawn(parked)
                waiter = asyncio.ensure_future(aio.wrap(task))
                await wait_for_asyncrt(self, lambda: parked.waker is not None, "the first poll")
                waiter.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await waiter
                await wait_for_asyncrt(self, lambda: parked.drops == 1, "the cancelled future's drop")
                return task.status

        self.assertEqual(run(self, main()), Status.ECANCELLED)

    def test_an_asyncio_cancel_with_cleanup_time_runs_the_coroutines_finally(self):
        cleaned = []

        async def holds():
            try:
                await Parked()
            finally:
                await asyncrt.yield_now()  # a cleanup may await
                cleaned.append("finally ran")

        async def main():
            with aio.run_in() as driver:
                task = driver.executor.spawn(holds())
                waiter = asyncio.ensure_future(aio.wrap(task, cleanup_timeout=WAIT))
                await asyncio.sleep(0.01)
                waiter.cancel()
                await wait_for_asyncrt(self, task.done, "the task's end after its cleanup")
                return task.status, waiter.cancelled()

        self.assertEqual(run(self, main()), (Status.ECANCELLED, True))
        self.assertEqual(cleaned, ["finally ran"])

    def test_cancelling_a_wrapped_coroutine_drops_it(self):
        closed = []

        async def forever():
            try:
                await Parked()
            finally:
                closed.append(True)

        async def main():
            with aio.run_in():
                waiter = asyncio.ensure_future(aio.wrap(forever()))
                await asyncio.sleep(0.01)
                waiter.cancel()
                await wait_for_asyncrt(self, lambda: closed, "the bridge's drop of the coroutine")

        run(self, main())
        self.assertEqual(closed, [True])

    def test_an_asyncrt_cancel_raises_cancelled_error_in_asyncio(self):
        async def main():
            with aio.run_in() as driver:
                task = driver.executor.spawn(Parked())
                asyncio.get_running_loop().call_later(0.01, task.cancel)
                try:
                    await task
                except asyncio.CancelledError:
                    return "CancelledError"
                return "no error"

        self.assertEqual(run(self, main()), "CancelledError")

    def test_closing_the_driver_cancels_what_asyncio_awaits(self):
        async def main():
            driver = aio.run_in()
            waiter = asyncio.ensure_future(aio.wrap(Parked()))
            await asyncio.sleep(0.01)
            driver.close()  # closes its executor: the tasks are cancelled
            with self.assertRaises(asyncio.CancelledError):
                await waiter
            return driver.executor.closed

        self.assertTrue(run(self, main()))


class ScopeTest(unittest.TestCase):
    def test_asyncio_awaits_the_join_of_a_scope_of_python_and_c_children(self):
        async def main():
            with aio.run_in() as driver:
                ex = driver.executor
                other = ex.spawn(add_after_yields(5, 5, 3))
                async with ex.scope(timeout=WAIT, name="mixed") as scope:
                    py_child = scope.spawn(add_after_yields(1, 2, 5))
                    c_sleep = scope.spawn(asyncrt.sleep(0.01))  # a C child
                    c_join = scope.spawn(other.c_join())  # a C child that waits for a Python task
                return py_child.result(), c_sleep.status, c_join.status, other.result(), scope.status()

        self.assertEqual(run(self, main()), (3, Status.OK, Status.OK, 10, Status.OK))

    def test_asyncio_awaits_a_scope_join_and_sees_a_child_failure(self):
        async def fails():
            await asyncrt.yield_now()
            raise ValueError("child failed")

        async def main():
            with aio.run_in() as driver:
                scope = driver.executor.scope(timeout=WAIT).open()
                try:
                    sibling = scope.spawn(Parked())  # cancelled by the failure (FIRST_ERROR)
                    scope.spawn(fails())
                    status = await scope.join()
                finally:
                    scope.close()
                return status, sibling.status, type(scope.errors[0].exception)

        status, sibling_status, exception_type = run(self, main())
        self.assertNotEqual(status, Status.OK)
        self.assertEqual(sibling_status, Status.ECANCELLED)
        self.assertIs(exception_type, ValueError)

    def test_cancelling_the_asyncio_task_cancels_the_scope(self):
        parked = Parked()
        children = []

        async def main():
            with aio.run_in() as driver:

                async def body():
                    async with driver.executor.scope() as s:
                        children.append(s.spawn(parked))

                body_task = asyncio.ensure_future(body())
                await wait_for_asyncrt(self, lambda: parked.waker is not None, "the child's first poll")
                body_task.cancel()  # while it awaits the join
                with self.assertRaises(asyncio.CancelledError):
                    await body_task
                await wait_for_asyncrt(self, lambda: parked.drops == 1, "the child's drop")
                return children[0].status

        self.assertEqual(run(self, main()), Status.ECANCELLED)


if __name__ == "__main__":
    unittest.main()
