"""Wakers: self-wakes, wakes from other threads, misuse."""

import threading
import unittest

import asyncrt
from tests.support import WAIT, Counter, Parked, Probe, finish


class WakerTest(unittest.TestCase):
    def setUp(self):
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)

    def test_many_self_waking_futures(self):
        counters = [Counter(50, i) for i in range(100)]
        tasks = [self.ex.spawn(c) for c in counters]
        self.ex.run()
        self.assertEqual([t.result() for t in tasks], list(range(100)))
        self.assertTrue(all(c.polls == 51 and c.drops == 1 for c in counters))

    def test_wake_from_another_thread_ends_the_sleep(self):
        parked = Parked("woken")
        task = self.ex.spawn(parked)
        self.ex.run()
        waker_ready = threading.Event()

        def wake_later():
            waker_ready.wait(WAIT)
            parked.release()

        thread = threading.Thread(target=wake_later)
        thread.start()

        async def main():
            waker_ready.set()
            return await task

        self.assertEqual(finish(self, self.ex, main()), "woken")
        thread.join(WAIT)
        self.assertFalse(thread.is_alive())

    def test_many_wakes_from_another_thread(self):
        rounds = 200
        acked = threading.Semaphore(0)
        state = {"seen": 0, "waker": None}
        started = threading.Event()

        class Echo(asyncrt.Future):
            def poll(self, cx):
                if state["waker"] is None:
                    state["waker"] = cx.waker.clone()
                    started.set()
                    return asyncrt.PENDING
                state["seen"] += 1
                acked.release()
                return asyncrt.Ready() if state["seen"] == rounds else asyncrt.PENDING

        failures = []

        def pinger():
            if not started.wait(WAIT):
                failures.append("the task was never polled")
                return
            for i in range(rounds):
                state["waker"].wake_by_ref()
                if not acked.acquire(timeout=WAIT):
                    failures.append(f"no acknowledgement for wake {i}")
                    return

        thread = threading.Thread(target=pinger)
        thread.start()
        finish(self, self.ex, Echo())
        thread.join(WAIT)
        self.assertEqual(failures, [])
        self.assertEqual(state["seen"], rounds)

    def test_borrowed_waker_from_another_thread_raises(self):
        errors = []

        def from_thread(cx):
            def wake():
                try:
                    cx.waker.wake_by_ref()
                except RuntimeError as exc:
                    errors.append(exc)

            thread = threading.Thread(target=wake)
            thread.start()
            thread.join(WAIT)

        finish(self, self.ex, Probe(from_thread))
        self.assertEqual(len(errors), 1)
        self.assertIn("clone", str(errors[0]))

    def test_waker_outlives_its_task(self):
        parked = Parked("done")
        task = self.ex.spawn(parked)
        self.ex.run()
        parked.release()
        self.assertEqual(finish(self, self.ex, task), "done")
        clone = parked.waker.clone()
        parked.waker.wake_by_ref()
        parked.waker.wake()
        parked.waker.wake()  # consumed: does nothing
        clone.drop()
        clone.wake_by_ref()
        self.assertEqual(self.ex.run(), 0)

    def test_waker_outlives_its_executor(self):
        parked = Parked()
        self.ex.spawn(parked)
        self.ex.run()
        self.ex.close()
        parked.waker.wake_by_ref()
        parked.waker.clone().wake()


if __name__ == "__main__":
    unittest.main()
