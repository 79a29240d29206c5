"""asyncrt.net on each backend: echo round trips over many connections, end
of stream, a reset connection, a refused connection, cancelling a pending
read, readexactly/readuntil/readline, Unix sockets, UDP, IPv6, closing a
server. Waits are bounded (WAIT); nothing is timed."""

import os
import socket
import struct
import tempfile
import unittest

import asyncrt
import asyncrt.net as net
from tests.io_support import for_each_backend

CLIENTS = 50
ROUNDS = 4


async def echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


def has_ipv6():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@for_each_backend
class Streams:
    def test_echo_round_trips_over_many_connections(self):
        async def client(port, i):
            reader, writer = await net.open_connection("127.0.0.1", port)
            for r in range(ROUNDS):
                message = bytes([i % 256]) * (1 + (i * 997 + r * 131) % 20000) + b"\n"
                writer.write(message)
                await writer.drain()
                if await reader.readexactly(len(message)) != message:
                    raise AssertionError(f"client {i} round {r}: the echo differs")
            writer.close()
            await writer.wait_closed()
            return i

        async def main():
            async with await net.start_server(echo, "127.0.0.1", 0) as server:
                self.assertGreater(server.port, 0)
                async with asyncrt.scope() as scope:
                    tasks = [scope.spawn(client(server.port, i)) for i in range(CLIENTS)]
            return sorted(t.result() for t in tasks)

        self.assertEqual(self.run_coro(main()), list(range(CLIENTS)))
        self.assertEqual(self.io.stats().in_flight, 0)

    def test_end_of_stream(self):
        async def count(reader, writer):
            data = await reader.read()  # everything up to the client's EOF
            writer.write(str(len(data)).encode())
            await writer.drain()

        async def main():
            async with await net.start_server(count, "127.0.0.1", 0) as server:
                reader, writer = await net.open_connection("127.0.0.1", server.port)
                writer.write(b"x" * 100_000)
                writer.write_eof()
                await writer.drain()
                answer = await reader.read()
                at_eof = reader.at_eof()
                await writer.wait_closed()
            return answer, at_eof

        self.assertEqual(self.run_coro(main()), (b"100000", True))

    def test_readuntil_readline_readexactly(self):
        async def talk(reader, writer):
            writer.write(b"one\ntwo\r\nthree|four")
            await writer.drain()

        async def main():
            async with await net.start_server(talk, "127.0.0.1", 0) as server:
                reader, writer = await net.open_connection("127.0.0.1", server.port)
                got = [await reader.readline(), await reader.readuntil(b"\r\n"), await reader.readuntil(b"|"),
                       await reader.readexactly(2)]
                with self.assertRaises(net.IncompleteReadError) as caught:
                    await reader.readexactly(10)
                got.append(caught.exception.partial)
                got.append(await reader.readline())
                await writer.wait_closed()
            return got

        self.assertEqual(self.run_coro(main()), [b"one\n", b"two\r\n", b"three|", b"fo", b"ur", b""])

    def test_connection_reset_raises_connection_reset_error(self):
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]

        async def main():
            reader, writer = await net.open_connection("127.0.0.1", port)
            peer, _ = listener.accept()  # queued by the kernel already
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            peer.close()  # linger 0: a reset, not an orderly close
            try:
                with self.assertRaises(ConnectionResetError) as caught:
                    await reader.read(100)
                return caught.exception.errno
            finally:
                await writer.wait_closed()

        self.assertEqual(self.run_coro(main()), __import__("errno").ECONNRESET)

    def test_connection_refused(self):
        with socket.socket() as s:  # a port nobody listens on (bound, not listening)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]

            async def main():
                await net.open_connection("127.0.0.1", port)

            with self.assertRaises(ConnectionRefusedError):
                self.run_coro(main())

    def test_cancelling_a_pending_read(self):
        handlers = []

        async def silent_until_told(reader, writer):
            handlers.append(writer)
            await reader.readexactly(1)  # the client's go-ahead
            writer.write(b"late")
            await writer.drain()
            await reader.read()

        async def main():
            async with await net.start_server(silent_until_told, "127.0.0.1", 0) as server:
                reader, writer = await net.open_connection("127.0.0.1", server.port)
                # Steady: the server's next accept and its handler's read wait.
                await self.wait_for(lambda: handlers and self.io.stats().in_flight == 2, "the server waits")
                in_flight = 2
                pending = asyncrt.spawn(reader.read(10))
                await self.wait_for(lambda: self.io.stats().in_flight > in_flight, "the read is in flight")
                pending.cancel()
                with self.assertRaises(asyncrt.Cancelled):
                    await pending
                await self.wait_for(lambda: self.io.stats().in_flight == in_flight, "the cancelled read is reaped")
                writer.write(b"!")
                await writer.drain()
                late = await reader.readexactly(4)  # the connection still works, nothing was lost
                writer.close()
                await writer.wait_closed()
            return late

        self.assertEqual(self.run_coro(main()), b"late")

    def test_closing_a_stream_ends_a_read_waiting_on_it(self):
        async def silent(reader, writer):
            await reader.read()

        async def main():
            async with await net.start_server(silent, "127.0.0.1", 0) as server:
                reader, writer = await net.open_connection("127.0.0.1", server.port)
                waiting = asyncrt.spawn(reader.read(10))
                await asyncrt.yield_now()
                writer.close()
                await writer.wait_closed()
                return await waiting, reader.at_eof()

        self.assertEqual(self.run_coro(main()), (b"", True))

    def test_extra_info(self):
        async def main():
            async with await net.start_server(echo, "127.0.0.1", 0) as server:
                reader, writer = await net.open_connection("127.0.0.1", server.port)
                info = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
                writer.close()
                await writer.wait_closed()
            return server.port, info

        port, (peer, sock) = self.run_coro(main())
        self.assertEqual(peer, ("127.0.0.1", port))
        self.assertEqual(sock[0], "127.0.0.1")

    def test_closed_server_refuses_connections(self):
        async def main():
            server = await net.start_server(echo, "127.0.0.1", 0)
            server.close()
            await server.wait_closed()
            self.assertFalse(server.is_serving())
            await net.open_connection("127.0.0.1", server.port)

        with self.assertRaises(ConnectionRefusedError):
            self.run_coro(main())

    def test_client_callback_that_raises_is_recorded_and_its_connection_closed(self):
        async def broken(reader, writer):
            raise ValueError("the callback fails")

        async def main():
            async with await net.start_server(broken, "127.0.0.1", 0) as server:
                reader, writer = await net.open_connection("127.0.0.1", server.port)
                data = await reader.read()  # the server closed it
                await writer.wait_closed()
            return data, server.errors

        import contextlib
        import io

        with contextlib.redirect_stderr(io.StringIO()):
            data, errors = self.run_coro(main())
        self.assertEqual(data, b"")
        self.assertEqual([type(e) for e in errors], [ValueError])

    def test_unix_socket_echo(self):
        tmp = tempfile.TemporaryDirectory(prefix="asyncrt_net.")
        self.addCleanup(tmp.cleanup)
        path = os.path.join(tmp.name, "echo.sock")

        async def main():
            async with await net.start_unix_server(echo, path) as server:
                self.assertEqual(server.sockname, path)
                reader, writer = await net.open_unix_connection(path)
                writer.write(b"over a unix socket")
                await writer.drain()
                got = await reader.readexactly(18)
                writer.close()
                await writer.wait_closed()
            return got

        self.assertEqual(self.run_coro(main()), b"over a unix socket")
        self.assertFalse(os.path.exists(path))  # the server removed its socket file

    def test_ipv6_echo(self):
        if not has_ipv6():
            self.skipTest("no IPv6 loopback here")

        async def main():
            async with await net.start_server(echo, "::1", 0) as server:
                reader, writer = await net.open_connection("::1", server.port)
                writer.write(b"six")
                await writer.drain()
                got = await reader.readexactly(3)
                peer = writer.get_extra_info("peername")
                writer.close()
                await writer.wait_closed()
            return got, peer

        got, peer = self.run_coro(main())
        self.assertEqual(got, b"six")
        self.assertEqual(peer[0], "::1")

    def test_localhost_by_name(self):
        async def main():
            async with await net.start_server(echo, "127.0.0.1", 0) as server:
                reader, writer = await net.open_connection("localhost", server.port)
                writer.write(b"hi")
                await writer.drain()
                got = await reader.readexactly(2)
                writer.close()
                await writer.wait_closed()
            return got

        self.assertEqual(self.run_coro(main()), b"hi")


@for_each_backend
class Datagrams:
    def test_udp_round_trip(self):
        async def main():
            async with await net.open_datagram_endpoint(("127.0.0.1", 0)) as server:
                async with await net.open_datagram_endpoint(remote_addr=("127.0.0.1", server.port)) as client:
                    await client.send(b"ping")
                    data, sender = await server.recvfrom()
                    await server.sendto(data.upper(), sender)
                    reply = await client.recv()
                    return data, sender, client.sockname, reply

        data, sender, client_name, reply = self.run_coro(main())
        self.assertEqual((data, reply), (b"ping", b"PING"))
        self.assertEqual(sender[1], client_name[1])

    def test_unix_datagrams(self):
        tmp = tempfile.TemporaryDirectory(prefix="asyncrt_net.")
        self.addCleanup(tmp.cleanup)
        a_path, b_path = os.path.join(tmp.name, "a"), os.path.join(tmp.name, "b")

        async def main():
            async with await net.open_datagram_endpoint(a_path, family=socket.AF_UNIX) as a:
                async with await net.open_datagram_endpoint(b_path, family=socket.AF_UNIX) as b:
                    await a.sendto(b"to b", b_path)
                    return await b.recvfrom()

        self.assertEqual(self.run_coro(main()), (b"to b", a_path))


if __name__ == "__main__":
    unittest.main()
