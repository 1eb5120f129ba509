"""The segment condition language: each operator and condition as documented in docs/segments.md, what a
segment reads (so only what changed is re-evaluated), and bad definitions named by segment and key."""

import datetime
from typing import Any

import pytest

from gateway.engine import Engine
from gateway.engine.segment_conditions import compile_segments
from gateway.engine.segment_facts import DAY_US, Facts, OrderFact, order_keys
from gateway.engine.segment_operators import DefinitionError

NOW = 1_000 * DAY_US


def holds(condition: dict[str, Any], facts: Facts, **others: Any) -> bool:
    compiled = compile_segments({"s": condition, **others})
    for name, segment in compiled.items():
        facts.member[name] = segment.check(facts)
    return facts.member["s"]


def person(**attributes: Any) -> Facts:
    return Facts(NOW, attributes=attributes)


@pytest.mark.parametrize(
    ("operator", "value", "attribute", "expected"),
    [
        ("eq", "tiktok", "tiktok", True),
        ("eq", "tiktok", "ig", False),
        ("eq", 1, 1.0, True),
        ("eq", 1, True, False),  # a boolean equals only a boolean
        ("eq", True, True, True),
        ("eq", "x", None, False),  # None here: the attribute is missing
        ("ne", "tiktok", "ig", True),
        ("ne", "tiktok", "tiktok", False),
        ("ne", "tiktok", None, True),
        ("gt", 500, 500.5, True),
        ("gt", 500, 500, False),
        ("gte", 500, 500, True),
        ("lt", 500, 499, True),
        ("lte", 500, 501, False),
        ("gt", 500, "600", False),  # a string is not a number
        ("gte", "2026-01-01", "2026-06-01", True),  # ISO dates order as strings
        ("lt", 5, None, False),
        ("in", ["gold", "silver"], "gold", True),
        ("in", ["gold", "silver"], "bronze", False),
        ("in", [1, 2], None, False),
        ("contains", "@acme.", "jo@acme.com", True),
        ("contains", "vegan", ["vegan", "gluten-free"], True),
        ("contains", "veg", ["vegan"], False),
        ("contains", 3, [1, 2, 3], True),
        ("contains", "x", None, False),
        ("exists", True, 0, True),
        ("exists", True, None, False),
        ("exists", False, None, True),
        ("exists", False, "", False),
    ],
)
def test_attribute_operators(operator: str, value: Any, attribute: Any, expected: bool) -> None:
    facts = person() if attribute is None else person(plan=attribute)
    assert holds({"attribute": "plan", operator: value}, facts) is expected


def test_several_operators_in_one_condition_must_all_pass() -> None:
    condition = {"attribute": "totalSpent", "gte": 100, "lt": 500}
    assert [holds(condition, person(totalSpent=v)) for v in (99, 100, 499.99, 500)] == [False, True, True, False]


def orders(*placed: tuple[float, list[tuple[str | None, str | None]]], source: str = "api") -> Facts:
    return Facts(NOW, orders=[OrderFact(source, int(NOW - days * DAY_US), tuple(items)) for days, items in placed])


def test_purchased_counts_orders_that_contain_the_product_variant_or_both() -> None:
    facts = orders((1, [("p", "v1")]), (2, [("p", "v2"), ("q", None)]), (3, [("q", None)]))
    assert holds({"purchased": {"productId": "p", "atLeast": 2}}, facts)
    assert not holds({"purchased": {"productId": "p", "atLeast": 3}}, facts)
    assert holds({"purchased": {"productId": "q", "atLeast": 2}}, facts)
    assert holds({"purchased": {"variantId": "v2"}}, facts)
    assert not holds({"purchased": {"productId": "q", "variantId": "v2"}}, facts)  # both: the same item
    assert not holds({"purchased": {"productId": "p", "source": "my-shop"}}, facts)
    assert holds({"purchased": {"productId": "p", "source": "api", "atLeast": 2}}, facts)


class Newest(dict[str, int | None]):
    """Event measures as the store computes them (`newest_key`: the count-th newest occurredAt of a name, None
    when there are fewer), here from the events' times themselves."""

    def __init__(self, happened: dict[str, list[int]]) -> None:
        super().__init__()
        self.happened = happened

    def __missing__(self, key: str) -> int | None:
        count, name = key.split(" ", 1)
        times = sorted(self.happened.get(name, []), reverse=True)
        return times[int(count) - 1] if len(times) >= int(count) else None


def test_orders_and_events_within_days_and_when_time_changes_them() -> None:
    facts = orders((10, []), (40, []), (100, []))
    facts.newest = Newest({"ecommerce.checkout_abandoned": [NOW - 2 * DAY_US]})
    assert holds({"orders": {"withinDays": 30}}, facts)
    assert not holds({"orders": {"withinDays": 30, "atLeast": 2}}, facts)
    assert holds({"orders": {"withinDays": 45, "atLeast": 2}}, facts)
    assert holds({"orders": {"atLeast": 3}}, facts)
    assert holds({"event": {"name": "ecommerce.checkout_abandoned", "withinDays": 7}}, facts)
    assert not holds({"event": {"name": "ecommerce.checkout_abandoned", "withinDays": 1}}, facts)
    assert not holds({"event": {"name": "ecommerce.order_placed"}}, facts)
    (segment,) = compile_segments({"s": {"orders": {"withinDays": 45, "atLeast": 2}}}).values()
    ((key, clock),) = segment.timers
    # True until the second newest order (40 days ago) is 45 days old: 5 days from now.
    assert (key, clock(facts)) == ("orders", NOW + 5 * DAY_US + 1)
    assert clock(orders((10, []))) is None  # fewer than atLeast: only a new order can change it


def test_all_any_not_and_segment_references() -> None:
    facts = person(a=1, b=2)
    assert holds({"all": [{"attribute": "a", "eq": 1}, {"attribute": "b", "eq": 2}]}, facts)
    assert not holds({"all": [{"attribute": "a", "eq": 1}, {"attribute": "b", "eq": 3}]}, person(a=1, b=2))
    assert holds({"any": [{"attribute": "a", "eq": 9}, {"attribute": "b", "eq": 2}]}, person(a=1, b=2))
    assert holds({"not": {"attribute": "a", "eq": 9}}, person(a=1))
    assert holds({"not": {"segment": "t"}}, person(a=1), t={"attribute": "a", "eq": 2})


def test_a_segment_reads_what_its_conditions_and_named_segments_read() -> None:
    compiled = compile_segments(
        {
            "vip": {"attribute": "totalSpent", "gte": 500},
            "fans": {"attribute": "acquisitionChannel", "eq": "tiktok"},
            "abandoners": {"event": {"name": "ecommerce.checkout_abandoned", "withinDays": 7}},
            "vip-fans": {"all": [{"segment": "vip"}, {"segment": "fans"}]},
        }
    )
    assert list(compiled)[-1] == "vip-fans"  # after the segments it names
    assert compiled["vip-fans"].depends == {"attribute:totalSpent", "attribute:acquisitionChannel"}
    assert compiled["abandoners"].timed and not compiled["vip-fans"].timed
    engine = Engine("USD", {}, {name: s.definition for name, s in compiled.items()})
    # An order that gives no acquisitionChannel re-evaluates vip (revenue) and what names it, not fans.
    plan = engine.segments.plan(order_keys([], False, "ecommerce.order_placed"))
    assert [s.name for s in plan.segments] == ["vip", "vip-fans"]
    assert not plan.custom and plan.revenue and not plan.orders
    # An abandoned checkout re-evaluates only the segment counting it.
    plan = engine.segments.plan(frozenset({"event:ecommerce.checkout_abandoned"}))
    assert [s.name for s in plan.segments] == ["abandoners"]
    assert plan.events == ("ecommerce.checkout_abandoned",)


@pytest.mark.parametrize(
    ("definitions", "message"),
    [
        ({"vip": {"attribute": "totalSpent", "gtee": 500}}, "segments.vip.gtee: unknown operator"),
        ({"vip": {"all": [{"attribute": "x"}]}}, "segments.vip.all[0]: attribute 'x' needs an operator"),
        ({"vip": {"attribute": "x", "in": "gold"}}, "segments.vip.in: needs a non-empty list"),
        ({"vip": {"attribute": "x", "gt": [1]}}, "segments.vip.gt: needs a number or a string"),
        # YAML reads an unquoted 2026-01-01 as a date: `eq` never held, `gte` named no way out
        ({"vip": {"attribute": "x", "eq": datetime.date(2026, 1, 1)}}, "segments.vip.eq: needs a JSON value: quote"),
        ({"vip": {"attribute": "x", "in": ["a", datetime.date(2026, 1, 1)]}}, "segments.vip.in: needs a JSON value"),
        ({"vip": {"attribute": "x", "gte": datetime.date(2026, 1, 1)}}, "segments.vip.gte: needs a JSON value"),
        ({"vip": {"any": [{"segment": "whales"}]}}, "segments.vip.any[0].segment: unknown segment 'whales'"),
        (
            {"a": {"segment": "b"}, "b": {"all": [{"attribute": "x", "exists": True}, {"segment": "a"}]}},
            "segments.b.all[1].segment: reference cycle a -> b -> a",
        ),
        ({"a": {"not": {"segment": "a"}}}, "segments.a.not.segment: reference cycle a -> a"),
        ({"vip": {"purchased": {"atLeast": 2}}}, "segments.vip.purchased: needs a productId or a variantId"),
        ({"vip": {"purchased": {"productId": "p", "atLeast": 0}}}, "segments.vip.purchased.atLeast: must be"),
        ({"vip": {"orders": {"withinDays": 0}}}, "segments.vip.orders.withinDays: must be a number of days"),
        # YAML's .inf, and windows whose due times would not fit SQLite's integers (every order job failed)
        ({"vip": {"orders": {"withinDays": float("inf")}}}, "segments.vip.orders.withinDays: must be a number"),
        ({"vip": {"orders": {"withinDays": 1e9}}}, "segments.vip.orders.withinDays: must be a number of days"),
        ({"vip": {"event": {"name": "x", "withinDays": float("nan")}}}, "segments.vip.event.withinDays: must be"),
        ({"vip": {"orders": {"within": 3}}}, "segments.vip.orders.within: unknown key"),
        ({"vip": {"event": {"withinDays": 3}}}, "segments.vip.event.name: is required"),
        ({"vip": {"event": {"name": "segment.entered"}}}, "segments.vip.event.name: segment events cannot"),
        ({"vip": {"every": []}}, "segments.vip.every: unknown condition"),
        ({"vip": {"any": []}}, "segments.vip.any: must be a non-empty list"),
        ({"vip": {"not": {"attribute": "x", "exists": True}, "any": []}}, "segments.vip: must have exactly one"),
        ({"v i p": {"attribute": "x", "exists": True}}, "segments.v i p: a segment name is"),
    ],
)
def test_a_bad_definition_is_named_by_segment_and_key(definitions: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError) as raised:
        compile_segments(definitions)
    assert str(raised.value).startswith(message), str(raised.value)


def test_the_documented_examples_compile_and_the_documented_errors_are_real() -> None:
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[3] / "docs" / "segments.md").read_text()
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)]
    examples: dict[str, Any] = {}
    for block in blocks:  # each alone, but for the segments an example names from an earlier one
        examples.update(block["segments"])
        compile_segments({**examples, **block["segments"]})
    assert list(compile_segments(examples))[-1] == "win-back"
    documented = re.findall(r"config error: (segments\.\S+: .+)", text)
    assert len(documented) == 3
    broken = [
        {"vip": {"all": [{"attribute": "totalSpent", "gtee": 500}]}},
        {"winback": {"all": [{"attribute": "x", "exists": True}, {"segment": "lapsd"}]}},
        {"a": {"segment": "b"}, "b": {"any": [{"attribute": "x", "exists": True}, {"segment": "a"}]}},
    ]
    for definitions, message in zip(broken, documented, strict=True):
        with pytest.raises(DefinitionError, match=re.escape(message)):
            compile_segments(definitions)


def test_values_from_a_definition_are_data_never_code() -> None:
    """Conditions compile to generated Python; what a definition says is bound to names, never spliced in."""
    odd = 'x" or True or "\n__import__("os")'
    facts = person(**{odd: odd, "n": 2})
    assert holds({"attribute": odd, "eq": odd}, facts)
    assert not holds({"attribute": odd, "eq": odd + " "}, person(**{odd: odd}))
    assert holds({"attribute": "n", "in": [odd, 2]}, facts)
    assert not holds({"purchased": {"productId": odd}}, orders((1, [("p", None)])))
    assert holds({"purchased": {"productId": odd}}, orders((1, [(odd, None)])))
