"""What each answer means, against a real receiver on loopback: 2xx succeeds; a redirect fails and is not
followed; 410 disables; 429/503 wait at least Retry-After; timeouts retry; the schedule ends in dead; a
destination failing for `disable_after` is disabled."""

import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from gateway.config import build_adapters, load
from gateway.web.app import create_app
from normalizer.timefmt import now_us
from tests.conftest import API_KEY, order, write_config
from tests.gateway._server import cli
from tests.gateway.outbound._receiver import Reply, receiving
from tests.gateway.outbound._support import LOOPBACK, build, destination, make_due, rows, send
from tests.gateway.web.test_metrics import TOKEN, value


def _status(harness: Any) -> tuple[str, int, int | None]:
    [row] = rows(harness, "SELECT status, attempts, next_attempt_at FROM deliveries")
    return row


def test_a_failure_retries_with_the_same_webhook_id_until_a_2xx(make_harness: Any) -> None:
    with receiving([Reply(500, body=b"oops"), Reply(502)], default=Reply(204)) as receiver:
        harness = build(make_harness, {"crm": destination(receiver.url)})
        harness.post_order(order())
        before = now_us()
        send(harness)
        status, attempts, next_at = _status(harness)
        assert (status, attempts) == ("failed", 1)
        assert next_at is not None and next_at >= before + 5_000_000  # the schedule's first step, 5 s
        make_due(harness)
        send(harness)
        make_due(harness)
        send(harness)
        got = receiver.wait_for(3)
    assert _status(harness)[:2] == ("succeeded", 3)
    assert len({r.headers["webhook-id"] for r in got}) == 1
    [delivery] = harness.get("/api/v1/deliveries").json()["deliveries"]
    read = harness.get(f"/api/v1/deliveries/{delivery['deliveryId']}").json()
    assert [a["statusCode"] for a in read["attempts"]] == [500, 502, 204]
    assert read["attempts"][0]["responseBody"] == "oops"
    assert read["attempts"][0]["error"] == "HTTP 500"
    assert read["status"] == "succeeded" and read["nextAttemptAt"] is None
    assert read["deliveryId"] == got[0].headers["webhook-id"]


def test_a_redirect_is_a_failure_and_is_not_followed(make_harness: Any) -> None:
    with receiving() as target, receiving([Reply(302, {"Location": target.url})]) as receiver:
        harness = build(make_harness, {"crm": destination(receiver.url)})
        harness.post_order(order())
        send(harness)
        receiver.wait_for(1)
    assert _status(harness)[0] == "failed"
    assert target.received == []


def test_410_disables_the_destination_until_enabled(make_harness: Any) -> None:
    with receiving([Reply(410)]) as receiver:
        harness = build(make_harness, {"crm": destination(receiver.url)})
        harness.post_order(order())
        send(harness)
        [listed] = harness.get("/api/v1/destinations").json()["destinations"]
        assert listed["enabled"] is False and "410" in listed["disabledReason"]
        harness.post_order(order("order-2"))
        make_due(harness)
        send(harness)
        assert len(receiver.received) == 1  # held while disabled
        enabled = harness.client.post("/api/v1/destinations/crm/enable", headers=harness.headers)
        assert enabled.status_code == 200 and enabled.json()["enabled"] is True
        make_due(harness)
        send(harness)
        receiver.wait_for(3)
    assert {row[0] for row in rows(harness, "SELECT status FROM deliveries")} == {"succeeded"}


def test_429_and_503_wait_at_least_retry_after(make_harness: Any) -> None:
    with receiving([Reply(429, {"Retry-After": "3600"}), Reply(503, {"Retry-After": "7200"})]) as receiver:
        harness = build(make_harness, {"crm": destination(receiver.url)})
        harness.post_order(order())
        before = now_us()
        send(harness)
        assert _status(harness)[2] >= before + 3600 * 1_000_000
        make_due(harness)
        before = now_us()
        send(harness)
        assert _status(harness)[2] >= before + 7200 * 1_000_000
        receiver.wait_for(2)


def test_retry_after_as_an_http_date_and_unreadable(make_harness: Any, caplog: Any) -> None:
    in_3h = formatdate(time.time() + 3 * 3600, usegmt=True)
    # "\xb2" is a superscript two in Latin-1, the header's encoding: a digit to str.isdigit, not to float().
    with receiving([Reply(503, {"Retry-After": in_3h}), Reply(429, {"Retry-After": "\xb2"})]) as receiver:
        harness = build(make_harness, {"crm": destination(receiver.url)})
        harness.post_order(order())
        before = now_us()
        send(harness)
        assert _status(harness)[2] >= before + (3 * 3600 - 2) * 1_000_000
        make_due(harness)
        before = now_us()
        send(harness)
        receiver.wait_for(2)
    status, _, next_at = _status(harness)
    assert status == "failed" and before + 5_000_000 <= next_at < before + 3600 * 1_000_000
    assert rows(harness, "SELECT status_code, error FROM delivery_attempts ORDER BY id") == [
        (503, "HTTP 503"),
        (429, "HTTP 429"),
    ]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_timeouts_retry_then_the_delivery_is_dead(make_harness: Any) -> None:
    with receiving(default=Reply(200, delay=5)) as receiver:
        slow = destination(receiver.url, timeout="0.2s")
        harness = build(make_harness, {"crm": slow}, retry_schedule=["1s"])
        harness.post_order(order())
        send(harness)
        assert _status(harness)[:2] == ("failed", 1)
        make_due(harness)
        send(harness)
        receiver.wait_for(2)
    assert _status(harness)[:2] == ("dead", 2)
    [delivery] = harness.get("/api/v1/deliveries", status="dead").json()["deliveries"]
    read = harness.get(f"/api/v1/deliveries/{delivery['deliveryId']}").json()
    assert [a["error"] for a in read["attempts"]] == ["timed out after 0.2 s"] * 2
    assert [a["statusCode"] for a in read["attempts"]] == [None, None]


def test_failing_for_disable_after_disables_and_is_logged(make_harness: Any, caplog: Any) -> None:
    with receiving(default=Reply(500, delay=0.02)) as receiver:
        harness = build(make_harness, {"crm": destination(receiver.url)}, disable_after="1ms")
        harness.post_order(order())
        send(harness)
        receiver.wait_for(1)
    [listed] = harness.get("/api/v1/destinations").json()["destinations"]
    assert listed["enabled"] is False
    assert listed["disabledReason"].startswith("failing without a success since")
    assert listed["lastFailureAt"] is not None and listed["pending"] == 1
    assert any(r.message == "destination disabled" for r in caplog.records)


def test_replay_one_dead_delivery_and_a_destination_since(make_harness: Any) -> None:
    with receiving([Reply(500), Reply(500), Reply(500)], default=Reply(200)) as receiver:
        harness = build(make_harness, {"crm": destination(receiver.url)}, retry_schedule=[])
        harness.post_order(order("a"))
        harness.post_order(order("b"))
        harness.post_order(order("c"))
        send(harness)
        dead = harness.get("/api/v1/deliveries", status="dead", limit=2).json()
        assert len(dead["deliveries"]) == 2 and dead["nextCursor"] is not None
        rest = harness.get("/api/v1/deliveries", status="dead", cursor=dead["nextCursor"]).json()
        assert len(rest["deliveries"]) == 1 and rest["nextCursor"] is None
        one = dead["deliveries"][0]["deliveryId"]
        assert harness.client.post(f"/api/v1/deliveries/{one}/replay", headers=harness.headers).status_code == 202
        send(harness)
        assert harness.get(f"/api/v1/deliveries/{one}").json()["status"] == "succeeded"
        replayed = harness.client.post(
            "/api/v1/destinations/crm/replay",
            headers=harness.headers,
            json={"status": "dead", "since": "2020-01-01T00:00:00Z"},
        )
        assert replayed.json() == {"success": True, "replayed": 2}
        send(harness)
        receiver.wait_for(6)
    assert {row[0] for row in rows(harness, "SELECT status FROM deliveries")} == {"succeeded"}
    missing = harness.client.post("/api/v1/deliveries/msg_nope/replay", headers=harness.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad = harness.client.post("/api/v1/destinations/crm/replay", headers=harness.headers, json={"since": "soon"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "since"


def test_the_operator_page_replays_a_destinations_dead_deliveries(make_harness: Any) -> None:
    from tests.gateway.web.test_admin import csrf_of, log_in

    with receiving([Reply(500), Reply(500)], default=Reply(200)) as receiver:
        harness = build(make_harness, {"crm": destination(receiver.url)}, retry_schedule=[])
        harness.post_order(order("a"))
        harness.post_order(order("b"))
        send(harness)
        assert {row[0] for row in rows(harness, "SELECT status FROM deliveries")} == {"dead"}
        assert log_in(harness).status_code == 303
        page = harness.client.get("/admin")
        assert 'action="/admin/destinations/crm/replay"' in page.text
        forged = harness.client.post("/admin/destinations/crm/replay", data={"csrf": "x" * 64})
        assert forged.status_code == 403
        replayed = harness.client.post("/admin/destinations/crm/replay", data={"csrf": csrf_of(page.text)})
        assert replayed.status_code == 200 and "dead deliveries are due again" in replayed.text
        send(harness)
        receiver.wait_for(4)
    assert {row[0] for row in rows(harness, "SELECT status FROM deliveries")} == {"succeeded"}
    again = harness.client.get("/admin")
    assert 'action="/admin/destinations/crm/replay"' not in again.text


def test_attempts_are_counted_by_destination_and_outcome(tmp_path: Path) -> None:
    """`serve` with its worker and sender: every attempt is counted once its outcome is recorded."""
    replies = [Reply(500), Reply(500)]
    with receiving(replies) as crm, receiving(default=Reply(410)) as gone:
        destinations = {"crm": destination(crm.url), "gone": destination(gone.url)}
        delivery = {"allow_private_networks": LOOPBACK, "retry_schedule": ["1ms", "1ms"]}
        config = load(write_config(tmp_path, destinations=destinations, delivery=delivery, metrics_token=TOKEN))
        app = create_app(config, build_adapters(config), list(config.api_keys), run_worker=True)
        with TestClient(app) as http:
            answer = http.post("/api/v1/orders", json=order(), headers={"Authorization": f"Bearer {API_KEY}"})
            assert answer.status_code == 202
            crm.wait_for(3)
            gone.wait_for(1)
            expected = {
                ("crm", "failed"): 2,
                ("crm", "succeeded"): 1,
                ("gone", "failed"): 1,
                ("crm", "dead"): 0,
                ("gone", "succeeded"): 0,
            }
            deadline = time.monotonic() + 30  # the outcomes are recorded in the sender's next turn
            while True:
                text = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
                counted = {
                    (name, outcome): value(
                        text, "commerce_gateway_delivery_attempts_total", destination=name, outcome=outcome
                    )
                    for name, outcome in expected
                }
                if counted == expected or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
    assert counted == expected


def test_a_delivery_of_a_removed_destination_is_not_replayed(make_harness: Any, tmp_path: Path) -> None:
    """Replaying a delivery whose destination was taken out of the config would leave it waiting for a sender that
    never comes: the API answers 409, the CLI says why, and the delivery stays as it was."""
    with receiving(default=Reply(500)) as receiver:
        before = build(make_harness, {"crm": destination(receiver.url)}, retry_schedule=[])
        before.post_order(order("a"))
        send(before)
        [dead] = before.get("/api/v1/deliveries", status="dead").json()["deliveries"]
    harness = make_harness()  # the same database, crm no longer configured
    answer = harness.client.post(f"/api/v1/deliveries/{dead['deliveryId']}/replay", headers=harness.headers)
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "conflict"
    assert "no longer configured" in answer.json()["error"]["message"]
    replayed = cli("deliveries", "replay", dead["deliveryId"], "--config", str(tmp_path / "config.yaml"))
    assert (replayed.returncode, replayed.stdout) == (1, "")
    assert replayed.stderr == (
        f"commerce-gateway: {dead['deliveryId']}: its destination is no longer configured, nothing would send it\n"
    )
    assert rows(harness, "SELECT status, tries FROM deliveries") == [("dead", 1)]
