"""`commerce-gateway timers list|replay`: the timers whose firing failed its last attempt (dead), and setting
them due again once the cause is fixed (docs/operations.md, Timers)."""

import argparse
import json
import sys
from typing import Any

from gateway.config import Config
from normalizer.timefmt import format_instant_us, now_us
from store import timers
from store.db import connect, transaction
from store.schema import migrate


def main(config: Config, args: argparse.Namespace) -> int:
    if args.action == "replay" and args.key is not None and args.kind is None:
        print("commerce-gateway timers replay: --key needs --kind", file=sys.stderr)
        return 2
    if args.action == "list" and args.limit < 1:
        print("commerce-gateway timers list: --limit must be at least 1", file=sys.stderr)
        return 2
    conn = connect(config.database, config.durability, config.busy_timeout_seconds)
    migrate(conn)
    try:
        if args.action == "replay":
            with transaction(conn):
                revived = timers.revive(conn, now_us(), args.kind, args.key)
            print(f"{revived} dead timer(s) set due again")
            return 0 if revived or args.all_dead else 1
        found = timers.dead(conn, args.limit)
    finally:
        conn.close()
    for timer in found:
        shown = {**timer, "dueAt": format_instant_us(timer["dueAt"]), "diedAt": format_instant_us(timer["diedAt"])}
        print(json.dumps(shown) if args.json else _row(shown))
    if not found and not args.json:
        print("no dead timers")
    return 0


def _row(timer: dict[str, Any]) -> str:
    return f"{timer['kind']:<14} {timer['key']:<30} {timer['attempts']:>3}  {timer['diedAt']}  {timer['error']}"
