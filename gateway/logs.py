"""Logs: one JSON object per line. Messages carry ids, counts and reasons, never secrets or payloads."""

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

from normalizer.timefmt import format_instant

# Record attributes that are not context fields; uvicorn adds a terminal-coloured copy of its message.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": format_instant(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = type(record.exc_info[1]).__name__
            entry["traceback"] = _stack(record.exc_info[1])
        return json.dumps(entry, default=str)


def _stack(exc: BaseException) -> str:
    """Where `exc` (and what it was raised from) came from, each exception named by its type alone: their
    messages often quote the input they failed on, and that is payload data."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 10:
        parts.append("".join(traceback.format_tb(current.__traceback__)) + type(current).__name__)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return "\n-- raised while handling --\n".join(reversed(parts))


_EMAIL_SEGMENT = re.compile(r"[^/]*(?:@|%40)[^/]*", re.IGNORECASE)


def redact_path(path: str) -> str:
    """A request path fit for a log line: a segment holding an email address (the read API's
    /api/v1/subscribers/{email}/…) becomes `{email}`."""
    return _EMAIL_SEGMENT.sub("{email}", path)


def setup(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


UVICORN_LOG_CONFIG: dict[str, Any] = {"version": 1, "disable_existing_loggers": False}
