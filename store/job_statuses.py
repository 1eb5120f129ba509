"""The statuses a job goes through (the jobs table's status column), in a module of their own: the command line
offers them as choices without loading the queue."""

STATUSES = ("queued", "processing", "done", "failed", "dead")
