"""The delivery sender: an asyncio loop in a thread of its own that leases due deliveries, sends them with at most
`max_in_flight` requests per destination, and records attempts and outcomes in batches (one transaction per turn
of the loop, however many answers arrived meanwhile).

It runs wherever jobs are processed: inside `serve` (unless `--no-worker`) and inside each `worker` process.
Several senders on one database share the work through leases."""

import asyncio
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from typing import Protocol

from gateway.config import Config
from gateway.metrics import DeliveryMetrics
from gateway.outbound.attempt import Destination, Revenue, attempt
from gateway.outbound.outcomes import Decision
from gateway.pipeline.write_turns import WriteTurns
from normalizer.timefmt import format_instant_us, now_us
from store import deliveries, destinations
from store.db import StoreUnavailable, connect, transaction
from store.deliveries import Attempt, Claimed

log = logging.getLogger("gateway.outbound")
_POLL_SECONDS = 1.0  # how often due retries and other processes' deliveries are looked for without a wake-up
_LEASE_MARGIN_SECONDS = 2.0  # a lease outlives the request's timeout by this much
_RELEASE_EVERY_US = 1_000_000
_STOP_GRACE_SECONDS = 3.0
_COALESCE_SECONDS = 0.002  # requests still in flight at stop are abandoned after this; their leases expire
# While the worker has a backlog, the sender's thread uses at most this share of the time (measured over about a
# second of its own CPU time): orders come first, and deliveries catch up once the backlog is gone.
_SHARE_WHILE_BEHIND = 0.05
_SHARE_WINDOW_SECONDS = 1.0


class _Worker(Protocol):
    behind: bool
    after_commit: Callable[[], None] | None


class Sender:
    def __init__(
        self, config: Config, revenue: Revenue, turns: WriteTurns | None = None, metrics: DeliveryMetrics | None = None
    ) -> None:
        self.config = config
        self.revenue = revenue
        self.turns = turns
        self.metrics = metrics
        self.owner = f"sender-{secrets.token_hex(4)}"
        self.destinations = {
            name: Destination.build(name, options, config.delivery) for name, options in config.destinations.items()
        }
        self._done: list[tuple[str, Attempt, Decision]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._conn: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._stopping = False
        self._release_at = 0
        self._next_due: int | None = None
        self._enabled = set(self.destinations)  # as the last turn read them (a turn reads them at least every second)
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._worker_behind: Callable[[], bool] | None = None
        self._wake_pending = False
        self._share_since = (time.monotonic(), 0.0)  # (wall clock, this thread's CPU time) the share counts from

    def yield_to(self, worker: _Worker) -> None:
        """Look for deliveries after each of the worker's commits, and leave it the time while it has a backlog."""
        worker.after_commit = self.wake
        self._worker_behind = lambda: worker.behind

    # -- in a thread (serve, worker) ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self.run()), name="sender", daemon=True)
        self._thread.start()
        self._ready.wait()

    def wake(self) -> None:
        """Thread-safe: deliveries were committed; look for them now. Wake-ups coalesce: while one is on its way
        to the loop, another costs nothing (the worker calls this after every commit)."""
        loop = self._loop
        if self._wake_pending or loop is None or loop.is_closed():
            return
        self._wake_pending = True
        with suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._woken)

    def reread(self) -> None:
        """Thread-safe: a destination was enabled; read which are, and send what is due, now (the sender reads
        them by itself at least every second)."""
        self._release_at = 0
        self.wake()

    def _woken(self) -> None:
        self._wake_pending = False  # before the event is set: a later commit's wake-up is never lost
        if self._wakeup is not None:
            self._wakeup.set()

    def stop(self) -> None:
        self._stopping = True
        self.wake()
        if self._thread is not None:
            self._thread.join()

    async def run(self) -> None:
        self._bind()
        assert self._wakeup is not None
        stop_at: float | None = None
        try:
            while True:
                hold = self._hold_seconds()
                turned = self._turn_safely(claim=not self._stopping and hold == 0.0)
                if self._stopping:
                    loop_time = asyncio.get_running_loop().time()
                    stop_at = stop_at or loop_time + _STOP_GRACE_SECONDS
                    if not self._tasks and (not self._done or (not turned and loop_time >= stop_at)):
                        break  # outcomes the database would not take are left to their leases: sent again
                    if loop_time >= stop_at:
                        await self._abandon()
                        continue
                with suppress(TimeoutError):  # after a failed turn, the next one a poll later, not at once
                    await asyncio.wait_for(self._wakeup.wait(), self._wait_seconds(hold) if turned else _POLL_SECONDS)
                self._wakeup.clear()
                await self._coalesce()
        finally:
            await self._close()

    def _hold_seconds(self) -> float:
        """How long to claim nothing new: while the worker has a backlog, until this thread's CPU time is back
        under _SHARE_WHILE_BEHIND of the time; otherwise 0. Answers in flight are still recorded meanwhile."""
        now, cpu = time.monotonic(), time.thread_time()
        if self._worker_behind is None or not self._worker_behind():
            self._share_since = (now, cpu)
            return 0.0
        since, cpu_then = self._share_since
        hold = (cpu - cpu_then) / _SHARE_WHILE_BEHIND - (now - since)
        if hold <= 0.0 and now - since > _SHARE_WINDOW_SECONDS:
            self._share_since = (now, cpu)  # the share counts over the recent past only
        return max(0.0, hold)

    # -- to completion (tests, bench) -------------------------------------------------------------------------
    async def drain(self) -> int:
        """Send every due delivery and record the outcomes; returns how many attempts were made."""
        self._bind()
        made = 0
        try:
            while True:
                made += len(self._done)
                self._turn(claim=True)
                if not self._tasks:
                    if self._done:
                        continue
                    return made
                await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                await self._coalesce()
        finally:
            await self._close()

    # -- the loop's work ------------------------------------------------------------------------------------------
    async def _coalesce(self) -> None:
        """With answers arrived and requests still in flight, give the others a moment to arrive too: one
        transaction then records them all (docs/PERFORMANCE.md)."""
        if self._done and self._tasks:
            await asyncio.sleep(_COALESCE_SECONDS)

    def _bind(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._ready.set()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            # synchronous=NORMAL whatever `durability` says: a power cut may undo the sender's last commits, and
            # then a lease or an outcome is lost, so a delivery goes out once more: still at least once.
            self._conn = connect(self.config.database, "normal", self.config.busy_timeout_seconds, autocheckpoint=False)
        return self._conn

    def _turn_safely(self, claim: bool) -> bool:
        """False when the turn failed."""
        try:
            self._turn(claim)
        except (StoreUnavailable, sqlite3.Error) as exc:
            # The outcomes stay in memory and are written next turn; leased deliveries keep their leases.
            log.warning("sender cannot reach the database", extra={"error": str(exc)})
        except Exception:
            log.exception("sender turn failed")
        else:
            return True
        return False

    def _turn(self, claim: bool) -> None:
        """One transaction: write the outcomes that arrived, then lease what is due up to each destination's free
        slots, and start sending it."""
        done, self._done = self._done, []
        now = now_us()
        if not done and now < self._release_at and not (claim and self._due(now)):
            return  # nothing to write: the write lock stays free for ingest and the worker
        claimed: list[Claimed] = []
        try:
            with self._write_turn(), transaction(self.conn) as conn:
                if done:
                    self._record(conn, done, now)
                if now >= self._release_at:
                    deliveries.release_expired(conn, self.owner, now)
                    self._release_at = now + _RELEASE_EVERY_US
                enabled = self._enabled = {
                    n for n, on in destinations.enabled(conn).items() if on and n in self.destinations
                }
                if claim:
                    self._claim(conn, enabled, now, claimed)
                # A full destination is woken by its own answers, not by its due time.
                self._next_due = deliveries.next_due(conn, [n for n in enabled if self._has_room(n)])
        except BaseException:
            for one in claimed:  # the leases rolled back: their places in flight are free again
                self.destinations[one.destination].in_flight -= 1
            self._done = done + self._done
            raise
        if done and self.metrics is not None:
            self.metrics.recorded((name, made.status) for name, made, _ in done)
        for one in claimed:
            self._spawn(one)

    def _claim(self, conn: sqlite3.Connection, enabled: set[str], now: int, claimed: list[Claimed]) -> None:
        """Lease what is due up to each destination's free places, into `claimed`."""
        for name in enabled:
            destination = self.destinations[name]
            free = destination.config.max_in_flight - destination.in_flight
            if free > 0:
                lease = now + int((destination.config.timeout + _LEASE_MARGIN_SECONDS) * 1e6)
                found = deliveries.claim(conn, name, self.owner, now, lease, free)
                destination.in_flight += len(found)
                claimed += found

    def _due(self, now: int) -> bool:
        """Whether an enabled destination with room has a delivery due (a read, without the write lock). A disabled
        one's deliveries are held, due: they would take the write lock at every wake-up for nothing."""
        self._next_due = deliveries.next_due(self.conn, [n for n in self._enabled if self._has_room(n)])
        return self._next_due is not None and self._next_due <= now

    def _has_room(self, name: str) -> bool:
        destination = self.destinations[name]
        return destination.in_flight < destination.config.max_in_flight

    def _spawn(self, claimed: Claimed) -> None:
        task = asyncio.get_running_loop().create_task(self._send(self.destinations[claimed.destination], claimed))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, destination: Destination, claimed: Claimed) -> None:
        try:
            made, decision = await attempt(destination, claimed, self.config.delivery, self.revenue)
        finally:
            destination.in_flight -= 1
        self._done.append((destination.name, made, decision))
        if self._wakeup is not None:
            self._wakeup.set()

    def _record(self, conn: sqlite3.Connection, done: list[tuple[str, Attempt, Decision]], now: int) -> None:
        deliveries.finish(conn, [made for _, made, _ in done], self.owner)
        succeeded: dict[str, int] = {}
        failed: dict[str, int] = {}
        disable: dict[str, str] = {}
        for name, made, decision in done:
            if made.status == "succeeded":
                succeeded[name] = max(succeeded.get(name, 0), made.at)
            else:
                failed[name] = max(failed.get(name, 0), made.at)
            if decision.disable:
                disable[name] = decision.disable
        limit = int(self.config.delivery.disable_after * 1e6)
        for name in succeeded.keys() | failed.keys():
            ok_at, failed_at = succeeded.get(name), failed.get(name)
            later_failure = failed_at if failed_at is not None and (ok_at is None or failed_at > ok_at) else None
            destinations.record_health(conn, name, ok_at, later_failure)
            since = destinations.failing_since(conn, name)
            if name not in disable and since is not None and now - since >= limit:
                disable[name] = f"failing without a success since {format_instant_us(since)}"
        for name, reason in disable.items():
            if destinations.disable(conn, name, reason, now):
                log.warning("destination disabled", extra={"destination": name, "reason": reason})

    def _write_turn(self) -> AbstractContextManager[None]:
        return self.turns.background() if self.turns is not None else nullcontext()

    def _wait_seconds(self, hold: float) -> float:
        if self._done:
            return 0.0
        if hold > 0.0:
            return min(_POLL_SECONDS, hold)
        if self._next_due is None:
            return _POLL_SECONDS
        return min(_POLL_SECONDS, max(0.0, (self._next_due - now_us()) / 1e6))

    async def _abandon(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _close(self) -> None:
        for destination in self.destinations.values():
            destination.connections.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
