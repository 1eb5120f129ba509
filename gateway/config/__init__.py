"""config.yaml: read once at start, `${ENV}` references resolved, validated strictly, errors naming the key.
The sections and their rules are in `sections`, reading the file in `loading`."""

from gateway.config.errors import ConfigError
from gateway.config.loading import build_adapters, load, load_with_adapters
from gateway.config.sections import (
    Config,
    DeliveryConfig,
    DestinationConfig,
    Duration,
    LifecycleConfig,
    WorkerConfig,
    parse_duration,
)

__all__ = [
    "Config",
    "ConfigError",
    "DeliveryConfig",
    "DestinationConfig",
    "Duration",
    "LifecycleConfig",
    "WorkerConfig",
    "build_adapters",
    "load",
    "load_with_adapters",
    "parse_duration",
]
