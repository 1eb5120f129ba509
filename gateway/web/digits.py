"""A number a client writes as text (a page cursor, a limit, a session cookie's expiry): ASCII digits only, at most
18 of them. `str.isdigit` also holds for "²", which `int` refuses, and `int` refuses more than 4,300 digits: either
was an internal error before this rule."""

import re

_DIGITS = re.compile(r"[0-9]{1,18}")  # 18 digits stay below SQLite's largest integer


def small_number(text: str) -> int | None:
    """`text` as a number when it is 1 to 18 ASCII digits, else None."""
    return int(text) if _DIGITS.fullmatch(text) else None
