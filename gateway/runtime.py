"""Process-wide settings, in one visible place: the CLI sets them once as `serve` or `worker` starts, never an
import or the app object. Each changes speed only; what the gateway stores and answers is the same without."""

import gc
import logging
import resource
import sqlite3
import sys
from typing import TypeVar

# CPython hands the GIL to a waiting thread only every switch interval (5 ms by default): in `serve`, a request
# answered by the event loop after the committer thread's COMMIT pays that interval in latency.
_SWITCH_SECONDS = 0.001

_T = TypeVar("_T")
log = logging.getLogger("gateway.runtime")
# File descriptors kept for what is not a client connection: the database, its WAL and shared memory on every
# connection (committer, worker, checkpointer, readers), the listening socket, logs.
_RESERVED_FDS = 64
_MAX_FDS = 1 << 20


def _as_is(value: _T) -> _T:
    return value


def prepare(serving: bool) -> None:
    """Before any work: `serving` for the process whose event loop, committer and worker threads share the GIL."""
    # Python's sqlite3 binds int, float and str directly, but sends None and bytes through its adapter registry,
    # where a miss costs two failed attribute lookups per parameter. Registered, they cost one dictionary hit.
    sqlite3.register_adapter(type(None), _as_is)
    sqlite3.register_adapter(bytes, _as_is)
    if serving:
        sys.setswitchinterval(_SWITCH_SECONDS)
        _raise_file_limit()


def _raise_file_limit() -> None:
    """The soft limit on open files up to the hard one: every client connection is a descriptor, and at the
    soft limit (often 1024, sometimes 256) accept() fails and every request with it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _MAX_FDS if hard == resource.RLIM_INFINITY else min(hard, _MAX_FDS)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as exc:
        log.warning("cannot raise the open-file limit", extra={"soft": soft, "hard": hard, "error": str(exc)})


def connection_limit(configured: int) -> int:
    """Concurrent connections `serve` takes: `max_connections`, or fewer if the open-file limit cannot hold
    them beside the descriptors the gateway needs for itself (past it, connections are answered 503)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft - _RESERVED_FDS >= configured:
        return configured
    limit = max(8, soft - _RESERVED_FDS)
    log.warning(
        "max_connections lowered to fit the open-file limit",
        extra={"max_connections": configured, "open_file_limit": soft, "connections": limit},
    )
    return limit


def freeze_heap() -> None:
    """Once start-up is done: what is alive now (modules, config, compiled schemas) lives as long as the
    process, so it is moved out of the collector's reach, and a full collection under load scans only what
    requests and jobs allocate."""
    gc.collect()
    gc.freeze()
