"""Instructions per order of the worker, counted by callgrind: repeatable whatever else the machine is doing,
so a change to the engine is judged by this figure rather than by a noisy wall-clock rate.

Builds a 10,000-order ledger with N queued orders, and the same ledger with 1 queued order, drains each under
`valgrind --tool=callgrind` in an interpreter of its own (the drain of `bench/process.py`), and prints
(instructions of the N-order drain − instructions of the 1-order drain) / (N − 1): start-up and the
ledger check cancel out.

With `--lifecycle`, the drain is `bench/lifecycle.py`'s throughput drain (orders of a 10,000-product catalog,
half with a replenishment rule), counted with the lifecycle on and off; the ratio off/on is the throughput
ratio the lifecycle target is about (on/off orders per second), without the machine's noise.

    python bench/instructions.py               # 2,000 orders (about two minutes under valgrind)
    python bench/instructions.py --orders 500  # quicker, a little noisier
    python bench/instructions.py --lifecycle --orders 1000
    python bench/instructions.py --destination --orders 1000   # no destination, then one (the outbox's cost)

With `--destination`, the same drain is counted on the ledger as built (no destination) and on a copy with one
destination configured (every event of the drain gets its delivery row; the sender does not run): the ratio
none/one is what the outbox row costs the worker, without the machine's noise.
"""

import argparse
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store import outbox

PROCESS = Path(__file__).resolve().parent / "process.py"
LIFECYCLE = Path(__file__).resolve().parent / "lifecycle.py"
LEDGER = 10_000


def _build(folder: Path, orders: int) -> str:
    command = [sys.executable, str(PROCESS), "--build", str(LEDGER), "--orders", str(orders), "--keep", str(folder)]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1]


# The drain of bench/process.py with its clocks taken out: a transaction ends at the batch size, not at a time
# valgrind's slowness decides, and the checkpointer thread stays asleep, so the count is the same run to run.
_DRAIN = """
import runpy, sys
sys.path.insert(0, {root!r})
import store.db
try:
    import gateway.pipeline.worker as worker
except ImportError:  # a tree from before gateway/ was split by stage, measured for comparison
    import gateway.worker as worker
worker._CHUNK_SECONDS = worker._CHUNK_SECONDS_IN_SERVE = 1e9
store.db.Checkpointer.__init__.__defaults__ = (1e9,)
sys.argv = {argv!r}
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _build_lifecycle(folder: Path, orders: int) -> str:
    command = [sys.executable, str(LIFECYCLE), "_build", "--orders", str(orders), "--keep", str(folder)]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1]


def _instructions(database: str, orders: int, folder: Path, lifecycle: bool | None = None) -> int:
    """Instructions of one drain: bench/process.py's, or with `lifecycle` set bench/lifecycle.py's (on or off)."""
    name = "" if lifecycle is None else ("-on" if lifecycle else "-off")
    out = folder / f"callgrind-{orders}{name}.out"
    argv = _argv(database, orders)
    if lifecycle is not None:
        argv = [str(LIFECYCLE), "_drain", "--database", database, "--orders", str(orders), *(["--on"] * lifecycle)]
    return counted(argv, out)


def _argv(database: str, orders: int) -> list[str]:
    return [str(PROCESS), "--drain", database, "--drain-ledger", str(LEDGER), "--orders", str(orders)]


def counted(argv: list[str], out: Path) -> int:
    """Instructions of the drain a bench script runs with `argv` (clocks taken out), counted by callgrind into
    `out`."""
    drain = [sys.executable, "-c", _DRAIN.format(root=str(PROCESS.parent.parent), argv=argv)]
    command = ["env", "PYTHONHASHSEED=0", "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *drain]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no total:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2_000, help="orders in the measured drain")
    parser.add_argument("--keep", type=Path, help="keep the callgrind outputs here (for callgrind_annotate)")
    parser.add_argument("--lifecycle", action="store_true", help="bench/lifecycle.py's drain, lifecycle on and off")
    parser.add_argument("--destination", action="store_true", help="the drain with no destination and with one")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if args.lifecycle:
        return _lifecycle(args)
    if args.destination:
        return _destination(args)
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        folder = Path(tmp)
        many, one = _build(folder, args.orders), _build(folder, 1)
        total_many = _instructions(many, args.orders, folder)
        total_one = _instructions(one, 1, folder)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for out in folder.glob("callgrind-*.out"):
                shutil.copy(out, args.keep / out.name)
    per_order = (total_many - total_one) / (args.orders - 1)
    print(
        f"worker instructions per order (callgrind, {args.orders:,} orders, {LEDGER:,}-order ledger): {per_order:,.0f}"
    )
    return 0


def _lifecycle(args: argparse.Namespace) -> int:
    per_order = {}
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        folder = Path(tmp)
        many, one = _build_lifecycle(folder, args.orders), _build_lifecycle(folder, 1)
        for lifecycle in (False, True):
            total_many = _instructions(many, args.orders, folder, lifecycle)
            total_one = _instructions(one, 1, folder, lifecycle)
            per_order[lifecycle] = (total_many - total_one) / (args.orders - 1)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for out in folder.glob("callgrind-*.out"):
                shutil.copy(out, args.keep / out.name)
    on, off = per_order[True], per_order[False]
    print(
        f"worker instructions per order (callgrind, {args.orders:,} orders of a 10,000-product catalog, half with"
        f" replenishment): lifecycle on {on:,.0f}, off {off:,.0f}; throughput on/off (= off/on) {off / on:.3f}"
    )
    return 0


def with_destination(database: str) -> str:
    """A copy of a built database with one destination configured (every event routed to it)."""
    copy = database.replace(".db", "-destination.db")
    shutil.copyfile(database, copy)
    conn = sqlite3.connect(copy, isolation_level=None)
    outbox.sync(conn, [(outbox.Route("crm", (), False), "http://127.0.0.1:9/hooks")], 1)
    conn.close()
    return copy


def _destination(args: argparse.Namespace) -> int:
    per_order = {}
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        folder = Path(tmp)
        many, one = _build(folder, args.orders), _build(folder, 1)
        for label, (drained, single) in (
            ("none", (many, one)),
            ("one", (with_destination(many), with_destination(one))),
        ):
            total_many = counted(_argv(drained, args.orders), folder / f"callgrind-{args.orders}-{label}.out")
            total_one = counted(_argv(single, 1), folder / f"callgrind-1-{label}.out")
            per_order[label] = (total_many - total_one) / (args.orders - 1)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for out in folder.glob("callgrind-*.out"):
                shutil.copy(out, args.keep / out.name)
    none, one = per_order["none"], per_order["one"]
    print(
        f"worker instructions per order (callgrind, {args.orders:,} orders, {LEDGER:,}-order ledger): no destination"
        f" {none:,.0f}, one destination {one:,.0f} (+{one - none:,.0f}); orders/s one/none (= none/one)"
        f" {none / one:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
