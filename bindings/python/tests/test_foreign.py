"""Foreign executors: runnables queued in Python and run by run_pending()."""

import threading
import unittest

import asyncrt
from asyncrt import Capability, Status, foreign
from tests.support import Counter, Gate, Parked, wait_until


class ForeignTest(unittest.TestCase):
    def setUp(self):
        self.ex = asyncrt.ForeignExecutor()
        self.addCleanup(self.ex.close)

    def test_capabilities(self):
        self.assertEqual(self.ex.capabilities(),
                         Capability.SPAWN_LOCAL | Capability.SPAWN_SEND | Capability.TASK_REMOVAL
                         | Capability.TIMERS | Capability.SUBSYSTEMS | Capability.SCOPES)

    def test_no_shutdown(self):
        with self.assertRaises(asyncrt.NotSupported):
            self.ex.shutdown()

    def test_spawn_queues_a_runnable_with_the_task_id(self):
        first = self.ex.spawn(Counter(0))
        second = self.ex.spawn(Counter(0), send=True)
        self.assertEqual(self.ex.pending, 2)
        self.assertEqual(self.ex.queued(), [first.id, second.id])

    def test_run_pending_runs_python_futures(self):
        counter = Counter(3, "ran")
        task = self.ex.spawn(counter)
        self.assertEqual(self.ex.run_pending(), 5, "4 polls in Python, then the one that finds the completion")
        self.assertEqual(task.result(), "ran")
        self.assertEqual((counter.polls, counter.drops), (4, 1))
        self.assertEqual(self.ex.pending, 0)
        self.assertEqual(self.ex.run_pending(), 0)

    def test_coroutines_spawn_siblings(self):
        async def main():
            sibling = asyncrt.spawn(Counter(2, 20))
            await asyncrt.yield_now()
            return await sibling + 1

        task = self.ex.spawn(main())
        self.ex.run_pending()
        self.assertEqual(task.result(), 21)

    def test_cancel_before_running(self):
        counter = Counter(3)
        task = self.ex.spawn(counter)
        task.cancel()
        self.ex.run_pending()
        self.assertEqual((counter.polls, counter.drops), (0, 1))
        self.assertEqual(task.status, Status.ECANCELLED)

    def test_wake_from_another_thread_queues_the_task(self):
        parked = Parked("woken")
        task = self.ex.spawn(parked)
        self.ex.run_pending()
        self.assertEqual(self.ex.pending, 0)
        thread = threading.Thread(target=parked.release)
        thread.start()
        wait_until(self, lambda: self.ex.pending == 1, "the wake did not schedule the task")
        thread.join()
        self.ex.run_pending()
        self.assertEqual(task.result(), "woken")

    def test_a_c_future(self):
        gate = Gate(self)
        task = self.ex.spawn(gate.future())
        self.assertEqual(self.ex.run_pending(), 1)
        self.assertEqual(task.status, Status.EAGAIN)
        gate.open()  # completes the joined task: its join wakes this task
        self.assertEqual(self.ex.pending, 1)
        self.ex.run_pending()
        self.assertEqual(task.status, Status.OK)

    def test_close_drops_futures_and_releases_the_queue(self):
        parked, queued = Parked(), Counter(1)
        tasks = [self.ex.spawn(parked)]
        self.ex.run_pending()
        tasks.append(self.ex.spawn(queued))
        key = self.ex._key
        self.ex.close()
        self.ex.close()
        self.assertEqual((parked.drops, queued.drops, queued.polls), (1, 1, 0))
        self.assertEqual([t.status for t in tasks], [Status.ECANCELLED] * 2)
        self.assertEqual(self.ex.pending, 0)
        for task in tasks:
            task.close()
        parked.waker.drop()  # the last reference to a task: now nothing can be scheduled
        wait_until(self, lambda: key not in foreign._queues, "finalize did not release the queue")
        with self.assertRaises(asyncrt.BadHandle):
            self.ex.spawn(Counter(0))


if __name__ == "__main__":
    unittest.main()
