"""Mutex, Semaphore, Notify and Barrier: exact outcomes, FIFO order, and
waiters that are cancelled never end up holding anything."""

import threading
import unittest

import asyncrt
from tests.support import WAIT, finish


class SyncTestCase(unittest.TestCase):
    def setUp(self):
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)


class MutexTest(SyncTestCase):
    def test_async_with_excludes_and_is_fifo(self):
        m = asyncrt.Mutex()
        log = []

        async def worker(name):
            async with m:
                log.append(f"{name} in")
                await asyncrt.yield_now()
                log.append(f"{name} out")

        async def main():
            await asyncrt.join_all(*(worker(n) for n in "abc"))

        finish(self, self.ex, main())
        self.assertEqual(log, ["a in", "a out", "b in", "b out", "c in", "c out"])
        self.assertTrue(m.try_lock())
        m.unlock()

    def test_try_lock_and_unlock(self):
        m = asyncrt.Mutex(local=True)
        self.assertTrue(m.try_lock())
        self.assertFalse(m.try_lock())
        m.unlock()
        with self.assertRaises(asyncrt.InvalidArgument):
            m.unlock()

    def test_cancelled_queued_waiter_does_not_hold_the_lock(self):
        m = asyncrt.Mutex()
        self.assertTrue(m.try_lock())
        waiter = self.ex.spawn(m.lock())
        self.ex.run()
        waiter.cancel()
        self.ex.run()
        m.unlock()
        self.assertTrue(m.try_lock())  # nobody else has it
        m.unlock()

    def test_waiter_cancelled_after_the_grant_passes_the_lock_on(self):
        m = asyncrt.Mutex()
        self.assertTrue(m.try_lock())
        first = self.ex.spawn(m.lock())
        second = self.ex.spawn(m.lock())
        self.ex.run()
        m.unlock()  # granted to `first`, which has not seen it yet
        first.cancel()
        self.ex.run()
        self.assertTrue(second.done())  # the lock went on to `second`
        self.assertFalse(m.try_lock())
        m.unlock()
        self.assertTrue(m.try_lock())
        m.unlock()

    def test_timed_out_lock_wait_leaves_the_lock_free(self):
        m = asyncrt.Mutex()

        async def main():
            self.assertTrue(m.try_lock())
            with self.assertRaises(asyncrt.TimedOut):
                await asyncrt.timeout(m.lock(), 0.001)
            m.unlock()
            async with m:
                pass
            return m.try_lock()

        self.assertTrue(finish(self, self.ex, main()))
        m.unlock()

    def test_coroutine_cancelled_in_the_block_unlocks(self):
        m = asyncrt.Mutex()
        blocker = asyncrt.Notify()

        async def holder():
            async with m:
                await blocker.wait()

        task = self.ex.spawn(holder())
        self.ex.run()
        self.assertFalse(m.try_lock())
        task.cancel()
        self.ex.run()
        self.assertTrue(m.try_lock())
        m.unlock()

    def test_close_while_waited_on_is_busy(self):
        m = asyncrt.Mutex()
        m.try_lock()
        waiter = self.ex.spawn(m.lock())
        self.ex.run()
        with self.assertRaises(asyncrt.Busy):
            m.close()
        waiter.cancel()
        self.ex.run()
        m.close()
        m.close()
        with self.assertRaises(asyncrt.BadHandle):
            m.try_lock()


class SemaphoreTest(SyncTestCase):
    def test_permits_and_fifo(self):
        s = asyncrt.Semaphore(2)
        self.assertEqual(s.available(), 2)
        self.assertTrue(s.try_acquire(2))
        self.assertFalse(s.try_acquire())
        big = self.ex.spawn(s.acquire(2))
        small = self.ex.spawn(s.acquire(1))
        self.ex.run()
        s.release(1)
        self.ex.run()
        self.assertFalse(big.done())
        self.assertFalse(small.done())  # queued behind the large request
        s.release(1)
        self.ex.run()
        self.assertTrue(big.done())
        self.assertFalse(small.done())
        s.release(2)
        self.ex.run()
        self.assertTrue(small.done())
        self.assertEqual(s.available(), 1)

    def test_cancelled_waiter_gives_granted_permits_back(self):
        s = asyncrt.Semaphore(0)
        waiter = self.ex.spawn(s.acquire(3))
        self.ex.run()
        s.release(3)  # granted, not yet seen
        waiter.cancel()
        self.ex.run()
        self.assertEqual(s.available(), 3)

    def test_async_with_holds_one_permit(self):
        s = asyncrt.Semaphore(1)
        inside = []

        async def main():
            async with s:
                inside.append(s.available())
            return s.available()

        self.assertEqual(finish(self, self.ex, main()), 1)
        self.assertEqual(inside, [0])


class NotifyTest(SyncTestCase):
    def test_permit_is_stored_when_nobody_waits(self):
        n = asyncrt.Notify()
        n.notify_one()
        n.notify_one()  # one permit, not two
        self.assertIsNone(finish(self, self.ex, n.wait()))
        waiter = self.ex.spawn(n.wait())
        self.ex.run()
        self.assertFalse(waiter.done())
        n.notify_one()
        self.ex.run()
        self.assertTrue(waiter.done())

    def test_notify_one_wakes_the_longest_waiter_and_all_wakes_all(self):
        n = asyncrt.Notify()
        waiters = [self.ex.spawn(n.wait()) for _ in range(3)]
        self.ex.run()
        n.notify_one()
        self.ex.run()
        self.assertEqual([w.done() for w in waiters], [True, False, False])
        n.notify_all()
        self.ex.run()
        self.assertTrue(all(w.done() for w in waiters))
        late = self.ex.spawn(n.wait())
        self.ex.run()
        self.assertFalse(late.done())  # notify_all stored nothing
        late.cancel()

    def test_notify_from_a_plain_thread(self):
        n = asyncrt.Notify()
        ready = threading.Event()

        async def main():
            waiting = n.wait()
            ready.set()
            await waiting
            return "woken"

        thread = threading.Thread(target=lambda: (ready.wait(WAIT), n.notify_one()))
        thread.start()
        self.assertEqual(finish(self, self.ex, main()), "woken")
        thread.join(WAIT)


class BarrierTest(SyncTestCase):
    def test_one_leader_per_round_and_reset(self):
        b = asyncrt.Barrier(3)

        async def main():
            rounds = []
            for _ in range(2):
                rounds.append(await asyncrt.join_all(b.wait(), b.wait(), b.wait()))
            return rounds

        for leaders in finish(self, self.ex, main()):
            self.assertEqual(sorted(leaders), [False, False, True])

    def test_dropped_waiter_is_not_counted(self):
        b = asyncrt.Barrier(2)
        leaving = self.ex.spawn(b.wait())
        self.ex.run()
        leaving.cancel()
        self.ex.run()
        first = self.ex.spawn(b.wait())
        self.ex.run()
        self.assertFalse(first.done())
        second = self.ex.spawn(b.wait())
        self.ex.run()
        self.assertEqual(sorted([first.result(), second.result()]), [False, True])


if __name__ == "__main__":
    unittest.main()
