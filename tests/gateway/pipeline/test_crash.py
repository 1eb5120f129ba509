"""SIGKILL of a real `serve` while its worker is processing a few thousand orders (and more are arriving):
after a restart every accepted order is processed exactly once (docs/operations.md)."""

import asyncio
from pathlib import Path

from tests.conftest import write_config
from tests.gateway import _workload
from tests.gateway._server import Server, database, job_counts, wait_all_done

POSTS = 3000
CUSTOMERS = 300
PREFILLED = 2400  # accepted by an accept-only server first, so the worker has a backlog when it is killed
FIRST_ANSWERED = 8  # of the rest, answered (one per lane) while the worker starts on the backlog
STARTED_JOBS = 100  # of the backlog, done before the rest is posted


def test_sigkill_mid_processing_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    workload = _workload.build(POSTS, CUSTOMERS, seed=20260601)
    config = write_config(tmp_path, worker={"lease_seconds": 1, "batch_size": 100})

    # 1. An accept-only server takes most of the orders, then is killed: every 202 it gave is a committed row.
    with Server(config, "--no-worker", name="ingest") as server:
        first = _workload.post_concurrently(server.async_client(), workload.posts[:PREFILLED])
        server.kill()
    assert first.unanswered == []
    conn = database(config)
    assert job_counts(conn) == {"queued": len(first.accepted)}

    # 2. A full server works through the backlog while the rest arrives; it is killed mid-way through both.
    # Counters, not the machine's speed, decide when: FIRST_ANSWERED posts are answered while the worker starts on
    # the backlog; once it has done STARTED_JOBS, the rest of the posts set off and the kill follows within one
    # turn of the client's event loop. Nothing waits for the server's answers in between (waiting for more of them
    # gave a loaded machine's worker the time to finish the backlog first): at the kill most of the backlog is
    # still queued (about a fifth done, at a load average of 5-9) and the rest of the posts are unanswered.
    second = _workload.Posted()
    rest = workload.posts[PREFILLED:]
    with Server(config, name="crashing") as server:

        async def post_then_kill() -> None:
            async with server.async_client() as client:
                await _workload.post_all(client, rest[:FIRST_ANSWERED], second)
                while job_counts(conn).get("done", 0) < STARTED_JOBS:
                    await asyncio.sleep(0.002)
                posting = asyncio.create_task(_workload.post_all(client, rest[FIRST_ANSWERED:], second))
                await asyncio.sleep(0.002)  # the lanes send their first posts (the kill may come before: still fine)
                assert not posting.done(), "all orders were posted before the kill"
                server.kill()
                await posting

        asyncio.run(post_then_kill())
    at_kill = job_counts(conn)
    leased_at_kill = {row[0] for row in conn.execute("SELECT job_id FROM jobs WHERE status = 'processing'")}
    assert at_kill.get("done", 0) >= 100
    assert at_kill.get("queued", 0) + at_kill.get("processing", 0) > 0, at_kill
    assert set(at_kill) <= {"done", "queued", "processing"}
    assert second.unanswered, "the kill came after every order of the second part was answered"

    # 3. Restarted: the client re-posts what got no answer; leases of the killed worker expire and run again.
    with Server(config, name="restarted") as server, server.client() as client:
        third = _workload.post_concurrently(server.async_client(), second.unanswered)
        assert third.unanswered == []
        accepted = first.accepted | second.accepted | third.accepted
        assert len(accepted) == len(first.accepted) + len(second.accepted) + len(third.accepted)
        assert len(first.accepted) + len(second.accepted) + len(second.unanswered) == len(workload.posts)
        wait_all_done(conn, set(accepted), server)

        # No accepted job lost, each done; the ones killed mid-lease ran exactly once more.
        statuses = dict(conn.execute("SELECT job_id, attempts FROM jobs WHERE status = 'done'").fetchall())
        assert set(accepted) <= set(statuses)
        assert {statuses[job_id] for job_id in leased_at_kill} <= {2}
        assert {attempts for job_id, attempts in statuses.items() if job_id not in leased_at_kill} == {1}
        _workload.check_exact(workload, client, conn)
    conn.close()
