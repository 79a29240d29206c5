"""asyncrt.io on each backend: the driver, files, pipes, cancellation of an
op in flight, the blocking pool, signals and child processes. Waits are
bounded (WAIT); nothing is timed."""

import errno
import os
import signal
import socket
import sys
import tempfile
import threading
import unittest

import asyncrt
import asyncrt.io
from asyncrt import cfuture
from tests.io_support import IOCase, for_each_backend, uring_refusal
from tests.support import WAIT


@for_each_backend
class Driver:
    def test_backend_is_the_one_asked_for(self):
        self.assertEqual(self.io.backend, self.BACKEND)
        self.assertEqual(self.io.stats().backend, self.BACKEND)
        self.assertIs(self.ex.io(), self.io)  # the executor's default driver, once
        other = "io_uring" if self.BACKEND == "epoll" else "epoll"
        with self.assertRaises(ValueError):  # another backend is another driver: asyncrt.io.open
            self.ex.io(backend=other)
        with asyncrt.io.open(self.ex, backend="epoll") as second:
            self.assertIsNot(second, self.io)
            self.assertEqual(second.backend, "epoll")

    def test_nop_counts_a_submit_and_a_completion(self):
        before = self.io.stats()
        self.assertEqual(self.run_coro(self._nop()), 0)
        after = self.io.stats()
        self.assertEqual(after.submits - before.submits, 1)
        self.assertEqual(after.completions - before.completions, 1)
        self.assertEqual(after.in_flight, 0)

    async def _nop(self):
        return await self.io.nop()

    def test_timeout_op_completes_with_none(self):
        self.assertIsNone(self.run_coro(self._timeout()))

    async def _timeout(self):
        return await self.io.timeout(0.001)

    def test_closed_driver_refuses_ops(self):
        self.io.close()
        self.assertTrue(self.io.closed)
        with self.assertRaises(asyncrt.BadHandle):
            self.io.nop()
        self.io.close()  # idempotent

    def test_executor_close_closes_the_driver(self):
        ex = asyncrt.Executor()
        io = asyncrt.io.open(ex, backend=self.BACKEND)
        ex.close()
        self.assertTrue(io.closed)
        io.close()  # nothing left to close


@for_each_backend
class Files:
    def setUp(self):
        super().setUp()
        tmp = tempfile.TemporaryDirectory(prefix="asyncrt_io.")
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name

    def test_write_then_read_back(self):
        path = os.path.join(self.dir, "data")
        data = os.urandom(200_000) + b"tail"

        async def main():
            fd = await self.io.open(path, "w")
            written = 0
            while written < len(data):  # partial writes are results: go on from there
                written += await self.io.write(fd, memoryview(data)[written:], written)
            await self.io.fsync(fd)
            await self.io.fsync(fd, datasync=True)
            await self.io.close(fd)
            fd = await self.io.open(path)
            head = await self.io.read(fd, 10, 0)
            middle = await self.io.read(fd, 100, 1000)
            buffer = bytearray(4)
            n = await self.io.read_into(fd, buffer, len(data) - 4)
            parts = [bytearray(3), bytearray(5)]
            m = await self.io.readv(fd, parts, 20)
            past_end = await self.io.read(fd, 10, len(data))
            await self.io.close(fd)
            return head, middle, bytes(buffer[:n]), m, [bytes(p) for p in parts], past_end

        head, middle, tail, m, parts, past_end = self.run_coro(main())
        self.assertEqual(head, data[:10])
        self.assertEqual(middle, data[1000:1100])
        self.assertEqual(tail, b"tail")
        self.assertEqual(m, 8)
        self.assertEqual(parts, [data[20:23], data[23:28]])
        self.assertEqual(past_end, b"")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_writev_gathers(self):
        path = os.path.join(self.dir, "gathered")

        async def main():
            fd = await self.io.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            n = await self.io.writev(fd, [b"abc", bytearray(b"def"), memoryview(b"ghij")[1:]], 0)
            await self.io.close(fd)
            return n

        self.assertEqual(self.run_coro(main()), 9)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"abcdefhij")

    def test_open_missing_raises_file_not_found(self):
        async def main():
            return await self.io.open(os.path.join(self.dir, "missing"))

        with self.assertRaises(FileNotFoundError) as caught:
            self.run_coro(main())
        self.assertEqual(caught.exception.errno, errno.ENOENT)

    def test_read_of_a_bad_fd_raises_ebadf(self):
        async def main():
            return await self.io.read(1_000_000, 10)  # past any fd this process has

        with self.assertRaises(OSError) as caught:
            self.run_coro(main())
        self.assertEqual(caught.exception.errno, errno.EBADF)


@for_each_backend
class Pipes:
    def setUp(self):
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.addCleanup(self._close_ends)  # runs last: after the driver's close
        super().setUp()

    def _close_ends(self):
        for fd in (self.r, self.w):
            if fd is not None:
                os.close(fd)

    async def _close_through_the_driver(self, end):
        fd = getattr(self, end)
        setattr(self, end, None)  # closed by the op: the cleanup must not close its number again
        await self.io.close(fd)

    def test_read_waits_for_a_writer(self):
        async def reader():
            return await self.io.read(self.r, 100)

        async def main():
            task = asyncrt.spawn(reader())
            await self.wait_for(lambda: self.io.stats().in_flight == 1, "the read is in flight")
            n = await self.io.write(self.w, b"hello")
            return n, await task

        self.assertEqual(self.run_coro(main()), (5, b"hello"))

    def test_end_of_stream_reads_empty(self):
        async def main():
            await self.io.write(self.w, b"last")
            await self._close_through_the_driver("w")
            return await self.io.read(self.r, 100), await self.io.read(self.r, 100)

        self.assertEqual(self.run_coro(main()), (b"last", b""))

    def test_cancelling_a_task_cancels_its_read_and_the_pipe_keeps_its_data(self):
        async def reader():
            return await self.io.read(self.r, 100)

        async def main():
            task = asyncrt.spawn(reader())
            await self.wait_for(lambda: self.io.stats().in_flight == 1, "the read is in flight")
            cancels = self.io.stats().cancels
            task.cancel()
            with self.assertRaises(asyncrt.Cancelled):
                await task
            # The op is reaped (cancelled in the kernel on io_uring) before the task goes.
            await self.wait_for(lambda: self.io.stats().in_flight == 0, "the cancelled read is reaped")
            self.assertEqual(self.io.stats().cancels, cancels + 1)
            await self.io.write(self.w, b"after")
            return await self.io.read(self.r, 100)

        self.assertEqual(self.run_coro(main()), b"after")  # the cancelled read took nothing

    def test_close_fd_from_outside_a_task_lets_the_number_serve_a_new_pipe(self):
        # A read waits on r (the epoll backend registers it), its task is
        # cancelled, and r is closed with close_fd, as a finally would; a new
        # pipe's read end is put at r's number: a read there must see data.
        # After a plain os.close the epoll worker would take the number for
        # the old, registered file and the read would wait for ever.
        async def reader(fd):
            return await self.io.read(fd, 100)

        async def main():
            task = asyncrt.spawn(reader(self.r))
            await self.wait_for(lambda: self.io.stats().in_flight == 1, "the read is in flight")
            task.cancel()
            with self.assertRaises(asyncrt.Cancelled):
                await task
            number, self.r = self.r, None
            self.io.close_fd(number)
            r2, w2 = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            if r2 != number:
                os.dup2(r2, number)
                os.close(r2)
            try:
                task = asyncrt.spawn(reader(number))
                await self.wait_for(lambda: self.io.stats().in_flight == 1, "the new read is in flight")
                os.write(w2, b"new")
                return await task
            finally:
                self.io.close_fd(number)
                os.close(w2)

        self.assertEqual(self.run_coro(main()), b"new")
        with self.assertRaises(OSError) as cm:
            self.io.close_fd(10**6)  # no such fd
        self.assertEqual(cm.exception.errno, errno.EBADF)

    def test_a_buffer_stays_pinned_until_its_cancelled_read_is_reaped(self):
        import gc

        buffer = bytearray(64)

        async def reader():
            return await self.io.read_into(self.r, buffer)

        async def main():
            task = asyncrt.spawn(reader())
            await self.wait_for(lambda: self.io.stats().in_flight == 1, "the read is in flight")
            with self.assertRaises(BufferError):  # lent to the kernel: it cannot move
                buffer.extend(b"x")
            task.cancel()
            with self.assertRaises(asyncrt.Cancelled):
                await task
            await self.wait_for(lambda: self.io.stats().in_flight == 0, "the cancelled read is reaped")

        self.run_coro(main())
        gc.collect()
        buffer.extend(b"x")  # the op's state let go of it once the op was done
        self.assertEqual(len(buffer), 65)

    def test_a_c_timeout_around_a_read_cancels_it(self):
        before = len(cfuture._lingering)

        async def main():
            with self.assertRaises(asyncrt.TimedOut):
                await asyncrt.timeout(self.io.read(self.r, 100), 0.01)
            await self.wait_for(lambda: self.io.stats().in_flight == 0, "the timed-out read is reaped")
            await self.io.write(self.w, b"x")
            return await self.io.read(self.r, 100)

        self.assertEqual(self.run_coro(main()), b"x")
        self.assertLessEqual(len(cfuture._lingering), before + 1)  # kept only while the op was in flight

    def test_poll_reports_readiness(self):
        async def main():
            waiting = asyncrt.spawn(self._poll_in())
            await self.wait_for(lambda: self.io.stats().in_flight == 1, "the poll is in flight")
            await self.io.write(self.w, b"!")
            return await waiting, await self.io.poll(self.w, asyncrt.io.POLLOUT)

        ready_in, ready_out = self.run_coro(main())
        self.assertTrue(ready_in & asyncrt.io.POLLIN)
        self.assertTrue(ready_out & asyncrt.io.POLLOUT)

    async def _poll_in(self):
        return await self.io.poll(self.r, asyncrt.io.POLLIN)

    def test_write_to_a_pipe_without_reader_raises_broken_pipe(self):
        async def main():
            await self._close_through_the_driver("r")
            return await self.io.write(self.w, b"nobody")

        with self.assertRaises(BrokenPipeError):
            self.run_coro(main())


@for_each_backend
class Sockets:
    def test_partial_send_and_reads_in_pieces(self):
        a, b = socket.socketpair()
        for end in (a, b):
            end.setblocking(False)
        data = os.urandom(8 * 1024 * 1024)  # far more than a socket buffer holds

        async def receive():
            chunks, total = [], 0
            while total < len(data):
                chunk = await self.io.recv(b, 65536)
                self.assertTrue(chunk, "end of stream before all the data")
                chunks.append(chunk)
                total += len(chunk)
            return b"".join(chunks), len(chunks)

        async def main():
            first = await self.io.send(a, data)  # nobody reads yet: a partial write, as send(2)
            self.assertGreater(first, 0)
            self.assertLess(first, len(data))
            reader = asyncrt.spawn(receive())
            await self.io.sendall(a, memoryview(data)[first:])
            return await reader

        try:
            received, pieces = self.run_coro(main(), timeout=WAIT * 3)
        finally:
            a.close()  # never ours to close through the driver: the driver goes with the test
            b.close()
        self.assertEqual(received, data)
        self.assertGreater(pieces, 1)

    def test_send_to_a_closed_peer_raises_broken_pipe_not_sigpipe(self):
        a, b = socket.socketpair()
        a.setblocking(False)
        b.close()

        async def main():
            return await self.io.send(a, b"nobody reads this")

        try:
            with self.assertRaises(BrokenPipeError):
                self.run_coro(main())
        finally:
            a.close()


FD_LIMIT_SCRIPT = """
    import errno, os, resource, sys
    import asyncrt
    backend = sys.argv[1]
    ex = asyncrt.Executor()
    io = ex.io(backend=backend)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 16, hard))

    async def main():
        fds = []
        try:
            for _ in range(1000):
                fds.append(await io.open("/dev/null"))
        except OSError as exc:
            failure = exc
        for fd in fds:
            await io.close(fd)
        return type(failure).__name__, failure.errno == errno.EMFILE, len(fds) > 0
    print(*ex.block_on(main(), timeout=10))
    ex.close()
"""


@for_each_backend
class Blocking:
    def test_run_blocking_returns_the_value_from_another_thread(self):
        async def main():
            return await self.io.run_blocking(lambda a, b=0: (threading.get_ident(), a + b), 40, b=2)

        thread, value = self.run_coro(main())
        self.assertEqual(value, 42)
        self.assertNotEqual(thread, threading.get_ident())

    def test_run_blocking_raises_what_fn_raised(self):
        def fails():
            raise KeyError("inside")

        async def main():
            return await self.io.run_blocking(fails)

        with self.assertRaises(KeyError):
            self.run_coro(main())

    def test_many_jobs_and_the_pool_counters(self):
        async def main():
            async with asyncrt.scope() as scope:
                tasks = [scope.spawn(self._square(i)) for i in range(20)]
            return [t.result() for t in tasks]

        self.assertEqual(self.run_coro(main()), [i * i for i in range(20)])
        stats = self.io.stats()
        self.assertGreaterEqual(stats.pool_jobs, 20)
        self.assertEqual(stats.pool_rejected, 0)

    async def _square(self, i):
        return await self.io.run_blocking(lambda: i * i)

    def test_getaddrinfo_on_the_pool(self):
        async def main():
            return await self.io.getaddrinfo("localhost", 80, type=__import__("socket").SOCK_STREAM)

        infos = self.run_coro(main())
        self.assertTrue(any(info[4][1] == 80 for info in infos))


@for_each_backend
class Processes:
    def test_exit_status(self):
        async def main():
            process = self.io.spawn(["sh", "-c", "exit 7"])
            try:
                return await process.wait()
            finally:
                await process.aclose()

        self.assertEqual(self.run_coro(main()), 7)

    def test_killed_by_a_signal(self):
        async def main():
            process = self.io.spawn(["sleep", "30"])
            process.kill(signal.SIGTERM)
            code = await process.wait()
            await process.aclose()
            return code

        self.assertEqual(self.run_coro(main()), -signal.SIGTERM)

    def test_timeout_kills_the_child(self):
        async def main():
            return await self.io.run_process(["sleep", "30"], timeout=0.05)

        result = self.run_coro(main())
        self.assertTrue(result.timed_out)
        self.assertEqual(result.returncode, -signal.SIGKILL)

    def test_a_child_that_ends_in_time(self):
        async def main():
            return await self.io.run_process(["true"], timeout=WAIT)

        result = self.run_coro(main())
        self.assertFalse(result.timed_out)
        self.assertEqual(result.returncode, 0)

    def test_stdout_to_a_pipe_and_env(self):
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

        async def main():
            process = self.io.spawn(["sh", "-c", 'printf "%s" "$GREETING"'], env={"GREETING": "hi there"}, stdout=w)
            os.close(w)  # the child has its copy
            chunks = []
            while chunk := await self.io.read(r, 100):
                chunks.append(chunk)
            code = await process.wait()
            await process.aclose()
            await self.io.close(r)
            return b"".join(chunks), code

        self.assertEqual(self.run_coro(main()), (b"hi there", 0))

    def test_missing_program(self):
        with self.assertRaises(asyncrt.AsyncrtError):
            self.io.spawn(["/nonexistent/program"])


FALLBACK_SCRIPT = """
    import asyncrt, asyncrt.io, asyncrt.net

    async def echo(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()

    async def round_trip():
        async with await asyncrt.net.start_server(echo, "127.0.0.1", 0) as server:
            reader, writer = await asyncrt.net.open_connection("127.0.0.1", server.port)
            writer.write(b"still works\\n")
            await writer.drain()
            line = await reader.readline()
            await writer.wait_closed()
            return line

    with asyncrt.Executor() as ex:
        io = ex.io()                             # auto
        print(io.backend, ex.block_on(round_trip(), timeout=10))
        try:
            asyncrt.io.open(ex, backend="io_uring")
            print("io_uring opened")
        except asyncrt.NotSupported:
            print("io_uring refused")
"""


class Fallback(unittest.TestCase):
    """auto falls back to epoll when io_uring is refused: the kernel's refusal
    simulated with the library's test hook (ASYNCRT_IO_URING_REFUSE), in a
    child interpreter; and ASYNCRT_IO picks the backend of an "auto" driver."""

    def run_script(self, **env):
        import subprocess
        import textwrap

        from tests.test_processes import script_env

        done = subprocess.run([sys.executable, "-c", textwrap.dedent(FALLBACK_SCRIPT)], capture_output=True,
                              text=True, timeout=WAIT * 3, env=dict(script_env(), **env))
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout.splitlines()

    def test_auto_falls_back_to_epoll_when_io_uring_is_refused(self):
        for errno_name in ("EPERM", "ENOSYS"):
            with self.subTest(refusal=errno_name):
                self.assertEqual(self.run_script(ASYNCRT_IO_URING_REFUSE=errno_name),
                                 ["epoll b'still works\\n'", "io_uring refused"])

    def test_the_environment_picks_the_backend_of_auto(self):
        self.assertEqual(self.run_script(ASYNCRT_IO="epoll")[0], "epoll b'still works\\n'")


class FdExhaustion(unittest.TestCase):
    """Running out of fds is an error of the op that needed one (EMFILE), in
    a child interpreter whose fd limit is lowered."""

    def run_backend(self, backend):
        import subprocess
        import textwrap

        from tests.test_processes import script_env

        done = subprocess.run([sys.executable, "-c", textwrap.dedent(FD_LIMIT_SCRIPT), backend], capture_output=True,
                              text=True, timeout=WAIT * 3, env=script_env())
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.split(), ["OSError", "True", "True"])

    def test_emfile_on_epoll(self):
        self.run_backend("epoll")

    def test_emfile_on_io_uring(self):
        reason = uring_refusal()
        if reason:
            self.skipTest(reason)
        self.run_backend("io_uring")


class LazyModules(unittest.TestCase):
    def test_asyncrt_io_and_net_load_on_first_use(self):
        import subprocess

        from tests.test_processes import script_env

        code = "import asyncrt, sys; print(asyncrt.io.IO.__name__, asyncrt.net.start_server.__name__, 'asyncio' in sys.modules)"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT,
                              env=script_env())
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.split(), ["IO", "start_server", "False"])


# Signals change the process's dispositions: each test runs in a child
# interpreter, so the test runner never meets a stray SIGUSR1.
SIGNAL_SCRIPT = """
    import os, signal, sys
    import asyncrt, asyncrt.io
    backend = sys.argv[1]
    ex = asyncrt.Executor()
    io = ex.io(backend=backend)

    async def waiter():
        return await io.signal(signal.SIGUSR1)

    async def main():
        task = asyncrt.spawn(waiter())
        for _ in range(100000):
            if io.stats().in_flight == 1:
                break
            await asyncrt.yield_now()
        os.kill(os.getpid(), signal.SIGUSR1)
        first = await task
        os.kill(os.getpid(), signal.SIGUSR1)  # between two waits: counted for the next
        second = await io.signal(signal.SIGUSR1)
        return first, second

    first, second = ex.block_on(main(), timeout=10)
    io.release_signal(signal.SIGUSR1)
    print(int(first), int(second), first.name)
    ex.close()
"""


class Signals(unittest.TestCase):
    def run_backend(self, backend):
        import subprocess
        import textwrap

        from tests.test_processes import script_env

        done = subprocess.run([sys.executable, "-c", textwrap.dedent(SIGNAL_SCRIPT), backend], capture_output=True,
                              text=True, timeout=WAIT * 3, env=script_env())
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.split(), [str(int(signal.SIGUSR1))] * 2 + ["SIGUSR1"])

    def test_signal_on_epoll(self):
        self.run_backend("epoll")

    def test_signal_on_io_uring(self):
        reason = uring_refusal()
        if reason:
            self.skipTest(reason)
        self.run_backend("io_uring")


if __name__ == "__main__":
    unittest.main()
