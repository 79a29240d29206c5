"""Networking in the style of asyncio's streams, over an asyncrt IO driver.

    async def handle(reader, writer):
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        async with await asyncrt.net.start_server(handle, "127.0.0.1", 0) as server:
            reader, writer = await asyncrt.net.open_connection("127.0.0.1", server.port)
            ...

Every call runs inside a task of a local executor and uses that executor's
default IO driver (``Executor.io()``), or the one passed as ``io=``.

What differs from asyncio: write() only buffers (nothing is sent until drain(),
close() or wait_closed()); write_eof() takes effect at the next drain();
a server closes a connection when its client_connected_cb returns (or
raises: the exception is printed as for an exception ignored in __del__);
close() of a server stops accepting, and wait_closed() also waits for the
connections' callbacks to return (close_clients() cancels them). Names are
resolved with getaddrinfo on the driver's blocking pool; numeric hosts need
no lookup. Failures are the OSError subclasses Python uses
(ConnectionRefusedError, ConnectionResetError, BrokenPipeError, ...).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections import deque
from typing import Any, Callable

from ._host import report_ignored
from .errors import AsyncrtError, Cancelled
from .io import IO, READ_CHUNK, current
from .timers import sleep

DEFAULT_LIMIT = 64 * 1024  # as asyncio's: a line or separator search looks this far at most
ACCEPT_BACKOFF = 0.1  # seconds a server waits after running out of fds before it accepts again


class IncompleteReadError(EOFError):
    """The stream ended before readexactly/readuntil found what it wanted;
    `partial` holds what was read (as asyncio.IncompleteReadError)."""

    def __init__(self, partial: bytes, expected: int | None):
        self.partial = partial
        self.expected = expected
        super().__init__(f"{len(partial)} bytes read on a total of {expected!r} expected bytes")


class LimitOverrunError(Exception):
    """readuntil/readline found no separator within the reader's limit;
    `consumed` bytes are still in the buffer (as asyncio.LimitOverrunError)."""

    def __init__(self, message: str, consumed: int):
        super().__init__(message)
        self.consumed = consumed


def _driver(io):
    return current() if io is None else io


class _Connection:
    """The fd of one stream connection, shared by its reader and writer; it
    is closed once (shutdown, then the driver's close op)."""

    __slots__ = ("io", "fd", "family", "peername", "sockname", "closing", "closer")

    def __init__(self, io, fd, family, peername=None):
        self.io = io
        self.fd = fd
        self.family = family
        self.peername = peername
        self.sockname = None
        self.closing = False
        self.closer = None  # the task that closes the fd


class StreamReader:
    """Reads from a connection (see asyncio.StreamReader)."""

    def __init__(self, connection: _Connection, limit: int = DEFAULT_LIMIT):
        self._conn = connection
        self._limit = limit
        self._buffer = bytearray()
        self._eof = False

    async def _fill(self) -> bool:
        """One recv into the buffer; False at end of stream."""
        if self._eof:
            return False
        conn = self._conn
        if conn.closing:
            self._eof = True
            return False
        data = await conn.io.recv(conn.fd, max(self._limit, READ_CHUNK))
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    def at_eof(self) -> bool:
        """The peer closed its side and the buffer is empty."""
        return self._eof and not self._buffer

    async def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes (at least one unless at end of stream); n < 0:
        everything up to the end of the stream."""
        if n == 0:
            return b""
        if n < 0:
            while await self._fill():
                pass
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        if not self._buffer:
            await self._fill()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def readexactly(self, n: int) -> bytes:
        """Exactly `n` bytes; IncompleteReadError if the stream ends first."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        while len(self._buffer) < n:
            if not await self._fill():
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise IncompleteReadError(partial, n)
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """The bytes up to and including `separator`; IncompleteReadError if the
        stream ends first, LimitOverrunError past the limit."""
        if not separator:
            raise ValueError("the separator is empty")
        start = 0
        while True:
            found = self._buffer.find(separator, start)
            if found >= 0:
                end = found + len(separator)
                if end > self._limit:
                    raise LimitOverrunError("the separator was found, but the chunk is longer than the limit", found)
                data = bytes(self._buffer[:end])
                del self._buffer[:end]
                return data
            if len(self._buffer) > self._limit:
                raise LimitOverrunError("the separator was not found and the chunk exceeds the limit",
                                        len(self._buffer))
            start = max(0, len(self._buffer) - len(separator) + 1)
            if not await self._fill():
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise IncompleteReadError(partial, None)

    async def readline(self) -> bytes:
        """A line ending in b"\\n", or what is left at the end of the stream
        (b"" at the end)."""
        try:
            return await self.readuntil(b"\n")
        except IncompleteReadError as exc:
            return exc.partial
        except LimitOverrunError as exc:
            if self._buffer.startswith(b"\n", exc.consumed):
                del self._buffer[:exc.consumed + 1]
            else:
                self._buffer.clear()
            raise ValueError(exc.args[0]) from None

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line


class StreamWriter:
    """Writes to a connection (see asyncio.StreamWriter). write() buffers;
    drain() sends what is buffered."""

    def __init__(self, connection: _Connection, reader: StreamReader | None = None):
        self._conn = connection
        self._reader = reader
        self._pending: deque[bytes] = deque()
        self._eof_wanted = False
        self._eof_sent = False

    @property
    def io(self) -> IO:
        return self._conn.io

    def fileno(self) -> int:
        return self._conn.fd

    def write(self, data) -> None:
        """Buffers `data` (a copy): drain() sends it."""
        if self._conn.closing:
            raise ConnectionResetError("the stream is closing")
        if self._eof_wanted:
            raise RuntimeError("write() after write_eof()")
        if data:
            self._pending.append(bytes(data))

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """Closes the sending side after what is buffered (at the next drain())."""
        self._eof_wanted = True

    def is_closing(self) -> bool:
        return self._conn.closing

    async def drain(self) -> None:
        """Sends everything buffered (and the EOF of write_eof())."""
        conn = self._conn
        while self._pending:
            chunk = self._pending[0]
            sent = await conn.io.send(conn.fd, chunk)
            if sent < len(chunk):
                self._pending[0] = chunk[sent:]
            else:
                self._pending.popleft()
        if self._eof_wanted and not self._eof_sent:
            self._eof_sent = True
            await conn.io.shutdown(conn.fd, socket.SHUT_WR)

    def close(self) -> None:
        """Starts closing: what is buffered is sent, then the fd is shut down
        and closed, in a task of the driver's executor (wait_closed waits for
        it). A read waiting on this connection ends as at end of stream."""
        conn = self._conn
        if conn.closing:
            return
        conn.closing = True
        try:
            conn.closer = conn.io.executor.spawn(self._close())
        except AsyncrtError:  # the executor is closing: no task can run the close
            conn.io.close_fd(conn.fd)

    async def _close(self):
        conn = self._conn
        try:
            try:
                await self.drain()
            except OSError:
                pass  # the peer is gone: nothing more to send
            try:
                await conn.io.shutdown(conn.fd, socket.SHUT_RDWR)  # wakes a read waiting on it
            except OSError:
                pass  # not connected any more
        finally:
            await conn.io.close(conn.fd)

    async def wait_closed(self) -> None:
        """Waits until close() has closed the fd (closes it first if needed)."""
        if not self._conn.closing:
            self.close()
        closer = self._conn.closer
        if closer is not None:
            await closer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """"peername", "sockname", "socket" (a socket object that does not own
        the fd: do not close it), "fd"."""
        conn = self._conn
        if name == "peername":
            if conn.peername is None:
                conn.peername = _ask(conn, "getpeername")
            return conn.peername if conn.peername is not None else default
        if name == "sockname":
            if conn.sockname is None:
                conn.sockname = _ask(conn, "getsockname")
            return conn.sockname if conn.sockname is not None else default
        if name == "socket":
            return _BorrowedSocket(conn.fd)
        if name == "fd":
            return conn.fd
        return default

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        self.close()
        await self.wait_closed()


class _BorrowedSocket:
    """A socket's information calls over an fd it does not own."""

    def __init__(self, fd):
        self._fd = fd

    def __getattr__(self, name):
        return getattr(_SocketView(self._fd), name)

    def fileno(self):
        return self._fd


class _SocketView:
    def __init__(self, fd):
        self.fd = fd

    def __getattr__(self, name):
        def call(*args):
            sock = socket.socket(fileno=self.fd)
            try:
                return getattr(sock, name)(*args)
            finally:
                sock.detach()

        return call


def _ask(conn, method):
    try:
        return getattr(_SocketView(conn.fd), method)()
    except OSError:
        return None


def _streams(io, fd, family, peername, limit):
    conn = _Connection(io, fd, family, peername)
    reader = StreamReader(conn, limit)
    return reader, StreamWriter(conn, reader)


# ---- connecting ------------------------------------------------------------------


def _numeric(host):
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


async def _resolve(io, host, port, type_):
    """[(family, address)] to try, in order."""
    if host in (None, ""):
        return [(socket.AF_INET, ("0.0.0.0", port))]
    if host == "localhost":
        return [(socket.AF_INET, ("127.0.0.1", port)), (socket.AF_INET6, ("::1", port, 0, 0))]
    numeric = _numeric(host)
    if numeric is not None:
        family = socket.AF_INET6 if numeric.version == 6 else socket.AF_INET
        return [(family, (host, port) if family == socket.AF_INET else (host, port, 0, 0))]
    infos = await io.getaddrinfo(host, port, type=type_)
    return [(family, address) for family, _type, _proto, _name, address in infos]


def _new_socket(family, type_):
    sock = socket.socket(family, type_)
    sock.setblocking(False)  # Python's sockets are close-on-exec already
    return sock.detach()


async def open_connection(host: str, port: int, *, io: IO | None = None, limit: int = DEFAULT_LIMIT,
                          nodelay: bool = True) -> tuple[StreamReader, StreamWriter]:
    """Connects over TCP; (reader, writer). Each address of `host` is tried in
    turn; the last failure is raised."""
    io = _driver(io)
    last = None
    for family, address in await _resolve(io, host, port, socket.SOCK_STREAM):
        fd = _new_socket(family, socket.SOCK_STREAM)
        try:
            await io.connect(fd, address, family)
        except BaseException as exc:
            await _close_quietly(io, fd)
            if not isinstance(exc, OSError):
                raise
            last = exc
            continue
        if nodelay:
            _SocketView(fd).setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _streams(io, fd, family, address[:2], limit)
    raise last if last is not None else OSError(f"no address found for {host!r}")


async def open_unix_connection(path, *, io: IO | None = None, limit: int = DEFAULT_LIMIT
                               ) -> tuple[StreamReader, StreamWriter]:
    """Connects to a Unix stream socket at `path`; (reader, writer)."""
    io = _driver(io)
    fd = _new_socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await io.connect(fd, path, socket.AF_UNIX)
    except BaseException:
        await _close_quietly(io, fd)
        raise
    return _streams(io, fd, socket.AF_UNIX, os.fsdecode(path) if not isinstance(path, bytes) else path, limit)


async def _close_quietly(io, fd):
    try:
        await io.close(fd)
    except OSError:
        pass


# ---- serving ------------------------------------------------------------------------


class Server:
    """A listening socket and the task that accepts on it (see asyncio.Server).
    ``async with server``: closes it and waits at the end."""

    def __init__(self, io, fd, family, client_connected_cb, limit, sockname):
        self.io = io
        self._fd = fd
        self._family = family
        self._callback = client_connected_cb
        self._limit = limit
        self._sockname = sockname
        self._clients: set[Any] = set()
        self._closing = False
        self._accepting = io.executor.spawn(self._accept_loop())
        self._closed_task = None
        self.errors: list[BaseException] = []  # what client callbacks raised (the newest 100)

    @property
    def port(self) -> int | None:
        """The TCP port it listens on (the one picked for port 0)."""
        return self._sockname[1] if isinstance(self._sockname, tuple) else None

    @property
    def sockname(self):
        return self._sockname

    def fileno(self) -> int:
        return self._fd

    def is_serving(self) -> bool:
        return not self._closing

    async def _accept_loop(self):
        io = self.io
        while True:
            try:
                fd, peer = await io.accept(self._fd)
            except (ConnectionAbortedError, InterruptedError):
                continue  # that client gave up before we took it
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise
                # Out of fds or memory: the connection waits in the backlog;
                # accepting again at once would only spin.
                self.errors.append(exc)
                del self.errors[:-100]
                await sleep(ACCEPT_BACKOFF)
                continue
            if self._family != socket.AF_UNIX:
                _SocketView(fd).setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = io.executor.spawn(self._serve(fd, peer))
            self._clients.add(task)

    async def _serve(self, fd, peer):
        reader, writer = _streams(self.io, fd, self._family, peer, self._limit)
        try:
            result = self._callback(reader, writer)
            if hasattr(result, "__await__"):
                await result
        except (Cancelled, GeneratorExit):
            raise
        except Exception as exc:
            self.errors.append(exc)
            del self.errors[:-100]
            report_ignored(f"the client_connected_cb of {self!r}")
        finally:
            writer.close()  # a task of its own: it runs even when this one is cancelled
            for task in list(self._clients):
                if task.done():
                    self._clients.discard(task)

    def close(self) -> None:
        """Stops accepting (the listening socket is closed by a task of the
        executor); connections go on. Idempotent."""
        if self._closing:
            return
        self._closing = True
        try:
            self._closed_task = self.io.executor.spawn(self._close())
        except AsyncrtError:  # the executor is closing (see StreamWriter.close)
            self.io.close_fd(self._fd)

    async def _close(self):
        accepting = self._accepting
        accepting.cancel()
        try:
            await accepting  # ends once its accept op is reaped
        except (Cancelled, OSError):
            pass
        await self.io.close(self._fd)
        if self._family == socket.AF_UNIX and isinstance(self._sockname, str) and self._sockname:
            try:
                os.unlink(self._sockname)
            except OSError:
                pass

    def close_clients(self) -> None:
        """Cancels the connections' callbacks (their connections are closed)."""
        for task in list(self._clients):
            task.cancel()

    async def wait_closed(self) -> None:
        """Waits until the listening socket is closed and every connection's
        callback has returned."""
        if self._closed_task is not None:
            await self._closed_task
        while self._clients:
            task = self._clients.pop()
            try:
                await task
            except Exception:
                pass  # reported by _serve or a cancellation

    async def serve_forever(self) -> None:
        """Waits until the server is closed (by another task)."""
        try:
            await self._accepting
        except Cancelled:
            if not self._closing:
                raise

    async def start_serving(self) -> None:
        """It serves from the start; for asyncio compatibility."""

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        self.close()
        await self.wait_closed()

    def __repr__(self):
        return f"<asyncrt.net.Server {self._sockname!r}{' closed' if self._closing else ''}>"


async def start_server(client_connected_cb: Callable[[StreamReader, StreamWriter], Any], host: str | None = None,
                       port: int = 0, *, io: IO | None = None, limit: int = DEFAULT_LIMIT, backlog: int = 128,
                       reuse_port: bool = False) -> Server:
    """Listens on host:port over TCP (port 0: a free one, see server.port;
    host None: every IPv4 interface) and runs ``client_connected_cb(reader,
    writer)`` -- a coroutine function or a plain one -- in a task of its own
    for each connection."""
    io = _driver(io)
    family, address = (await _resolve(io, host, port, socket.SOCK_STREAM))[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
        sockname = sock.getsockname()
    except BaseException:
        sock.close()
        raise
    return Server(io, sock.detach(), family, client_connected_cb, limit, sockname[:2])


async def start_unix_server(client_connected_cb: Callable[[StreamReader, StreamWriter], Any], path, *,
                            io: IO | None = None, limit: int = DEFAULT_LIMIT, backlog: int = 128) -> Server:
    """Listens on a Unix stream socket at `path` (a stale socket file there is
    replaced; the file is removed when the server closes)."""
    io = _driver(io)
    if isinstance(path, str) and not path.startswith("\0"):
        try:
            if os.path.exists(path) and not os.path.isdir(path):
                os.unlink(path)
        except OSError:
            pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
        sock.setblocking(False)
        sockname = sock.getsockname()
    except BaseException:
        sock.close()
        raise
    return Server(io, sock.detach(), socket.AF_UNIX, client_connected_cb, limit, sockname)


# ---- datagrams -----------------------------------------------------------------------


class DatagramEndpoint:
    """A UDP (or Unix datagram) socket: ``await ep.sendto(data, addr)``,
    ``data, addr = await ep.recvfrom()``; with a remote address, ``send`` and
    ``recv``. ``await ep.aclose()`` (or ``async with``) closes it."""

    def __init__(self, io, fd, family, sockname, remote):
        self.io = io
        self._fd = fd
        self.family = family
        self.sockname = sockname
        self.remote = remote
        self._closed = False

    @property
    def port(self) -> int | None:
        return self.sockname[1] if isinstance(self.sockname, tuple) else None

    def fileno(self) -> int:
        return self._fd

    def sendto(self, data, address=None):
        """Sends one datagram to `address` (None: the remote address); the value
        is the number of bytes sent."""
        if address is None:
            if self.remote is None:
                raise ValueError("no address, and the endpoint has no remote address")
            return self.io.send(self._fd, data)
        return self.io.sendto(self._fd, data, address, self.family)

    def send(self, data):
        return self.sendto(data)

    def recvfrom(self, size: int = 65536):
        """One datagram: (bytes, sender address)."""
        return self.io.recvfrom(self._fd, size)

    def recv(self, size: int = 65536):
        return self.io.recv(self._fd, size)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self.io.close(self._fd)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.aclose()


async def open_datagram_endpoint(local_addr=None, remote_addr=None, *, family: int = 0, io: IO | None = None
                                 ) -> DatagramEndpoint:
    """A UDP socket bound to `local_addr` ((host, port); None: an ephemeral
    port on the family's any-address) and, with `remote_addr`, connected to it.
    A Unix datagram socket when family is socket.AF_UNIX (addresses are
    paths)."""
    io = _driver(io)
    remote = None
    if family == socket.AF_UNIX:
        fd = _new_socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        local = local_addr
    else:
        if remote_addr is not None:
            family, remote = (await _resolve(io, remote_addr[0], remote_addr[1], socket.SOCK_DGRAM))[0]
        if local_addr is not None:
            family, local = (await _resolve(io, local_addr[0], local_addr[1], socket.SOCK_DGRAM))[0]
        else:
            family = family or socket.AF_INET
            local = ("0.0.0.0", 0) if family == socket.AF_INET else ("::", 0, 0, 0)
        fd = _new_socket(family, socket.SOCK_DGRAM)
    view = _SocketView(fd)
    try:
        if local is not None:
            view.bind(local)
        if remote is not None:
            await io.connect(fd, remote, family)
        sockname = view.getsockname()
    except BaseException:
        await _close_quietly(io, fd)
        raise
    if isinstance(sockname, tuple):
        sockname = sockname[:2]
    return DatagramEndpoint(io, fd, family, sockname, remote)
