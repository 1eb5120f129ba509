"""The engine: one job's effects applied in the caller's transaction (orders, compliance commands, lifecycle;
segments join here)."""

from gateway.config import Config
from gateway.engine.lifecycle import Lifecycle
from gateway.engine.orders import Engine, LedgerLookup


def build_engine(config: Config) -> Engine:
    """The engine a worker runs: the order engine with the lifecycle (and what else plugs in) registered."""
    engine = Engine(config.currency, config.fx_rates)
    Lifecycle.register(engine, config.lifecycle)
    return engine


__all__ = ["Engine", "LedgerLookup", "build_engine"]
