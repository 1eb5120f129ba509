"""The engine: one job's effects applied in the caller's transaction (orders, compliance commands, lifecycle,
segments)."""

from gateway.config import Config, ConfigError
from gateway.engine.lifecycle import Lifecycle
from gateway.engine.orders import Engine, LedgerLookup
from gateway.engine.segment_operators import DefinitionError


def build_engine(config: Config) -> Engine:
    """The engine a worker runs: the order engine with its segments, and the lifecycle (and what else plugs in)
    registered. A segment definition it cannot use raises ConfigError naming its key."""
    try:
        engine = Engine(config.currency, config.fx_rates, config.segments)
    except DefinitionError as exc:
        raise ConfigError(str(exc)) from None
    Lifecycle.register(engine, config.lifecycle)
    return engine


__all__ = ["Engine", "LedgerLookup", "build_engine"]
