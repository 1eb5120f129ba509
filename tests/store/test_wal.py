"""The WAL must not grow for as long as writes keep coming: SQLite starts it over only once all of it has been
copied into the database, and a background checkpoint never catches up with a writer that never pauses."""

import itertools
from pathlib import Path

import pytest

from store import db

MAX_ROWS = 20_000


def test_a_steady_writer_lets_the_wal_start_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "_REWIND_FRAMES", 200)  # start over past ~800 KB instead of 64 MiB
    monkeypatch.setattr(db, "_WAL_LIMIT_BYTES", 0)  # a file started over is cut to what it holds
    path = tmp_path / "steady.db"
    conn = db.connect(path, autocheckpoint=False)
    conn.execute("CREATE TABLE t (body BLOB)")
    wal = Path(f"{path}-wal")
    sizes, rewinds = [0], 0
    with db.Checkpointer(path, interval=0.02) as checkpointer:
        # Back to back, one 3,000-byte row each, until the checkpointer has asked for a rewind and a commit after
        # it has started the WAL over: the loop ends on those events, however fast this machine writes.
        # (MAX_ROWS, ~60 MB of frames, is a safety net against a checkpointer that never runs.)
        for _ in range(MAX_ROWS):
            with db.transaction(conn):
                conn.execute("INSERT INTO t VALUES (randomblob(3000))")
            rewinds += checkpointer.rewind_if_due(conn)
            sizes.append(wal.stat().st_size)
            if rewinds and sizes[-1] < sizes[-2]:
                break
    conn.close()
    assert rewinds > 0
    # A rewind lets the next commit start the file over: it shrinks, where it would otherwise only ever grow.
    assert any(later < earlier for earlier, later in itertools.pairwise(sizes))
