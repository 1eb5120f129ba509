"""The segment condition language: definitions from config checked (an error names the segment and the key),
then compiled once into expressions (`segment_code`), each segment knowing what it reads and when time alone can
change its answer."""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.engine.segment_code import Symbols, event_expr, facts_function, integer, orders_expr
from gateway.engine.segment_facts import DAY_US, ORDERS, Segment, attribute_key, event_key
from gateway.engine.segment_operators import OPERATORS, fail, value_expr

KINDS = ("attribute", "purchased", "orders", "event", "segment", "all", "any", "not")
_MAX_DAYS = 100_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(slots=True)
class _Compiling:
    symbols: Symbols
    reads: set[str] = field(default_factory=set)
    refs: dict[str, str] = field(default_factory=dict)  # name -> key path of the first reference
    timers: list[tuple[str, str, tuple[str, int] | None]] = field(default_factory=list)  # key, clock, its measure
    items: bool = False
    newest: set[tuple[str, int]] = field(default_factory=set)
    depth: int = 0  # the most counted orders a condition counts: how many of the newest it reads


def _attribute(path: str, node: Mapping[str, Any], into: _Compiling) -> str:
    name = node["attribute"]
    if not isinstance(name, str) or not name:
        raise fail(f"{path}.attribute", "must be an attribute name")
    ops = [key for key in node if key != "attribute"]
    if not ops:
        raise fail(path, f"attribute {name!r} needs an operator: one of {', '.join(OPERATORS)}")
    tests = []
    value = into.symbols.attribute(name)
    for op in ops:
        if op not in OPERATORS:
            raise fail(f"{path}.{op}", f"unknown operator (use one of {', '.join(OPERATORS)})")
        tests.append(value_expr(f"{path}.{op}", op, node[op], value, into.symbols.constant))
    into.reads.add(attribute_key(name))
    return tests[0] if len(tests) == 1 else f"({' and '.join(tests)})"


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
    if not 0 < days <= _MAX_DAYS:  # a longer window's due times would not fit SQLite's integers (nor would .inf)
        raise fail(f"{path}.withinDays", f"must be a number of days greater than 0 and at most {_MAX_DAYS:,}")
    return int(days * DAY_US)


def _identifier(value: Any) -> str | None:
    return None if value is None else str(value)


def _purchased(path: str, value: Any, into: _Compiling) -> str:
    where = f"{path}.purchased"
    options = _options(where, value, {"productId": (str, int), "variantId": (str, int), "source": str, "atLeast": int})
    product, variant = _identifier(options.get("productId")), _identifier(options.get("variantId"))
    if product is None and variant is None:
        raise fail(where, "needs a productId or a variantId")
    source, count = options.get("source"), _at_least(where, options)
    into.reads.add(ORDERS)
    into.items = True
    given = ", ".join(into.symbols.constant(v) for v in (product, variant, source))
    return f"bought(B, {given}) >= {integer(count)}"


def _orders(path: str, value: Any, into: _Compiling) -> str:
    """At least `atLeast` counted orders within the last `withinDays` (ever, without), read from the newest
    `atLeast` order times."""
    where = f"{path}.orders"
    options = _options(where, value, {"withinDays": (int, float), "atLeast": int})
    into.reads.add(ORDERS)
    count = _at_least(where, options)
    into.depth = max(into.depth, count)
    check, clock = orders_expr(count, _window(where, options))
    if clock is not None:
        into.timers.append((ORDERS, clock, None))
    return check


def _event(path: str, value: Any, into: _Compiling) -> str:
    where = f"{path}.event"
    options = _options(where, value, {"name": str, "withinDays": (int, float), "atLeast": int})
    name = options.get("name")
    if not name:
        raise fail(f"{where}.name", "is required")
    if name.startswith("segment."):
        raise fail(f"{where}.name", "segment events cannot be conditions (use `segment: <name>`)")
    into.reads.add(event_key(name))
    count = _at_least(where, options)
    into.newest.add((name, count))
    check, clock = event_expr(into.symbols.measure(name, count), _window(where, options))
    if clock is not None:
        into.timers.append((event_key(name), clock, (name, count)))
    return check


def _group(path: str, kind: str, value: Any, into: _Compiling) -> str:
    where = f"{path}.{kind}"
    if not isinstance(value, list) or not value:
        raise fail(where, "must be a non-empty list of conditions")
    checks = [_compile(f"{where}[{i}]", child, into) for i, child in enumerate(value)]
    return checks[0] if len(checks) == 1 else f"({(' and ' if kind == 'all' else ' or ').join(checks)})"


def _compile(path: str, node: Any, into: _Compiling) -> str:
    """The condition at `path` checked, as an expression (`segment_code`)."""
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
        return into.symbols.member(value)
    if kind == "not":
        return f"(not {_compile(f'{path}.not', value, into)})"
    return _group(path, kind, value, into)


def _segment(name: str, definition: Any, symbols: Symbols) -> tuple[Segment, dict[str, str]]:
    into = _Compiling(symbols)
    expression = _compile(f"segments.{name}", definition, into)
    attributes = sorted(key.removeprefix("attribute:") for key in into.reads if key.startswith("attribute:"))
    measures, refs = sorted(into.newest), sorted(into.refs)
    check = facts_function(symbols, expression, "segment", attributes, measures, refs, into.depth > 0, into.items)
    timers = tuple(
        (key, facts_function(symbols, clock, "clock", measures=[measure] if measure else [], orders=measure is None))
        for key, clock, measure in into.timers
    )
    segment = Segment(
        name,
        definition,
        check,
        frozenset(into.reads),
        frozenset(into.refs),
        timers,
        into.items,
        frozenset(into.newest),
        expression=expression,
        clocks=tuple(clock for _, clock, _ in into.timers),
        depth=into.depth,
        symbols=symbols,
    )
    return segment, into.refs


def compile_segments(definitions: Mapping[str, Any]) -> dict[str, Segment]:
    """Every definition checked and compiled, in an order where a segment comes after those it names."""
    compiled: dict[str, tuple[Segment, dict[str, str]]] = {}
    symbols = Symbols()
    for name, definition in definitions.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise fail(f"segments.{name}", "a segment name is letters, digits, '-', '_' or '.' (at most 64)")
        compiled[name] = _segment(name, definition, symbols)
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
