"""`commerce-gateway jobs list`: the jobs of the database, newest first, as a table or JSON lines."""

import argparse
import json
import sys
from typing import Any

from gateway.config import Config
from normalizer.timefmt import format_instant_us
from store import job_reads
from store.db import connect
from store.schema import migrate

_ERROR_WIDTH = 70


def _row(job: dict[str, Any]) -> str:
    error = (job["error"] or "").replace("\n", " ")
    if len(error) > _ERROR_WIDTH:
        error = error[: _ERROR_WIDTH - 1] + "…"
    received = format_instant_us(job["receivedAt"])
    return f"{job['jobId']:<42} {job['status']:<10} {job['source']:<16} {job['attempts']:>3}  {received}  {error}"


def main(config: Config, args: argparse.Namespace) -> int:
    if args.limit < 1:
        print("commerce-gateway jobs list: --limit must be at least 1", file=sys.stderr)
        return 2
    conn = connect(config.database, config.durability)
    migrate(conn)
    try:
        found, _ = job_reads.page(conn, args.status, args.source, args.limit, None)
    finally:
        conn.close()
    if args.json:
        for job in found:
            times = ("receivedAt", "finishedAt", "nextAttemptAt")
            print(json.dumps({**job, **{k: format_instant_us(job[k]) if job[k] else None for k in times}}))
        return 0
    if not found:
        print("no jobs" + (f" with status {args.status}" if args.status else ""))
        return 0
    print(f"{'JOB':<42} {'STATUS':<10} {'SOURCE':<16} {'TRY':>3}  {'RECEIVED':<24}  ERROR")
    for job in found:
        print(_row(job))
    return 0
