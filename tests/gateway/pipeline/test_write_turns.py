"""The in-process worker gives way to requests in proportion to their rate: fully under a burst (request latency
comes first, the queue is durable), hardly at all when they are few (the queue must not fall behind)."""

import pytest

from gateway.pipeline.write_turns import WriteTurns


def test_the_worker_pauses_in_proportion_to_the_request_rate() -> None:
    turns = WriteTurns()
    assert turns.pause(0.01) == 0.0  # no requests yet
    with turns.ingest(requests=100):
        pass
    light = turns.pause(0.01)
    with turns.ingest(requests=1000):
        pass
    moderate = turns.pause(0.01)
    with turns.ingest(requests=5000):
        pass
    heavy = turns.pause(0.01)
    assert 0 < light < moderate < heavy
    assert light < 0.01  # the worker keeps most of its time
    assert heavy == pytest.approx(0.08)  # at most 1/9 of the time for the worker
