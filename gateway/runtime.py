"""Process-wide settings, in one visible place: the CLI sets them once as `serve` or `worker` starts, never an
import or the app object. Each changes speed only; what the gateway stores and answers is the same without."""

import gc
import sqlite3
import sys
from typing import TypeVar

# CPython hands the GIL to a waiting thread only every switch interval (5 ms by default): in `serve`, a request
# answered by the event loop after the committer thread's COMMIT pays that interval in latency.
_SWITCH_SECONDS = 0.001

_T = TypeVar("_T")


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


def freeze_heap() -> None:
    """Once start-up is done: what is alive now (modules, config, compiled schemas) lives as long as the
    process, so it is moved out of the collector's reach, and a full collection under load scans only what
    requests and jobs allocate."""
    gc.collect()
    gc.freeze()
