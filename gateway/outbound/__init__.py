"""Outbound delivery of recorded events to the configured destinations (docs/destinations.md)."""
