"""IO: an asyncrt IO driver (epoll or io_uring) and its operations, awaited
from coroutines.

    with asyncrt.Executor() as ex:
        io = ex.io()                      # the executor's driver ("auto": io_uring, else epoll)
        async def main():
            fd = await io.open("/etc/hostname")
            data = await io.read(fd, 4096)
            await io.close(fd)
            return data
        ex.block_on(main())

A driver (IO) belongs to one executor (asyncrt_io_open). Each operation
method returns an IOFuture: an OwnedCFuture whose state holds the op, its
asyncrt_io_future state and every buffer, address and path the op points
to. Awaited, it runs as a C task on the driver's executor (the op is
submitted from a real C poll, as asyncrt_io_submit requires); its value is
the op's result converted for Python (bytes read, a new fd, ...).

Failures. An op the operating system refused raises the OSError subclass
for its errno (ConnectionResetError, FileNotFoundError, BrokenPipeError, ...,
with ``errno`` set), as Python's own calls do; a cancelled op raises
Cancelled; a driver that is closing raises Shutdown.

Buffers and cancellation. A cancelled coroutine drops the IOFuture it awaits,
which cancels its C task; asyncrt drops that task only once its op is
complete (cancelled in the kernel, or finished), and only then lets go of
the op's state -- so the kernel never writes into freed memory, whatever
happens to the coroutine. A buffer passed in (``read_into``, ``write`` of a
bytearray) is held, and pinned (a bytearray cannot be resized), until then.
A read cancelled too late has still read: its data is lost to the caller.

Threads. Make a driver from the thread that owns its executor. Await its
operations from coroutines of that executor (a local executor), or spawn an
IOFuture on it (any executor kind, thread-per-core included).

Backends and the environment: see asyncrt.h ("IO"): ASYNCRT_IO=epoll|io_uring|
auto overrides a driver opened with backend="auto".
"""

from __future__ import annotations

import os
import signal as signal_mod
import socket
from ctypes import (
    Structure,
    addressof,
    byref,
    c_char,
    c_char_p,
    c_int,
    c_size_t,
    c_uint32,
    c_void_p,
    cast,
    create_string_buffer,
    py_object,
    sizeof,
    string_at,
)
from typing import Any, NamedTuple

from . import _lib
from ._lib import (
    BLOCKING_FN,
    asyncrt_future,
    asyncrt_io_config,
    asyncrt_io_future_state,
    asyncrt_io_stats,
    asyncrt_op,
    asyncrt_process_config,
    check,
    lib,
)
from ._sockaddr import SOCKADDR_MAX, decode_sockaddr, encode_sockaddr
from .cfuture import OwnedCFuture
from .errors import BadHandle, Cancelled, Status, TimedOut, error, to_status

BACKENDS = {"auto": _lib.IO_AUTO, "epoll": _lib.IO_EPOLL, "io_uring": _lib.IO_URING}
BACKEND_NAMES = {value: name for name, value in BACKENDS.items()}

# Opcodes (ASYNCRT_IO_OP_*), for IOFuture.opcode.
OP_NOP, OP_READ, OP_WRITE, OP_READV, OP_WRITEV, OP_RECV, OP_SEND, OP_ACCEPT, OP_CONNECT, OP_CLOSE = range(1, 11)
OP_FSYNC, OP_POLL, OP_TIMEOUT, OP_OPENAT, OP_SHUTDOWN, OP_BLOCKING, OP_SIGNAL, OP_WAITPID = range(11, 19)
OP_RECVMSG, OP_SENDMSG = 19, 20
FSYNC_DATASYNC = 1
AT_FDCWD = -100
POLLIN, POLLOUT = 0x001, 0x004
READ_CHUNK = 64 * 1024  # bytes read by read()/recv() when no size is given


class IOStats(NamedTuple):
    """A driver's counters (asyncrt_io_stats)."""

    backend: str  # "epoll" or "io_uring"
    workers: int  # registrations (one per worker)
    submits: int
    completions: int
    failures: int  # completions with a status other than OK
    cancels: int
    in_flight: int  # ops submitted and not complete now
    syscalls: int  # epoll: epoll_wait/epoll_ctl; io_uring: io_uring_enter
    ticks: int
    pool_threads: int  # blocking pool threads alive now
    pool_queued: int
    pool_jobs: int
    pool_rejected: int


def os_error(errno_value: int, what: str = "") -> OSError:
    """The OSError subclass Python raises for `errno_value` (OSError maps it:
    ECONNRESET -> ConnectionResetError, ENOENT -> FileNotFoundError, ...)."""
    message = os.strerror(errno_value)
    return OSError(errno_value, f"{message} ({what})" if what else message)


# ---- the state of one op -------------------------------------------------------


class _IOState(Structure):
    """The C memory of one op: its asyncrt_io_future state and the op. The
    Python attribute `keep` holds the buffers, iovecs, address and path the
    op points to; the whole object lives until the runtime drops the future
    (and, through cfuture._linger, until the op is done)."""

    _fields_ = [("future", asyncrt_io_future_state), ("op", asyncrt_op)]

    def in_flight(self):
        return not lib.asyncrt_op_done(byref(self.op))


def _writable(buffer):
    """A ctypes view of a writable buffer (bytearray, memoryview of one,
    array, mmap): (address, length, the view, which pins the buffer)."""
    view = memoryview(buffer).cast("B")
    if view.readonly:
        raise TypeError(f"a read needs a writable buffer, not {type(buffer).__name__}")
    array = (c_char * view.nbytes).from_buffer(view)
    return addressof(array), view.nbytes, (array, view)


def _readable(data):
    """(address, length, what to keep) of bytes-like `data`, without a copy
    for bytes and writable buffers; a read-only view of something else is
    copied once."""
    if isinstance(data, bytes):
        pointer = c_char_p(data)  # points into the bytes object itself
        return cast(pointer, c_void_p).value or 0, len(data), (pointer, data)
    view = memoryview(data).cast("B")
    if view.readonly:
        copy = bytes(view)
        pointer = c_char_p(copy)
        return cast(pointer, c_void_p).value or 0, len(copy), (pointer, copy)
    array = (c_char * view.nbytes).from_buffer(view)
    return addressof(array), view.nbytes, (array, view)


class _iovec(Structure):
    _fields_ = [("iov_base", c_void_p), ("iov_len", c_size_t)]


class _msghdr(Structure):
    _fields_ = [
        ("msg_name", c_void_p),
        ("msg_namelen", c_uint32),
        ("msg_iov", c_void_p),
        ("msg_iovlen", c_size_t),
        ("msg_control", c_void_p),
        ("msg_controllen", c_size_t),
        ("msg_flags", c_int),
    ]


class _BlockingJob:
    """A Python call for the blocking pool (run_blocking)."""

    __slots__ = ("fn", "args", "kwargs", "value", "error", "ran")

    def __init__(self, fn, args, kwargs):
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.value = self.error = None
        self.ran = False


@BLOCKING_FN
def _run_job(arg):
    # On a pool thread (ctypes takes the GIL). The job is alive: the op's state
    # keeps it until the op completes, which is after this returns.
    job = cast(arg, py_object).value
    job.ran = True
    try:
        job.value = job.fn(*job.args, **job.kwargs)
    except BaseException as exc:  # handed to the awaiting coroutine
        job.error = exc
    return 0


# ---- the op future -------------------------------------------------------------


class IOFuture(OwnedCFuture):
    """One IO op as a future (asyncrt_io_future); made by IO's methods.

    Awaited, its value is the op's result as the method documents; spawned or
    block_on'ed as a C future it completes with the op (read ``result`` after).
    It is a CFuture, so ``asyncrt.timeout(fut, s)`` puts a C timeout around it
    (the op is cancelled when the time is up)."""

    __slots__ = ("io", "_convert", "_what")

    def __init__(self, io, prep, keep=(), convert=None, what=""):
        state = _IOState()
        state.keep = keep
        prep(byref(state.op))
        future = asyncrt_future()
        check(lib.asyncrt_io_future(byref(state.future), io._live(), byref(state.op), byref(future)))
        self.io = io
        self._convert = convert
        self._what = what
        super().__init__(future, state, io.executor, _lib.SPAWN_LOCAL)

    @property
    def opcode(self) -> int:
        return self._state.op.opcode

    @property
    def status(self) -> Status | int:
        """The op's status once it is done (Status.EOS: see ``result``)."""
        return to_status(self._state.op.status)

    @property
    def result(self) -> int:
        """The op's raw result once done: >= 0, or -errno."""
        return self._state.op.result

    def _value(self, output):
        result = self._state.op.result
        return result if self._convert is None else self._convert(result)

    def _failure(self, exc):
        op = self._state.op
        if op.status == Status.EOS and op.result < 0:
            failure = os_error(-op.result, self._what)
            failure.__cause__ = exc
            return failure
        if exc.status == Status.ECANCELLED:
            return Cancelled(f"asyncrt: the {self._what or 'IO'} operation was cancelled")
        status = to_status(op.status) if op.status else exc.status
        failure = error(status, f"asyncrt: the {self._what or 'IO'} operation failed with "
                                f"{getattr(status, 'name', status)}")
        failure.__cause__ = exc
        return failure

    def __repr__(self):
        return f"<asyncrt.IOFuture {self._what or self.opcode}>"


# ---- the driver ----------------------------------------------------------------


class IO:
    """An IO driver on an executor (asyncrt_io_open); see the module
    docstring. Made by ``Executor.io()`` (the executor's default driver) or
    ``asyncrt.io.open(executor, ...)``. Closed by ``close()``, ``with``, or
    the executor's close.

    Operations take raw fds (ints; objects with fileno() are accepted). The fds
    must be non-blocking for the epoll backend (sockets made by asyncrt.net
    are). Close an fd that ops may still use with ``await io.close(fd)``."""

    def __init__(self, executor, backend="auto", ring_entries=0, pool_threads=0, pool_queue=0,
                 pool_idle=None, priority=0):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {sorted(BACKENDS)}, not {backend!r}")
        config = asyncrt_io_config()
        lib.asyncrt_io_config_init_size(byref(config), sizeof(config))
        config.backend = BACKENDS[backend]
        if ring_entries:
            config.ring_entries = ring_entries
        if priority:
            config.priority = priority
        if pool_threads:
            config.pool_threads = pool_threads
        if pool_queue:
            config.pool_queue = pool_queue
        if pool_idle is not None:
            from .timers import positive_ns

            config.pool_idle_ns = positive_ns(pool_idle)
        handle = _lib.io_p()
        check(lib.asyncrt_io_open(executor._live(), byref(config), byref(handle)))
        self.executor = executor
        self._handle = handle
        self._closed = False
        self._signals: set[int] = set()

    # -- the driver itself ----------------------------------------------------

    def _live(self):
        if self._closed or self.executor.closed:
            raise BadHandle("asyncrt: the IO driver is closed")
        return self._handle

    @property
    def closed(self) -> bool:
        return self._closed or self.executor.closed

    @property
    def backend(self) -> str:
        """The backend that runs: "epoll" or "io_uring"."""
        value = lib.asyncrt_io_backend(self._live())
        if value < 0:
            check(-value)
        return BACKEND_NAMES[value]

    def stats(self) -> IOStats:
        """The driver's counters, a snapshot."""
        stats = asyncrt_io_stats(size=sizeof(asyncrt_io_stats))
        check(lib.asyncrt_io_stats_get(self._live(), byref(stats)))
        values = [getattr(stats, name) for name in IOStats._fields]
        values[0] = BACKEND_NAMES.get(stats.backend, str(stats.backend))
        return IOStats(*values)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close_driver()

    def __repr__(self):
        return f"<asyncrt.IO {'closed' if self.closed else self.backend}>"

    def _op(self, prep, keep=(), convert=None, what=""):
        return IOFuture(self, prep, keep, convert, what)

    # -- plain fds -------------------------------------------------------------

    def nop(self) -> IOFuture:
        """Completes at once through the backend with 0."""
        return self._op(lambda op: lib.asyncrt_io_prep_nop(op), what="nop")

    def read(self, fd, size: int = READ_CHUNK, offset: int = -1) -> IOFuture:
        """Reads up to `size` bytes (at `offset` if >= 0: pread); the value is
        the bytes read, b"" at end of file/stream."""
        fd = _fileno(fd)
        buffer = create_string_buffer(size) if size else None
        address = addressof(buffer) if buffer is not None else None
        return self._op(lambda op: lib.asyncrt_io_prep_read(op, fd, address, size, offset), buffer,
                        lambda n: string_at(address, n) if n else b"", "read")

    def read_into(self, fd, buffer, offset: int = -1) -> IOFuture:
        """Reads into a writable buffer (pinned until the op is complete); the
        value is the number of bytes read."""
        fd = _fileno(fd)
        address, length, keep = _writable(buffer)
        return self._op(lambda op: lib.asyncrt_io_prep_read(op, fd, address, length, offset), keep, what="read")

    def write(self, fd, data, offset: int = -1) -> IOFuture:
        """Writes bytes-like `data` (at `offset` if >= 0: pwrite); the value is
        the number of bytes written (maybe fewer: a partial write)."""
        fd = _fileno(fd)
        address, length, keep = _readable(data)
        return self._op(lambda op: lib.asyncrt_io_prep_write(op, fd, address, length, offset), keep, what="write")

    def readv(self, fd, buffers, offset: int = -1) -> IOFuture:
        """Reads into several writable buffers in order; the value is the
        number of bytes read."""
        fd = _fileno(fd)
        iov, keep = _iovecs(buffers, _writable)
        return self._op(lambda op: lib.asyncrt_io_prep_readv(op, fd, addressof(iov), len(iov), offset),
                        (iov, keep), what="readv")

    def writev(self, fd, buffers, offset: int = -1) -> IOFuture:
        """Writes several bytes-like objects in order (gathered); the value is
        the number of bytes written."""
        fd = _fileno(fd)
        iov, keep = _iovecs(buffers, _readable)
        return self._op(lambda op: lib.asyncrt_io_prep_writev(op, fd, addressof(iov), len(iov), offset),
                        (iov, keep), what="writev")

    def fsync(self, fd, datasync: bool = False) -> IOFuture:
        """fsync(2) (fdatasync(2) with datasync=True)."""
        fd = _fileno(fd)
        flags = FSYNC_DATASYNC if datasync else 0
        return self._op(lambda op: lib.asyncrt_io_prep_fsync(op, fd, flags), convert=_none, what="fsync")

    def close(self, fd=None):
        """``await io.close(fd)``: closes an fd through the driver, which first
        forgets it -- the only safe way to close an fd that ops may still use
        (the value is None). ``io.close()`` without an fd closes the driver
        (close_driver)."""
        if fd is None:
            return self.close_driver()
        fd = _fileno(fd)
        return self._op(lambda op: lib.asyncrt_io_prep_close(op, fd), convert=_none, what="close")

    def close_fd(self, fd) -> None:
        """Closes an fd at once, from anywhere (a ``finally`` of a cancelled
        coroutine, another thread, a ``__del__``): the driver forgets it
        before close(2), so a new file that gets its number is not taken
        for the old one. On epoll, ops still waiting on it end with EBADF;
        on io_uring an op already in the kernel keeps the file open until it
        completes (close such an fd with ``await io.close(fd)``, which
        cancels them first). Once the driver is closed it is a plain
        os.close."""
        fd = _fileno(fd)
        if self._closed or self.executor.closed:
            os.close(fd)
            return
        rc = lib.asyncrt_io_close_fd(self._handle, fd)
        if rc == Status.EHANDLE:  # the driver was closed meanwhile (the executor's close)
            os.close(fd)
        elif rc == Status.EOS:
            raise os_error(lib.asyncrt_last_errno(), "close_fd")
        else:
            check(rc)

    def close_driver(self) -> None:
        """Closes the driver: ops in flight are cancelled and complete (their
        coroutines raise Cancelled); signals it waited for are given back.
        Idempotent; the executor's close does it too. Not from inside a task
        of its executor (Reentrant)."""
        if self._closed:
            return
        if not self.executor.closed:
            for signo in sorted(self._signals):
                lib.asyncrt_io_signal_release(self._handle, signo)
            check(lib.asyncrt_io_close(self._handle))
        self._closed = True
        if getattr(self.executor, "_default_io", None) is self:
            self.executor._default_io = None

    def poll(self, fd, events: int = POLLIN) -> IOFuture:
        """Waits until `fd` is ready for `events` (POLLIN/POLLOUT bits); the
        value is the ready events."""
        fd = _fileno(fd)
        return self._op(lambda op: lib.asyncrt_io_prep_poll(op, fd, events), what="poll")

    def timeout(self, seconds: float) -> IOFuture:
        """Completes after `seconds` on the executor's clock (an IO timeout op;
        asyncrt.sleep is the executor's own timer)."""
        from .timers import duration_ns

        ns = duration_ns(seconds)
        return self._op(lambda op: lib.asyncrt_io_prep_timeout(op, ns), convert=_none, what="timeout")

    def shutdown(self, fd, how: int = socket.SHUT_RDWR) -> IOFuture:
        """shutdown(2) of a socket."""
        fd = _fileno(fd)
        return self._op(lambda op: lib.asyncrt_io_prep_shutdown(op, fd, how), convert=_none, what="shutdown")

    # -- sockets ----------------------------------------------------------------

    def recv(self, fd, size: int = READ_CHUNK, flags: int = 0) -> IOFuture:
        """recv(2) of up to `size` bytes; the value is the bytes (b"": the
        peer closed its side)."""
        fd = _fileno(fd)
        buffer = create_string_buffer(size)
        address = addressof(buffer)
        return self._op(lambda op: lib.asyncrt_io_prep_recv(op, fd, address, size, flags), buffer,
                        lambda n: string_at(address, n) if n else b"", "recv")

    def recv_into(self, fd, buffer, flags: int = 0) -> IOFuture:
        """recv(2) into a writable buffer; the value is the number of bytes."""
        fd = _fileno(fd)
        address, length, keep = _writable(buffer)
        return self._op(lambda op: lib.asyncrt_io_prep_recv(op, fd, address, length, flags), keep,
                        what="recv")

    def send(self, fd, data, flags: int = 0) -> IOFuture:
        """send(2) (with MSG_NOSIGNAL: a closed peer raises BrokenPipeError);
        the value is the number of bytes sent (maybe fewer: see sendall)."""
        fd = _fileno(fd)
        address, length, keep = _readable(data)
        return self._op(lambda op: lib.asyncrt_io_prep_send(op, fd, address, length, flags), keep,
                        what="send")

    async def sendall(self, fd, data, flags: int = 0) -> None:
        """Sends all of `data`, as many sends as it takes."""
        view = memoryview(data).cast("B")
        sent = 0
        while sent < len(view):
            sent += await self.send(fd, view[sent:] if sent else data, flags)

    def recvfrom(self, fd, size: int = READ_CHUNK, flags: int = 0) -> IOFuture:
        """One datagram (recvmsg(2)); the value is (bytes, sender address) with
        the address as the socket module gives it ((host, port) for IPv4,
        ...)."""
        fd = _fileno(fd)
        buffer = create_string_buffer(size)
        peer = create_string_buffer(SOCKADDR_MAX)
        iov = _iovec(addressof(buffer), size)
        msg = _msghdr(msg_name=addressof(peer), msg_namelen=SOCKADDR_MAX, msg_iov=addressof(iov), msg_iovlen=1)

        def convert(n):
            return string_at(addressof(buffer), n), decode_sockaddr(peer.raw, msg.msg_namelen)

        return self._op(lambda op: lib.asyncrt_io_prep_recvmsg(op, fd, addressof(msg), flags),
                        (buffer, peer, iov, msg), convert, "recvfrom")

    def sendto(self, fd, data, address, family: int | None = None, flags: int = 0) -> IOFuture:
        """One datagram to `address` (sendmsg(2)): (host, port), (host, port,
        flow, scope) or a Unix path; `family` defaults to what the address
        looks like. The value is the number of bytes sent."""
        fd = _fileno(fd)
        to = encode_sockaddr(address, family)
        to_buffer = create_string_buffer(to, len(to))
        data_address, length, keep = _readable(data)
        iov = _iovec(data_address, length)
        msg = _msghdr(msg_name=addressof(to_buffer), msg_namelen=len(to), msg_iov=addressof(iov), msg_iovlen=1)
        return self._op(lambda op: lib.asyncrt_io_prep_sendmsg(op, fd, addressof(msg), flags),
                        (keep, to_buffer, iov, msg), what="sendto")

    def accept(self, fd) -> IOFuture:
        """accept4(2); the value is (new fd, peer address). The new fd is
        non-blocking and close-on-exec, and yours to close (io.close)."""
        fd = _fileno(fd)
        peer = create_string_buffer(SOCKADDR_MAX)
        peer_len = c_uint32(SOCKADDR_MAX)

        def convert(new_fd):
            return new_fd, decode_sockaddr(peer.raw, peer_len.value)

        return self._op(lambda op: lib.asyncrt_io_prep_accept(op, fd, addressof(peer), byref(peer_len)),
                        (peer, peer_len), convert, "accept")

    def connect(self, fd, address, family: int | None = None) -> IOFuture:
        """connect(2) of a non-blocking socket, complete when connected;
        ConnectionRefusedError and friends when it fails."""
        fd = _fileno(fd)
        to = encode_sockaddr(address, family)
        to_buffer = create_string_buffer(to, len(to))
        return self._op(lambda op: lib.asyncrt_io_prep_connect(op, fd, addressof(to_buffer), len(to)), to_buffer,
                        _none, "connect")

    # -- files, the blocking pool ----------------------------------------------------

    def open(self, path, flags: int | str = os.O_RDONLY, mode: int = 0o666, dir_fd: int = AT_FDCWD) -> IOFuture:
        """openat(2) of `path` (str, bytes or a path object); `flags` are os.O_*
        bits or a mode string ("r", "w", "a", "r+", "w+", "a+", "x", with or
        without "b"). The value is the new fd (close-on-exec), yours to close
        with ``await io.close(fd)``. On epoll this runs on the blocking pool."""
        raw_path = os.fsencode(path)
        path_buffer = create_string_buffer(raw_path)
        flags = _open_flags(flags)
        return self._op(lambda op: lib.asyncrt_io_prep_openat(op, dir_fd, path_buffer, flags, mode), path_buffer,
                        what=f"open {os.fsdecode(raw_path)!r}")

    def run_blocking(self, fn, *args, **kwargs) -> IOFuture:
        """Runs ``fn(*args, **kwargs)`` on the driver's blocking pool (a thread
        that is not the executor's) and is its value, or raises what it
        raised. It cannot be interrupted: cancelled before it started it never
        runs; after that the op ends when fn returns. fn runs with the GIL,
        like any Python thread: good for calls that release it (files,
        sockets, getaddrinfo, time.sleep, C libraries)."""
        job = _BlockingJob(fn, args, kwargs)
        arg = id(job)  # the object's address; the op's state keeps the job alive

        def convert(_result):
            if job.error is not None:
                raise job.error
            return job.value

        return _BlockingFuture(self, lambda op: lib.asyncrt_io_prep_blocking(op, _run_job, arg), (job,),
                               convert, "run_blocking")

    async def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        """socket.getaddrinfo on the blocking pool."""
        return await self.run_blocking(socket.getaddrinfo, host, port, family, type, proto, flags)

    # -- signals and processes ------------------------------------------------------

    def signal(self, signo: int) -> IOFuture:
        """Waits for one delivery of signal `signo`; the value is the signal
        number. From the first wait on, asyncrt catches that signal (Python's
        own handler for it, if any, no longer runs) until
        ``release_signal(signo)`` or the driver's close. Do not wait for
        SIGINT in a program that relies on KeyboardInterrupt."""
        signo = int(signo)
        self._signals.add(signo)
        return self._op(lambda op: lib.asyncrt_io_prep_signal(op, signo), convert=_signal_value,
                        what=f"signal {signo}")

    def release_signal(self, signo: int) -> None:
        """Stops catching `signo` (its disposition goes back to the default)."""
        signo = int(signo)
        check(lib.asyncrt_io_signal_release(self._live(), signo))
        self._signals.discard(signo)

    def wait_pidfd(self, pidfd: int) -> IOFuture:
        """Waits for the child of a pidfd to exit; the value is its wait
        status (os.waitstatus_to_exitcode turns it into a return code)."""
        pidfd = _fileno(pidfd)
        return self._op(lambda op: lib.asyncrt_io_prep_waitpid(op, pidfd), what="waitpid")

    def spawn(self, argv, env=None, cwd=None, stdin=None, stdout=None, stderr=None) -> Process:
        """Starts a child process (posix_spawn; argv[0] looked up in PATH) and
        returns its Process; `env` a mapping (None: inherit), `stdin`/`stdout`/
        `stderr` an fd or file object to give the child (None: inherit)."""
        return Process(self, argv, env, cwd, stdin, stdout, stderr)

    async def run_process(self, argv, timeout: float | None = None, kill_signal: int = signal_mod.SIGKILL,
                          **spawn_args) -> ProcessResult:
        """Runs a child to its end, or until `timeout` seconds have passed: then
        sends it `kill_signal` and waits for it. The value says how it ended."""
        process = self.spawn(argv, **spawn_args)
        try:
            return ProcessResult(await process.wait(timeout), False, process.pid)
        except TimedOut:
            process.kill(kill_signal)
            return ProcessResult(await process.wait(), True, process.pid)
        finally:
            await process.aclose()


class _BlockingFuture(IOFuture):
    """run_blocking's future: its value is fn's, its failure fn's exception."""

    __slots__ = ()

    def _failure(self, exc):
        job = self._state.keep[0]
        if job.error is not None:
            return job.error
        return super()._failure(exc)


# ---- processes -----------------------------------------------------------------


class ProcessResult(NamedTuple):
    returncode: int  # as subprocess: the exit code, or -signal
    timed_out: bool  # the timeout won and the child was killed
    pid: int


class Process:
    """A child process (asyncrt_process_spawn) with its pidfd. ``await
    proc.wait(timeout=None)`` is its return code (as subprocess: -N for a
    child killed by signal N); ``kill(sig)`` signals it through the pidfd;
    ``await proc.aclose()`` closes the pidfd (after wait, or to abandon it).
    """

    def __init__(self, io, argv, env=None, cwd=None, stdin=None, stdout=None, stderr=None):
        if isinstance(argv, (str, bytes)):
            raise TypeError("argv is a list of arguments, not one string")
        args = [os.fsencode(a) for a in argv]
        if not args:
            raise ValueError("argv is empty")
        config = asyncrt_process_config()
        lib.asyncrt_process_config_init_size(byref(config), sizeof(config))
        argv_c = (c_char_p * (len(args) + 1))(*args, None)
        config.argv = argv_c
        envp_c = None
        if env is not None:
            pairs = [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]
            envp_c = (c_char_p * (len(pairs) + 1))(*pairs, None)
            config.envp = envp_c
        config.stdin_fd = _optional_fd(stdin)
        config.stdout_fd = _optional_fd(stdout)
        config.stderr_fd = _optional_fd(stderr)
        if cwd is not None:
            config.cwd = os.fsencode(cwd)
        pid, pidfd = c_int(), c_int(-1)
        check(lib.asyncrt_process_spawn(byref(config), byref(pid), byref(pidfd)))
        self.io = io
        self.argv = list(argv)
        self.pid = pid.value
        self.pidfd = pidfd.value
        self.returncode: int | None = None

    def kill(self, signo: int = signal_mod.SIGKILL) -> None:
        """Sends `signo` (pidfd_send_signal); nothing once it was reaped."""
        if self.returncode is not None or self.pidfd < 0:
            return
        check(lib.asyncrt_process_kill(self.pidfd, int(signo)))

    def terminate(self) -> None:
        self.kill(signal_mod.SIGTERM)

    async def wait(self, timeout: float | None = None) -> int:
        """Its return code once it exits; TimedOut after `timeout` seconds
        (the child is left running: kill it, then wait again)."""
        if self.returncode is not None:
            return self.returncode
        if self.pidfd < 0:
            raise BadHandle("asyncrt: the process's pidfd is closed")
        waiting = self.io.wait_pidfd(self.pidfd)
        if timeout is not None:
            from .timers import timeout as with_timeout

            status = await with_timeout(_await(waiting), timeout)
        else:
            status = await waiting
        self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    async def aclose(self) -> None:
        """Closes the pidfd; idempotent."""
        pidfd, self.pidfd = self.pidfd, -1
        if pidfd >= 0:
            await self.io.close(pidfd)

    def __repr__(self):
        return f"<asyncrt.io.Process pid={self.pid} returncode={self.returncode}>"


async def _await(future):
    # A coroutine around a C future: asyncrt.timeout then races it in Python,
    # and the op's C task is cancelled (and reaped) when the time is up.
    return await future


# ---- helpers -------------------------------------------------------------------


def _none(_result):
    return None


def _signal_value(result):
    try:
        return signal_mod.Signals(result)
    except ValueError:
        return result


def _fileno(fd):
    return fd if isinstance(fd, int) else fd.fileno()


def _optional_fd(obj):
    return -1 if obj is None else _fileno(obj)


def _iovecs(buffers, view):
    keep = []
    buffers = list(buffers)
    iov = (_iovec * max(1, len(buffers)))()
    for i, buffer in enumerate(buffers):
        address, length, held = view(buffer)
        iov[i].iov_base = address
        iov[i].iov_len = length
        keep.append(held)
    if not buffers:
        iov = (_iovec * 0)()
    return iov, keep


_MODES = {
    "r": os.O_RDONLY,
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
    "r+": os.O_RDWR,
    "w+": os.O_RDWR | os.O_CREAT | os.O_TRUNC,
    "a+": os.O_RDWR | os.O_CREAT | os.O_APPEND,
    "x+": os.O_RDWR | os.O_CREAT | os.O_EXCL,
}


def _open_flags(flags):
    if isinstance(flags, int):
        return flags
    key = flags.replace("b", "")
    if key not in _MODES:
        raise ValueError(f"unknown open mode {flags!r}")
    return _MODES[key]


# ---- module-level entry points -------------------------------------------------------


def open(executor, backend: str = "auto", **config) -> IO:  # noqa: A001 -- asyncrt.io.open(ex)
    """A new IO driver on `executor` (asyncrt_io_open); see IO. `config`:
    ring_entries, pool_threads, pool_queue, pool_idle (seconds), priority."""
    return IO(executor, backend, **config)


def current() -> IO:
    """The default driver (Executor.io()) of the executor whose task is
    running on this thread."""
    from ._current import current_host

    host = current_host()
    if host is None:
        raise RuntimeError("asyncrt.io.current() works inside a task; elsewhere use Executor.io()")
    return host.owner().io()


def uring_available() -> bool:
    """Whether this kernel lets asyncrt use io_uring (a driver opened with
    backend="io_uring" on a throwaway executor)."""
    from .executor import Executor
    from .errors import NotSupported

    with Executor() as executor:
        try:
            IO(executor, "io_uring").close()
        except NotSupported:
            return False
    return True
