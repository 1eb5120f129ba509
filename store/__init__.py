"""SQLite: schema and migrations, the durable job queue, the order ledger, subscribers and events."""
