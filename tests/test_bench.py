"""The benchmark scripts stay runnable: a tiny worker drain and a few deliveries end to end, and the load
generator's order body is one the API accepts. (Figures are in docs/PERFORMANCE.md; timings are never asserted
in tests.)"""

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from normalizer import PushOrder

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_process_bench_drains_a_tiny_queue(capsys: pytest.CaptureFixture[str]) -> None:
    assert _load("process").main(["--orders", "50", "--ledger", "100", "--small-ledger", "10", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("drained 50 orders") == 4  # two drains of each ledger, each checked complete by `check`
    assert out.count("ratio large/small ledger") == 2
    assert "median of 2:" in out


def test_ingest_bench_posts_valid_orders() -> None:
    ingest = _load("ingest")
    body = ingest._order_template() % (2, 17, 99)
    order = PushOrder.model_validate_json(body)
    assert order.orderId == "bench-2-17"
    assert order.customer.email == "buyer-99@example.com"
    lua = ingest._lua(ingest._order_template(), pause_ms=12.5)
    assert "function delay()" in lua and "Bearer " + ingest.API_KEY in lua
    assert json.loads(ingest._order_template().replace("%d", "1").replace("%%", "%"))["totalCents"] == 8850


def test_deliver_bench_sends_a_few_deliveries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deliver = _load("deliver")
    receiver, answering, _silent = deliver.start_receiver()
    try:
        assert deliver.throughput(tmp_path, answering, 50) > 0  # raises unless all 50 succeeded
    finally:
        deliver.stop_receiver(receiver)
    assert "50 deliveries in" in capsys.readouterr().out


def test_admin_bench_times_every_page_over_a_small_database(capsys: pytest.CaptureFixture[str]) -> None:
    assert _load("admin").main(["--jobs", "2000", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "built 2,000 jobs" in out and "/admin/subscribers" in out and "/metrics" in out


def test_metrics_bench_drains_with_and_without_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load("metrics")
    built = _load("process").build(200, 50, tmp_path)
    for metrics in (False, True):
        bench.drain_once(built, metrics)  # with metrics, it checks every job was counted
    drains = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [drain["done"] for drain in drains] == [200, 200]


def test_lifecycle_bench_runs_each_part_at_a_tiny_size(capsys: pytest.CaptureFixture[str]) -> None:
    lifecycle = _load("lifecycle")
    tiny = ["--orders", "40", "--catalog", "20", "--repeat", "1", "--due", "30", "--reminders", "1"]
    assert lifecycle.main(["all", *tiny, "--active", "300", "--small-active", "30"]) == 0
    out = capsys.readouterr().out
    assert "lifecycle on : 40 orders" in out and "lifecycle off: 40 orders" in out and "on/off" in out
    assert "fire: 30 reminders due at once fired" in out
    assert "latency: 1 reminders fired" in out
    assert "memory: RssAnon with 300 / with 30 active automations" in out


def test_segments_bench_drains_and_rebuilds_a_tiny_ledger(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load("segments")
    assert len(bench.SEGMENTS) == 20
    assert bench.main(["--orders", "30", "--ledger", "100", "--rebuild-orders", "300", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("drained 30 orders") == 2  # with no segments, then with the 20, each checked complete
    assert "ratio of medians" in out
    assert "rebuild: 20 segments over 90 subscribers and 300 orders" in out


def test_ingest_instructions_client_posts_valid_orders_and_reads_answers() -> None:
    counting = _load("ingest_instructions")
    template = counting.ingest._order_template()
    request = counting._request((template % (3, 5, 7)).encode())
    head, _, body = request.partition(b"\r\n\r\n")
    assert f"Content-Length: {len(body)}".encode() in head and b"Authorization: Bearer " in head
    assert PushOrder.model_validate_json(body).orderId == "bench-3-5"

    class _Socket:
        def __init__(self, chunks: list[bytes]) -> None:
            self.chunks = chunks

        def recv(self, size: int) -> bytes:
            return self.chunks.pop(0)

    answer = b'HTTP/1.1 202 Accepted\r\ncontent-length: 4\r\n\r\n{"a"'
    assert counting._read_response(_Socket([answer[:20], answer[20:] + b"}HTTP"]), b"") == (202, b"}HTTP")


def test_instructions_destination_copy_routes_every_event_of_the_drain(tmp_path: Path) -> None:
    from store import outbox
    from store.db import connect
    from store.schema import migrate

    built = tmp_path / "ledger-1.db"
    conn = connect(built)
    migrate(conn)
    conn.close()
    copy = _load("instructions").with_destination(str(built))
    conn = connect(Path(copy))
    routes = outbox.load(conn)
    conn.close()
    assert copy != str(built) and routes.destinations == 1
    assert routes.match("ecommerce.order_placed", False) == ("crm",)


def test_cli_bench_times_each_command_against_a_bare_interpreter(capsys: pytest.CaptureFixture[str]) -> None:
    assert _load("cli").main(["--rounds", "1"]) == 0
    out = capsys.readouterr().out
    for name in ("python -c pass", "the serving runtime imported", "--version", "check-config", "jobs list"):
        assert f"  {name} " in out
    assert out.count("x the bare interpreter") == 6
