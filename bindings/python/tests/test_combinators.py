"""join_all, select (Python and C) and streams (C streams, async generators)."""

import struct
import unittest
from ctypes import addressof, memmove, sizeof

import asyncrt
from asyncrt import _lib
from asyncrt.combinators import CJoinAll, CSelect
from tests.support import Counter, Gate, Parked, Raises, finish


class CountingStream:
    """A C stream made by hand: its poll yields the 8-byte items 0..n-1, one
    per poll, then ends (READY). Keep it alive while the runtime may poll it."""

    def __init__(self, n):
        self.n = n
        self.next = 0
        self.drops = 0
        self._poll = _lib.POLL_FN(self._on_poll)
        self._drop = _lib.DROP_FN(self._on_drop)
        self.vtable = _lib.asyncrt_future_vtable(sizeof(_lib.asyncrt_future_vtable), 8, self._poll, self._drop)

    def future(self):
        return asyncrt.CFuture(None, addressof(self.vtable))

    def _on_poll(self, _self, _cx, out):
        if self.next == self.n:
            return 1  # ASYNCRT_POLL_READY: the end
        memmove(out, struct.pack("<q", self.next), 8)
        self.next += 1
        return 2  # ASYNCRT_POLL_YIELDED

    def _on_drop(self, _self):
        self.drops += 1


class CombinatorTest(unittest.TestCase):
    def setUp(self):
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)

    def test_join_all_values_in_order(self):
        async def value(v, polls):
            await Counter(polls)
            return v

        async def main():
            return await asyncrt.join_all(value("a", 3), Counter(0, "b"), value("c", 1))

        self.assertEqual(finish(self, self.ex, main()), ["a", "b", "c"])
        self.assertEqual(finish(self, self.ex, asyncrt.join_all()), [])

    def test_join_all_failure_drops_the_others_once(self):
        slow = Counter(100)
        parked = Parked()
        with self.assertRaises(KeyError):
            finish(self, self.ex, asyncrt.join_all(slow, Raises(KeyError("boom")), parked))
        self.assertEqual((slow.drops, parked.drops), (1, 1))

    def test_select_returns_the_first_and_drops_the_rest(self):
        slow, fast = Counter(5, "slow"), Counter(1, "fast")
        self.assertEqual(finish(self, self.ex, asyncrt.select(slow, fast)), (1, "fast"))
        self.assertEqual((slow.drops, fast.drops), (1, 1))
        with self.assertRaises(asyncrt.InvalidArgument):
            asyncrt.select()

    def test_select_over_a_receive_and_a_sleep(self):
        tx, rx = asyncrt.channel()

        async def main():
            first = await asyncrt.select(rx.recv(), asyncrt.sleep(0.001))
            tx.try_send("after the sleep won")
            second = await asyncrt.select(rx.recv(), asyncrt.sleep(WAIT_LONG))
            return first, second

        self.assertEqual(finish(self, self.ex, main()), ((1, None), (0, "after the sleep won")))

    def test_c_join_all_of_c_futures(self):
        join = asyncrt.join_all(asyncrt.sleep(0), asyncrt.sleep(0.001))
        self.assertIsInstance(join, CJoinAll)
        self.assertIsInstance(join, asyncrt.CFuture)

        async def main():
            return await join

        self.assertEqual(finish(self, self.ex, main()), [None, None])

    def test_c_select_of_c_futures(self):
        gate = Gate(self)
        pick = asyncrt.select(gate.future(), asyncrt.sleep(0.001))
        self.assertIsInstance(pick, CSelect)

        async def main():
            return await pick

        self.assertEqual(finish(self, self.ex, main()), (1, None))

    def test_c_join_all_runs_on_a_thread_per_core_executor(self):
        with asyncrt.Executor(kind="threads", workers=2) as pool:
            task = pool.spawn(asyncrt.join_all(asyncrt.sleep(0.001), asyncrt.sleep(0)))
            self.assertIsNone(pool.block_on(task.c_join(), timeout=WAIT_LONG))
            self.assertEqual(task.status, asyncrt.Status.OK)


class StreamTest(unittest.TestCase):
    def setUp(self):
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)

    def test_c_stream_with_async_for(self):
        source = CountingStream(4)

        async def main():
            with asyncrt.CStream(source.future()) as stream:
                return [struct.unpack("<q", item)[0] async for item in stream]

        self.assertEqual(finish(self, self.ex, main()), [0, 1, 2, 3])
        self.assertEqual(source.drops, 1)

    def test_c_stream_stopped_early_is_dropped_once(self):
        source = CountingStream(10)

        async def main():
            stream = asyncrt.CStream(source.future())
            async for item in stream:
                if struct.unpack("<q", item)[0] == 2:
                    break
            stream.close()
            stream.close()

        finish(self, self.ex, main())
        self.assertEqual((source.next, source.drops), (3, 1))

    def test_python_async_generator(self):
        async def numbers(n):
            for i in range(n):
                await asyncrt.yield_now()
                yield i

        async def main():
            return [i async for i in numbers(3)]

        self.assertEqual(finish(self, self.ex, main()), [0, 1, 2])

    def test_receiver_as_a_stream_with_join_all(self):
        tx, rx = asyncrt.channel()

        async def produce():
            for i in range(5):
                await tx.send(i)
            tx.close()

        async def consume():
            return [v async for v in rx]

        async def main():
            return await asyncrt.join_all(produce(), consume())

        self.assertEqual(finish(self, self.ex, main()), [None, [0, 1, 2, 3, 4]])


WAIT_LONG = 10.0

if __name__ == "__main__":
    unittest.main()
