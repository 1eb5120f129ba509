"""What came in, per source, since the process started: accepted, duplicate, recorded, ignored and rejected
deliveries, and per reason for the ignored and rejected ones. Kept in memory on purpose: a forged or ignored
request must cost the gateway no write. The metrics endpoint and the operator page read the same counts."""

import logging
from collections import Counter

log = logging.getLogger("gateway.web")

OUTCOMES = ("queued", "duplicate", "recorded", "ignored", "rejected")
_MAX_REASONS = 100  # per source and outcome; past it, "other" (reasons are code-defined, but topics vary)


class DeliveryCounts:
    def __init__(self) -> None:
        self.by_outcome: Counter[tuple[str, str]] = Counter()
        self.by_reason: Counter[tuple[str, str, str]] = Counter()
        self._reasons: Counter[tuple[str, str]] = Counter()

    def add(self, source: str, outcome: str) -> None:
        self.by_outcome[(source, outcome)] += 1

    def refuse(self, source: str, outcome: str, reason: str, **context: str) -> None:
        """An ignored or rejected delivery: counted with its reason and logged at info (never the payload)."""
        self.by_outcome[(source, outcome)] += 1
        key = (source, outcome, reason)
        if key not in self.by_reason:
            if self._reasons[(source, outcome)] >= _MAX_REASONS:
                key = (source, outcome, "other")
            else:
                self._reasons[(source, outcome)] += 1
        self.by_reason[key] += 1
        log.info(f"delivery {outcome}", extra={"source": source, "reason": reason, **context})

    def of(self, source: str) -> dict[str, int]:
        return {outcome: self.by_outcome[(source, outcome)] for outcome in OUTCOMES}

    def reasons(self, source: str, outcome: str) -> dict[str, int]:
        return {
            reason: count
            for (each, kind, reason), count in sorted(self.by_reason.items())
            if each == source and kind == outcome
        }
