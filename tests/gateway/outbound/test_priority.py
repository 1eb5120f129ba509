"""The sender leaves the time to the worker while the worker has a backlog, and only then."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.outbound.sender import Sender
from tests.gateway.outbound._support import build, destination


@dataclass
class _Worker:
    behind: bool = False
    after_commit: Callable[[], None] | None = None


def test_the_sender_holds_off_only_while_the_worker_is_behind(make_harness: Any) -> None:
    harness = build(make_harness, {"crm": destination("http://127.0.0.1:9/hooks")})
    sender = Sender(harness.config, harness.client.app.state.gateway.engine.revenue_attributes)
    worker = _Worker()
    sender.yield_to(worker)
    assert worker.after_commit == sender.wake  # each commit of the worker wakes the sender
    busy = (time.monotonic() - 0.1, time.thread_time() - 0.05)  # 50 ms of CPU in the last 100 ms: past 5%
    sender._share_since = busy
    assert sender._hold_seconds() == 0.0  # no backlog: no holding off, however busy
    worker.behind = True
    sender._share_since = busy
    assert 0.5 < sender._hold_seconds() <= 1.0  # back under 5% of the time after about a second
    sender._share_since = (time.monotonic() - 2.0, time.thread_time())  # idle for two seconds
    assert sender._hold_seconds() == 0.0
