"""The queue (docs/operations.md) through the adapter protocol: webhook intake, duplicates, retries with
backoff, dead jobs kept with their error, replay (API), and the rejected-signature counter. A small test
platform exercises the same path every real adapter takes."""

import json
from typing import Any

import pytest

from adapters import REGISTRY
from tests.conftest import Harness
from tests.gateway._fake_platform import SECRET, FakePlatform, canonical, deliver


@pytest.fixture(params=["serve", "standalone"])
def platform(make_harness: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Harness:
    """Every test here runs with both workers: `serve`'s (jobs taken in the transaction that applies them) and
    the `worker` command's (leased batches)."""
    monkeypatch.setitem(REGISTRY, "testplatform", FakePlatform)
    harness: Harness = make_harness(
        standalone=request.param == "standalone",
        sources={"shop": {"type": "testplatform", "secrets": ["old-secret", SECRET]}},
        worker={"max_attempts": 3},
    )
    return harness


def test_delivery_queued_then_processed(platform: Harness) -> None:
    response = deliver(platform, canonical())
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["queued"] is True and body["jobId"].startswith("commerce-webhook-")
    platform.drain()
    assert platform.job(body["jobId"])["status"] == "done"
    assert platform.attributes("hook@example.com")["totalSpent"] == 25.0
    assert platform.events("hook@example.com")[0]["properties"]["provider"] == "testplatform"
    assert platform.get("/api/v1/orders/w-1", source="shop").json()["totalCents"] == 2500


def test_repeat_delivery_is_a_duplicate_and_enqueues_nothing(platform: Harness) -> None:
    first = deliver(platform, canonical()).json()
    assert deliver(platform, canonical()).json() == {"success": True, "duplicate": True}
    assert platform.drain() == 1
    assert platform.job(first["jobId"])["status"] == "done"


def test_rotation_old_secret_still_verifies(platform: Harness) -> None:
    assert deliver(platform, canonical(), secret="old-secret").status_code == 200


def test_bad_signature_is_401_stores_nothing_and_counts(platform: Harness) -> None:
    response = deliver(platform, canonical(), secret="forged")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    missing = platform.client.post("/webhooks/shop", content=b"{}", headers={"X-Test-Topic": "order"})
    assert missing.status_code == 401
    with platform.db() as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
    sources = {source["name"]: source for source in platform.get("/api/v1/sources").json()["sources"]}
    assert list(sources) == ["api", "shop"]
    shop = sources["shop"]
    assert (shop["type"], shop["rejected"], shop["rejectedSignatures"], shop["received"]) == ("testplatform", 2, 2, 0)
    assert shop["reasons"] == {"ignored": {}, "rejected": {"no matching signature": 2}}


def test_unknown_source_is_404(platform: Harness) -> None:
    response = platform.client.post("/webhooks/nowhere", content=b"{}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_unhandled_topic_is_acknowledged_as_ignored(platform: Harness) -> None:
    response = deliver(platform, canonical(), topic="customers/update")
    assert response.status_code == 200
    assert response.json() == {"success": True, "ignored": True, "reason": "topic 'customers/update' is not handled"}
    assert platform.drain() == 0


def test_recorded_delivery_is_stored_done_and_not_processed(platform: Harness) -> None:
    response = deliver(platform, b"webhook_id=7", topic="ping").json()
    assert response["recorded"] is True
    job = platform.job(response["jobId"])
    assert (job["status"], job["warnings"]) == ("done", ["ping recorded"])
    assert platform.drain() == 0


def test_untranslatable_delivery_is_dead_kept_and_replayable(platform: Harness) -> None:
    job_id = deliver(platform, canonical(mode="broken")).json()["jobId"]
    platform.drain()
    job = platform.job(job_id)
    assert job["status"] == "dead" and job["attempts"] == 1
    assert job["error"] == "TranslationError: unexpected shape: no line_items"
    with platform.db() as conn:
        (body,) = conn.execute("SELECT body FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    assert json.loads(body)["mode"] == "broken"  # the raw body stays stored
    listed = platform.get("/api/v1/jobs", status="dead").json()
    assert [j["jobId"] for j in listed["jobs"]] == [job_id] and listed["counts"]["dead"] == 1

    # "After a fix": the platform behaves, and a replay processes the stored delivery.
    with platform.db() as conn:
        conn.execute("UPDATE jobs SET body = ? WHERE job_id = ?", (json.dumps(canonical()).encode(), job_id))
    replay = platform.client.post(f"/api/v1/jobs/{job_id}/replay", headers=platform.headers)
    assert replay.status_code == 202 and replay.json()["jobId"] == job_id
    assert platform.job(job_id)["status"] == "queued"
    platform.drain()
    assert platform.job(job_id)["status"] == "done"
    assert platform.attributes("hook@example.com")["ordersCount"] == 1


def test_a_failing_job_amid_a_chunk_undoes_only_its_own_effects(platform: Harness) -> None:
    # The worker applies a chunk in one transaction; a failure rolls it back and runs it again job by job.
    def hook(conn: Any, applied: Any, now: int) -> None:
        if applied.order.orderId == "c-2":  # fails after c-2's ledger row, subscriber and event are written
            raise RuntimeError("automation failed")

    platform.worker.engine.add_hook(hook)
    first = deliver(platform, canonical("c-1")).json()["jobId"]
    failing = deliver(platform, canonical("c-2", totalCents=7000)).json()["jobId"]
    broken = deliver(platform, canonical("c-3", mode="broken")).json()["jobId"]
    last = deliver(platform, canonical("c-4", totalCents=1000)).json()["jobId"]
    assert platform.drain() == 4
    assert [platform.job(j)["status"] for j in (first, failing, broken, last)] == ["done", "failed", "dead", "done"]
    # An unexpected exception is named by its type: its message could quote payload data.
    assert platform.job(failing)["error"] == "RuntimeError (its message is left out: it may quote the payload)"
    assert platform.attributes("hook@example.com") == {"ltv": 35.0, "totalSpent": 35.0, "ordersCount": 2, "aov": 17.5}
    assert [e["properties"]["orderId"] for e in platform.events("hook@example.com")] == ["c-1", "c-4"]
    with platform.db() as conn:
        assert conn.execute("SELECT order_id FROM orders ORDER BY id").fetchall() == [("c-1",), ("c-4",)]


def _age(harness: Harness, days: int, *job_ids: str) -> None:
    with harness.db() as conn:
        for job_id in job_ids:
            conn.execute(
                "UPDATE jobs SET finished_at = finished_at - ? WHERE job_id = ?", (days * 86_400 * 10**6, job_id)
            )


def test_done_jobs_past_retention_are_pruned_and_dead_ones_kept(platform: Harness) -> None:
    old = deliver(platform, canonical("p-1", mode="wait", status="refunded", refundAmountCents=500)).json()["jobId"]
    platform.drain()  # its first attempt fails: the order has not arrived
    recent = deliver(platform, canonical("p-1")).json()["jobId"]
    platform.post_order(canonical("p-2"))
    dead = deliver(platform, canonical("p-3", mode="broken")).json()["jobId"]
    platform.drain()
    platform.make_retries_due()
    platform.drain()
    assert (platform.job(old)["status"], len(platform.job(old)["failedAttempts"])) == ("done", 1)
    _age(platform, 31, old, dead)  # the default keeps done jobs 30 days
    assert platform.worker.prune_done_jobs(force=True) == 1
    assert platform.get(f"/api/v1/jobs/{old}").status_code == 404
    with platform.db() as conn:  # its attempt went with it; the dead job keeps its own
        assert conn.execute("SELECT count(*) FROM job_attempts").fetchone()[0] == 1
    assert (platform.job(recent)["status"], platform.job(dead)["status"]) == ("done", "dead")
    assert len(platform.job(dead)["failedAttempts"]) == 1
    assert platform.attributes("hook@example.com")["ordersCount"] == 2  # what the pruned job did stays


def test_done_jobs_are_kept_forever_when_retention_is_off(make_harness: Any) -> None:
    harness: Harness = make_harness(worker={"keep_done_jobs_days": None})
    job_id = harness.post_order(canonical("k-1")).json()["jobId"]
    harness.drain()
    _age(harness, 3650, job_id)
    assert harness.worker.prune_done_jobs(force=True) == 0
    assert harness.job(job_id)["status"] == "done"


def test_replay_of_a_done_job_is_409_and_unknown_is_404(platform: Harness) -> None:
    job_id = deliver(platform, canonical()).json()["jobId"]
    platform.drain()
    assert platform.client.post(f"/api/v1/jobs/{job_id}/replay", headers=platform.headers).status_code == 409
    assert platform.client.post("/api/v1/jobs/nope/replay", headers=platform.headers).status_code == 404
    assert platform.client.post(f"/api/v1/jobs/{job_id}/replay").status_code == 401


def test_waiting_job_retries_with_backoff_then_succeeds(platform: Harness) -> None:
    waiting = deliver(platform, canonical("w-2", mode="wait", status="refunded", refundAmountCents=500)).json()
    platform.drain()
    job = platform.job(waiting["jobId"])
    assert job["status"] == "failed" and job["attempts"] == 1
    assert job["error"] == "waiting: order w-2 has not arrived"
    with platform.db() as conn:
        run_at, received = conn.execute(
            "SELECT run_at, received_at FROM jobs WHERE job_id = ?", (waiting["jobId"],)
        ).fetchone()
    assert run_at > received + 1_000_000  # not before the first backoff (2 s, with jitter)
    assert platform.drain() == 0  # not due yet

    deliver(platform, canonical("w-2"))
    platform.drain()
    platform.make_retries_due()
    platform.drain()
    job = platform.job(waiting["jobId"])
    assert (job["status"], job["attempts"], job["error"]) == ("done", 2, None)
    assert platform.attributes("hook@example.com")["totalSpent"] == 20.0


def test_a_job_failing_twice_then_done_shows_both_failed_attempts(platform: Harness) -> None:
    job_id = deliver(platform, canonical("w-3", mode="wait", status="refunded", refundAmountCents=500)).json()["jobId"]
    platform.drain()
    platform.make_retries_due()
    platform.drain()
    deliver(platform, canonical("w-3"))
    platform.drain()  # the order; the refund's third attempt is not due yet
    platform.make_retries_due()
    platform.drain()
    job = platform.job(job_id)
    assert (job["status"], job["attempts"]) == ("done", 3)
    failed = job["failedAttempts"]
    assert [(each["attempt"], each["outcome"], each["error"]) for each in failed] == [
        (1, "failed", "waiting: order w-3 has not arrived"),
        (2, "failed", "waiting: order w-3 has not arrived"),
    ]
    assert job["receivedAt"] <= failed[0]["at"] <= failed[1]["at"] <= job["finishedAt"]
    assert all(each["nextAttemptAt"] > each["at"] for each in failed)  # when the retry was due, before it was hurried


def test_job_is_dead_after_the_last_attempt_with_its_error(platform: Harness) -> None:
    job_id = deliver(platform, canonical("never", mode="wait")).json()["jobId"]
    for _ in range(3):
        platform.drain()
        platform.make_retries_due()
    job = platform.job(job_id)
    assert (job["status"], job["attempts"]) == ("dead", 3)
    assert job["error"] == "waiting: order never has not arrived"
    assert [(each["attempt"], each["outcome"]) for each in job["failedAttempts"]] == [
        (1, "failed"),
        (2, "failed"),
        (3, "dead"),
    ]
    assert job["failedAttempts"][-1]["nextAttemptAt"] is None
    assert {each["error"] for each in job["failedAttempts"]} == {"waiting: order never has not arrived"}


def test_invalid_canonical_order_from_an_adapter_is_dead_naming_the_field(platform: Harness) -> None:
    job_id = deliver(platform, canonical(currency="ZZZ")).json()["jobId"]
    platform.drain()
    job = platform.job(job_id)
    assert job["status"] == "dead"
    assert job["error"].startswith("invalid canonical order: currency:")


def test_canonical_job_lease_expiry_runs_it_again_exactly_once(platform: Harness) -> None:
    response = platform.post_order(canonical("lease-1"))
    job_id = response.json()["jobId"]
    with platform.db() as conn:  # a worker that leased the job and died: status processing, lease expired
        conn.execute(
            "UPDATE jobs SET status = 'processing', lease_owner = 'dead-worker', lease_expires = 1, attempts = 1"
            " WHERE job_id = ?",
            (job_id,),
        )
    platform.drain()
    job = platform.job(job_id)
    assert (job["status"], job["attempts"]) == ("done", 2)
    assert platform.attributes("hook@example.com")["ordersCount"] == 1


def test_accept_only_app_checkpoints_its_own_wal(platform: Harness) -> None:
    # The harness app runs without an in-process worker, as `serve --no-worker` does; its committer leaves
    # checkpoints to others, so without the app's own checkpointer every page would stay in the WAL.
    database = platform.config.database
    before = database.stat().st_size
    for number in range(200):
        body = canonical(f"wal-{number}", customer={"email": f"c{number}@example.com"}, properties={"pad": "x" * 500})
        assert platform.post_order(body).status_code == 202
    # The jobs' pages (200 bodies of ~700 bytes) are copied into the database file by a checkpoint: the first
    # pass that begins after the last 202 finds all of them committed. (The timeout is a safety net against a
    # checkpointer that never runs, not a timing assertion.)
    checkpointer = platform.client.app.state.gateway.committer.checkpointer
    assert checkpointer.wait_for_pass(timeout=60)
    assert database.stat().st_size > before + 100_000
