"""C futures held by Python: C join futures, spawned as C tasks or awaited."""

import unittest

import asyncrt
from asyncrt import Status, _lib
from tests.support import Counter, Gate, Parked, finish


class CFutureTest(unittest.TestCase):
    def setUp(self):
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)

    def test_one_c_join_per_task(self):
        task = self.ex.spawn(Counter(0))
        join = task.c_join()
        self.assertIsInstance(join, asyncrt.CFuture)
        self.assertEqual(join.output_size, 0)
        with self.assertRaises(asyncrt.Busy):
            task.c_join()
        join.drop()
        join.drop()

    def test_a_vtable_is_required(self):
        with self.assertRaises(asyncrt.InvalidArgument):
            asyncrt.CFuture(_lib.asyncrt_future())

    def test_spawned_as_a_c_task(self):
        gate = Gate(self)
        join = gate.future()
        task = self.ex.spawn(join)
        self.assertIn("taken", repr(join))
        with self.assertRaises(asyncrt.BadHandle):
            self.ex.spawn(join)
        self.ex.run()
        with self.assertRaises(asyncrt.WouldBlock):
            task.result()
        gate.open()
        self.ex.run()
        self.assertIsNone(task.result())
        self.assertEqual(task.status, Status.OK)

    def test_awaited_from_a_coroutine(self):
        parked = Parked("value stays in Python")
        task = self.ex.spawn(parked)
        join = task.c_join()
        self.ex.run()

        async def main():
            parked.release()
            return await join

        self.assertIsNone(finish(self, self.ex, main()))
        self.assertEqual(task.result(), "value stays in Python")

    def test_c_join_of_a_cancelled_task_raises_cancelled(self):
        parked = Parked()
        task = self.ex.spawn(parked)
        join = task.c_join()
        self.ex.run()
        task.cancel()
        with self.assertRaises(asyncrt.Cancelled):
            finish(self, self.ex, join)

    def test_join_of_a_c_task_is_its_c_join(self):
        gate = Gate(self)
        task = self.ex.spawn(gate.future())
        gate.open()
        self.assertIsNone(finish(self, self.ex, task))
        with self.assertRaises(asyncrt.Busy):
            task.join()

    def test_block_on_a_c_future_times_out(self):
        with self.assertRaises(asyncrt.TimedOut):
            self.ex.block_on(Gate(self).future(), timeout=0.01)


if __name__ == "__main__":
    unittest.main()
