"""Time: ISO 8601 in, UTC out; a timestamp without an offset is UTC."""

import time
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_instant(value: str) -> datetime:
    text = value.strip()
    if not text:
        raise ValueError("must be an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{value}' is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_instant(moment: datetime) -> str:
    """UTC with millisecond precision and a Z, the shape the API returns everywhere."""
    if moment.tzinfo is not UTC:  # already UTC: skip the conversion, on every order's hot path
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utcnow() -> datetime:
    return datetime.now(UTC)


def now_us() -> int:
    """Now, in µs since the epoch: the unit of every *_at integer the store keeps."""
    return time.time_ns() // 1000


def to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def format_instant_us(micros: int) -> str:
    return format_instant(datetime.fromtimestamp(micros / 1_000_000, UTC))
