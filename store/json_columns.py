"""JSON for the columns the worker writes on every order: orjson, faster than the standard library on
these small objects (docs/PERFORMANCE.md). Anything orjson refuses (an integer beyond 64 bits in client
properties) falls back to the standard library, so what serialises is the same set of values."""

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


loads = orjson.loads
