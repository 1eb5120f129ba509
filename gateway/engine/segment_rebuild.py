"""Segments rebuilt over every subscriber: at start for a new or changed definition (without events, a removed
one dropped), and by `commerce-gateway segments rebuild [--emit]`. Subscribers are taken in id ranges, each range
read, evaluated and written in one transaction, so the worker and the API carry on between ranges."""

import logging
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass, field

from gateway.engine.segment_facts import Segment
from gateway.engine.segments import Plan, Segments, segment_events
from store import events, timers
from store import segments as store
from store.db import transaction
from store.segments import SEGMENT_TIMER

log = logging.getLogger("gateway.segments")
_RANGE = 2000  # subscribers per transaction


@dataclass(slots=True)
class Rebuilt:
    rebuilt: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    subscribers: int = 0
    entered: int = 0
    exited: int = 0


def sync(segments: Segments, conn: sqlite3.Connection, now: int) -> Rebuilt:
    """At start: a segment whose definition is new or changed (or names one that is) is rebuilt without events;
    one no longer defined is dropped."""
    stored, dropped = _drop_undefined(segments, conn)
    changed = [
        name
        for name, segment in segments.segments.items()
        if name not in stored or stored[name].fingerprint != segment.fingerprint
    ]
    result = rebuild(segments, conn, changed, False, now) if changed else Rebuilt()
    result.dropped = dropped
    if changed or dropped:
        log.info(
            "segment definitions applied",
            extra={"rebuilt": changed, "dropped": dropped, "subscribers": result.subscribers},
        )
    return result


def rebuild_all(segments: Segments, conn: sqlite3.Connection, emit: bool, now: int) -> Rebuilt:
    """`segments rebuild`: every segment, every subscriber; segments no longer defined dropped."""
    _, dropped = _drop_undefined(segments, conn)
    result = rebuild(segments, conn, list(segments.segments), emit, now)
    result.dropped = dropped
    return result


def _drop_undefined(segments: Segments, conn: sqlite3.Connection) -> tuple[dict[str, store.Defined], list[str]]:
    """Segments no longer defined dropped; the index event measures read kept or dropped with them."""
    with transaction(conn):
        if store.index_counted_events(conn, any(s.newest for s in segments.segments.values())):
            log.info("events indexed for the segments counting them")
        stored = store.defined(conn)
        dropped = sorted(name for name in stored if name not in segments.segments)
        for name in dropped:
            store.drop(conn, name)
    return stored, dropped


def rebuild(
    segments: Segments, conn: sqlite3.Connection, names: Collection[str], emit: bool, now: int, size: int = _RANGE
) -> Rebuilt:
    """Membership of the `names` segments evaluated afresh for every subscriber, and every due time; with
    `emit`, each change records its event as a live change would."""
    plan = segments.plan_for_segments(names, timers=True)
    result = Rebuilt(rebuilt=[segment.name for segment in plan.segments])
    with transaction(conn):  # a segment new here is recorded, empty, before its members
        stored = store.defined(conn)
        built = {segment.name: _built(stored, segment, now) for segment in plan.segments}
        for segment in plan.segments:
            if segment.name not in stored:
                store.define(conn, segment.name, "", now)
    after = 0
    while True:
        with transaction(conn):
            profiles = store.profiles_after(conn, after, size, plan.newest)
            if not profiles:
                break
            _range(segments, conn, plan, profiles, emit, now, result)
        result.subscribers += len(profiles)
        after = profiles[-1][0][0]
    with transaction(conn):
        for segment in plan.segments:
            store.define(conn, segment.name, segment.fingerprint, built[segment.name])
    return result


def _range(
    segments: Segments,
    conn: sqlite3.Connection,
    plan: Plan,
    profiles: list[tuple[store.Profile, tuple[int | None, ...]]],
    emit: bool,
    now: int,
    result: Rebuilt,
) -> None:
    """One range of subscribers: their facts read at once, each evaluated, the changes written at once."""
    first, last = profiles[0][0][0], profiles[-1][0][0]
    orders: dict[int, list[tuple[str, int, str | None]]] = {}
    if plan.orders:
        for subscriber_id, source, at, items in store.counted_orders_between(conn, first, last, plan.items):
            orders.setdefault(subscriber_id, []).append((source, at, items))
    entered: list[tuple[str, int]] = []
    left: list[tuple[str, int]] = []
    saved: list[tuple[str | None, int]] = []
    dues: list[tuple[str, int]] = []
    cleared: list[str] = []
    emitted: list[events.NewEvent] = []
    for profile, newest in profiles:
        subscriber_id = profile[0]
        stored = profile[8]
        moved, due = segments.run(plan, profile, orders.get(subscriber_id, ()), newest, now, segments.members(stored))
        # A due time that passed (while the gateway was down) is left to the worker: it applies the segments this
        # rebuild does not, with their events, and sets the next due time.
        if due != profile[9] and (profile[9] is None or profile[9] > now):
            if due is None:
                cleared.append(str(subscriber_id))
            else:
                dues.append((str(subscriber_id), due))
        if moved:
            for name, member in moved:
                (entered if member else left).append((name, subscriber_id))
            if emit:
                emitted += segment_events(subscriber_id, moved, now)
            saved.append((store.advanced(stored, tuple(moved)), subscriber_id))
    store.move_many(conn, entered, left)
    events.record_many(conn, emitted)
    store.save_states(conn, saved)
    timers.cancel_many(conn, SEGMENT_TIMER, cleared)
    timers.schedule_many(conn, SEGMENT_TIMER, dues)
    result.entered += len(entered)
    result.exited += len(left)


def _built(stored: dict[str, store.Defined], segment: Segment, now: int) -> int:
    """A definition rebuilt unchanged keeps its build time; a new or changed one is built now."""
    kept = stored.get(segment.name)
    return kept.built_at if kept is not None and kept.fingerprint == segment.fingerprint else now
