"""The global event feed, the destinations list, and config errors for destinations."""

from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, load
from tests.conftest import order, write_config
from tests.gateway.outbound._support import HMAC_SECRET, build, destination


def test_the_event_feed_pages_in_recording_order(harness: Any) -> None:
    for i in range(3):
        harness.post_order(order(f"o-{i}", customer={"email": f"c{i}@example.com"}))
    harness.drain()
    first = harness.get("/api/v1/events", limit=2).json()
    assert [e["properties"]["orderId"] for e in first["events"]] == ["o-0", "o-1"]
    assert [e["email"] for e in first["events"]] == ["c0@example.com", "c1@example.com"]
    assert first["events"][0]["name"] == "ecommerce.order_placed"
    rest = harness.get("/api/v1/events", after=first["nextAfter"]).json()
    assert [e["properties"]["orderId"] for e in rest["events"]] == ["o-2"]
    empty = harness.get("/api/v1/events", after=rest["nextAfter"]).json()
    assert empty == {"events": [], "nextAfter": rest["nextAfter"]}
    assert len(harness.get("/api/v1/events", limit=5000).json()["events"]) == 3  # clamped to 1,000
    for params in ({"limit": 0}, {"after": "x"}, {"after": 10**23}, {"after": -1}):
        answer = harness.get("/api/v1/events", **params)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "validation_error"
    assert harness.client.get("/api/v1/events").status_code == 401


def test_destinations_list_hides_credentials_in_the_url(make_harness: Any) -> None:
    url = "https://user:pw@crm.example.com:8443/hooks?token=abc"
    harness = build(make_harness, {"crm": destination(url)})
    [listed] = harness.get("/api/v1/destinations").json()["destinations"]
    assert listed["url"] == "https://crm.example.com:8443/hooks"
    assert listed["enabled"] is True and listed["pending"] == 0 and listed["dead"] == 0
    missing = harness.client.post("/api/v1/destinations/nope/enable", headers=harness.headers)
    assert missing.status_code == 404


def test_the_operator_page_hides_credentials_in_the_url(make_harness: Any) -> None:
    from tests.gateway.web.test_admin import log_in

    url = "https://user:pa55word@crm.example.com/hooks?token=receivers-token"
    harness = build(make_harness, {"crm": destination(url)})
    assert log_in(harness).status_code == 303
    page = harness.client.get("/admin").text
    assert "https://crm.example.com/hooks" in page
    assert "pa55word" not in page and "receivers-token" not in page


@pytest.mark.parametrize(
    ("block", "where"),
    [
        ({"url": "ftp://x.example.com", "secrets": [HMAC_SECRET]}, "destinations.crm.url"),
        ({"url": "https://x.example.com:99999/hooks", "secrets": [HMAC_SECRET]}, "destinations.crm.url"),
        ({"url": "https://x.example.com:0/hooks", "secrets": [HMAC_SECRET]}, "destinations.crm.url"),
        ({"url": "https://x.example.com/my hooks", "secrets": [HMAC_SECRET]}, "destinations.crm.url"),
        ({"url": "https://x.example.com/h\u00fcks", "secrets": [HMAC_SECRET]}, "destinations.crm.url"),
        ({"url": "https://x.example.com", "secrets": ["whsec_bm90IGEgc2VjcmV0"]}, "destinations.crm.secrets"),
        ({"url": "https://x.example.com", "secrets": []}, "destinations.crm.secrets"),
        ({"url": "https://x.example.com", "secrets": [HMAC_SECRET], "timeout": "soon"}, "destinations.crm.timeout"),
        ({"url": "https://x.example.com", "secrets": [HMAC_SECRET], "colour": 1}, "destinations.crm.colour"),
    ],
)
def test_a_bad_destination_fails_the_start_naming_the_key(tmp_path: Path, block: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as failed:
        load(write_config(tmp_path, destinations={"crm": block}))
    assert str(failed.value).startswith(where)
    assert "bm90IGEgc2VjcmV0" not in str(failed.value)


def test_delivery_settings_parse_durations_and_networks(tmp_path: Path) -> None:
    settings = {
        "retry_schedule": ["5s", "1m", "2h", "1d"],
        "disable_after": "2d",
        "allow_private_networks": ["10.0.0.0/8"],
    }
    config = load(write_config(tmp_path, delivery=settings))
    assert config.delivery.retry_schedule == [5, 60, 7200, 86400]
    assert config.delivery.disable_after == 2 * 86400
    with pytest.raises(ConfigError) as failed:
        load(write_config(tmp_path, delivery={"allow_private_networks": ["10.0.0.1/8"]}))
    assert str(failed.value).startswith("delivery.allow_private_networks")
