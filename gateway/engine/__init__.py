"""The engine: one job's effects applied in the caller's transaction (orders, compliance commands; lifecycle
and segments join here)."""

from gateway.engine.orders import Engine, LedgerLookup

__all__ = ["Engine", "LedgerLookup"]
