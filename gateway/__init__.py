"""The running service: HTTP app, ingest committer, worker, engine orchestration, config and CLI."""
