"""Whether the database a process opened is still the file at its configured path.

SQLite keeps writing to a file it has open after the file is deleted (`rm -rf data/`) or replaced (a backup
moved over it): every commit succeeds, into an inode no one will open again, and all of it is gone at the next
start. So the process notes the identity (device, inode) of the database and of its WAL once its connections
are open, and compares it with what the paths hold now: before each group commit of accepted requests (two
stat() calls beside a commit's fsync), and at most once per `interval` seconds for anything else. While this
process holds the files open, their inodes cannot be reused, so an equal identity is the same file.
"""

import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger("store.file_watch")
_Identity = tuple[int, int]  # (st_dev, st_ino)


def _identity(path: Path) -> _Identity | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


class FileWatch:
    def __init__(self, database: str | Path, interval: float = 1.0) -> None:
        self._files = [Path(database), Path(f"{database}-wal")]
        self._interval = interval
        self._expected = [_identity(path) for path in self._files]
        self._checked_at = time.monotonic()
        self._lock = threading.Lock()
        self._lost: str | None = None

    def lost(self, fresh: bool = False) -> str | None:
        """Why the database is no longer the file at its path (deleted, replaced), or None while it is: as of
        now with `fresh`, else as of at most `interval` seconds ago. Once lost, it stays lost: the process must
        be restarted to open the file the path holds now."""
        if self._lost is not None or (not fresh and time.monotonic() - self._checked_at < self._interval):
            return self._lost
        with self._lock:
            if self._lost is None and (fresh or time.monotonic() - self._checked_at >= self._interval):
                self._lost = self._compare()
                self._checked_at = time.monotonic()
                if self._lost is not None:
                    log.error("database file lost: writes refused until restart", extra={"error": self._lost})
        return self._lost

    def _compare(self) -> str | None:
        for path, expected in zip(self._files, self._expected, strict=True):
            if expected is None:
                continue  # no WAL when the watch began: nothing to compare
            now = _identity(path)
            if now is None:
                return f"the database file {path} was deleted while open; restart to open a new one"
            if now != expected:
                return f"the database file {path} was replaced while open; restart to open the file there now"
        return None
