"""The statuses a job and a delivery can be in, in a module of their own: the command line offers them as choices
without loading the queue or the outbox."""

JOB_STATUSES = ("queued", "processing", "done", "failed", "dead")
DELIVERY_STATUSES = ("pending", "delivering", "succeeded", "failed", "dead")
