"""`commerce-gateway segments rebuild [--emit]`: every configured segment evaluated afresh for every subscriber."""

import argparse
import sys
import time

from gateway.config import Config
from gateway.engine import build_engine, segment_rebuild
from normalizer.timefmt import now_us
from store.db import connect
from store.schema import migrate


def main(config: Config, args: argparse.Namespace) -> int:
    segments = build_engine(config).segments
    conn = connect(config.database, config.durability)
    migrate(conn)
    started = time.perf_counter()
    try:
        result = segment_rebuild.rebuild_all(segments, conn, args.emit, now_us())
    finally:
        conn.close()
    took = time.perf_counter() - started
    print(
        f"rebuilt {len(result.rebuilt)} segment(s) over {result.subscribers:,} subscriber(s) in {took:.1f} s:"
        f" {result.entered:,} entered, {result.exited:,} left"
        + (" (events recorded)" if args.emit else " (no events)"),
        file=sys.stdout,
    )
    if result.dropped:
        print(f"dropped {len(result.dropped)} segment(s) no longer configured: {', '.join(result.dropped)}")
    return 0
