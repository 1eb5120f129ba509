"""The segment condition language: definitions from config checked (an error names the segment and the key),
then compiled once into closures over one subscriber's `Facts`, each knowing what it reads and when time alone
can change its answer."""

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.engine.segment_facts import (
    DAY_US,
    ORDERS,
    Check,
    Facts,
    Segment,
    Timer,
    attribute_key,
    event_key,
    newest_key,
)
from gateway.engine.segment_operators import MISSING, OPERATORS, fail, value_test

KINDS = ("attribute", "purchased", "orders", "event", "segment", "all", "any", "not")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(slots=True)
class _Compiling:
    reads: set[str] = field(default_factory=set)
    refs: dict[str, str] = field(default_factory=dict)  # name -> key path of the first reference
    timers: list[Timer] = field(default_factory=list)
    items: bool = False
    newest: set[tuple[str, int]] = field(default_factory=set)


def _attribute(path: str, node: Mapping[str, Any], into: _Compiling) -> Check:
    name = node["attribute"]
    if not isinstance(name, str) or not name:
        raise fail(f"{path}.attribute", "must be an attribute name")
    ops = [key for key in node if key != "attribute"]
    if not ops:
        raise fail(path, f"attribute {name!r} needs an operator: one of {', '.join(OPERATORS)}")
    tests = []
    for op in ops:
        if op not in OPERATORS:
            raise fail(f"{path}.{op}", f"unknown operator (use one of {', '.join(OPERATORS)})")
        tests.append(value_test(f"{path}.{op}", op, node[op]))
    into.reads.add(attribute_key(name))
    if len(tests) == 1:
        test = tests[0]
        return lambda facts: test(facts.attributes.get(name, MISSING))
    every = tuple(tests)
    return lambda facts: all(test(facts.attributes.get(name, MISSING)) for test in every)


def _options(path: str, value: Any, allowed: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(path, f"must be a mapping of {', '.join(allowed)}")
    for key, given in value.items():
        if key not in allowed:
            raise fail(f"{path}.{key}", f"unknown key (use {', '.join(allowed)})")
        if given is not None and (isinstance(given, bool) or not isinstance(given, allowed[key])):
            raise fail(f"{path}.{key}", "has the wrong type")
    return value


def _at_least(path: str, options: Mapping[str, Any]) -> int:
    count = options.get("atLeast", 1)
    if not isinstance(count, int) or count < 1:
        raise fail(f"{path}.atLeast", "must be an integer of at least 1")
    return count


def _window(path: str, options: Mapping[str, Any]) -> int | None:
    days = options.get("withinDays")
    if days is None:
        return None
    if not days > 0:
        raise fail(f"{path}.withinDays", "must be a number of days greater than 0")
    return int(days * DAY_US)


def _identifier(value: Any) -> str | None:
    return None if value is None else str(value)


def _purchased(path: str, value: Any, into: _Compiling) -> Check:
    where = f"{path}.purchased"
    options = _options(where, value, {"productId": (str, int), "variantId": (str, int), "source": str, "atLeast": int})
    product, variant = _identifier(options.get("productId")), _identifier(options.get("variantId"))
    if product is None and variant is None:
        raise fail(where, "needs a productId or a variantId")
    source, count = options.get("source"), _at_least(where, options)
    into.reads.add(ORDERS)
    into.items = True

    def check(facts: Facts) -> bool:
        found = 0
        for order in facts.orders:
            if source is not None and order.source != source:
                continue
            for p, v in order.items:  # any item of the order that matches (a loop: cheaper than any() here)
                if (product is None or p == product) and (variant is None or v == variant):
                    found += 1
                    if found >= count:
                        return True
                    break
        return False

    return check


def _counting(
    key: str, count: int, window: int | None, times: Callable[[Facts], Sequence[int]], into: _Compiling
) -> Check:
    """At least `count` of `times` within the last `window` µs (ever, without a window). Within the window means
    at or after now - window; the answer can flip with time alone only from true to false, when the
    `count`-th newest time leaves it."""
    if window is None:
        return lambda facts: len(times(facts)) >= count
    span = window

    def check(facts: Facts) -> bool:
        cutoff = facts.now - span
        found = 0
        for at in times(facts):
            if at >= cutoff:
                found += 1
        return found >= count

    def clock(facts: Facts) -> int | None:
        cutoff = facts.now - span
        if count == 1:
            taken = times(facts)
            newest = max(taken) if taken else None
            return newest + span + 1 if newest is not None and newest >= cutoff else None
        recent = [at for at in times(facts) if at >= cutoff]
        if len(recent) < count:
            return None
        recent.sort(reverse=True)
        return recent[count - 1] + span + 1

    into.timers.append((key, clock))
    return check


def _orders(path: str, value: Any, into: _Compiling) -> Check:
    where = f"{path}.orders"
    options = _options(where, value, {"withinDays": (int, float), "atLeast": int})
    into.reads.add(ORDERS)

    def times(facts: Facts) -> list[int]:
        taken = facts.order_times
        if taken is None:
            taken = facts.order_times = [order.ordered_at for order in facts.orders]
        return taken

    return _counting(ORDERS, _at_least(where, options), _window(where, options), times, into)


def _event(path: str, value: Any, into: _Compiling) -> Check:
    where = f"{path}.event"
    options = _options(where, value, {"name": str, "withinDays": (int, float), "atLeast": int})
    name = options.get("name")
    if not name:
        raise fail(f"{where}.name", "is required")
    if name.startswith("segment."):
        raise fail(f"{where}.name", "segment events cannot be conditions (use `segment: <name>`)")
    into.reads.add(event_key(name))
    count, span = _at_least(where, options), _window(where, options)
    into.newest.add((name, count))
    measure = newest_key(name, count)
    if span is None:
        return lambda facts: facts.newest[measure] is not None
    window = span

    def check(facts: Facts) -> bool:
        at = facts.newest[measure]
        return at is not None and at >= facts.now - window

    def clock(facts: Facts) -> int | None:
        """True until the `count`-th newest event leaves the window (as `_counting`'s clock)."""
        at = facts.newest[measure]
        return at + window + 1 if at is not None and at >= facts.now - window else None

    into.timers.append((event_key(name), clock))
    return check


def _group(path: str, kind: str, value: Any, into: _Compiling) -> Check:
    where = f"{path}.{kind}"
    if not isinstance(value, list) or not value:
        raise fail(where, "must be a non-empty list of conditions")
    checks = tuple(_compile(f"{where}[{i}]", child, into) for i, child in enumerate(value))
    if len(checks) == 1:
        return checks[0]
    # Loops, not all()/any() over a generator: the generator's frame costs more than the checks themselves.
    if kind == "all":

        def every(facts: Facts) -> bool:
            for check in checks:  # noqa: SIM110
                if not check(facts):
                    return False
            return True

        return every

    def some(facts: Facts) -> bool:
        for check in checks:  # noqa: SIM110
            if check(facts):
                return True
        return False

    return some


def _compile(path: str, node: Any, into: _Compiling) -> Check:
    if not isinstance(node, dict) or not node:
        raise fail(path, f"must be a condition: a mapping with one of {', '.join(KINDS)}")
    kinds = [key for key in node if key in KINDS]
    if len(kinds) != 1:
        unknown = next((key for key in node if key not in KINDS), None)
        if not kinds and unknown is not None:
            raise fail(f"{path}.{unknown}", f"unknown condition (use one of {', '.join(KINDS)})")
        raise fail(path, f"must have exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    if kind == "attribute":
        return _attribute(path, node, into)
    extra = next((key for key in node if key != kind), None)
    if extra is not None:
        raise fail(f"{path}.{extra}", f"unknown key beside {kind}")
    value = node[kind]
    if kind == "purchased":
        return _purchased(path, value, into)
    if kind == "orders":
        return _orders(path, value, into)
    if kind == "event":
        return _event(path, value, into)
    if kind == "segment":
        if not isinstance(value, str):
            raise fail(f"{path}.segment", "must be a segment name")
        into.refs.setdefault(value, f"{path}.segment")
        return lambda facts: facts.member.get(value, False)
    if kind == "not":
        inner = _compile(f"{path}.not", value, into)
        return lambda facts: not inner(facts)
    return _group(path, kind, value, into)


def compile_segments(definitions: Mapping[str, Any]) -> dict[str, Segment]:
    """Every definition checked and compiled, in an order where a segment comes after those it names."""
    compiled: dict[str, tuple[Segment, dict[str, str]]] = {}
    for name, definition in definitions.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise fail(f"segments.{name}", "a segment name is letters, digits, '-', '_' or '.' (at most 64)")
        into = _Compiling()
        check = _compile(f"segments.{name}", definition, into)
        segment = Segment(
            name,
            definition,
            check,
            frozenset(into.reads),
            frozenset(into.refs),
            tuple(into.timers),
            into.items,
            frozenset(into.newest),
        )
        compiled[name] = (segment, into.refs)
    for _, refs in compiled.values():
        for ref, where in refs.items():
            if ref not in compiled:
                raise fail(where, f"unknown segment {ref!r}")
    ordered: dict[str, Segment] = {}
    for name in compiled:
        _place(name, compiled, ordered, [])
    return ordered


def _place(
    name: str, compiled: Mapping[str, tuple[Segment, dict[str, str]]], ordered: dict[str, Segment], stack: list[str]
) -> None:
    """Depth first: what `name` names is placed before it; a name met again on the way down is a cycle."""
    if name in ordered:
        return
    segment, refs = compiled[name]
    if name in stack:
        cycle = " -> ".join([*stack[stack.index(name) :], name])
        raise fail(compiled[stack[-1]][1][name], f"reference cycle {cycle}")
    stack.append(name)
    for ref in sorted(refs):
        _place(ref, compiled, ordered, stack)
    stack.pop()
    named = [ordered[ref] for ref in sorted(refs)]
    segment.depends = segment.reads.union(*(other.depends for other in named))
    segment.timed = bool(segment.timers) or any(other.timed for other in named)
    own = json.dumps(segment.definition, sort_keys=True, default=str)
    digest = hashlib.sha256(own.encode())
    for other in named:
        digest.update(f"\x1f{other.name}={other.fingerprint}".encode())
    segment.fingerprint = digest.hexdigest()[:32]
    ordered[name] = segment
