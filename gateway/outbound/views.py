"""Deliveries and destinations as the API and the CLI show them."""

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from normalizer.timefmt import format_instant_us


def _time(micros: int | None) -> str | None:
    return None if micros is None else format_instant_us(micros)


def delivery_view(row: dict[str, Any]) -> dict[str, Any]:
    view = {
        "deliveryId": row["deliveryId"],
        "destination": row["destination"],
        "eventId": row["eventId"],
        "type": row["type"],
        "status": row["status"],
        "attemptCount": row["attemptCount"],
        "createdAt": _time(row["createdAt"]),
        "nextAttemptAt": _time(row["nextAttemptAt"]) if row["status"] in ("pending", "failed") else None,
    }
    if "attempts" in row:
        view["attempts"] = [{**attempt, "at": _time(attempt["at"])} for attempt in row["attempts"]]
    return view


def public_url(url: str) -> str:
    """The URL without credentials or query string, which may carry a token of the receiver's."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def destination_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "url": public_url(row["url"]),
        "enabled": bool(row["enabled"]),
        "disabledAt": _time(row["disabledAt"]),
        "disabledReason": row["disabledReason"],
        "pending": row["pending"],
        "dead": row["dead"],
        "failingSince": _time(row["failingSince"]),
        "lastSuccessAt": _time(row["lastSuccessAt"]),
        "lastFailureAt": _time(row["lastFailureAt"]),
    }
