"""asyncrt's status codes and one exception class per status."""

import enum


class Status(enum.IntEnum):
    """asyncrt_status, value for value."""

    OK = 0
    EINVAL = 1
    EHANDLE = 2
    ESHUTDOWN = 3
    ENOMEM = 4
    ELIMIT = 5
    ECANCELLED = 6
    EREENTRANT = 7
    EBUSY = 8
    ETIMEDOUT = 9
    EFORKED = 10
    EVERSION = 11
    EINTERNAL = 12
    EFAILED = 13
    EAGAIN = 14
    ENOTSUP = 15
    ESCOPE = 16
    ECLOSED = 17
    ELAGGED = 18
    EOS = 19


def to_status(value):
    """`value` as a Status if asyncrt defines it, else the int itself."""
    try:
        return Status(value)
    except ValueError:
        return value


class AsyncrtError(Exception):
    """A failed asyncrt call. `status` is the asyncrt_status (a Status, or an
    int for a user value), `message` the library's detailed message. Each
    subclass stands for one status and needs only the message."""

    status: Status | int | None = None

    def __init__(self, message="", status=None):
        self.status = type(self).status if status is None else to_status(status)
        self.message = message
        super().__init__(message or getattr(self.status, "name", f"asyncrt status {self.status}"))


class InvalidArgument(AsyncrtError):
    """An argument the call cannot take (EINVAL)."""

    status = Status.EINVAL


class BadHandle(AsyncrtError):
    """A handle that is closed, freed or not one of asyncrt's (EHANDLE)."""

    status = Status.EHANDLE


class Shutdown(AsyncrtError):
    """The executor is shut down or being closed (ESHUTDOWN)."""

    status = Status.ESHUTDOWN


class OutOfMemory(AsyncrtError):
    """An allocation failed (ENOMEM)."""

    status = Status.ENOMEM


class LimitExceeded(AsyncrtError):
    """The executor's memory_limit would be passed (ELIMIT)."""

    status = Status.ELIMIT


class Cancelled(AsyncrtError):
    """The task was cancelled. Also what an asynchronous cancel (a scope's
    cancel or deadline, a sibling's error, ``task.cancel(cleanup_timeout=...)``)
    throws into a coroutine at the await where it waits, so that its
    ``finally`` blocks run and may await."""

    status = Status.ECANCELLED


class Reentrant(AsyncrtError):
    """A call that must not be made from inside a poll, such as driving an executor (EREENTRANT)."""

    status = Status.EREENTRANT


class Busy(AsyncrtError):
    """Already in use: driven by another thread, a join taken, an object waited on (EBUSY)."""

    status = Status.EBUSY


class TimedOut(AsyncrtError):
    """A bound on a wait, a scope's deadline or a timeout() passed (ETIMEDOUT)."""

    status = Status.ETIMEDOUT


class Forked(AsyncrtError):
    """asyncrt was used in a child process after fork (EFORKED)."""

    status = Status.EFORKED


class VersionMismatch(AsyncrtError):
    """The loaded library does not serve the version this binding needs (EVERSION)."""

    status = Status.EVERSION


class InternalError(AsyncrtError):
    """A bug in asyncrt (EINTERNAL)."""

    status = Status.EINTERNAL


class Failed(AsyncrtError):
    """A future failed without a status of its own (EFAILED)."""

    status = Status.EFAILED


class WouldBlock(AsyncrtError):
    """Not ready yet: a running task's result, an empty or full channel (EAGAIN)."""

    status = Status.EAGAIN


class NotSupported(AsyncrtError):
    """The executor kind cannot do this (ENOTSUP), e.g. a Python future on a thread-per-core executor."""

    status = Status.ENOTSUP


class ScopeError(AsyncrtError):
    """A scope was misused: a spawn into a closed scope, or a task that
    returned while a scope it opened still had live children."""

    status = Status.ESCOPE


class Closed(AsyncrtError):
    """The channel is closed: a send found no receiver left, or a receive
    found it empty with no sender left. ``async for`` over a receiver ends
    here instead of raising."""

    status = Status.ECLOSED


class Lagged(AsyncrtError):
    """A broadcast receiver fell more than the channel's capacity behind: the
    values it missed are gone, and its next receive gets the oldest one kept."""

    status = Status.ELAGGED


class SystemCallFailed(AsyncrtError):
    """An operating-system call failed (EOS): the message names the call and
    its errno (an IO op's result is -errno)."""

    status = Status.EOS


ERROR_CLASSES = {cls.status: cls for cls in AsyncrtError.__subclasses__()}


def error(status, message=""):
    """The exception for `status`: its own class, or AsyncrtError for a status
    asyncrt does not define (a user value named with asyncrt_context_fail)."""
    return ERROR_CLASSES.get(status, AsyncrtError)(message, status)
