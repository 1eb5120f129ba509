"""Command-line start-up: the CPU one `commerce-gateway` run costs, per command, against a bare interpreter
(`python -c pass`) and against importing the whole serving runtime (the web app, the worker, the sender: what
every command loaded before commands were imported when run), measured alternately in the same run.

Each command runs as `python -m gateway` in a process of its own, on a fresh database in a temporary folder;
its CPU (user + system, from the children's rusage) is taken per run and the medians reported, with the number
of modules it imported (`-X importtime`).

    python bench/cli.py                 # 20 rounds
    python bench/cli.py --rounds 3
"""

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = "import gateway.web.service, gateway.pipeline.worker, gateway.outbound.sender, gateway.metrics"


def _commands(config: Path) -> dict[str, list[str]]:
    gateway = [sys.executable, "-m", "gateway"]
    where = ["--config", str(config)]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "the serving runtime imported": [sys.executable, "-c", RUNTIME],
        "--version": [*gateway, "--version"],
        "check-config": [*gateway, *where, "check-config"],
        "jobs list": [*gateway, *where, "jobs", "list"],
        "deliveries list": [*gateway, *where, "deliveries", "list"],
    }


def _cpu_ms(argv: list[str]) -> float:
    """CPU milliseconds (user + system) of one run of `argv`, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000


def _modules(argv: list[str]) -> int:
    """How many modules one run of `argv` imports."""
    traced = [argv[0], "-X", "importtime", *argv[1:]]
    run = subprocess.run(traced, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return sum(1 for line in run.stderr.splitlines() if line.startswith("import time:") and "|" in line) - 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="runs of each command, alternating (default 20)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(f"database: {Path(tmp) / 'gateway.db'}\n")
        commands = _commands(config)
        _cpu_ms(commands["jobs list"])  # the database created and migrated before any run is timed
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                times[name].append(_cpu_ms(command))
        bare = statistics.median(times["python -c pass"])
        print(f"CPU per run, median of {args.rounds} (alternating), and modules imported:", flush=True)
        for name, command in commands.items():
            cpu = statistics.median(times[name])
            print(
                f"  {name:<30} {cpu:7.1f} ms  {cpu / bare:5.1f}x the bare interpreter  {_modules(command):4d} modules",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
