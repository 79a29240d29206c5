"""asyncrt for Python: run futures written in Python, and coroutines, on
asyncrt executors. See bindings/python/README.md."""

from . import _lib
from .errors import (
    AsyncrtError,
    BadHandle,
    Busy,
    Cancelled,
    Failed,
    Forked,
    InternalError,
    InvalidArgument,
    LimitExceeded,
    OutOfMemory,
    Reentrant,
    Shutdown,
    Status,
    TimedOut,
    VersionMismatch,
    WouldBlock,
)
from .executor import Executor, Stats, Task, block_on, spawn
from .futures import PENDING, Context, Future, Ready, yield_now
from .waker import Waker

__version__ = ".".join(map(str, _lib.VERSION))


def library_version():
    """The loaded library's version string."""
    return _lib.lib.asyncrt_version_string().decode()
