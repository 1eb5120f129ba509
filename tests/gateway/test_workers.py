"""`serve` (with its in-process worker) and a separate `worker` process on one database at once: every job
is done exactly once and the figures are exact."""

import asyncio
import time
from pathlib import Path

from tests.conftest import write_config
from tests.gateway import _workload
from tests.gateway._server import STARTUP_LIMIT_SECONDS, Process, Server, database, wait_all_done

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
        owners: set[str] = set()

        async def post_and_watch() -> None:
            async with server.async_client() as http:
                posting = asyncio.create_task(_workload.post_all(http, workload.posts, posted))
                deadline = time.monotonic() + STARTUP_LIMIT_SECONDS  # a safety net, not a timing assertion
                while not posting.done() or conn.execute("SELECT 1 FROM jobs WHERE status != 'done'").fetchone():
                    if (posting.done() and posting.exception()) or time.monotonic() > deadline:
                        break
                    owners.update(
                        row[0]
                        for row in conn.execute("SELECT DISTINCT lease_owner FROM jobs WHERE status = 'processing'")
                    )
                    await asyncio.sleep(0.005)
                await posting

        asyncio.run(post_and_watch())
        assert posted.unanswered == []
        wait_all_done(conn, set(posted.accepted), worker)

        # Exactly once: one lease per job (no lease expired, no job taken by both), one set of effects.
        attempts = dict(conn.execute("SELECT job_id, attempts FROM jobs").fetchall())
        assert set(attempts) == set(posted.accepted)
        assert set(attempts.values()) == {1}
        _workload.check_exact(workload, client, conn)
        # Both took part: the separate process's leases and the server's were seen while the orders arrived.
        assert started["owner"] in owners and len(owners) == 2, owners
        assert worker.terminate() == 0
        assert worker.log_lines()[-1]["message"] == "worker stopped"
        conn.close()
