"""Locks answer fast: while another connection holds SQLite's write lock, every waiting request gets 503
`unavailable` with Retry-After within the busy timeout (2 s by default), well before the platforms give up
(~5 s); nothing it answered 503 is written, and nothing it accepted is lost."""

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import httpx2
import yaml

from gateway.config import load
from tests.conftest import order, write_config
from tests.gateway._server import Server, database, wait_all_done

WAITING = 24
# The answer must come within the busy timeout (2 s) and a margin: past this the client gives up, and the
# request fails the test as a timeout. (A deadline the behaviour promises, not a speed measurement.)
ANSWER_WITHIN_SECONDS = 3.0


async def _post_all(server: Server, prefix: str) -> list[httpx2.Response]:
    async with httpx2.AsyncClient(
        base_url=server.url,
        headers=server.headers,
        timeout=ANSWER_WITHIN_SECONDS,
        limits=httpx2.Limits(max_connections=WAITING),
    ) as http:
        return list(
            await asyncio.gather(*(http.post("/api/v1/orders", json=order(f"{prefix}-{n}")) for n in range(WAITING)))
        )


def _job_ids(responses: list[Any]) -> set[str]:
    return {response.json()["jobId"] for response in responses}


def test_the_busy_timeout_is_2_seconds_by_default(tmp_path: Path) -> None:
    assert load(write_config(tmp_path)).busy_timeout_seconds == 2.0
    assert load(write_config(tmp_path, busy_timeout_seconds=0.5)).busy_timeout_seconds == 0.5


def test_every_request_waiting_on_a_held_write_lock_gets_503_in_time(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    path = yaml.safe_load(config.read_text())["database"]
    with Server(config) as server:
        before = asyncio.run(_post_all(server, "before"))
        assert {response.status_code for response in before} == {202}

        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process's writer, holding the lock
        try:
            waiting = asyncio.run(_post_all(server, "locked"))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert [response.status_code for response in waiting] == [503] * WAITING
        for response in waiting:
            assert response.json()["error"]["code"] == "unavailable"
            assert int(response.headers["retry-after"]) > 0

        after = asyncio.run(_post_all(server, "after"))
        assert {response.status_code for response in after} == {202}
        conn = database(config)
        wait_all_done(conn, _job_ids(before) | _job_ids(after), server)
        stored = {row[0] for row in conn.execute("SELECT order_id FROM orders")}
        assert stored == {f"{prefix}-{n}" for prefix in ("before", "after") for n in range(WAITING)}
