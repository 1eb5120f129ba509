"""`commerce-gateway deliveries list|replay` and `commerce-gateway destinations list|enable|public-key`."""

import argparse
import json
import sys
from typing import Any

from gateway.config import Config
from gateway.outbound.replays import replay_destination, replay_one
from gateway.outbound.views import delivery_view, destination_view
from gateway.signing import Signer
from normalizer.timefmt import now_us, parse_instant, to_micros
from store import deliveries, destinations
from store.db import connect, transaction


def main(config: Config, args: argparse.Namespace) -> int:
    if args.command == "destinations" and args.action == "public-key":
        return _public_key(config, args.name)
    conn = connect(config.database, config.durability)
    try:
        if args.command == "deliveries":
            return _list(conn, args) if args.action == "list" else _replay(conn, args)
        if args.action == "list":
            for row in destinations.listing(conn):
                print(json.dumps(destination_view(row)))
            return 0
        with transaction(conn):
            found = destinations.enable(conn, args.name)
        if not found:
            return _fail(f"no destination named {args.name!r} is configured")
        print(f"enabled {args.name}")
        return 0
    finally:
        conn.close()


def _public_key(config: Config, name: str) -> int:
    options = config.destinations.get(name)
    if options is None:
        return _fail(f"no destination named {name!r} is configured")
    keys = Signer(options.secrets).public_keys()
    if not keys:
        return _fail(f"destination {name!r} has no whsk_ (ed25519) secret")
    print("\n".join(keys))
    return 0


def _list(conn: Any, args: argparse.Namespace) -> int:
    for row in deliveries.listing(conn, args.destination, args.status, None, max(1, args.limit)):
        print(json.dumps(delivery_view(row)))
    return 0


def _replay(conn: Any, args: argparse.Namespace) -> int:
    if args.delivery_id:
        before = replay_one(conn, args.delivery_id, now_us())
        if before is None:
            return _fail(f"no delivery {args.delivery_id}")
        if before == "delivering":
            return _fail(f"{args.delivery_id} is being sent right now")
        if before == deliveries.UNCONFIGURED:
            return _fail(f"{args.delivery_id}: its destination is no longer configured, nothing would send it")
        print(f"{args.delivery_id}: due now (was {before})")
        return 0
    if not args.destination or not args.since:
        return _fail("give a deliveryId, or --destination NAME with --since DATE")
    if destinations.get(conn, args.destination) is None:
        return _fail(f"no destination named {args.destination!r} is configured")
    try:
        since = parse_instant(args.since)
    except ValueError as exc:
        return _fail(str(exc))
    count = replay_destination(conn, args.destination, args.status, to_micros(since), now_us())
    print(f"{count} deliveries to {args.destination} due now")
    return 0


def _fail(message: str) -> int:
    print(f"commerce-gateway: {message}", file=sys.stderr)
    return 1
