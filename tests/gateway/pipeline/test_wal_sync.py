"""WalSync answers a committed batch only after a sync of the WAL that began after the commit, says so when the
sync fails, and keeps answering the other batches when one answer fails."""

import sqlite3
import threading
from pathlib import Path

from gateway.pipeline.wal_sync import WalSync
from store.db import StoreUnavailable


def _wait(sync: WalSync, count: int) -> list[Exception | None]:
    answers: list[Exception | None] = []
    all_in = threading.Event()

    def done(error: Exception | None) -> None:
        answers.append(error)
        if len(answers) == count:
            all_in.set()

    for _ in range(count):
        sync.after_commit(done)
    assert all_in.wait(30)
    return answers


def _database_with_wal(tmp_path: Path) -> tuple[sqlite3.Connection, WalSync]:
    """A database in WAL mode with one table written (so its WAL exists), and a WalSync of it."""
    database = tmp_path / "g.db"
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    return conn, WalSync(database)


def test_batches_are_answered_after_a_sync(tmp_path: Path) -> None:
    conn, sync = _database_with_wal(tmp_path)
    sync.start()
    try:
        assert _wait(sync, 5) == [None] * 5
    finally:
        sync.stop()
        conn.close()


def test_a_failed_sync_is_every_waiting_batchs_error(tmp_path: Path) -> None:
    sync = WalSync(tmp_path / "missing.db")  # no WAL to open: the sync fails
    sync.start()
    try:
        answers = _wait(sync, 3)
    finally:
        sync.stop()
    assert all(isinstance(error, StoreUnavailable) for error in answers)


def test_an_answer_that_raises_does_not_stop_the_others(tmp_path: Path) -> None:
    sync = WalSync(tmp_path / "missing.db")
    sync.start()

    def broken(error: Exception | None) -> None:
        raise RuntimeError("event loop closed")

    try:
        sync.after_commit(broken)
        assert len(_wait(sync, 2)) == 2
    finally:
        sync.stop()


def test_a_writer_waits_for_a_sync_even_after_stop(tmp_path: Path) -> None:
    conn, sync = _database_with_wal(tmp_path)
    sync.start()
    try:
        sync.wait()
    finally:
        sync.stop()
    sync.wait()  # the sync threads are gone (the worker ends after the committer): synced by the caller
    conn.close()
    try:
        WalSync(tmp_path / "missing.db").wait()  # never started: synced by the caller, and its failure said
    except StoreUnavailable:
        pass
    else:
        raise AssertionError("a failed sync must raise")
