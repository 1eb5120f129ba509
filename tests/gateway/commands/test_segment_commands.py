"""The segment commands: `check-config` refuses a bad definition naming its segment and key, and
`segments rebuild [--emit]` re-evaluates every subscriber, recording events only when asked."""

from pathlib import Path
from typing import Any

from tests.conftest import order, write_config
from tests.gateway._server import cli
from tests.gateway.engine.test_segments import EMAIL, SEGMENTS, segment_events


def test_check_config_names_the_segment_and_key_of_a_bad_definition(tmp_path: Path) -> None:
    bad = {"vip": {"all": [{"attribute": "totalSpent", "gte": 500}, {"segment": "whales"}]}}
    for command in ("check-config", "serve", "worker"):
        result = cli("--config", str(write_config(tmp_path, segments=bad)), command)
        assert (result.returncode, result.stdout) == (2, ""), command
        assert (
            result.stderr == "commerce-gateway: config error: segments.vip.all[1].segment: unknown segment 'whales'\n"
        )
    good = cli("--config", str(write_config(tmp_path, segments=SEGMENTS)), "check-config")
    assert good.returncode == 0, good.stderr
    assert "segments: lapsed, lapsed-vip, recent, tiktok, vip" in good.stdout


def test_rebuild_without_and_with_emit(make_harness: Any, tmp_path: Path) -> None:
    harness = make_harness(segments={"tiktok": SEGMENTS["tiktok"]})
    harness.post_order(order("o-1"))
    harness.post_order(order("o-2", customer={"email": "b@example.com"}))
    harness.drain()
    assert segment_events(harness) == [("segment.entered", "tiktok")]
    # A segment added: a silent rebuild fills it without events.
    config = write_config(
        tmp_path, segments={"tiktok": SEGMENTS["tiktok"], "big": {"attribute": "ordersCount", "gte": 1}}
    )
    silent = cli("--config", str(config), "segments", "rebuild")
    assert silent.returncode == 0, silent.stderr
    assert "rebuilt 2 segment(s) over 2 subscriber(s)" in silent.stdout
    assert "2 entered, 0 left (no events)" in silent.stdout
    assert segment_events(harness) == [("segment.entered", "tiktok")]
    # A definition changed behind the running gateway's back: --emit records each change, once.
    config = write_config(
        tmp_path, segments={"tiktok": SEGMENTS["tiktok"], "big": {"attribute": "ordersCount", "gte": 2}}
    )
    loud = cli("--config", str(config), "segments", "rebuild", "--emit")
    assert loud.returncode == 0, loud.stderr
    assert "0 entered, 2 left (events recorded)" in loud.stdout
    assert segment_events(harness)[-1] == ("segment.exited", "big")
    assert segment_events(harness, "b@example.com") == [("segment.exited", "big")]
    again = cli("--config", str(config), "segments", "rebuild", "--emit", "--config", str(config))
    assert "0 entered, 0 left" in again.stdout
    dropped = cli("--config", str(write_config(tmp_path, segments={})), "segments", "rebuild")
    assert "dropped 2 segment(s) no longer configured: big, tiktok" in dropped.stdout
    assert harness.subscriber(EMAIL)["segments"] == []
    # Defined again, a segment starts afresh: entering it is a new transition, recorded once.
    config = write_config(tmp_path, segments={"tiktok": SEGMENTS["tiktok"]})
    for _ in range(2):
        readded = cli("--config", str(config), "segments", "rebuild", "--emit")
        assert readded.returncode == 0, readded.stderr
    assert segment_events(harness) == [
        ("segment.entered", "tiktok"),
        ("segment.exited", "big"),
        ("segment.entered", "tiktok"),
    ]
