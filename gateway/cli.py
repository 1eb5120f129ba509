"""The `commerce-gateway` command: serve (default), worker, replay, check-config, try-mapping, backfill, jobs,
timers, deliveries, destinations."""

import argparse
import importlib.metadata
import logging
import os
import secrets
import signal
import sqlite3
import sys
import threading
from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry

from adapters import Adapter
from gateway import logs, runtime
from gateway.commands import backfill, deliveries, init, jobs, segments, timers, try_mapping
from gateway.config import Config, ConfigError, load_with_adapters
from gateway.engine import build_engine, merged_totals, segment_rebuild
from gateway.metrics import JobMetrics, serve_metrics
from gateway.outbound.sender import Sender, sync_destinations
from gateway.pipeline.worker import Worker
from normalizer.timefmt import now_us
from store import job_reads, queue
from store.db import connect, transaction
from store.schema import migrate

log = logging.getLogger("gateway.cli")


def version() -> str:
    """The installed package's version (pyproject.toml's, once installed)."""
    try:
        return importlib.metadata.version("commerce-gateway")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="commerce-gateway", description="Commerce webhook gateway.")
    parser.add_argument("--config", default="config.yaml", help="path to config.yaml (default: ./config.yaml)")
    parser.add_argument("--version", action="version", version=f"commerce-gateway {version()}")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="HTTP server and worker in one process (the default)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000, help="1-65535 (default: 8000)")
    serve.add_argument("--no-worker", action="store_true", help="accept only; leave processing to `worker`")
    worker = commands.add_parser("worker", help="process queued jobs only")
    worker.add_argument("--metrics-port", type=int, help="answer Prometheus scrapes at :PORT/metrics (0: any port)")
    worker.add_argument("--metrics-host", default="127.0.0.1", help="the metrics endpoint's address (127.0.0.1)")
    replay = commands.add_parser("replay", help="re-queue one job, or every dead job")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("job_id", nargs="?", help="the jobId to re-queue (dead or failed)")
    which.add_argument("--all-dead", action="store_true", help="re-queue every dead job")
    commands.add_parser("check-config", help="validate the config file and exit")
    trial = commands.add_parser("try-mapping", help="print the canonical orders a saved payload becomes")
    trial.add_argument("source", help="a source name from config.yaml")
    trial.add_argument("payload", help="a file with the webhook body ('-': standard input)")
    trial.add_argument("-H", "--header", action="append", default=[], help="a request header, 'Name: value'")
    backfill.add_command(commands)
    jobs.add_command(commands)
    segments.add_command(commands)
    timers.add_command(commands)
    deliveries.add_commands(commands)
    init.add_command(commands)
    for sub in commands.choices.values():
        sub.add_argument("--config", default=argparse.SUPPRESS, help="path to config.yaml")
    return parser


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def api_keys(config: Config) -> list[str]:
    """The configured keys; with none, a generated key kept in the data folder and printed the first time."""
    if config.api_keys:
        return list(config.api_keys)
    path = config.database.parent / "api-key"
    if path.exists():
        return [path.read_text().strip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    key = f"cg_{secrets.token_urlsafe(32)}"
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    print(
        f"No api_keys configured: generated an API key and stored it in {path}.\n"
        f"It is shown only this once:\n\n    {key}\n",
        file=sys.stdout,  # stderr is the log stream (JSON lines), where a secret must never land
        flush=True,
    )
    return [key]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "serve"
    if command == "init":
        return init.main(args)
    try:
        # try-mapping reads one source: the others' secrets need not be set.
        only = args.source if command == "try-mapping" else None
        config, adapters = load_with_adapters(args.config, only_source=only)
        engine = build_engine(config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"commerce-gateway: config error: {problem}", file=sys.stderr)
        return 2
    logs.setup(config.log_level)
    if command == "check-config":
        print(f"{args.config}: OK ({len(adapters)} source(s), database {config.database})")
        if engine.segments:
            print(f"segments: {', '.join(sorted(engine.segments.segments))}")
        return 0
    if command == "try-mapping":
        return try_mapping.run(engine, adapters, args.source, args.payload, args.header)
    if command == "backfill":
        return backfill.main(config, adapters, args)
    if command == "jobs":
        return jobs.main(config, args)
    if command == "segments":
        return segments.main(config, args)
    if command == "timers":
        return timers.main(config, args)
    conn = _open_database(config)
    if conn is None:
        return 1
    if command in ("deliveries", "destinations"):
        sync_destinations(conn, config)
        conn.close()
        return deliveries.main(config, args)
    if command == "replay":
        return _replay(conn, args)
    if command == "worker":
        sync_destinations(conn, config)
    conn.close()
    runtime.prepare(serving=command == "serve")
    if command == "worker":
        return _run_worker(config, adapters, args.metrics_host, args.metrics_port)
    return _serve(
        config,
        adapters,
        args.host if command == "serve" else "127.0.0.1",
        args.port if command == "serve" else 8000,
        not getattr(args, "no_worker", False),
    )


def _open_database(config: Config) -> sqlite3.Connection | None:
    """The database, created or brought to the newest schema; None (said in one line on stderr) when it cannot
    be written: a read-only file system, a folder that cannot be created, a file that is not a database."""
    try:
        conn = connect(config.database, config.durability, config.busy_timeout_seconds)
        try:
            migrate(conn)
        except BaseException:
            conn.close()
            raise
    except (sqlite3.Error, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        folder = config.database.parent
        if folder.is_dir() and not os.access(folder, os.W_OK):  # SQLite must create its WAL and -shm files there
            reason += f" (the folder {folder} is not writable: a read-only file system or its permissions)"
        print(f"commerce-gateway: cannot open the database {config.database} for writing: {reason}", file=sys.stderr)
        return None
    return conn


def _replay(conn: sqlite3.Connection, args: argparse.Namespace) -> int:
    job_id = None if args.all_dead else args.job_id
    with transaction(conn):
        replayed = queue.replay(conn, job_id, now_us())
        job = job_reads.get(conn, job_id) if job_id and not replayed else None
    conn.close()
    if replayed:
        print(f"re-queued {len(replayed)} job(s)")
        return 0
    if job_id is None:
        print("nothing to replay")
        return 0
    if job is None:
        print(f"commerce-gateway replay: no job {job_id!r} exists", file=sys.stderr)
    else:
        status = job["status"]
        print(
            f"commerce-gateway replay: job {job_id} is {status}; only dead or failed jobs are replayed", file=sys.stderr
        )
    return 1


def _run_worker(config: Config, adapters: Mapping[str, Adapter], metrics_host: str, metrics_port: int | None) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    job_metrics = None
    if config.metrics_enabled and metrics_port is not None:
        registry = CollectorRegistry()
        job_metrics = JobMetrics(registry)
        server = serve_metrics(registry, metrics_host, metrics_port, config.metrics_token)
        # One line on stdout with the bound port (useful with --metrics-port 0); stderr carries the logs.
        print(f"metrics on http://{metrics_host}:{server.server_address[1]}/metrics", flush=True)
    engine = build_engine(config)
    conn = connect(config.database, config.durability, config.busy_timeout_seconds)
    merged_totals.settle(conn, engine, now_us())  # before segments: membership reads the totals
    segment_rebuild.sync(engine.segments, conn, now_us())
    conn.close()
    worker = Worker(config, adapters, engine, metrics=job_metrics)
    sender = Sender(config, engine.revenue_attributes) if config.destinations else None
    if sender is not None:
        sender.yield_to(worker)
    runtime.freeze_heap()
    log.info("worker started", extra={"owner": worker.owner, "database": str(config.database)})
    if sender is not None:
        sender.start()
    try:
        worker.run(stop)
    finally:
        if sender is not None:
            sender.stop()
    log.info("worker stopped")
    return 0


def _serve(config: Config, adapters: Mapping[str, Adapter], host: str, port: int, run_worker: bool) -> int:
    import uvicorn

    from gateway.web.app import create_app
    from gateway.web.connection_limit import LimitedHttp

    keys = api_keys(config)
    app = create_app(config, adapters, keys, run_worker=run_worker)
    runtime.freeze_heap()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=logs.UVICORN_LOG_CONFIG,
        access_log=False,
        server_header=False,
        limit_concurrency=runtime.connection_limit(config.max_connections),
        http=LimitedHttp,  # answers past the limit in the API's error shape
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
