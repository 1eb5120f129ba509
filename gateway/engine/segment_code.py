"""Segment conditions as generated Python: each condition compiles to an expression over a few variables (an
attribute's value, the newest counted order times, an event measure, another segment's membership), and the
expressions are joined into functions compiled once at start: a segment's check over `Facts`, and per plan one
function that evaluates every segment of the plan from the facts as read, with no object built per condition.

Only this module's own names are ever code text: every value taken from a definition (names, operands) is bound
to a generated name in the functions' globals (`Symbols.constant`), and integers are validated ints, written
with repr(). The variables an expression reads:

- `a<i>`: an attribute's value (`MISSING` when the subscriber has none);
- `T`: orderedAt (µs) of the newest counted orders, newest first (at least as many as any condition counts);
- `B`: (source, items) of every counted order, items as (productId, variantId), for purchased conditions;
- `e<i>`: an event measure (`segment_facts.newest_key`): the count-th newest occurredAt of a name, or None;
- `m<i>`: membership of a segment (its new answer once evaluated earlier in the same function);
- `now` (µs)."""

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from gateway.engine.segment_facts import REVENUE_ATTRIBUTES
from gateway.engine.segment_operators import MISSING
from store import json_columns as json

if TYPE_CHECKING:
    from gateway.engine.segment_facts import Segment


def bought(orders: Iterable[tuple[str, Sequence[tuple[Any, Any]]]], product: Any, variant: Any, source: Any) -> int:
    """How many of `orders` (of `source`, when given) contain an item of the product and/or variant."""
    found = 0
    for order_source, items in orders:
        if source is not None and order_source != source:
            continue
        for p, v in items:  # any item of the order that matches (a loop: cheaper than any() here)
            if (product is None or p == product) and (variant is None or v == variant):
                found += 1
                break
    return found


class Symbols:
    """The generated names of the segments compiled together, and the globals their code reads."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"MISSING": MISSING, "bought": bought, "loads": json.loads}
        self._constants: dict[tuple[type, Any], str] = {}
        self.attributes: dict[str, str] = {}
        self.measures: dict[tuple[str, int], str] = {}
        self.members: dict[str, str] = {}

    def constant(self, value: Any) -> str:
        """A global name bound to `value` (the same name again for an equal string or number)."""
        key = (type(value), value) if isinstance(value, str | int | float) else None
        if key is not None and key in self._constants:
            return self._constants[key]
        name = f"c{len(self.namespace)}"
        self.namespace[name] = value
        if key is not None:
            self._constants[key] = name
        return name

    def attribute(self, name: str) -> str:
        return self.attributes.setdefault(name, f"a{len(self.attributes)}")

    def measure(self, name: str, count: int) -> str:
        return self.measures.setdefault((name, count), f"e{len(self.measures)}")

    def member(self, name: str) -> str:
        return self.members.setdefault(name, f"m{len(self.members)}")

    def function(self, lines: list[str], label: str) -> Callable[..., Any]:
        """`lines` (a `def f(...)`) compiled with this namespace as its globals."""
        scope: dict[str, Any] = {}
        exec(compile("\n".join(lines), f"<{label}>", "exec"), self.namespace, scope)
        function: Callable[..., Any] = scope["f"]
        return function


def integer(value: int) -> str:
    """A validated int as code."""
    if type(value) is not int:
        raise TypeError(value)
    return repr(value)


def orders_expr(count: int, window: int | None) -> tuple[str, str | None]:
    """At least `count` counted orders (within the last `window` µs), and when time alone changes that: true
    until the `count`-th newest leaves the window (within means at or after now - window)."""
    n, i = integer(count), integer(count - 1)
    if window is None:
        return f"len(T) >= {n}", None
    w, after = integer(window), integer(window + 1)
    inside = f"len(T) >= {n} and T[{i}] >= now - {w}"
    return f"({inside})", f"(T[{i}] + {after} if {inside} else None)"


def event_expr(measure: str, window: int | None) -> tuple[str, str | None]:
    """The event measure `measure` exists (and is within the window); its clock as `orders_expr`'s."""
    if window is None:
        return f"{measure} is not None", None
    w, after = integer(window), integer(window + 1)
    inside = f"{measure} is not None and {measure} >= now - {w}"
    return f"({inside})", f"({measure} + {after} if {inside} else None)"


def facts_function(
    symbols: Symbols,
    expression: str,
    label: str,
    attributes: Iterable[str] = (),
    measures: Iterable[tuple[str, int]] = (),
    members: Iterable[str] = (),
    orders: bool = False,
    items: bool = False,
) -> Callable[..., Any]:
    """`expression` as a function of one subscriber's `segment_facts.Facts` (what a segment's `check` and its
    timers' clocks are)."""
    lines = ["def f(facts):", "    now = facts.now"]
    lines += [f"    {symbols.attribute(a)} = facts.attributes.get({symbols.constant(a)}, MISSING)" for a in attributes]
    for name, count in measures:
        key = symbols.constant(f"{count} {name}")  # segment_facts.newest_key
        lines.append(f"    {symbols.measure(name, count)} = facts.newest[{key}]")
    lines += [f"    {symbols.member(m)} = facts.member.get({symbols.constant(m)}, False)" for m in members]
    if orders:
        lines.append("    T = sorted([order.ordered_at for order in facts.orders], reverse=True)")
    if items:
        lines.append("    B = [(order.source, order.items) for order in facts.orders]")
    lines.append(f"    return {expression}")
    return symbols.function(lines, label)


_PROFILE_COLUMNS = {"externalId": 2, "firstName": 3, "lastName": 4}  # in a profile as `store.segments` reads it


def evaluator(
    symbols: Symbols, segments: "Sequence[Segment]"
) -> Callable[..., tuple[list[tuple[str, bool]], int | None]]:
    """One function evaluating, for one subscriber, the segments a plan chose of `segments` (all of them, in
    dependency order) and, when the plan keeps them, every segment's clocks:
    `f(plan, profile, T, B, newest, now, S, revenue)` -> (each chosen segment whose answer differs from the stored
    membership `S` (a flag per segment of `segments`), with its new answer; the earliest moment of the clocks or
    None).

    The plan (`segments.Plan`) says which segments (`chosen`, a flag per segment), whether custom attributes and
    the revenue attributes are read (`custom`, `revenue`; `revenue(ordersCount, totalSpentCents)` gives those),
    where each event measure is in `newest` (`slots`: an index per `Symbols.measures`, -1 when not read) and
    whether the clocks are evaluated (`timers`). A custom attribute comes from the profile's JSON; a profile
    column, when set, wins over it, and the revenue attributes over both. A segment not chosen keeps its stored
    membership, read only when a later one names it. Compiled once at start: a plan is a few flags, not code."""
    reads = sorted(
        {key.removeprefix("attribute:") for s in segments for key in s.reads if key.startswith("attribute:")}
    )
    lines = ["def f(plan, profile, T, B, newest, now, S, revenue):"]
    lines.append("    cu = loads(profile[5]) if plan.custom and profile[5] else {}")
    lines.append("    rv = revenue(profile[6], profile[7]) if plan.revenue else None")
    for name in reads:
        value, key = symbols.attribute(name), symbols.constant(name)
        if name in REVENUE_ATTRIBUTES:
            lines.append(f"    {value} = rv[{key}] if rv is not None else MISSING")
        elif name in _PROFILE_COLUMNS:
            column = integer(_PROFILE_COLUMNS[name])
            lines.append(
                f"    {value} = profile[{column}] if profile[{column}] is not None else cu.get({key}, MISSING)"
            )
        else:
            lines.append(f"    {value} = cu.get({key}, MISSING)")
    if symbols.measures:
        lines.append("    slots = plan.slots")
    for i, measure in enumerate(symbols.measures.values()):
        lines.append(f"    {measure} = newest[slots[{integer(i)}]] if slots[{integer(i)}] >= 0 else None")
    named = {ref for s in segments for ref in s.refs}
    lines += ["    chosen = plan.chosen", "    moved = []"]
    for i, segment in enumerate(segments):
        member, name = symbols.member(segment.name), symbols.constant(segment.name)
        lines += [f"    if chosen[{integer(i)}]:", f"        r = {segment.expression}"]
        lines += [f"        if r != S[{integer(i)}]:", f"            moved.append(({name}, r))"]
        if segment.name in named:
            lines += [f"        {member} = r", "    else:", f"        {member} = S[{integer(i)}]"]
    clocks = [clock for segment in segments for clock in segment.clocks]
    lines += ["    due = None", *(["    if plan.timers:"] if clocks else [])]
    for clock in clocks:
        lines += [
            f"        d = {clock}",
            "        if d is not None and (due is None or d < due):",
            "            due = d",
        ]
    lines.append("    return moved, due")
    return symbols.function(lines, "segments")
