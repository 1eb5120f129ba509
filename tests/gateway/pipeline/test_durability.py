"""Durable by default: `durability: full` unless the config says `normal`. With `full`, a 202 goes out only
after the WAL holding its row is synced to disk (by `WalSync`, after the group commit), and the worker commits
with synchronous=FULL; with `normal`, neither syncs (synchronous=NORMAL)."""

import os
import sqlite3
from typing import Any

import pytest

from tests.conftest import Harness, order

_SYNCHRONOUS = {"normal": 1, "full": 2}  # what PRAGMA synchronous answers


@pytest.mark.parametrize(("setting", "expected"), [(None, "full"), ("full", "full"), ("normal", "normal")])
def test_durability_setting_reaches_every_writer(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch, setting: str | None, expected: str
) -> None:
    synced: list[set[str]] = []  # per sync: the jobs committed when it began, so on disk when it ended
    real_fdatasync = os.fdatasync

    def fdatasync(fd: int) -> None:
        with sqlite3.connect(harness.config.database) as reader:
            committed = {row[0] for row in reader.execute("SELECT job_id FROM jobs")}
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
        on_disk = set().union(*synced[before:])
        assert (response.json()["jobId"] in on_disk) == (expected == "full")
    assert harness.worker.conn.execute("PRAGMA synchronous").fetchone()[0] == _SYNCHRONOUS[expected]
    assert harness.drain() == 3
