"""asyncrt for Python: run futures written in Python, and coroutines, on
asyncrt executors. See bindings/python/README.md."""

import importlib

from . import _lib
from .errors import (
    AsyncrtError,
    BadHandle,
    Busy,
    Cancelled,
    Closed,
    Failed,
    Forked,
    InternalError,
    InvalidArgument,
    Lagged,
    LimitExceeded,
    NotSupported,
    OutOfMemory,
    Reentrant,
    ScopeError,
    Shutdown,
    Status,
    SystemCallFailed,
    TimedOut,
    VersionMismatch,
    WouldBlock,
)
from .cfuture import CFuture, OwnedCFuture
from .channels import Receiver, Sender, channel
from .combinators import CStream, join_all, select
from .executor import Capability, Executor, Stats, Task, WorkerStats, block_on, spawn
from .foreign import ForeignExecutor
from .futures import PENDING, Context, Future, Poll, Ready, yield_now
from .hooks import ThreadHooks
from .scopes import Scope, ScopeErrorRecord, scope, shield
from .stalls import StallInfo
from .sync import Barrier, Mutex, Notify, Semaphore
from .subsystem import Op, OpFuture, Subsystem, SubsystemContext, SubsystemStats
from .timers import sleep, timeout
from .waker import Waker

from ._version import __version__


def library_version() -> str:
    """The loaded library's version string."""
    return _lib.lib.asyncrt_version_string().decode()


def library_path() -> str:
    """Where the loaded libasyncrt.so is: $ASYNCRT_LIBRARY, the copy inside
    the installed package, or the repository's build (see asyncrt._lib)."""
    return str(_lib.path)


def __getattr__(name):
    # asyncrt.aio imports asyncio: loaded when first used, not with asyncrt.
    if name == "aio":
        return importlib.import_module(".aio", __name__)
    raise AttributeError(f"module 'asyncrt' has no attribute {name!r}")
