"""Time: ISO 8601 in, UTC out; a timestamp without an offset is UTC."""

import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from normalizer.problems import InputProblem

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_instant(value: str) -> datetime:
    text = value.strip()
    if not text:
        raise InputProblem("must be an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InputProblem("not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_instant(moment: datetime) -> str:
    """UTC with millisecond precision and a Z, the shape the API returns everywhere (a naive time is UTC)."""
    return format_instant_us(to_micros(moment))


def format_instant_us(micros: int) -> str:
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{_second(seconds)}.{fraction // 1000:03d}Z"


@lru_cache(maxsize=256)
def _second(seconds: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS` of a second since the epoch. Cached: orders accepted together share their second,
    and `datetime.isoformat` is costly on the worker's path, once for every order (docs/PERFORMANCE.md)."""
    return (_EPOCH + timedelta(seconds=seconds)).isoformat()[:19]


def utcnow() -> datetime:
    return datetime.now(UTC)


def now_us() -> int:
    """Now, in µs since the epoch: the unit of every *_at integer the store keeps."""
    return time.time_ns() // 1000


def to_micros(moment: datetime) -> int:
    """µs since the epoch; a naive time is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH  # in whole numbers: a timedelta divided by a timedelta is slower, on every order
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
