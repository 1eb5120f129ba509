"""The config file's sections as models: each key, its type, its default and its rule. Strict: an unknown key
is an error."""

import random
import re
from decimal import Decimal
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from adapters import SourceOptions
from gateway.config.errors import ConfigError
from gateway.signing import parse_secret
from normalizer.catalog import Replenishment
from normalizer.money import MoneyError, normalise_currency
from store.db import DEFAULT_BUSY_TIMEOUT_SECONDS

# A source's or destination's name: also a path segment of its URLs.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}


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
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:  # out of range, not a number, or 0 (which would silently mean the scheme's default)
            raise ValueError("the port must be a number from 1 to 65535")
        if not value.isprintable() or " " in value or not (parts.path + parts.query).isascii():
            raise ValueError("spaces, control and non-ASCII characters in a URL must be percent-encoded")
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
            if not NAME.match(name):
                raise ValueError(f"destination name {name!r} must be letters, digits, '-', '_' or '.'")
        return value
