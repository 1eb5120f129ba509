"""Durable by default: `durability: full` unless the config says `normal`. With `full`, a 202 goes out only
after the WAL holding its row is synced to disk (by `WalSync`, after the group commit), and what the worker
commits is synced before it goes on, once it has let go of the write lock; with `normal`, neither syncs
(synchronous=NORMAL)."""

import os
import sqlite3
import threading
from typing import Any

import pytest

from gateway.engine import build_engine
from gateway.pipeline.worker import Worker
from tests.conftest import Harness, order

_SYNCHRONOUS = {"normal": 1, "full": 2}  # what PRAGMA synchronous answers


@pytest.mark.parametrize(("setting", "expected"), [(None, "full"), ("full", "full"), ("normal", "normal")])
def test_durability_setting_reaches_every_writer(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch, setting: str | None, expected: str
) -> None:
    synced: list[set[tuple[str, str]]] = []  # per sync: the jobs committed when it began, so on disk when it ended
    real_fdatasync = os.fdatasync

    def fdatasync(fd: int) -> None:
        with sqlite3.connect(harness.config.database) as reader:
            committed = set(reader.execute("SELECT job_id, status FROM jobs"))
        real_fdatasync(fd)
        synced.append(committed)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    harness: Harness = make_harness(durability=setting)
    assert harness.config.durability == expected
    for number in range(3):
        before = len(synced)
        response = harness.post_order(order(f"order-{number}"))
        assert response.status_code == 202
        # With `full`, the answer waited for a sync of the WAL that began once the row was committed.
        on_disk = {job_id for job_id, _ in set().union(*synced[before:])}
        assert (response.json()["jobId"] in on_disk) == (expected == "full")
    before = len(synced)
    assert harness.worker.run_once() == 3
    # With `full`, the worker's transaction was synced before it went on: its jobs are on disk as done.
    done_on_disk = {job_id for job_id, status in set().union(*synced[before:]) if status == "done"}
    assert len(done_on_disk) == (3 if expected == "full" else 0)
    for conn in (harness.client.app.state.gateway.committer._conn, harness.worker.conn):
        # Both writers commit at NORMAL: with `full` the sync comes after the commit, outside the write lock.
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == _SYNCHRONOUS["normal"]


def test_requests_do_not_wait_for_the_workers_sync(make_harness: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker syncs its transaction with the write lock released: an order posted while that sync is under
    way is committed (and synced) at once, not after it."""
    harness: Harness = make_harness(durability="full", busy_timeout_seconds=1)
    gateway = harness.client.app.state.gateway
    # `serve`'s worker: it takes turns on the write lock with the app's committer.
    worker = Worker(harness.config, gateway.adapters, build_engine(harness.config), gateway.turns)
    for number in range(3):
        assert harness.post_order(order(f"order-{number}")).status_code == 202
    answers: list[int] = []
    real_fdatasync = os.fdatasync

    def fdatasync(fd: int) -> None:
        # The worker runs in this test's thread (the committer's syncs run in their own threads).
        if threading.current_thread() is threading.main_thread() and not answers:
            answers.append(harness.post_order(order("order-during-sync")).status_code)
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    try:
        taken = worker.run_once()
        assert taken >= 1
        assert answers == [202]
        while processed := worker.run_once():
            taken += processed
        assert taken == 4
    finally:
        worker.close()


def test_serves_worker_shares_the_requests_syncs(make_harness: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """In `serve`, the worker waits for the committer's next WAL sync (one sync for both) and waits for it with the
    write lock released: an order posted meanwhile is accepted at once, and the worker's jobs are then on disk."""
    harness: Harness = make_harness(durability="full", busy_timeout_seconds=1)
    gateway = harness.client.app.state.gateway
    worker = Worker(harness.config, gateway.adapters, build_engine(harness.config), gateway.turns)
    worker.wal_sync = wal_sync = gateway.committer.wal_sync
    assert harness.post_order(order("order-1")).status_code == 202
    answers: list[int] = []
    real_wait = wal_sync.wait

    def wait() -> None:
        if not answers:
            answers.append(harness.post_order(order("order-while-worker-waits")).status_code)
        real_wait()

    monkeypatch.setattr(wal_sync, "wait", wait)
    try:
        assert worker.run_once() == 1
        assert answers == [202]
    finally:
        worker.close()
