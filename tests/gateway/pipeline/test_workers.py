"""`serve` (with its in-process worker) and a separate `worker` process on one database at once: every job
is done exactly once and the figures are exact."""

import asyncio
from pathlib import Path

from tests.conftest import write_config
from tests.gateway import _workload
from tests.gateway._server import Process, Server, database, wait_all_done

POSTS = 2000
CUSTOMERS = 200


def test_serve_and_worker_process_share_the_queue(tmp_path: Path) -> None:
    workload = _workload.build(POSTS, CUSTOMERS, seed=424242)
    # Both workers poll often, so the separate process competes for every batch the server commits.
    config = write_config(tmp_path, worker={"batch_size": 50, "poll_seconds": 0.01})
    with Server(config) as server, Process(config, "worker") as worker, server.client() as client:
        worker.wait_for_log("worker started")
        [started] = [line for line in worker.log_lines() if line["message"] == "worker started"]
        conn = database(config)
        posted = _workload.Posted()

        async def post() -> None:
            async with server.async_client() as http:
                await _workload.post_all(http, workload.posts, posted)

        asyncio.run(post())
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
