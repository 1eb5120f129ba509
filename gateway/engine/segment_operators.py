"""The operators of attribute conditions, each compiled once into a test of one value, and the error a
definition that cannot be used raises."""

from collections.abc import Callable
from typing import Any

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "exists")
MISSING: Any = object()  # the value of an attribute the subscriber does not have


class DefinitionError(ValueError):
    """A segment definition that cannot be used; `str()` names the key (segments.<name>.…) and the problem."""


def fail(path: str, message: str) -> DefinitionError:
    return DefinitionError(f"{path}: {message}")


def _same(value: Any, wanted: Any) -> bool:
    """JSON equality: a number equals a number of the same value (1 == 1.0), never a boolean."""
    if isinstance(value, bool) or isinstance(wanted, bool):
        return value is wanted
    return bool(value == wanted)


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, str | int | float):
        return True
    if isinstance(value, list):
        return all(_is_json(element) for element in value)
    return isinstance(value, dict) and all(isinstance(k, str) and _is_json(v) for k, v in value.items())


def value_test(path: str, op: str, wanted: Any) -> Callable[[Any], bool]:
    """The test one operator applies to an attribute's value (`MISSING` when the subscriber has none)."""
    if not _is_json(wanted):  # YAML reads an unquoted 2026-01-01 as a date, which equals no attribute's text
        raise fail(path, "needs a JSON value: quote a date or time ('2026-01-01') to compare it as text")
    if op in ("eq", "ne"):
        if wanted is None:
            raise fail(path, "needs a value (test a missing attribute with exists: false)")
        if op == "eq":
            return lambda value: value is not MISSING and _same(value, wanted)
        return lambda value: value is MISSING or not _same(value, wanted)
    if op in ("gt", "gte", "lt", "lte"):
        return _ordering(path, op, wanted)
    if op == "in":
        if not isinstance(wanted, list) or not wanted:
            raise fail(path, "needs a non-empty list of values")
        choices = tuple(wanted)
        return lambda value: value is not MISSING and any(_same(value, choice) for choice in choices)
    if op == "contains":
        if wanted is None or isinstance(wanted, dict | list):
            raise fail(path, "needs a string, number or boolean")
        return lambda value: (
            (isinstance(value, str) and isinstance(wanted, str) and wanted in value)
            or (isinstance(value, list) and any(_same(element, wanted) for element in value))
        )
    if not isinstance(wanted, bool):
        raise fail(path, "needs true or false")
    return (lambda value: value is not MISSING) if wanted else (lambda value: value is MISSING)


def _ordering(path: str, op: str, wanted: Any) -> Callable[[Any], bool]:
    if _is_number(wanted):
        kind: Callable[[Any], bool] = _is_number
    elif isinstance(wanted, str):

        def kind(value: Any) -> bool:
            return isinstance(value, str)

    else:
        raise fail(path, "needs a number or a string")
    if op == "gt":
        return lambda value: kind(value) and value > wanted
    if op == "gte":
        return lambda value: kind(value) and value >= wanted
    if op == "lt":
        return lambda value: kind(value) and value < wanted
    return lambda value: kind(value) and value <= wanted


def value_expr(path: str, op: str, wanted: Any, value: str, constant: Callable[[Any], str]) -> str:
    """The same test as `value_test`, as a Python expression over the variable named `value` (generated code:
    `segment_code`). `constant` binds a value from the definition to a name the code can read, so no text of the
    definition is ever part of the code."""
    test = value_test(path, op, wanted)  # checks the definition, with the same errors
    if op in ("in", "contains"):
        return f"{constant(test)}({value})"
    if op == "exists":
        return f"{value} is not MISSING" if wanted else f"{value} is MISSING"
    if op in ("eq", "ne"):
        if isinstance(wanted, bool):
            same = f"{value} is {constant(wanted)}"
        elif _is_number(wanted):  # a number equals a number of the same value, never a boolean
            same = f"({value} == {constant(wanted)} and type({value}) is not bool)"
        else:
            same = f"{value} == {constant(wanted)}"  # MISSING and booleans equal no string, list or mapping
        return same if op == "eq" else f"not ({same})"
    sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
    number = _is_number(wanted)
    kind = f"(type({value}) is int or type({value}) is float)" if number else f"isinstance({value}, str)"
    return f"({kind} and {value} {sign} {constant(wanted)})"
