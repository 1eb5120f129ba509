"""Operator commands beside the service: backfill from a store's REST API, try-mapping a saved payload."""
