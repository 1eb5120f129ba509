"""A chunk of jobs applied in one transaction: each job's effects through the engine, then their completions in
one statement. When a job fails, the caller rolls the chunk back and runs it again up to that job one savepoint
per job, so only the failed job's effects are undone and its failure is recorded on it (retried with backoff,
then dead)."""

import logging
import sqlite3
import time
from collections.abc import Mapping

from pydantic import ValidationError

from adapters import Adapter, NotReady, TranslationError
from gateway.config import WorkerConfig
from gateway.engine import Engine
from gateway.metrics import JobMetrics
from gateway.pipeline.job_effects import Permanent, apply_job, describe_failure, once
from gateway.pipeline.write_turns import WriteTurns
from normalizer.timefmt import now_us
from store import queue
from store.db import savepoint, store_trouble

log = logging.getLogger("gateway.worker")
Done = list[tuple[queue.Job, int, list[str]]]  # (job, finished at, warnings) of a chunk, completed together


class JobFailed(Exception):
    """A job of a chunk raised: the chunk's transaction is rolled back and the chunk run job by job."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class ChunkRunner:
    """Applies a worker's chunks: its engine and adapters, its lease owner name, its retry settings."""

    def __init__(
        self,
        settings: WorkerConfig,
        adapters: Mapping[str, Adapter],
        engine: Engine,
        owner: str,
        turns: WriteTurns | None,
        metrics: JobMetrics | None,
    ) -> None:
        self.settings = settings
        self.adapters = adapters
        self.engine = engine
        self.owner = owner
        self.turns = turns
        self.metrics = metrics

    def run(
        self, conn: sqlite3.Connection, jobs: list[queue.Job], start: int, leased: set[int], deadline: float
    ) -> int:
        """Apply jobs from `start` until the deadline (at least one, so the worker progresses under any ingest
        load) and complete them in the caller's transaction; returns where the next chunk starts. In `serve`, a
        request batch waiting for the write lock also ends the chunk after the current job. When a job fails,
        `JobFailed` says which: the caller rolls the transaction back and runs the chunk again up to that job
        with `one_by_one`. (No savepoint around the chunk: SQLite would keep a copy of every page the chunk
        changes, for a rollback that is rare.)"""
        done: Done = []
        # Segments evaluate each subscriber the chunk touched once, after its last job (`Segments.gathering`).
        with self.engine.chunk(conn), self.engine.segments.gathering() as gathered:
            index = self._apply(conn, jobs, start, leased, deadline, done)
        try:
            self.engine.segments.settle(conn, gathered)
        except Exception as exc:
            if store_trouble(exc, conn):
                raise
            raise JobFailed(index - 1) from exc  # one of the chunk's jobs: run one by one, each evaluated alone
        self._complete(conn, done)
        return index

    def _apply(
        self, conn: sqlite3.Connection, jobs: list[queue.Job], index: int, leased: set[int], deadline: float, done: Done
    ) -> int:
        """`run`'s jobs applied, each added to `done`; returns where the next chunk starts."""
        turns = self.turns
        while True:
            job = jobs[index]
            if job.id in leased:  # else our lease expired and another worker took the job over
                now = now_us()
                try:
                    warnings = apply_job(self.engine, self.adapters, conn, job, now)
                except Exception as exc:
                    if store_trouble(exc, conn):
                        raise  # the database, not the job: abandon the chunk; its jobs run again later
                    raise JobFailed(index) from exc  # any other error, SQLite's included, is this job's
                done.append((job, now, once(warnings)))
            index += 1
            if index == len(jobs) or time.monotonic() >= deadline or (turns is not None and turns.ingest_waiting):
                return index

    def one_by_one(self, conn: sqlite3.Connection, jobs: list[queue.Job], leased: set[int]) -> None:
        """Apply `jobs` in one savepoint each: a failure is recorded on its job, the others' effects stay."""
        done: Done = []
        with self.engine.chunk(conn):
            for job in jobs:
                if job.id in leased:
                    self._process(conn, job, done)
        self._complete(conn, done)

    def _complete(self, conn: sqlite3.Connection, done: Done) -> None:
        # One statement for the chunk's completions, committed with the jobs' effects.
        queue.complete_many(conn, done, self.owner)
        if self.metrics is not None:
            self.metrics.completed(done, now_us())

    def _process(self, conn: sqlite3.Connection, job: queue.Job, done: Done) -> None:
        """Apply one job in its own savepoint; a success joins `done`, completed with the rest of the chunk."""
        now = now_us()
        try:
            with savepoint(conn):
                warnings = apply_job(self.engine, self.adapters, conn, job, now)
            done.append((job, now, once(warnings)))
            return
        except (Permanent, TranslationError, ValidationError) as exc:
            error, retry = describe_failure(exc), False
        except NotReady as exc:
            error, retry = f"waiting: {exc}", True
        except Exception as exc:
            if store_trouble(exc, conn):
                raise  # the database, not the job: abandon the chunk; its jobs run again later
            # Anything else, an SQLite error included (an integer overflow, a constraint), is this job's own:
            # its savepoint is rolled back, and it retries with backoff, then goes dead, alone.
            log.exception("job failed", extra={"job": job.job_id, "source": job.source})
            error, retry = describe_failure(exc), True
        retry_at = self.settings.retry_at(job.attempts, now) if retry else None
        queue.fail(conn, job, error, retry_at, now)
        if self.metrics is not None:
            self.metrics.failed(job, retry_at is None, now, now_us())
        log.warning(
            "job dead" if retry_at is None else "job failed, will retry",
            extra={"job": job.job_id, "source": job.source, "attempts": job.attempts, "error": error},
        )
