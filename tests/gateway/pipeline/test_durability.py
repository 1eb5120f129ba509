"""Durable by default: `durability: full` (SQLite synchronous=FULL) unless the config says `normal`, for every
connection that writes what a 202 promised (the ingest committer, the worker)."""

from typing import Any

import pytest

from tests.conftest import Harness, order

_SYNCHRONOUS = {"normal": 1, "full": 2}  # what PRAGMA synchronous answers


@pytest.mark.parametrize(("setting", "expected"), [(None, "full"), ("full", "full"), ("normal", "normal")])
def test_durability_setting_reaches_every_writer(make_harness: Any, setting: str | None, expected: str) -> None:
    harness: Harness = make_harness(durability=setting)
    assert harness.config.durability == expected
    committer = harness.client.app.state.gateway.committer
    assert harness.post_order(order()).status_code == 202  # the committer's connection is the one that wrote it
    for conn in (committer._conn, harness.worker.conn):
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == _SYNCHRONOUS[expected]
