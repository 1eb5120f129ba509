"""How deep a request body's JSON nests, checked before anything parses it.

The parsers stop at a fixed depth: pydantic's (the Push Order API) at 200 levels, the standard library's (the
adapters, in the worker) at the interpreter's recursion limit, with a RecursionError rather than a parse error.
A body past the limit is refused at the door with a 400 that says why, instead of failing later as a 500 or a
job that can never be translated.
"""

import re

MAX_JSON_DEPTH = 200
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
_OPENING = frozenset(b"[{")


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Does `body` (JSON or not) open more than `limit` arrays or objects inside each other?"""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # the usual case, at the cost of two scans in C
    depth = 0
    for match in _BRACKETS.finditer(_STRING.sub(b'""', body)):
        if match.group()[0] in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
