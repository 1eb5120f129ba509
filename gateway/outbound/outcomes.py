"""What an attempt's answer means: success only on 2xx; a redirect is a failure (never followed); 410 Gone disables
the destination; 429 and 503 wait at least their Retry-After; every other failure, timeouts and connection errors
included, retries after the next step of `delivery.retry_schedule` (with up to 20% jitter, never sooner), and
after the schedule's last step the delivery is dead."""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

_SLOW_DOWN = frozenset({429, 503})
_JITTER = 0.2
_MAX_RETRY_AFTER_SECONDS = 86_400.0


@dataclass(frozen=True, slots=True)
class Decision:
    status: str  # succeeded | failed | dead
    next_attempt_at: int | None  # µs
    disable: str | None = None  # the reason the destination is disabled now


def retry_after_seconds(value: str | None, now_seconds: float) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # not "²": a digit to isdigit(), not to float()
        return min(float(text), _MAX_RETRY_AFTER_SECONDS)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, moment.timestamp() - now_seconds), _MAX_RETRY_AFTER_SECONDS)


def decide(
    status_code: int | None,
    retry_after: float | None,
    tries: int,
    schedule: Sequence[float],
    now: int,
    rand: random.Random | None = None,
) -> Decision:
    """`status_code` None: no answer (timeout, connection error, refused address). `tries`: attempts made since
    the last replay, this one included."""
    if status_code is not None and 200 <= status_code < 300:
        return Decision("succeeded", None)
    disable = "the destination answered 410 Gone" if status_code == 410 else None
    if tries > len(schedule):
        return Decision("dead", None, disable)
    delay = schedule[tries - 1] * (1 + (rand or random).uniform(0, _JITTER))
    if status_code in _SLOW_DOWN and retry_after is not None:
        delay = max(delay, retry_after)
    return Decision("failed", now + int(delay * 1_000_000), disable)
