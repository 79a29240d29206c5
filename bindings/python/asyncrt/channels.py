"""Channels: asyncrt's C channels (asyncrt_channel_new), carrying Python objects.

Every send and receive is worked by C code in C memory; Python sees only 8
bytes per value. An object sent is kept in its channel's table (`_Values`)
under an integer id, and the id travels through C:

- oneshot, mpsc: each value is received once, so a receive takes the object
  out of the table. Whoever ends a value's trip removes it, exactly once: the
  receive that returns it; the channel's value_drop, which asyncrt calls on
  each value still inside when the channel dies; or the sender, when its
  send failed (ECLOSED: the value stays the caller's) or was dropped pending
  (asyncrt withdraws it: never delivered).
- broadcast, watch: a receive copies the id and many receivers read one
  value, so a receive looks the object up. The table keeps what C can still
  hand out -- the `keep` newest values (broadcast: capacity, watch: 1), and
  for every receive running in C right now, each value that was among those
  when it entered C -- and forgets older ones at each send and at the end of
  each receive. Sends hold
  the table's lock across the C send, so ids enter C in increasing order.
  Such channels get no value_drop: the table is cleared with the channel.

`raw=True` skips the table: values are bytes of exactly `elem_size` bytes,
for channels shared with C code.

Endpoints (Sender, Receiver) own a C handle each. A pending operation keeps
its endpoint's handle alive: ``close()`` frees it once the last operation on
it is gone (the C API requires that), and until then the endpoint refuses
new ones. The channel dies with its last endpoint.
"""

from __future__ import annotations

import collections
import itertools
import threading
from ctypes import addressof, byref, c_size_t, c_uint64, create_string_buffer, sizeof
from typing import Any

from ._lib import (
    CHANNEL_BROADCAST,
    CHANNEL_LOCAL,
    CHANNEL_MPSC,
    CHANNEL_ONESHOT,
    CHANNEL_WATCH,
    VALUE_DROP_FN,
    asyncrt_chan_op,
    asyncrt_channel_config,
    asyncrt_future,
    check,
    in_forked_child,
    lib,
    receiver_p,
    refuse_in_child,
    sender_p,
)
from .errors import BadHandle, InvalidArgument, Status
from .futures import Future, Ready
from .polled import PolledCFuture

KINDS = {"oneshot": CHANNEL_ONESHOT, "mpsc": CHANNEL_MPSC, "broadcast": CHANNEL_BROADCAST,
         "watch": CHANNEL_WATCH}
ID_SIZE = sizeof(c_uint64)

NO_VALUE = object()  # watch(): no initial value
_tables: dict[int, _Values] = {}  # key (the value_drop's user pointer) -> _Values, while the channel lives
_keys = itertools.count(1)


@VALUE_DROP_FN
def _value_drop(value, key):
    # On the thread that frees the channel's last endpoint (always a Python one).
    table = _tables.get(key)
    if table is not None:
        table.dropped(c_uint64.from_address(value).value)


class _Values:
    """The objects in flight through one channel, by id (see the module
    docstring). `drops` counts asyncrt's value_drop calls."""

    __slots__ = ("shared", "keep", "objects", "ids", "lock", "newest", "readers", "reader_ids", "drops")

    def __init__(self, shared, keep):
        self.shared = shared
        self.keep = keep
        self.objects = collections.OrderedDict() if shared else {}
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        self.newest = 0
        self.readers = {}  # receive in C -> the lowest id it can copy
        self.reader_ids = itertools.count()
        self.drops = 0

    # ---- oneshot, mpsc: a value is taken once
    def put(self, obj):
        i = next(self.ids)
        self.objects[i] = obj
        return i

    def take(self, i):
        return self.objects.pop(i)

    def discard(self, i):
        self.objects.pop(i, None)

    def dropped(self, i):
        self.drops += 1
        self.discard(i)

    # ---- broadcast, watch: a value is read by many
    def put_shared(self, obj, c_send):
        """Sends `obj` with c_send(id) -> status under the lock; returns the status."""
        with self.lock:
            i = next(self.ids)
            self.objects[i] = obj
            status = c_send(i)
            if status:
                del self.objects[i]
                return status
            self.newest = i
            self._forget_old()
            return 0

    def _forget_old(self):
        """Forgets what no receive can copy any more (under the lock)."""
        floor = min(self.readers.values(), default=self.newest - self.keep + 1)
        floor = min(floor, self.newest - self.keep + 1)
        while self.objects:
            if next(iter(self.objects)) >= floor:
                break
            self.objects.popitem(last=False)

    def start_read(self):
        with self.lock:
            token = next(self.reader_ids)
            self.readers[token] = self.newest - self.keep + 1
            return token

    def end_read(self, token):
        with self.lock:
            self.readers.pop(token, None)
            self._forget_old()

    def read(self, i):
        return self.objects[i]

    def clear(self):
        self.objects.clear()


class _Channel:
    """What a channel's endpoints share: its kind, value encoding, table and
    the count of live endpoints (the channel dies with the last)."""

    __slots__ = ("kind", "elem_size", "raw", "values", "key", "endpoints", "lock")

    def __init__(self, kind, elem_size, raw, values):
        self.kind = kind
        self.elem_size = elem_size
        self.raw = raw
        self.values = values
        self.key = next(_keys)
        self.endpoints = 0
        self.lock = threading.Lock()
        if values is not None:
            _tables[self.key] = values

    def opened(self):
        with self.lock:
            self.endpoints += 1

    def closed_one(self):
        with self.lock:
            self.endpoints -= 1
            last = self.endpoints == 0
        if last and self.values is not None:
            # asyncrt has run value_drop on whatever was left inside.
            _tables.pop(self.key, None)
            self.values.clear()

    def buffer(self):
        return create_string_buffer(self.elem_size)

    def encode(self, obj):
        """(C value buffer, id or None) for `obj`, oneshot and mpsc."""
        if self.raw:
            data = bytes(obj)
            if len(data) != self.elem_size:
                raise InvalidArgument(f"asyncrt: this raw channel carries {self.elem_size}-byte values, got {len(data)}")
            return create_string_buffer(data, self.elem_size), None
        i = self.values.put(obj)
        return c_uint64(i), i

    def decode(self, out):
        """The value in a receive's output buffer (oneshot, mpsc: taken out)."""
        if self.raw:
            return out.raw
        return self.values.take(int.from_bytes(out.raw, "little"))

    def send_shared(self, handle, obj):
        """A broadcast or watch send (they never wait): the status."""
        if self.raw:
            data, _ = self.encode(obj)
            return lib.asyncrt_try_send(handle, data)
        return self.values.put_shared(obj, lambda i: lib.asyncrt_try_send(handle, byref(c_uint64(i))))

    def release(self, i):
        if i is not None:
            self.values.discard(i)

    @property
    def shared(self):
        return self.kind in (CHANNEL_BROADCAST, CHANNEL_WATCH)


class _Endpoint:
    """A C endpoint handle, freed once it is closed and no operation uses it."""

    __slots__ = ("_handle", "_channel", "_lock", "_users", "_closing", "__weakref__")
    _c_free: Any = None

    def __init__(self, handle, channel):
        self._handle = handle
        self._channel = channel
        self._lock = threading.Lock()
        self._users = 1  # the Python object itself, until close()
        self._closing = False
        channel.opened()

    def _use(self):
        """The handle, held for one operation until _unuse()."""
        refuse_in_child()
        with self._lock:
            if self._closing:
                raise BadHandle(f"asyncrt: this {type(self).__name__.lower()} is closed")
            self._users += 1
            return self._handle

    def _unuse(self):
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            self._free()

    def _free(self):
        handle, self._handle = self._handle, None
        type(self)._c_free(handle)
        self._channel.closed_one()

    def close(self) -> None:
        """Closes this endpoint (idempotent): asyncrt frees it once no pending
        operation uses it. The last sender's close ends the receivers' stream
        (they drain, then get Closed); the last receiver's fails the senders.
        In a forked child it only marks the endpoint closed (it is the
        parent's)."""
        if in_forked_child():
            self._closing = True
            return
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._users -= 1
            last = self._users == 0
        if last:
            self._free()

    @property
    def closed(self) -> bool:
        return self._closing

    @property
    def kind(self) -> str:
        return next(name for name, kind in KINDS.items() if kind == self._channel.kind)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        if getattr(self, "_closing", True) is False:
            self.close()

    def __repr__(self):
        return f"<asyncrt.{type(self).__name__} {self.kind}{' closed' if self._closing else ''}>"


class Sender(_Endpoint):
    """The sending end of a channel; see channel()."""

    __slots__ = ()
    _c_free = staticmethod(lib.asyncrt_sender_free)

    def send(self, obj: Any) -> Future:
        """A future that completes once `obj` is in the channel (a bounded
        mpsc channel that is full: once there is room). Raises Closed if no
        receiver is left; the object then stays yours. Dropping it while it
        waits withdraws the value: it is never delivered."""
        if self._channel.shared:
            return _SharedSend(self, obj)
        return _Send(self, obj)

    def try_send(self, obj: Any) -> None:
        """Sends without waiting, from any thread. Raises WouldBlock (a bounded
        mpsc channel is full, a oneshot holds its value already) or Closed."""
        handle = self._use()
        try:
            channel = self._channel
            if channel.shared:
                check(channel.send_shared(handle, obj))
                return
            value, i = channel.encode(obj)
            status = lib.asyncrt_try_send(handle, byref(value))
            if status:
                channel.release(i)
                check(status)
        finally:
            self._unuse()

    def clone(self) -> Sender:
        """Another sender of the same channel (not for oneshot: InvalidArgument)."""
        handle = self._use()
        try:
            out = sender_p()
            check(lib.asyncrt_sender_clone(handle, byref(out)))
            return Sender(out, self._channel)
        finally:
            self._unuse()

    def subscribe(self) -> Receiver:
        """A new receiver: broadcast, it sees the values sent from now on;
        watch, it has seen the current value. InvalidArgument for other kinds."""
        handle = self._use()
        try:
            out = receiver_p()
            check(lib.asyncrt_sender_subscribe(handle, byref(out)))
            return Receiver(out, self._channel)
        finally:
            self._unuse()


class Receiver(_Endpoint):
    """The receiving end of a channel; see channel(). ``async for value in
    rx`` receives until the channel is closed and drained."""

    __slots__ = ()
    _c_free = staticmethod(lib.asyncrt_receiver_free)

    def recv(self) -> Future:
        """A future whose value is the next value. Raises Closed once the
        channel is empty and every sender is gone, Lagged (broadcast) when
        values were missed. Dropping it loses nothing: a value leaves the
        channel only in the poll that returns it."""
        return _Recv(self, False)

    def try_recv(self) -> Any:
        """Receives without waiting, from any thread. Raises WouldBlock
        (nothing there yet), Closed or Lagged."""
        handle = self._use()
        try:
            channel = self._channel
            out = channel.buffer()
            if not channel.shared or channel.raw:
                check(lib.asyncrt_try_recv(handle, out))
                return channel.decode(out)
            values = channel.values
            token = values.start_read()
            try:
                check(lib.asyncrt_try_recv(handle, out))
                return values.read(int.from_bytes(out.raw, "little"))
            finally:
                values.end_read(token)
        finally:
            self._unuse()

    def queued(self) -> int:
        """How many values are in the channel now (racy: for diagnostics)."""
        handle = self._use()
        try:
            n = c_size_t()
            check(lib.asyncrt_channel_len(handle, byref(n)))
            return n.value
        finally:
            self._unuse()

    def __aiter__(self):
        return self

    def __anext__(self):
        return _Recv(self, True)


class _Send(PolledCFuture):
    """asyncrt_send of a oneshot or mpsc value, polled in place."""

    __slots__ = ("_tx", "_id", "_sent")

    def __init__(self, tx, obj):
        channel = tx._channel
        handle = tx._use()
        value, i = None, None
        try:
            value, i = channel.encode(obj)
            op, future = asyncrt_chan_op(), asyncrt_future()
            check(lib.asyncrt_send(handle, byref(value), byref(op), byref(future)))
        except BaseException:
            channel.release(i)
            tx._unuse()
            raise
        self._tx, self._id, self._sent = tx, i, False
        super().__init__(future, (op, value))

    def _ready(self, out):
        self._sent = True  # the channel owns the value now
        return None

    def _failed(self, status):
        self._give_back()
        return super()._failed(status)

    def _give_back(self):
        i, self._id = self._id, None
        self._tx._channel.release(i)

    def drop(self):
        tx = getattr(self, "_tx", None)
        if tx is None:  # __init__ failed
            return
        was_live = self._future is not None
        super().drop()  # withdraws a pending send
        if was_live:
            if not self._sent:
                self._give_back()
            tx._unuse()


class _SharedSend(Future):
    """A broadcast or watch send: it never waits, so it sends at its first poll."""

    __slots__ = ("_tx", "_obj")

    def __init__(self, tx, obj):
        self._tx = tx
        self._obj = obj

    def poll(self, cx):
        obj, self._obj = self._obj, None
        self._tx.try_send(obj)
        return Ready(None)


class _Recv(PolledCFuture):
    """asyncrt_recv, polled in place; `iterating`: Closed ends an async for."""

    __slots__ = ("_rx", "_iterating", "_live")

    def __init__(self, rx, iterating):
        handle = rx._use()
        try:
            op, future = asyncrt_chan_op(), asyncrt_future()
            check(lib.asyncrt_recv(handle, byref(op), byref(future)))
        except BaseException:
            rx._unuse()
            raise
        self._rx, self._iterating, self._live = rx, iterating, True
        super().__init__(future, op)

    def poll(self, cx):
        channel = self._rx._channel
        if not channel.shared or channel.raw:
            return super().poll(cx)
        values = channel.values
        token = values.start_read()
        try:
            return super().poll(cx)
        finally:
            values.end_read(token)

    def _ready(self, out):
        channel = self._rx._channel
        if channel.shared and not channel.raw:
            return channel.values.read(int.from_bytes(out.raw, "little"))
        return channel.decode(out)

    def _failed(self, status):
        if status == Status.ECLOSED and self._iterating:
            return StopAsyncIteration()
        return super()._failed(status)

    def drop(self):
        if not getattr(self, "_live", False):
            return
        self._live = False
        super().drop()
        self._rx._unuse()


def channel(kind: str = "mpsc", capacity: int = 0, local: bool = False, elem_size: int = 8, *, initial: Any = NO_VALUE,
            raw: bool = False) -> tuple[Sender, Receiver]:
    """Makes a channel; returns ``(Sender, Receiver)``.

    `kind`: "oneshot" (one value), "mpsc" (cloneable senders, one receiver;
    `capacity` values, 0: unbounded), "broadcast" (every receiver sees every
    value sent after it subscribed; `capacity` >= 1 values kept, a receiver
    further behind gets Lagged once), "watch" (the latest value only;
    `initial` is the value it starts with). `local=True` promises that every
    endpoint is used on one thread only (no atomics in C).

    Any Python object can be sent (8-byte ids travel through C; see the
    module docstring). With `raw=True` values are bytes of exactly
    `elem_size` bytes (1..256) instead, for channels shared with C code.
    """
    if kind not in KINDS:
        raise InvalidArgument(f"asyncrt: no channel kind {kind!r}; one of {', '.join(KINDS)}")
    code = KINDS[kind]
    if not raw and elem_size != ID_SIZE:
        raise InvalidArgument(f"asyncrt: a channel of Python objects has elem_size {ID_SIZE}; "
                              "pass raw=True for values of other sizes")
    shared = code in (CHANNEL_BROADCAST, CHANNEL_WATCH)
    values = None if raw else _Values(shared, capacity if code == CHANNEL_BROADCAST else 1)
    chan = _Channel(code, elem_size, raw, values)
    config = asyncrt_channel_config()
    lib.asyncrt_channel_config_init_size(byref(config), sizeof(config))
    config.kind = code
    config.flags = CHANNEL_LOCAL if local else 0
    config.elem_size = elem_size
    config.capacity = capacity
    initial_value = None
    if values is not None and not shared:
        config.value_drop = _value_drop
        config.user = chan.key
    if initial is not NO_VALUE and code == CHANNEL_WATCH:
        if raw:
            initial_value, _ = chan.encode(initial)
        else:
            assert values is not None  # not raw
            i = next(values.ids)
            values.objects[i] = initial
            values.newest = i
            initial_value = c_uint64(i)
        config.initial = addressof(initial_value)
    tx, rx = sender_p(), receiver_p()
    status = lib.asyncrt_channel_new(byref(config), byref(tx), byref(rx))
    if status:
        _tables.pop(chan.key, None)
        check(status)
    return Sender(tx, chan), Receiver(rx, chan)


def value_drops(endpoint: Sender | Receiver) -> int:
    """How many times asyncrt's value_drop ran for the endpoint's channel
    (oneshot and mpsc channels of objects): a diagnostic for tests."""
    values = endpoint._channel.values
    return values.drops if values is not None else 0
