"""Which host the calling thread is polling for.

A host sets it while it polls or drops its Python futures (_host.Host._drain),
so code inside a poll -- asyncrt.spawn, scopes, an ``await`` that must tell
an asyncrt task from asyncio code -- finds its executor without arguments.
"""

import sys
import threading

_state = threading.local()


def current_host():
    """The Host whose futures this thread is polling or dropping, or None."""
    return getattr(_state, "host", None)


def set_current_host(host):
    """Makes `host` the current one; returns the one it replaces."""
    outer, _state.host = current_host(), host
    return outer


def running_asyncio_loop():
    """The asyncio loop running on this thread, when no asyncrt poll is in
    progress on it (else None): an ``await`` of an asyncrt future or task
    there is asyncio code's, served by asyncrt.aio. asyncio is not imported
    for this: a loop cannot run without it."""
    if current_host() is not None:
        return None
    asyncio = sys.modules.get("asyncio")
    return None if asyncio is None else asyncio._get_running_loop()
