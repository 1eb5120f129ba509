"""Live segment membership: a change to one subscriber re-evaluates the segments that read what changed, in the
caller's transaction; entering or leaving records `segment.entered` / `segment.exited`; a durable timer per
subscriber (kind `segment`) fires when a withinDays window next moves their membership with time alone."""

import logging
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from gateway.engine.segment_code import Symbols, evaluator
from gateway.engine.segment_conditions import compile_segments
from gateway.engine.segment_facts import (
    ORDERS,
    ORDERS_ONLY,
    OWN_PREFIXES,
    PROFILE_ATTRIBUTES,
    REVENUE_ATTRIBUTES,
    Segment,
    Timer,
    customer_keys,
    event_key,
    order_keys,
)
from normalizer import Customer
from store import segments as store
from store import subscribers
from store.events import NO_KEY, NewEvent

if TYPE_CHECKING:  # the engine holds its segments: no import cycle at run time
    from gateway.engine.orders import Applied

log = logging.getLogger("gateway.segments")
Revenue = Callable[[int, int], dict[str, Any]]  # (ordersCount, totalSpentCents) -> the revenue attributes
_PLANS = 512  # change sets remembered with their plan; a job's set is one of a few shapes


@dataclass(slots=True, frozen=True)
class Plan:
    """What one change set re-evaluates, and what it must read for that."""

    segments: tuple[Segment, ...]  # in dependency order
    timers: tuple[Timer, ...]  # every timer, when the change can move the due time; else none
    attributes: bool
    custom: bool  # custom attributes read (the JSON column parsed)
    revenue: bool
    orders: bool
    items: bool  # the orders' items (purchased conditions)
    events: tuple[str, ...]
    newest: tuple[tuple[str, int], ...]  # the event measures read, (name, count), as SQL returns them
    depth: int  # how many of the newest counted orders its conditions and clocks read (0: none)
    chosen: tuple[bool, ...]  # per configured segment, in dependency order: evaluated (`segment_code.evaluator`)
    slots: tuple[int, ...]  # per event measure of `Symbols.measures`: its index in `newest`, -1 when not read
    read: store.FactsRead  # the profile's statement with `newest`


class Gathered:
    """Subscribers touched while gathering (`Segments.gathering`): per subscriber, the union of the change keys,
    the latest moment, and whether every touch was historical."""

    __slots__ = ("touched",)

    def __init__(self) -> None:
        self.touched: dict[int, tuple[frozenset[str], int, bool]] = {}

    def add(self, subscriber_id: int, keys: frozenset[str], now: int, historical: bool) -> None:
        seen = self.touched.get(subscriber_id)
        if seen is not None:
            keys = keys if seen[0] <= keys else seen[0] | keys
            now, historical = max(now, seen[1]), historical and seen[2]
        self.touched[subscriber_id] = (keys, now, historical)


class _Gathering(threading.local):
    gathered: Gathered | None = None  # a class default: read without an error by a thread that never set it


class Segments:
    """The configured segments, compiled once; one per engine."""

    def __init__(self, definitions: Mapping[str, Any], revenue: Revenue) -> None:
        self.segments = compile_segments(definitions)
        self.symbols = next((s.symbols for s in self.segments.values() if s.symbols is not None), Symbols())
        self.revenue = lru_cache(maxsize=4096)(revenue)  # many subscribers share their totals
        self.members = lru_cache(maxsize=4096)(self._members)  # many subscribers share their stored counts
        self._timers: tuple[Timer, ...] = tuple(t for s in self.segments.values() for t in s.timers)
        self._timer_newest = frozenset().union(*(s.newest for s in self.segments.values() if s.timers))
        self._timer_keys = frozenset(key for key, _ in self._timers)
        # What a new subscriber re-evaluates: every segment (`exists: false`, `ne`, `not` hold for who has nothing).
        self.all_keys = frozenset().union(*(s.depends for s in self.segments.values()))
        self._plans: dict[frozenset[str], Plan] = {}
        # The event names `on_event` acts on: those some segment counts, but for the ones it leaves alone.
        self.observed = frozenset(
            key.removeprefix("event:")
            for s in self.segments.values()
            for key in s.depends
            if key.startswith("event:") and not key.removeprefix("event:").startswith(OWN_PREFIXES)
        )
        self._evaluator = evaluator(self.symbols, tuple(self.segments.values()))
        self._local = _Gathering()  # what this thread is gathering (`gathering`)
        self.timed = self.plan_for_segments([s.name for s in self.segments.values() if s.timed], timers=True)
        self.everything = self.plan_for_segments(list(self.segments), timers=True)

    def __bool__(self) -> bool:
        return bool(self.segments)

    def plan(self, keys: frozenset[str]) -> Plan:
        plan = self._plans.get(keys)
        if plan is None:
            if len(self._plans) >= _PLANS:
                self._plans.clear()
            names = [s.name for s in self.segments.values() if not s.depends.isdisjoint(keys)]
            plan = self._plans[keys] = self.plan_for_segments(names, not self._timer_keys.isdisjoint(keys))
        return plan

    def plan_for_segments(self, names: Collection[str], timers: bool) -> Plan:
        chosen = tuple(s for s in self.segments.values() if s.name in names)
        kept = self._timers if timers else ()
        reads = set().union(*(s.reads for s in chosen), (key for key, _ in kept))
        attributes = {key.removeprefix("attribute:") for key in reads if key.startswith("attribute:")}
        newest = tuple(sorted(set().union(*(s.newest for s in chosen), self._timer_newest if timers else ())))
        timed = [s for s in self.segments.values() if s.timers] if timers else []
        custom = bool(attributes - PROFILE_ATTRIBUTES - REVENUE_ATTRIBUTES)
        return Plan(
            segments=chosen,
            timers=kept,
            attributes=bool(attributes),
            custom=custom,
            revenue=not attributes.isdisjoint(REVENUE_ATTRIBUTES),
            orders=ORDERS in reads,
            items=any(s.items for s in chosen),
            events=tuple(sorted(key.removeprefix("event:") for key in reads if key.startswith("event:"))),
            newest=newest,
            depth=max((s.depth for s in (*chosen, *timed)), default=0),
            chosen=tuple(s.name in names for s in self.segments.values()),
            slots=tuple(newest.index(m) if m in newest else -1 for m in self.symbols.measures),
            read=store.facts_read(newest),
        )

    # One subscriber, in the caller's transaction.

    def on_order(self, conn: sqlite3.Connection, applied: "Applied", now: int) -> None:
        """The engine's hook: an order event was applied. Its subscriber is re-evaluated for what the event gave
        and did; the customer the order belonged to before (if another) for their orders alone."""
        order = applied.order
        customer = order.customer
        own = customer.email if customer is not None else None
        if applied.subscriber_id is not None:
            given = customer is not None and _names_given(customer)
            event = f"ecommerce.order_{order.status}" if applied.event_id is not None else None
            attributes = customer.attributes if customer is not None else ()
            keys = self.all_keys if applied.created else order_keys(attributes, given, event)
            self.touch(conn, applied.subscriber_id, keys, now, applied.historical)
        before = applied.before.email if applied.before is not None else None
        if applied.after.email == own and (before is None or before == own):
            return  # the order stayed with its customer
        for email in sorted({e for e in (applied.after.email, before) if e is not None and e != own}):
            subscriber_id = subscribers.find_id(conn, email)
            if subscriber_id is not None:
                self.touch(conn, subscriber_id, ORDERS_ONLY, now, applied.historical)

    def on_customer(
        self, conn: sqlite3.Connection, subscriber_id: int, customer: Customer, created: bool, now: int
    ) -> None:
        """A customer was upserted outside an order (a checkout, a back-in-stock request): the segments reading the
        attributes and names it gave, or every segment for a subscriber it created."""
        keys = self.all_keys if created else customer_keys(customer.attributes, _names_given(customer))
        self.touch(conn, subscriber_id, keys, now)

    def on_event(self, conn: sqlite3.Connection, subscriber_id: int, name: str, occurred_at: int) -> None:
        """Any event recorded (`store.events.observed`, of the names in `observed`): the segments counting that
        name. An order's own event is left to `on_order`, which re-evaluates it with the rest of what the order
        changed; segment events are never counted."""
        if name.startswith(OWN_PREFIXES):
            return
        self.touch(conn, subscriber_id, frozenset({event_key(name)}), occurred_at)

    def on_erasure(self, conn: sqlite3.Connection, subscriber_id: int, now: int) -> None:
        """Orders and events of a kept subscriber were erased: every segment is evaluated again."""
        self.evaluate(conn, subscriber_id, self.everything, now)

    def touch(
        self, conn: sqlite3.Connection, subscriber_id: int, keys: frozenset[str], now: int, historical: bool = False
    ) -> None:
        """`keys` of this subscriber changed (see `segment_conditions`): re-evaluate what reads them, now or, while
        `gathering`, once for the whole chunk."""
        gathered = self._local.gathered
        if gathered is not None:
            gathered.add(subscriber_id, keys, now, historical)
            return
        plan = self.plan(keys)
        if plan.segments or plan.timers:
            self.evaluate(conn, subscriber_id, plan, now, historical)

    @contextmanager
    def gathering(self) -> Iterator["Gathered"]:
        """Meanwhile (in this thread), touches are gathered per subscriber instead of evaluated; `settle` then
        evaluates each subscriber once, in the same transaction, for everything that touched them."""
        gathered = Gathered()
        previous = self._local.gathered
        self._local.gathered = gathered if self.segments and previous is None else previous
        try:
            yield gathered
        finally:
            self._local.gathered = previous

    def settle(self, conn: sqlite3.Connection, gathered: "Gathered") -> None:
        """Evaluate each gathered subscriber once: at the latest moment that touched them, marked historical
        only if every touch was. Their facts are read many to a statement, per plan (`store.facts_many`)."""
        touched = [(sid, self.plan(keys), now, historical) for sid, (keys, now, historical) in gathered.touched.items()]
        by_plan: dict[int, tuple[Plan, list[int]]] = {}
        for subscriber_id, plan, _, _ in touched:
            if plan.segments or plan.timers:
                by_plan.setdefault(id(plan), (plan, []))[1].append(subscriber_id)
        read: dict[int, store.Facts] = {}
        for plan, ids in by_plan.values():
            read.update(store.facts_many(conn, plan.read, ids, plan.orders, plan.items))
        moves = store.Moves()
        for subscriber_id, plan, now, historical in touched:
            facts = read.get(subscriber_id)  # none: nothing to evaluate, or no such subscriber
            if facts is not None:
                self.judge(subscriber_id, plan, facts, now, historical, moves)
        moves.write(conn)
        gathered.touched.clear()

    def evaluate(
        self,
        conn: sqlite3.Connection,
        subscriber_id: int,
        plan: Plan,
        now: int,
        historical: bool = False,
    ) -> None:
        """One subscriber against `plan`'s segments, read and judged (`judge`) now, and what moved written."""
        facts = store.facts(conn, plan.read, subscriber_id, plan.orders, plan.items)
        if facts is None:
            return
        moves = store.Moves()
        self.judge(subscriber_id, plan, facts, now, historical, moves)
        moves.write(conn)

    def judge(
        self, subscriber_id: int, plan: Plan, facts: store.Facts, now: int, historical: bool, moves: store.Moves
    ) -> None:
        """One subscriber against `plan`'s segments, from their facts; what moved, and their segment timer when it
        is set, join `moves`. Their segment timer (none while it fires: the worker took it) is only ever set
        earlier here: a timer that fires before the next flip re-evaluates, finds nothing changed and is set
        again, which costs less than a write on every order that moves the flip later."""
        profile, orders, newest = facts
        moved, wanted = self.run(plan, profile, orders, newest, now, self.members(profile[8]))
        if wanted is not None and plan.timers:
            due = profile[9]
            if due is None or wanted < due:
                moves.dues.append((str(subscriber_id), wanted))
        if moved:
            moves.add(subscriber_id, profile[8], moved, segment_events(subscriber_id, moved, now, historical))

    def on_timer(self, conn: sqlite3.Connection, key: str, due_at: int, now: int) -> None:
        """A subscriber's window closed (their `segment` timer, taken by the worker in this transaction): their
        time-dependent segments are evaluated again, and the timer set again if a window is still open."""
        self.evaluate(conn, int(key), self.timed, now)

    # Shared by one subscriber and by a rebuild of many.

    def _members(self, text: str | None) -> tuple[bool, ...]:
        """The membership that stored transition counts (`store.stored_changes`) give in each configured segment,
        in dependency order: what `run` compares its answers with. Remembered per text (`members`): the generated
        evaluator reads a flag instead of looking up and testing a count per segment."""
        changes = store.stored_changes(text)
        return tuple(changes.get(name, 0) % 2 == 1 for name in self.segments)

    def run(
        self,
        plan: Plan,
        profile: store.Profile,
        orders: Collection[tuple[str, int, str | None]],
        newest: Sequence[int | None],
        now: int,
        members: Sequence[bool],
    ) -> tuple[list[tuple[str, bool]], int | None]:
        """`plan` for one subscriber, from their profile, counted orders (source, orderedAt µs, items JSON) and
        event measures (`plan.newest`, in order): each segment whose answer differs from the stored membership
        (`members`, from `members`), with that answer, and the next moment time alone moves one (when
        `plan.timers`)."""
        times = sorted([at for _, at, _ in orders], reverse=True) if plan.depth else ()
        bought = [(source, store.items_of(items)) for source, _, items in orders] if plan.items else ()
        return self._evaluator(plan, profile, times, bought, newest, now, members, self.revenue)


def _names_given(customer: Customer) -> bool:
    """Whether the customer gives any of the profile's names (the conditions on them then read them again)."""
    return bool(customer.externalId or customer.firstName or customer.lastName)


def segment_events(
    subscriber_id: int, moved: list[tuple[str, bool]], now: int, historical: bool = False
) -> list[NewEvent]:
    """`segment.entered` / `segment.exited` of each of `moved` (segment, new membership), for
    `events.record_many`, with no dedup key: transitions are numbered per subscriber and segment in the
    subscriber's row, written with the event, and a transition is one from the stored membership, so one
    transition is recorded once, whatever replays it."""
    return [
        (subscriber_id, "segment.entered" if member else "segment.exited", _properties(name, historical), now, NO_KEY)
        for name, member in moved
    ]


@lru_cache(maxsize=1024)
def _properties(name: str, historical: bool) -> dict[str, Any]:
    """A segment event's properties, one object per segment shared by its events (never changed), so that
    `record_many` encodes them once."""
    return {"segment": name, "historical": True} if historical else {"segment": name}
