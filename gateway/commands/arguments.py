"""The command line's grammar: every command and its arguments. Nothing here imports what a command runs, so
building the parser, `--help`, `--version` and a mistyped option load none of the runtime."""

import argparse
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from store.statuses import DELIVERY_STATUSES, JOB_STATUSES


def command_line(version: Callable[[], str]) -> argparse.ArgumentParser:
    """The command line; `version` is called only for `--version`."""
    parser = argparse.ArgumentParser(prog="commerce-gateway", description="Commerce webhook gateway.")
    parser.add_argument("--config", default="config.yaml", help="path to config.yaml (default: ./config.yaml)")
    parser.add_argument("--version", action=_Version, lookup=version)
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
    backfill(commands)
    jobs(commands)
    segments(commands)
    timers(commands)
    deliveries(commands)
    init(commands)
    for sub in commands.choices.values():
        sub.add_argument("--config", default=argparse.SUPPRESS, help="path to config.yaml")
    return parser


class _Version(argparse.Action):
    """`--version`, looking the version up only when asked: the metadata lookup costs an import and a search of
    the installed distributions that no other command needs."""

    def __init__(self, option_strings: Sequence[str], dest: str, lookup: Callable[[], str]) -> None:
        super().__init__(option_strings, argparse.SUPPRESS, nargs=0, help="show program's version number and exit")
        self.lookup = lookup

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> NoReturn:
        print(f"commerce-gateway {self.lookup()}")
        parser.exit()


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def backfill(commands: Any) -> None:
    parser = commands.add_parser("backfill", help="queue a WooCommerce source's orders modified since a date")
    parser.add_argument("source", help="the source name in config.yaml (type woocommerce, with an `api` block)")
    parser.add_argument("--since", required=True, help="a date (YYYY-MM-DD, UTC) or an ISO 8601 timestamp")
    parser.add_argument("--no-process", action="store_true", help="only queue; leave processing to `serve`")


def deliveries(commands: Any) -> None:
    listed = commands.add_parser("deliveries", help="list or replay outbound deliveries")
    actions = listed.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="deliveries, newest first, as JSON lines")
    listing.add_argument("--destination")
    listing.add_argument("--status", choices=DELIVERY_STATUSES)
    listing.add_argument("--limit", type=int, default=100)
    replay = actions.add_parser("replay", help="send one delivery again, or a destination's since a time")
    replay.add_argument("delivery_id", nargs="?", help="a deliveryId (msg_…): sent again now")
    replay.add_argument("--destination", help="with --since: replay this destination's deliveries")
    replay.add_argument("--since", help="a date (YYYY-MM-DD, UTC) or an ISO 8601 timestamp")
    replay.add_argument(
        "--status",
        choices=["dead", "undelivered"],
        default="undelivered",
        help="dead: only dead deliveries; undelivered (default): also events it never got",
    )
    kept = commands.add_parser("destinations", help="list, enable, or print a destination's ed25519 public key")
    which = kept.add_subparsers(dest="action", required=True)
    which.add_parser("list", help="destinations with their health, as JSON lines")
    enable = which.add_parser("enable", help="enable a disabled destination")
    enable.add_argument("name")
    public = which.add_parser("public-key", help="print the whpk_ key(s) consumers verify v1a signatures with")
    public.add_argument("name")
    for group in (actions, which):
        for sub in group.choices.values():
            sub.add_argument("--config", default=argparse.SUPPRESS, help="path to config.yaml")


def init(commands: Any) -> None:
    parser = commands.add_parser("init", help="write a commented config.yaml and the data folder into DIR")
    parser.add_argument("dir", nargs="?", default=".", help="the folder to set up (default: the current one)")


def jobs(commands: Any) -> None:
    parser = commands.add_parser("jobs", help="list jobs (newest first)")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--status", choices=JOB_STATUSES, help="only jobs in this status")
    listing.add_argument("--source", help="only jobs of this source (`api` for Push Order)")
    listing.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line, as the API answers")
    # The subcommand's own --config, as every command has (argparse keeps the deepest one given).
    listing.add_argument("--config", default=argparse.SUPPRESS, help="path to config.yaml")


def segments(commands: Any) -> None:
    parser = commands.add_parser("segments", help="segment membership (rebuild)")
    actions = parser.add_subparsers(dest="segments_command", required=True)
    rebuild = actions.add_parser(
        "rebuild", help="evaluate every segment for every subscriber; drop segments no longer configured"
    )
    rebuild.add_argument(
        "--emit", action="store_true", help="record segment.entered / segment.exited for each change (default: none)"
    )
    rebuild.add_argument("--config", default=argparse.SUPPRESS, help="path to config.yaml")


def timers(commands: Any) -> None:
    parser = commands.add_parser("timers", help="list or replay dead timers")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="dead timers, the latest to die first")
    listing.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = actions.add_parser("replay", help="set dead timers due now, with no attempt counted")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--kind", help="the dead timers of this kind (with --key: one)")
    which.add_argument("--all-dead", action="store_true", help="every dead timer")
    replay.add_argument("--key", help="with --kind: the one timer of that kind and key")
    for action in (listing, replay):  # the subcommand's own --config, as every command has
        action.add_argument("--config", default=argparse.SUPPRESS, help="path to config.yaml")
