"""Instructions per accepted `POST /api/v1/orders` request of the serving process, counted by callgrind:
repeatable whatever else the machine is doing, so a change to the ingest path is judged by this figure rather
than by `bench/ingest.py`'s wall-clock rates.

Each server (the bare endpoint of `bench/ingest.py`, and the gateway's `serve` with `durability: full`, accept
only: `--no-worker`, so the figure is ingest's own) runs under `valgrind --tool=callgrind` with a fixed hash
seed, takes a warm-up and then N requests from a light client (32 keep-alive connections, one request on each
per round, so the gateway groups them into commits much as it does saturated), and is stopped. The figure is
(instructions of the run with N requests − those of the run with N/4) / (N − N/4): start-up, warm-up and
shutdown cancel out. The ratio bare/gateway is the saturated throughput ratio `bench/ingest.py` measures, as far
as the server's CPU decides it (the worker's share aside).

    python bench/ingest_instructions.py                   # 1,200 requests (a few minutes under valgrind)
    python bench/ingest_instructions.py --requests 400    # quicker, a little noisier
    python bench/ingest_instructions.py --only gateway --keep /tmp/cg   # callgrind outputs for callgrind_annotate
"""

import argparse
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import ingest  # noqa: E402  (bench/ingest.py: the bare server, the order template, the API key)

CONNECTIONS = 32
WARM_UP_ROUNDS = 4
_STARTUP_SECONDS = 600  # under valgrind, imports alone take a minute or more on a loaded machine


def _request(body: bytes) -> bytes:
    head = (
        "POST /api/v1/orders HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {ingest.API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _read_response(sock: socket.socket, pending: bytes) -> tuple[int, bytes]:
    """(status, what was read past this response) of one keep-alive response."""
    data = pending
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("the server closed a connection")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head)[1])  # type: ignore[index]
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(head.split(b" ", 2)[1]), rest[length:]


def _post_rounds(port: int, rounds: int, first: int, template: str) -> None:
    """`rounds` rounds of one request on each of CONNECTIONS connections; every answer must be 202."""
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=_STARTUP_SECONDS) for _ in range(CONNECTIONS)]
    pending = [b""] * CONNECTIONS
    try:
        for number in range(first, first + rounds):
            for index, sock in enumerate(sockets):
                sock.sendall(_request((template % (index, number, (number * CONNECTIONS + index) % 1000)).encode()))
            for index, sock in enumerate(sockets):
                status, pending[index] = _read_response(sock, pending[index])
                if status != 202:
                    raise SystemExit(f"answered {status}, not 202")
    finally:
        for sock in sockets:
            sock.close()


def counted(target: str, requests: int, folder: Path) -> int:
    """Instructions of one server run under callgrind: start, warm-up, `requests` requests, stop."""
    port = ingest._free_port()
    out = folder / f"callgrind-{target}-{requests}.out"
    log = folder / f"{target}-{requests}.log"
    if target == "bare":
        server = [sys.executable, str(BENCH / "ingest.py"), "--bare-server", str(port)]
    else:
        config = folder / "config.yaml"
        database = folder / f"{target}-{requests}.db"
        settings = {"database": str(database), "durability": target, "api_keys": [ingest.API_KEY]}
        config.write_text(json.dumps(settings | {"log_level": "warning"}))
        server = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)]
        server.append("--no-worker")
    command = ["env", "PYTHONHASHSEED=0", "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *server]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    try:
        ingest._wait_ready(port, process, log, _STARTUP_SECONDS)
        template = ingest._order_template()
        _post_rounds(port, WARM_UP_ROUNDS, 0, template)
        _post_rounds(port, requests // CONNECTIONS, WARM_UP_ROUNDS, template)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=_STARTUP_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    found = re.search(r"Collected : (\d+)", log.read_text())
    if found is None:
        raise SystemExit(f"callgrind printed no total:\n{log.read_text()[-3000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1200, help="requests in the measured run (default 1,200)")
    parser.add_argument("--only", choices=("bare", "gateway"), help="count one server only")
    parser.add_argument("--keep", type=Path, help="keep the callgrind outputs here (for callgrind_annotate)")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    many = max(2, args.requests // CONNECTIONS) * CONNECTIONS
    few = max(1, many // CONNECTIONS // 4) * CONNECTIONS
    targets = {"bare": "bare", "gateway": "full"}
    per_request: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-instructions-") as tmp:
        folder = Path(tmp)
        for name, target in targets.items():
            if args.only not in (None, name):
                continue
            total_many, total_few = counted(target, many, folder), counted(target, few, folder)
            per_request[name] = (total_many - total_few) / (many - few)
            print(f"  {name:<8} {per_request[name]:12,.0f} instructions per request", flush=True)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for out in folder.glob("callgrind-*.out*"):
                shutil.copy(out, args.keep / out.name)
    print(
        f"ingest instructions per accepted request (callgrind, {many:,} − {few:,} requests, {CONNECTIONS} connections):"
        + "".join(f" {name} {value:,.0f};" for name, value in per_request.items())
        + (f" bare/gateway {per_request['bare'] / per_request['gateway']:.3f}" if len(per_request) == 2 else ""),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
