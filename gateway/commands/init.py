"""`commerce-gateway init [DIR]`: a commented config.yaml and the data folder, for an installed package with no
clone of the repository. The config is the one the repository ships (`gateway/default_config.yaml`)."""

import argparse
import sys
from importlib.resources import files
from pathlib import Path
from typing import TextIO

from gateway.config import ConfigError, load

TEMPLATE = "default_config.yaml"


def template() -> str:
    return files("gateway").joinpath(TEMPLATE).read_text()


def main(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    folder = Path(args.dir)
    config = folder / "config.yaml"
    if config.exists() or config.is_symlink():
        print(f"commerce-gateway init: {config} already exists; it was left as it is", file=err)
        return 1
    try:
        folder.mkdir(parents=True, exist_ok=True)
        config.write_text(template())
        database = load(config, env={}).database  # the template needs no variable
        database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except (OSError, ConfigError) as exc:
        print(f"commerce-gateway init: cannot set up {folder}: {exc}", file=err)
        return 1
    print(
        f"Wrote {config} and the data folder {database.parent}.\n"
        f"Next: uncomment a source in {config} and set its secret in the environment, then run\n\n"
        f"    commerce-gateway serve --config {config}\n",
        file=out,
    )
    return 0
