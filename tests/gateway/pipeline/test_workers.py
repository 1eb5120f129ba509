"""`serve` (with its in-process worker) and a separate `worker` process on one database at once: every job
is done exactly once and the figures are exact."""

import asyncio
from pathlib import Path
from typing import Any

from tests.conftest import write_config
from tests.gateway import _workload
from tests.gateway._server import Process, Server, database, wait_all_done

POSTS = 2000
CUSTOMERS = 200
ALONE = 200  # posts each worker is sure to take alone before the two share the rest


def _post(server: Server, bodies: list[dict[str, Any]], posted: _workload.Posted) -> None:
    async def post() -> None:
        async with server.async_client() as http:
            await _workload.post_all(http, bodies, posted)

    asyncio.run(post())


def test_serve_and_worker_process_share_the_queue(tmp_path: Path) -> None:
    workload = _workload.build(POSTS, CUSTOMERS, seed=424242)
    # Both take part by construction, not by timing: `serve`'s worker only runs when its own server commits
    # (its poll is an hour), so it alone processes what `serve` accepts before the worker process starts, and the
    # worker process alone processes what an accept-only server accepts. Then both share the rest, the worker
    # process polling often so that it competes for every batch the server commits.
    (tmp_path / "serve").mkdir()
    (tmp_path / "worker").mkdir()
    config = write_config(tmp_path / "serve", worker={"batch_size": 50, "poll_seconds": 3600})
    shared = {"database": str(tmp_path / "serve" / "data" / "gateway.db")}
    worker_config = write_config(tmp_path / "worker", **shared, worker={"batch_size": 50, "poll_seconds": 0.01})
    posted = _workload.Posted()
    with Server(config) as server, server.client() as client:
        conn = database(config)
        _post(server, workload.posts[:ALONE], posted)
        wait_all_done(conn, set(posted.accepted), server)
        with Process(worker_config, "worker") as worker:
            worker.wait_for_log("worker started")
            [started] = [line for line in worker.log_lines() if line["message"] == "worker started"]
            with Server(worker_config, "--no-worker", name="ingest") as ingest:
                _post(ingest, workload.posts[ALONE : 2 * ALONE], posted)
            wait_all_done(conn, set(posted.accepted), worker)
            _post(server, workload.posts[2 * ALONE :], posted)
            assert posted.unanswered == []
            wait_all_done(conn, set(posted.accepted), worker)

            # Exactly once: one attempt per job (no lease expired, no job taken by both), one set of effects.
            attempts = dict(conn.execute("SELECT job_id, attempts FROM jobs").fetchall())
            assert set(attempts) == set(posted.accepted)
            assert set(attempts.values()) == {1}
            _workload.check_exact(workload, client, conn)
            # Both took part: a done job names the worker that did it.
            owners = {row[0] for row in conn.execute("SELECT DISTINCT lease_owner FROM jobs WHERE status = 'done'")}
            assert started["owner"] in owners and len(owners) == 2, owners
            assert worker.terminate() == 0
            assert worker.log_lines()[-1]["message"] == "worker stopped"
        conn.close()
