"""From accepted request to done job: the ingest group commit, the worker, and their turns on the write lock."""
