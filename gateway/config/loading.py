"""config.yaml read once at start: `${ENV}` references resolved, each source's options validated by its
adapter, every problem reported at once with the key it is under."""

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from adapters import REGISTRY, Adapter, SourceOptions
from gateway.config.errors import ConfigError
from gateway.config.sections import NAME, Config
from normalizer.problems import problems

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _resolve_env(node: Any, path: str, env: Mapping[str, str], unset: dict[str, str]) -> Any:
    """`node` with its `${NAME}` references replaced; a reference to an unset variable stays as it is and its key
    path goes into `unset` (path -> variable), so the other problems of the file can still be found."""
    if isinstance(node, dict):
        return {
            key: _resolve_env(value, f"{path}.{key}" if path else str(key), env, unset) for key, value in node.items()
        }
    if isinstance(node, list):
        return [_resolve_env(value, f"{path}[{i}]", env, unset) for i, value in enumerate(node)]
    if isinstance(node, str):

        def substitute(match: re.Match[str]) -> str:
            value = env.get(match.group(1))
            if value is None or value == "":
                unset.setdefault(path, match.group(1))
                return match.group(0)
            return value

        return _ENV.sub(substitute, node)
    return node


def _key(loc: Sequence[int | str]) -> str:
    """`("api_keys", 0)` -> `api_keys[0]`, the way the env paths above are written."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _read(file: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {file} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {file} is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {file} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {file} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {file} must be a mapping of keys")
    return raw


def _sources(value: Any, found: list[tuple[str, str]]) -> dict[str, SourceOptions]:
    """Every source's options; each problem of each source goes into `found` as (key, message)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        found.append(("sources", "must be a mapping of source names to their settings"))
        return {}
    parsed = {}
    for name, block in value.items():
        if not isinstance(name, str) or not NAME.match(name) or name == "api":
            found.append(("sources", f"source name {name!r} must be letters, digits, '-', '_' or '.' (and not 'api')"))
            continue
        if not isinstance(block, dict):
            found.append((f"sources.{name}", "must be a mapping with at least `type` and `secrets`"))
            continue
        kind = block.get("type")
        if kind not in REGISTRY:
            known = ", ".join(sorted(REGISTRY)) or "none installed"
            found.append((f"sources.{name}.type", f"{kind!r} is not a known source type ({known})"))
            continue
        try:
            parsed[name] = REGISTRY[kind].Options.model_validate(block)
        except ValidationError as exc:
            found += [(_key(("sources", name, *p.loc)), p.message) for p in problems(exc)]
    return parsed


def _database_problems(database: Path) -> list[str]:
    """A database path that cannot be a file, known before anything starts. (Whether it can be written is found
    when `serve` opens it: a read-only mount or a permission is said there, in one line.)"""
    if database.is_dir():
        return [f"database: {database} is a folder; name the database file inside it (e.g. {database}/gateway.db)"]
    existing = database.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return [f"database: {existing} is a file, so no folder can be created under it for {database}"]
    return []


def load(path: str | Path, env: Mapping[str, str] | None = None, only_source: str | None = None) -> Config:
    """Read, resolve and validate a config file; relative paths in it are relative to the file's folder. Every
    problem is reported at once (ConfigError.problems). With `only_source`, the other sources are left out and
    unset variables outside that source are not problems: a tool that needs one source needs only its secrets."""
    file = Path(path)
    raw = _read(file)
    if only_source is not None and isinstance(raw.get("sources"), dict) and only_source in raw["sources"]:
        raw["sources"] = {only_source: raw["sources"][only_source]}
    unset: dict[str, str] = {}
    resolved = _resolve_env(raw, "", os.environ if env is None else env, unset)
    found: list[tuple[str, str]] = []
    sources = _sources(resolved.pop("sources", None), found)
    try:
        config = Config.model_validate(resolved)
    except ValidationError as exc:
        found += [(_key(p.loc) or "config", p.message) for p in problems(exc)]
        config = None
    # A value that still holds an unset ${VAR} is reported as unset, not as whatever else is wrong with it.
    needed = [key for key in unset if only_source is None or _within(key, f"sources.{only_source}")]
    reported = [f"{key}: environment variable {unset[key]} is not set" for key in needed]
    reported += [f"{key}: {message}" for key, message in found if not any(_within(key, u) for u in unset)]
    if config is not None:
        if not config.database.is_absolute():
            config = config.model_copy(update={"database": (file.parent / config.database).resolve()})
        reported += _database_problems(config.database)
    if reported:
        raise ConfigError(reported)
    assert config is not None
    return config.model_copy(update={"sources": sources})


def _within(key: str, path: str) -> bool:
    return key == path or key.startswith((f"{path}.", f"{path}["))


def build_adapters(config: Config) -> dict[str, Adapter]:
    """One adapter per source; what adapters refuse in their options (a malformed secret) fails the start, every
    source's problem at once."""
    adapters = {}
    found = []
    for name, options in config.sources.items():
        try:
            adapters[name] = REGISTRY[options.type](name, options)
        except ValueError as exc:
            found.append(f"sources.{name}: {exc}")
    if found:
        raise ConfigError(found)
    return adapters


def load_with_adapters(
    path: str | Path, env: Mapping[str, str] | None = None, only_source: str | None = None
) -> tuple[Config, dict[str, Adapter]]:
    """`load` then `build_adapters`: what every command starts with."""
    config = load(path, env, only_source)
    return config, build_adapters(config)
