"""config.yaml: read once at start, `${ENV}` references resolved, validated strictly, errors naming the key."""

import os
import random
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from adapters import REGISTRY, Adapter, SourceOptions
from gateway.signing import parse_secret
from normalizer.catalog import Replenishment
from normalizer.money import MoneyError, normalise_currency
from normalizer.problems import problems
from store.db import DEFAULT_BUSY_TIMEOUT_SECONDS

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}


class ConfigError(Exception):
    """The configuration cannot be used: every problem found, one line each, naming the key and what is wrong."""

    def __init__(self, lines: str | list[str]) -> None:
        self.problems = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_duration(value: Any) -> float:
    """`30s`, `45m`, `1h`, `2d` (also `500ms`, or a bare number of seconds) -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration such as 30s, 45m, 1h or 2d")
    if seconds <= 0:
        raise ValueError("a duration must be greater than 0")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]  # seconds


class LifecycleConfig(_Strict):
    checkout_abandoned_after: Duration = 3600.0
    historical_after: Duration = 30 * 86_400.0
    replenishment: dict[str, Replenishment] = Field(default_factory=dict)  # productId -> rule; wins over the API

    @field_validator("replenishment", mode="before")
    @classmethod
    def _no_rules(cls, value: Any) -> Any:
        return {} if value is None else value  # `replenishment:` with every rule commented out


class WorkerConfig(_Strict):
    batch_size: int = Field(default=1000, ge=1, le=5000)
    lease_seconds: float = Field(default=30, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    retry_base_seconds: float = Field(default=2, gt=0)
    retry_max_seconds: float = Field(default=3600, gt=0)
    poll_seconds: float = Field(default=0.2, gt=0)
    keep_done_jobs_days: float | None = Field(default=30, gt=0)  # None: keep them forever

    def retry_at(self, attempts: int, now: int) -> int | None:
        """When a job or timer that has failed `attempts` times runs again (µs, with ±20% jitter): the delay
        grows fourfold from `retry_base_seconds` up to `retry_max_seconds`. None once `max_attempts` are spent."""
        if attempts >= self.max_attempts:
            return None
        delay = min(self.retry_base_seconds * 4 ** (attempts - 1), self.retry_max_seconds)
        return now + int(delay * random.uniform(0.8, 1.2) * 1e6)


class DestinationConfig(_Strict):
    url: str
    secrets: list[str] = Field(min_length=1)
    events: list[str] = Field(default_factory=list)  # shell-style patterns; none: every event
    include_historical: bool = False
    timeout: Duration = 15
    max_in_flight: int = Field(default=16, ge=1, le=256)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str]) -> list[str]:
        for index, secret in enumerate(value):
            try:
                parse_secret(secret)
            except ValueError as exc:
                raise ValueError(f"secret {index + 1}: {exc}") from None
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        if any(not pattern.strip() for pattern in value):
            raise ValueError("an event pattern must not be empty")
        return value


class DeliveryConfig(_Strict):
    retry_schedule: list[Duration] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18_000.0, 36_000.0, 36_000.0]
    )
    disable_after: Duration = 5 * 86_400
    allow_private_networks: list[IPv4Network | IPv6Network] = Field(default_factory=list)
    allow_http: bool = False


class Config(_Strict):
    database: Path = Path("./data/gateway.db")
    currency: str = "USD"
    fx_rates: dict[str, Decimal] = Field(default_factory=dict)
    api_keys: list[str] = Field(default_factory=list)
    sources: dict[str, SourceOptions] = Field(default_factory=dict)
    durability: Literal["normal", "full"] = "full"
    # How long a write waits for SQLite's lock (held by another process's writer) before it answers 503.
    busy_timeout_seconds: float = Field(default=DEFAULT_BUSY_TIMEOUT_SECONDS, gt=0, le=60)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    body_read_timeout: Duration = 30.0
    max_buffered_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_connections: int = Field(default=1000, ge=8)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    # Segment definitions, checked and compiled by the engine (`gateway.engine.build_engine`), which names the
    # segment and key of a bad one.
    segments: dict[str, Any] = Field(default_factory=dict)
    metrics_enabled: bool = True  # GET /metrics and the instrumentation behind it
    metrics_token: str | None = Field(default=None, min_length=16)  # None: /metrics answers loopback clients only
    destinations: dict[str, DestinationConfig] = Field(default_factory=dict)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """A section left empty (`sources:` with every entry commented out) is YAML's null: its default."""
        if not isinstance(data, dict):
            return data
        sections = {name for name, info in cls.model_fields.items() if info.default_factory is not None}
        return {key: value for key, value in data.items() if not (value is None and key in sections)}

    @model_validator(mode="after")
    def _budget_fits_a_body(self) -> "Config":
        if self.max_buffered_body_bytes < self.max_body_bytes:
            raise ConfigError(
                "max_buffered_body_bytes: must be at least max_body_bytes, or no large body could be read"
            )
        return self

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        try:
            return normalise_currency(value)
        except MoneyError as exc:
            raise ValueError(f"{value!r} is {exc}") from None  # the config's own value, not personal data

    @field_validator("fx_rates", mode="before")
    @classmethod
    def _fx_rates(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        rates = {}
        for code, rate in value.items():
            try:
                code = normalise_currency(str(code))
            except MoneyError as exc:
                raise ValueError(f"{str(code)!r} is {exc}") from None
            if isinstance(rate, bool) or not isinstance(rate, int | float | str):
                raise ValueError(f"{code}: rate must be a number")
            # YAML gives 1.08 as a float; its shortest repr is the number the merchant wrote.
            rates[code] = Decimal(str(rate))
            if not rates[code] > 0:
                raise ValueError(f"{code}: rate must be greater than 0")
        return rates

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, value: list[str]) -> list[str]:
        for key in value:
            if len(key) < 16:
                raise ValueError("each API key must be at least 16 characters")
        return value

    @field_validator("destinations")
    @classmethod
    def _destinations(cls, value: dict[str, DestinationConfig]) -> dict[str, DestinationConfig]:
        for name in value:
            if not _SOURCE_NAME.match(name):
                raise ValueError(f"destination name {name!r} must be letters, digits, '-', '_' or '.'")
        return value


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
        if not isinstance(name, str) or not _SOURCE_NAME.match(name) or name == "api":
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
