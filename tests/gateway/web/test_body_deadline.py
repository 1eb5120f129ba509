"""The body deadline (`body_read_timeout`) as the reader enforces it: a body that stops arriving is cut with 408,
any other cancellation stays one, and the deadline holds on every event loop that reads with the same reader."""

import asyncio
from typing import Any

import pytest

from gateway.web.request_bodies import BodyReader, RequestTimeout


async def _stalled() -> dict[str, Any]:
    await asyncio.Event().wait()  # a client that sent its headers and stopped
    raise AssertionError("never reached")


async def _whole() -> dict[str, Any]:
    return {"type": "http.request", "body": b"{}", "more_body": False}


def test_a_stalled_body_is_cut_with_408_and_the_task_can_go_on() -> None:
    reader = BodyReader(0.05, 1 << 20)

    async def read() -> int:
        with pytest.raises(RequestTimeout) as cut:
            await reader.read(_stalled, None, 1024)
        task = asyncio.current_task()
        assert task is not None
        return cut.value.status if task.cancelling() == 0 else -1  # not left half-cancelled

    assert asyncio.run(read()) == 408


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    reader = BodyReader(30, 1 << 20)

    async def cancel_a_read() -> None:
        reading = asyncio.create_task(reader.read(_stalled, None, 1024))
        await asyncio.sleep(0)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading

    asyncio.run(cancel_a_read())


def test_the_deadline_holds_on_a_later_event_loop() -> None:
    """A test client runs an event loop per session: a loop closed while its deadline timer was pending must not
    leave the next loop's reads without one."""
    reader = BodyReader(0.05, 1 << 20)
    assert asyncio.run(reader.read(_whole, None, 1024)) == b"{}"  # its timer is still pending as the loop closes

    async def stalled_read() -> None:
        with pytest.raises(RequestTimeout):
            await reader.read(_stalled, None, 1024)

    asyncio.run(stalled_read())
