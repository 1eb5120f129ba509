"""What segment conditions read of one subscriber (`Facts`), what a compiled segment is, and the change keys
that say which segments a change re-evaluates."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from gateway.engine.segment_code import Symbols

DAY_US = 86_400_000_000
PROFILE_ATTRIBUTES = frozenset({"externalId", "firstName", "lastName"})
REVENUE_ATTRIBUTES = frozenset({"ltv", "totalSpent", "ordersCount", "aov"})

# What a change can touch, and so which segments it re-evaluates: `attribute:<name>`, `orders` (the ledger rows
# of the subscriber's orders), `event:<name>`. Time is not a key: `Segment.timers` say when it matters.
ORDERS = "orders"


def attribute_key(name: str) -> str:
    return f"attribute:{name}"


def event_key(name: str) -> str:
    return f"event:{name}"


_SHAPES = 512  # order shapes remembered with their keys (`order_keys`)
OWN_PREFIXES = ("ecommerce.order_", "segment.")  # events left to `on_order`, or never counted
ORDERS_ONLY = frozenset({ORDERS, *(attribute_key(name) for name in REVENUE_ATTRIBUTES)})


def order_keys(attributes: Iterable[str], names_given: bool, event: str | None) -> frozenset[str]:
    """What one applied order event can change of its subscriber: the attributes it gives, the revenue
    attributes, the ledger's orders, and the event it recorded. (One of a few shapes: remembered.)"""
    shape = (tuple(attributes), names_given, event)
    keys = _ORDER_KEYS.get(shape)
    if keys is None:
        if len(_ORDER_KEYS) >= _SHAPES:
            _ORDER_KEYS.clear()
        keys = _ORDER_KEYS[shape] = _order_keys(*shape)
    return keys


_ORDER_KEYS: dict[tuple[tuple[str, ...], bool, str | None], frozenset[str]] = {}


def _order_keys(attributes: Iterable[str], names_given: bool, event: str | None) -> frozenset[str]:
    keys = {ORDERS, *(attribute_key(name) for name in REVENUE_ATTRIBUTES), *customer_keys(attributes, names_given)}
    if event is not None:
        keys.add(event_key(event))
    return frozenset(keys)


def customer_keys(attributes: Iterable[str], names_given: bool) -> frozenset[str]:
    """What upserting a customer outside an order (a checkout, a back-in-stock request) can change of its
    subscriber: the attributes and names it gives."""
    keys = {attribute_key(name) for name in attributes}
    if names_given:
        keys.update(attribute_key(name) for name in PROFILE_ATTRIBUTES)
    return frozenset(keys)


class OrderFact(NamedTuple):
    """One counted order (neither cancelled nor fully refunded) of a subscriber, as conditions read it. (A named
    tuple: built for every order at every evaluation, three times cheaper than a frozen dataclass.)"""

    source: str
    ordered_at: int  # µs
    items: tuple[tuple[str | None, str | None], ...]  # (productId, variantId)


@dataclass(slots=True)
class Facts:
    """What conditions read of one subscriber at `now`; only what the evaluated segments need is loaded."""

    now: int
    attributes: dict[str, Any] = field(default_factory=dict)
    orders: list[OrderFact] = field(default_factory=list)
    newest: dict[str, int | None] = field(default_factory=dict)  # `newest_key` -> that event's occurredAt (µs)
    member: dict[str, bool] = field(default_factory=dict)  # segment -> member, for `segment:` conditions
    order_times: list[int] | None = None  # orderedAt of each of `orders`, taken once for every orders condition


def newest_key(name: str, count: int) -> str:
    """An event measure, as SQL computes it: the occurredAt of the `count`-th newest event of `name` (None when
    there are fewer). At least `count` events ever, or within a window, is a test of that one moment."""
    return f"{count} {name}"


Check = Callable[[Facts], bool]
Clock = Callable[[Facts], int | None]  # the next moment (µs) a condition's answer changes with time alone
Timer = tuple[str, Clock]  # a withinDays condition: the change key of what it counts, and its clock


@dataclass(slots=True)
class Segment:
    name: str
    definition: Any
    check: Check
    reads: frozenset[str]  # change keys of its own conditions
    refs: frozenset[str]  # segments it names directly
    timers: tuple[Timer, ...]  # of its own withinDays conditions
    items: bool = False  # a purchased condition: reads the orders' items
    newest: frozenset[tuple[str, int]] = frozenset()  # event measures of its own conditions: (name, count)
    depends: frozenset[str] = frozenset()  # change keys of its conditions and of every segment it names
    timed: bool = False  # a withinDays condition in it or in a segment it names
    fingerprint: str = ""  # its definition and those of the segments it names
    expression: str = "False"  # `check` as generated code (`segment_code`), for a plan's function
    clocks: tuple[str, ...] = ()  # `timers`' clocks as generated code
    depth: int = 0  # how many of the newest counted orders its conditions read
    symbols: "Symbols | None" = None  # the names its code reads, shared by the segments compiled with it
