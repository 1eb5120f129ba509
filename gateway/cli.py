"""The `commerce-gateway` command: serve (default), worker, replay, check-config, try-mapping, backfill, jobs,
timers, deliveries, destinations. A command imports what it runs, when it runs: building the command line (and
`--help`, `--version`) loads none of the runtime, and `jobs list` no web server (docs/PERFORMANCE.md)."""

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from gateway.commands import arguments

if TYPE_CHECKING:  # imported at run time by the commands that use them
    import sqlite3

    from adapters import Adapter
    from gateway.config import Config
    from gateway.engine.orders import Engine
    from gateway.metrics import DeliveryMetrics, JobMetrics


def version() -> str:
    """The installed package's version (pyproject.toml's, once installed)."""
    import importlib.metadata

    try:
        return importlib.metadata.version("commerce-gateway")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    return arguments.command_line(version)


def api_keys(config: "Config") -> list[str]:
    """The configured keys; with none, a generated key kept in the data folder and printed the first time."""
    import secrets

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
    try:
        code = _run(argv)
        sys.stdout.flush()  # here, not at the interpreter's exit, where a closed pipe is an uncaught error
        return code
    except BrokenPipeError:
        # The reader went away (`jobs list | head`): the rest of the output has nowhere to go, and the exit at
        # the end must not try to flush it again into the closed pipe. No traceback: nothing went wrong here.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "serve"
    if command == "init":
        from gateway.commands import init

        return init.main(args)
    from gateway import logs
    from gateway.config import ConfigError, load_with_adapters
    from gateway.engine import build_engine

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
        from gateway.commands import try_mapping

        return try_mapping.run(engine, adapters, args.source, args.payload, args.header)
    if command == "backfill":
        from gateway.commands import backfill

        return backfill.main(config, adapters, args)
    if command == "jobs":
        from gateway.commands import jobs

        return jobs.main(config, args)
    if command == "segments":
        from gateway.commands import segments

        return segments.main(config, args)
    if command == "timers":
        from gateway.commands import timers

        return timers.main(config, args)
    return _with_database(command, args, config, adapters, engine)


def _with_database(
    command: str, args: argparse.Namespace, config: "Config", adapters: Mapping[str, "Adapter"], engine: "Engine"
) -> int:
    """The commands that need the database created or migrated first: deliveries, destinations, replay, worker
    and serve (`engine`, built from the config as it was checked, is the one they run)."""
    from gateway import runtime
    from gateway.outbound.routes import sync_destinations

    conn = _open_database(config)
    if conn is None:
        return 1
    if command in ("deliveries", "destinations"):
        from gateway.commands import deliveries

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
        return _run_worker(config, adapters, engine, args.metrics_host, args.metrics_port)
    return _serve(
        config,
        adapters,
        args.host if command == "serve" else "127.0.0.1",
        args.port if command == "serve" else 8000,
        not getattr(args, "no_worker", False),
        engine,
    )


def _open_database(config: "Config") -> "sqlite3.Connection | None":
    """The database, created or brought to the newest schema; None (said in one line on stderr) when it cannot
    be written: a read-only file system, a folder that cannot be created, a file that is not a database."""
    import sqlite3

    from store.db import connect
    from store.schema import migrate

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


def _replay(conn: "sqlite3.Connection", args: argparse.Namespace) -> int:
    from normalizer.timefmt import now_us
    from store import job_reads, queue
    from store.db import transaction

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


def _run_worker(
    config: "Config", adapters: Mapping[str, "Adapter"], engine: "Engine", metrics_host: str, metrics_port: int | None
) -> int:
    import logging
    import signal
    import threading

    from gateway import runtime
    from gateway.engine import merged_totals, segment_rebuild
    from gateway.outbound.sender import Sender
    from gateway.pipeline.worker import Worker
    from normalizer.timefmt import now_us
    from store.db import connect

    log = logging.getLogger("gateway.cli")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    job_metrics, delivery_metrics = _serve_metrics(config, metrics_host, metrics_port)
    conn = connect(config.database, config.durability, config.busy_timeout_seconds)
    merged_totals.settle(conn, engine, now_us())  # before segments: membership reads the totals
    segment_rebuild.sync(engine.segments, conn, now_us())
    conn.close()
    worker = Worker(config, adapters, engine, metrics=job_metrics)
    sender = Sender(config, engine.revenue_attributes, metrics=delivery_metrics) if config.destinations else None
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


def _serve_metrics(
    config: "Config", host: str, port: int | None
) -> "tuple[JobMetrics, DeliveryMetrics] | tuple[None, None]":
    """The worker's job and delivery series, answering scrapes at host:port/metrics; None when metrics are off or
    unasked."""
    if not config.metrics_enabled or port is None:
        return None, None
    from prometheus_client import CollectorRegistry

    from gateway.metrics import DeliveryMetrics, JobMetrics, serve_metrics

    registry = CollectorRegistry()
    job_metrics = JobMetrics(registry)
    delivery_metrics = DeliveryMetrics(registry)
    server = serve_metrics(registry, host, port, config.metrics_token)
    # One line on stdout with the bound port (useful with --metrics-port 0); stderr carries the logs.
    print(f"metrics on http://{host}:{server.server_address[1]}/metrics", flush=True)
    return job_metrics, delivery_metrics


def _serve(
    config: "Config", adapters: Mapping[str, "Adapter"], host: str, port: int, run_worker: bool, engine: "Engine"
) -> int:
    import uvicorn

    from gateway import logs, runtime
    from gateway.web.app import create_app
    from gateway.web.connection_limit import LimitedHttp

    keys = api_keys(config)
    app = create_app(config, adapters, keys, run_worker=run_worker, engine=engine)
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
