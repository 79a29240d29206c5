"""Combinators (join_all, select) and C streams.

join_all and select take their futures over and drop each exactly once:
when it completes, when select's winner is decided, or when the combinator
is dropped. When every input is a CFuture they are asyncrt's own C
combinators (asyncrt_join_all, asyncrt_select): themselves CFutures, which
may be spawned on any executor, thread-per-core included, and which run as a
C task when awaited (like a sleep: their inputs may need an executor's
poll). Otherwise they are Python futures that poll their inputs in order
with the task's context, as the C ones do.

A C stream is a C future whose poll yields items (ASYNCRT_POLL_YIELDED) and
then ends; CStream iterates one with ``async for``, awaiting each item with
asyncrt_stream_next polled in place (it needs a waker, not an executor).
Python async generators need nothing: ``async for`` over one works in any
coroutine asyncrt runs.
"""

from __future__ import annotations

from ctypes import addressof, byref, c_int, c_uint64, create_string_buffer, sizeof
from typing import Any

from ._lib import asyncrt_future, asyncrt_stream_next_state, check, lib
from .cfuture import CFuture, OwnedCFuture
from .errors import BadHandle, InvalidArgument
from .futures import PENDING, Future, Ready, as_future, drop
from .polled import PolledCFuture

ALIGN = 16  # what asyncrt_join_all / asyncrt_select ask of their state


def _aligned(size):
    """(Python buffer, 16-aligned address in it) of `size` bytes."""
    buffer = (c_uint64 * ((size + 2 * ALIGN) // sizeof(c_uint64)))()
    return buffer, (addressof(buffer) + ALIGN - 1) & ~(ALIGN - 1)


def _round8(n):
    return (n + 7) & ~7


def _inner_value(inner, output):
    return inner._value(output) if isinstance(inner, OwnedCFuture) else output


def _inner_failure(inner, exc):
    return inner._failure(exc) if isinstance(inner, OwnedCFuture) else exc


class _CCombinator(OwnedCFuture):
    """asyncrt_join_all / asyncrt_select over CFutures (taken once the C
    combinator is made)."""

    __slots__ = ("_inners", "_address")

    def __init__(self, inners, size_fn, make, output):
        n = len(inners)
        buffer, address = _aligned(size_fn(n))
        futures = (asyncrt_future * n)(*[inner._live() for inner in inners])
        future = asyncrt_future()
        check(make(address, futures, n, output, byref(future)))
        for inner in inners:
            inner.take()  # the C combinator owns them now
        self._inners = inners
        self._address = address
        targets = {getattr(inner, "_target", None) for inner in inners} - {None}
        target = targets.pop() if len(targets) == 1 else None
        super().__init__(future, (buffer, futures, output), target)


class CJoinAll(_CCombinator):
    """asyncrt_join_all; its value is the list of the outputs (see join_all)."""

    __slots__ = ("_outputs",)

    def __init__(self, inners):
        sizes = [inner.output_size for inner in inners]
        outputs = create_string_buffer(sum(map(_round8, sizes))) if any(sizes) else None
        self._outputs = outputs
        super().__init__(inners, lib.asyncrt_join_all_size, lib.asyncrt_join_all, outputs)

    def _value(self, output):
        values, offset = [], 0
        for inner in self._inners:
            size = inner.output_size
            raw = self._outputs.raw[offset:offset + size] if size else None
            values.append(_inner_value(inner, raw))
            offset += _round8(size)
        return values

    def _failure(self, exc):
        return _inner_failure(self._inners[lib.asyncrt_join_all_index(self._address)], exc)


class CSelect(_CCombinator):
    """asyncrt_select; its value is (index, the winner's output)."""

    __slots__ = ("_winner",)

    def __init__(self, inners):
        size = max(inner.output_size for inner in inners)
        winner = create_string_buffer(size) if size else None
        self._winner = winner
        super().__init__(inners, lib.asyncrt_select_size, lib.asyncrt_select, winner)

    def _value(self, output):
        index = lib.asyncrt_select_index(self._address)
        inner = self._inners[index]
        raw = self._winner.raw[:inner.output_size] if inner.output_size else None
        return index, _inner_value(inner, raw)

    def _failure(self, exc):
        return _inner_failure(self._inners[lib.asyncrt_select_index(self._address)], exc)


class _Combinator(Future):
    """The Python combinators' common part: the inputs, dropped exactly once."""

    __slots__ = ("_futures",)

    def __init__(self, awaitables):
        self._futures = [as_future(a) for a in awaitables]

    def _poll_one(self, i, cx):
        """Polls input i: PENDING, or Ready once it completed (then dropped);
        raises its failure after dropping every input."""
        future = self._futures[i]
        try:
            result = future.poll(cx)
        except BaseException:
            self.drop()
            raise
        if result is PENDING:
            return PENDING
        if not isinstance(result, Ready):
            self.drop()
            raise TypeError(f"{future!r}.poll() returned {result!r}, not PENDING or Ready(value)")
        self._futures[i] = None
        drop(future)
        return result

    def drop(self):
        futures, self._futures = self._futures, [None] * len(self._futures)
        errors = []
        for future in futures:
            if future is not None:
                try:
                    drop(future)
                except Exception as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]


class JoinAll(_Combinator):
    """See join_all()."""

    __slots__ = ("_values", "_left")

    def __init__(self, awaitables):
        super().__init__(awaitables)
        self._values = [None] * len(self._futures)
        self._left = len(self._futures)

    def poll(self, cx):
        for i, future in enumerate(self._futures):
            if future is None:
                continue
            result = self._poll_one(i, cx)
            if result is not PENDING:
                self._values[i] = result.value
                self._left -= 1
        return Ready(list(self._values)) if self._left == 0 else PENDING


class Select(_Combinator):
    """See select()."""

    __slots__ = ()

    def poll(self, cx):
        for i in range(len(self._futures)):
            if self._futures[i] is None:
                raise RuntimeError("asyncrt: a select polled after it finished")
            result = self._poll_one(i, cx)
            if result is not PENDING:
                self.drop()  # the losers go now
                return Ready((i, result.value))
        return PENDING


def join_all(*awaitables: Any) -> Future | CFuture:
    """Awaits every one of `awaitables` (futures, coroutines, Tasks, CFutures)
    and returns their values as a list, in order. At the first failure the
    others are dropped at once and the failure is raised. All CFutures: a C
    join_all (a CFuture), whose values are the inputs' outputs (bytes, None
    for output_size 0, or an OwnedCFuture's own value)."""
    if awaitables and all(isinstance(a, CFuture) for a in awaitables):
        return CJoinAll(list(awaitables))
    return JoinAll(awaitables)


def select(*awaitables: Any) -> Future | CFuture:
    """Awaits the first of `awaitables` to complete, polling them in order;
    returns ``(index, value)`` and drops the others (a dropped receive loses
    nothing, a dropped send is withdrawn, a dropped lock wait never holds the
    lock). A failure of the first to complete is raised. All CFutures: a C
    select (a CFuture)."""
    if not awaitables:
        raise InvalidArgument("asyncrt: select() needs at least one awaitable")
    if all(isinstance(a, CFuture) for a in awaitables):
        return CSelect(list(awaitables))
    return Select(awaitables)


class _StreamNext(PolledCFuture):
    """asyncrt_stream_next of a CStream, polled in place."""

    __slots__ = ("_stream",)

    def __init__(self, stream):
        state, future = asyncrt_stream_next_state(), asyncrt_future()
        item = create_string_buffer(stream.item_size) if stream.item_size else None
        check(lib.asyncrt_stream_next(byref(state), byref(stream._live()), item, byref(future)))
        self._stream = stream
        super().__init__(future, (state, item))

    def _ready(self, out):
        if c_int.from_buffer_copy(out.raw).value == 0:
            self._stream._ended = True
            raise StopAsyncIteration
        item = self._storage[1]
        return item.raw if item is not None else None


class CStream:
    """A C stream future (taken over), iterated with ``async for``: each item
    is its output as bytes (None if its output_size is 0). The stream is
    dropped at its end, by close(), or when this object goes."""

    __slots__ = ("_future", "_vtable", "item_size", "_ended")

    def __init__(self, stream):
        if not isinstance(stream, CFuture):
            raise InvalidArgument("asyncrt: a CStream takes a CFuture whose poll yields items")
        self._vtable = stream._vtable
        self.item_size = stream.output_size
        self._future = stream.take()
        self._ended = False

    def _live(self):
        if self._future is None:
            raise BadHandle("asyncrt: this stream was closed")
        return self._future

    def __aiter__(self):
        return self

    def __anext__(self):
        if self._ended:
            return _Ended()
        return _StreamNext(self)

    def close(self) -> None:
        """Drops the C stream (idempotent)."""
        future, self._future = self._future, None
        if future is not None and self._vtable.drop:
            self._vtable.drop(future.self)

    def __del__(self):
        if getattr(self, "_future", None) is not None:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class _Ended(Future):
    __slots__ = ()

    def poll(self, cx):
        raise StopAsyncIteration
