"""Channels carrying Python objects: kinds, closing, cancellation, threads,
and the exactly-once life of every value."""

import gc
import threading
import unittest
import weakref

import asyncrt
from asyncrt.channels import value_drops
from tests.support import WAIT, finish


class Token:
    """A value whose release a weakref can watch."""

    def __init__(self, n):
        self.n = n

    def __repr__(self):
        return f"Token({self.n})"


def in_flight(endpoint):
    """The objects the channel's table holds."""
    return len(endpoint._channel.values.objects)


class ChannelTest(unittest.TestCase):
    def setUp(self):
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)

    def test_mpsc_delivers_any_object_in_order(self):
        tx, rx = asyncrt.channel()
        shared = Token(0)
        values = [shared, None, [1, 2], "three", 4.0]

        async def main():
            for v in values:
                await tx.send(v)
            return [await rx.recv() for _ in values]

        got = finish(self, self.ex, main())
        self.assertEqual(got[1:], values[1:])
        self.assertIs(got[0], shared)
        self.assertEqual(in_flight(rx), 0)

    def test_bounded_send_waits_for_room(self):
        tx, rx = asyncrt.channel(capacity=1)
        tx.try_send("a")
        with self.assertRaises(asyncrt.WouldBlock):
            tx.try_send("b")
        sender = self.ex.spawn(tx.send("b"))
        self.ex.run()
        self.assertFalse(sender.done())
        self.assertEqual(rx.queued(), 1)
        self.assertEqual(rx.try_recv(), "a")
        self.ex.run()
        self.assertTrue(sender.done())
        self.assertEqual(rx.try_recv(), "b")
        with self.assertRaises(asyncrt.WouldBlock):
            rx.try_recv()

    def test_async_for_drains_then_ends_at_close(self):
        tx, rx = asyncrt.channel()
        second = tx.clone()
        for i in range(3):
            tx.try_send(i)
        second.try_send(3)
        tx.close()
        second.close()

        async def main():
            return [v async for v in rx]

        self.assertEqual(finish(self, self.ex, main()), [0, 1, 2, 3])
        with self.assertRaises(asyncrt.Closed):
            rx.try_recv()

    def test_recv_after_last_sender_raises_closed(self):
        tx, rx = asyncrt.channel()
        receiver = self.ex.spawn(rx.recv())
        self.ex.run()
        tx.close()
        self.ex.run()
        with self.assertRaises(asyncrt.Closed):
            receiver.result()

    def test_send_to_a_channel_without_receiver_keeps_the_value(self):
        tx, rx = asyncrt.channel()
        rx.close()
        value = Token(1)
        with self.assertRaises(asyncrt.Closed):
            tx.try_send(value)

        async def send():
            await tx.send(value)

        with self.assertRaises(asyncrt.Closed):
            finish(self, self.ex, send())
        self.assertEqual(in_flight(tx), 0)
        self.assertEqual(value_drops(tx), 0)

    def test_pending_send_fails_when_the_receiver_goes(self):
        tx, rx = asyncrt.channel(capacity=1)
        tx.try_send("inside")
        sender = self.ex.spawn(tx.send("waiting"))
        self.ex.run()
        rx.close()
        self.ex.run()
        with self.assertRaises(asyncrt.Closed):
            sender.result()
        tx.close()
        self.assertEqual(value_drops(tx), 1)  # "inside", when the channel died

    def test_closed_endpoint_refuses_use(self):
        tx, rx = asyncrt.channel()
        tx.close()
        tx.close()
        with self.assertRaises(asyncrt.BadHandle):
            tx.try_send(1)
        with self.assertRaises(asyncrt.BadHandle):
            tx.clone()
        rx.close()
        with self.assertRaises(asyncrt.BadHandle):
            rx.recv()

    def test_raw_channel_carries_bytes(self):
        tx, rx = asyncrt.channel(elem_size=16, raw=True)
        tx.try_send(b"0123456789abcdef")
        self.assertEqual(rx.try_recv(), b"0123456789abcdef")
        with self.assertRaises(asyncrt.InvalidArgument):
            tx.try_send(b"short")
        with self.assertRaises(asyncrt.InvalidArgument):
            asyncrt.channel(elem_size=16)
        with self.assertRaises(asyncrt.InvalidArgument):
            asyncrt.channel(kind="pipe")

    def test_local_channel(self):
        tx, rx = asyncrt.channel(local=True)

        async def main():
            await tx.send("here")
            return await rx.recv()

        self.assertEqual(finish(self, self.ex, main()), "here")


class OneshotTest(unittest.TestCase):
    def setUp(self):
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)

    def test_one_value(self):
        tx, rx = asyncrt.channel("oneshot")
        with self.assertRaises(asyncrt.InvalidArgument):
            tx.clone()
        receiver = self.ex.spawn(rx.recv())
        self.ex.run()
        tx.try_send("only")
        with self.assertRaises(asyncrt.WouldBlock):
            tx.try_send("second")
        self.ex.run()
        self.assertEqual(receiver.result(), "only")

    def test_sender_gone_without_a_value(self):
        tx, rx = asyncrt.channel("oneshot")
        tx.close()
        with self.assertRaises(asyncrt.Closed):
            finish(self, self.ex, rx.recv())


class BroadcastWatchTest(unittest.TestCase):
    def setUp(self):
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)

    def test_every_receiver_sees_every_value(self):
        tx, first = asyncrt.channel("broadcast", capacity=4)
        second = tx.subscribe()
        value = Token(7)

        async def main():
            await tx.send(value)
            await tx.send("b")
            return [await first.recv(), await first.recv(), await second.recv(), await second.recv()]

        got = finish(self, self.ex, main())
        self.assertIs(got[0], value)
        self.assertIs(got[2], value)
        self.assertEqual(got[1::2], ["b", "b"])

    def test_a_receiver_behind_lags_once_then_skips_ahead(self):
        tx, rx = asyncrt.channel("broadcast", capacity=2)
        for i in range(5):
            tx.try_send(i)
        self.assertLessEqual(in_flight(tx), 2)
        with self.assertRaises(asyncrt.Lagged):
            rx.try_recv()
        self.assertEqual([rx.try_recv(), rx.try_recv()], [3, 4])
        with self.assertRaises(asyncrt.WouldBlock):
            rx.try_recv()

    def test_subscriber_sees_values_from_now_on(self):
        tx, rx = asyncrt.channel("broadcast", capacity=4)
        tx.try_send("before")
        late = tx.subscribe()
        tx.try_send("after")
        self.assertEqual(late.try_recv(), "after")
        self.assertEqual([rx.try_recv(), rx.try_recv()], ["before", "after"])

    def test_watch_holds_the_latest(self):
        tx, rx = asyncrt.channel("watch", initial="v0")
        with self.assertRaises(asyncrt.WouldBlock):
            rx.try_recv()  # it has seen the initial value
        waiting = self.ex.spawn(rx.recv())
        self.ex.run()
        self.assertFalse(waiting.done())
        tx.try_send("v1")
        self.ex.run()
        self.assertEqual(waiting.result(), "v1")
        tx.try_send("v2")
        tx.try_send("v3")
        self.assertEqual(rx.try_recv(), "v3")
        self.assertEqual(in_flight(tx), 1)
        late = tx.subscribe()
        with self.assertRaises(asyncrt.WouldBlock):
            late.try_recv()

    def test_broadcast_closes_for_receivers(self):
        tx, rx = asyncrt.channel("broadcast", capacity=2)
        tx.try_send(1)
        tx.close()

        async def main():
            return [v async for v in rx]

        self.assertEqual(finish(self, self.ex, main()), [1])


class CancellationTest(unittest.TestCase):
    def setUp(self):
        self.ex = asyncrt.Executor()
        self.addCleanup(self.ex.close)

    def test_a_value_sent_to_a_cancelled_receive_stays_in_the_channel(self):
        tx, rx = asyncrt.channel()
        receiver = self.ex.spawn(rx.recv())
        self.ex.run()  # pending, registered
        tx.try_send("kept")  # wakes it ...
        receiver.cancel()  # ... but it is dropped before it polls again
        self.ex.run()
        self.assertEqual(rx.try_recv(), "kept")

    def test_timed_out_receive_loses_nothing(self):
        tx, rx = asyncrt.channel()

        async def main():
            with self.assertRaises(asyncrt.TimedOut):
                await asyncrt.timeout(rx.recv(), 0.001)
            tx.try_send("later")
            return await rx.recv()

        self.assertEqual(finish(self, self.ex, main()), "later")

    def test_select_loser_receive_loses_nothing(self):
        tx, rx = asyncrt.channel()
        other_tx, other_rx = asyncrt.channel()

        async def main():
            other_tx.try_send("other")
            index, value = await asyncrt.select(rx.recv(), other_rx.recv())
            tx.try_send("mine")
            return index, value, await rx.recv()

        self.assertEqual(finish(self, self.ex, main()), (1, "other", "mine"))

    def test_dropped_pending_send_is_withdrawn(self):
        tx, rx = asyncrt.channel(capacity=1)
        tx.try_send("inside")
        withdrawn = Token(2)
        alive = weakref.ref(withdrawn)
        sender = self.ex.spawn(tx.send(withdrawn))
        del withdrawn
        self.ex.run()
        sender.cancel()
        self.ex.run()
        gc.collect()
        self.assertIsNone(alive())
        self.assertEqual(rx.try_recv(), "inside")
        with self.assertRaises(asyncrt.WouldBlock):
            rx.try_recv()
        self.assertEqual(in_flight(rx), 0)

    def test_receives_that_keep_timing_out_miss_nothing_a_thread_sends(self):
        tx, rx = asyncrt.channel(capacity=4)
        count = 300

        def produce():
            for i in range(count):
                while True:
                    try:
                        tx.try_send(i)
                        break
                    except asyncrt.WouldBlock:
                        pass
            tx.close()

        async def consume():
            got, timeouts = [], 0
            while True:
                try:
                    got.append(await asyncrt.timeout(rx.recv(), 0.0002))
                except asyncrt.TimedOut:
                    timeouts += 1
                except asyncrt.Closed:
                    return got, timeouts

        thread = threading.Thread(target=produce)
        thread.start()
        got, _ = finish(self, self.ex, consume())
        thread.join(WAIT)
        self.assertEqual(got, list(range(count)))


class ThreadTest(unittest.TestCase):
    def test_try_send_from_a_plain_thread_wakes_a_task(self):
        tx, rx = asyncrt.channel()
        count = 1000

        def produce():
            for i in range(count):
                tx.try_send(i)
            tx.close()

        async def consume():
            return [v async for v in rx]

        with asyncrt.Executor() as ex:
            thread = threading.Thread(target=produce)
            task = ex.spawn(consume())
            ex.run()
            thread.start()
            got = finish(self, ex, task)
            thread.join(WAIT)
        self.assertEqual(got, list(range(count)))

    def test_try_recv_from_a_plain_thread(self):
        tx, rx = asyncrt.channel(capacity=1)
        got = []

        def consume():
            while True:
                try:
                    got.append(rx.try_recv())
                except asyncrt.WouldBlock:
                    continue
                except asyncrt.Closed:
                    return

        async def produce():
            for i in range(200):
                await tx.send(i)
            tx.close()

        thread = threading.Thread(target=consume)
        thread.start()
        with asyncrt.Executor() as ex:
            finish(self, ex, produce())
        thread.join(WAIT)
        self.assertFalse(thread.is_alive())
        self.assertEqual(got, list(range(200)))


    def test_broadcast_from_a_plain_thread_reads_only_live_values(self):
        tx, rx = asyncrt.channel("broadcast", capacity=4)
        count = 500

        def produce():
            for i in range(count):
                tx.try_send(Token(i))
            tx.close()

        async def consume():
            got, lagged = [], 0
            while True:
                try:
                    got.append((await rx.recv()).n)
                except asyncrt.Lagged:
                    lagged += 1
                except asyncrt.Closed:
                    return got, lagged

        with asyncrt.Executor() as ex:
            thread = threading.Thread(target=produce)
            task = ex.spawn(consume())
            ex.run()
            thread.start()
            got, lagged = finish(self, ex, task)
            thread.join(WAIT)
        self.assertEqual(got, sorted(set(got)))  # in order, none twice
        self.assertEqual(got[-1], count - 1)
        self.assertLessEqual(in_flight(rx), 4)
        if lagged == 0:
            self.assertEqual(got, list(range(count)))


class ValueDropTest(unittest.TestCase):
    def test_values_left_inside_are_dropped_exactly_once(self):
        tx, rx = asyncrt.channel()
        tokens = [Token(i) for i in range(5)]
        alive = [weakref.ref(t) for t in tokens]
        for token in tokens:
            tx.try_send(token)
        received = [rx.try_recv(), rx.try_recv()]
        del tokens, token
        tx.close()
        self.assertEqual(value_drops(rx), 0)  # the receiver keeps the channel alive
        rx.close()
        self.assertEqual(value_drops(rx), 3)
        gc.collect()
        self.assertEqual([r() is None for r in alive], [False, False, True, True, True])
        self.assertEqual([t.n for t in received], [0, 1])

    def test_a_clone_keeps_the_channel_alive(self):
        tx, rx = asyncrt.channel()
        clone = tx.clone()
        tx.try_send("x")
        tx.close()
        rx.close()
        self.assertEqual(value_drops(clone), 0)
        clone.close()
        self.assertEqual(value_drops(clone), 1)

    def test_garbage_collected_endpoints_drop_the_values(self):
        tx, rx = asyncrt.channel()
        token = Token(3)
        alive = weakref.ref(token)
        tx.try_send(token)
        del token, tx, rx
        gc.collect()
        self.assertIsNone(alive())

    def test_closing_with_a_pending_receive_waits_for_it(self):
        tx, rx = asyncrt.channel()
        with asyncrt.Executor() as ex:
            receiver = ex.spawn(rx.recv())
            ex.run()
            rx.close()  # freed once the pending receive is gone
            tx.try_send("delivered")
            ex.run()
            self.assertEqual(receiver.result(), "delivered")
        with self.assertRaises(asyncrt.Closed):
            tx.try_send("nobody")


if __name__ == "__main__":
    unittest.main()
