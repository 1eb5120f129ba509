"""Schema steps of the order pipeline's tables: jobs and their attempts, the ledger, subscribers, events and
timers. `store.schema` applies them in order, with those of `store.schema_flows`."""

import sqlite_utils

from store import email_spellings


def v1(db: sqlite_utils.Database) -> None:
    db.table("jobs").create(
        {
            "id": int,
            "job_id": str,  # public id: commerce-order-… / commerce-webhook-…
            "kind": str,  # order (canonical post) | webhook (raw platform delivery)
            "source": str,
            "dedup_key": str,  # webhooks: the delivery key; NULL for canonical posts
            "topic": str,
            "headers": str,  # JSON object of the delivery's headers (never Authorization or cookies)
            "body": bytes,  # canonical JSON, or the raw delivery body exactly as received
            "received_at": int,  # µs since the epoch, like every *_at integer here
            "status": str,  # queued | processing | done | failed | dead
            "attempts": int,
            "run_at": int,
            "lease_owner": str,  # the worker holding the job's lease; of a done job, the worker that did it
            "lease_expires": int,
            "error": str,
            "warnings": str,  # JSON list
            "finished_at": int,
        },
        pk="id",
        not_null={"job_id", "kind", "source", "body", "received_at", "status", "attempts", "run_at"},
        defaults={"attempts": 0},
    )
    db.table("orders").create(
        {
            "id": int,
            "source": str,
            "order_id": str,
            "provider": str,
            "order_number": str,
            "email": str,
            "customer": str,  # JSON: externalId, firstName, lastName
            "total_cents": int,
            "currency": str,
            "items": str,  # JSON list of canonical items
            "ordered_at": str,
            "statuses": str,  # JSON list of every status seen
            "cancelled": int,
            "fulfilled": int,
            "refunded_cents": int,
            "refunds": str,  # JSON object: platform refund id -> cents
            "version": int,  # ordering of facts: the platform's update time, or arrival for canonical posts
            "created_at": int,
            "updated_at": int,
        },
        pk="id",
        not_null={"source", "order_id", "provider", "total_cents", "currency", "version"},
    )
    db.table("subscribers").create(
        {
            "id": int,
            "email": str,
            "external_id": str,
            "first_name": str,
            "last_name": str,
            "attributes": str,  # JSON object of custom attributes
            "orders_count": int,
            "total_spent_cents": int,  # base currency
            "baseline": str,  # JSON: platform customerTotals and the ledger figures at that moment
            "created_at": int,
            "updated_at": int,
        },
        pk="id",
        not_null={"email", "orders_count", "total_spent_cents", "created_at", "updated_at"},
        defaults={"orders_count": 0, "total_spent_cents": 0, "attributes": "{}"},
    )
    db.table("events").create(
        {
            "id": int,
            "subscriber_id": int,
            "name": str,
            "properties": str,
            "occurred_at": int,
            "source": str,
            "order_id": str,
            "dedup_key": str,
            "job_id": str,
        },
        pk="id",
        not_null={"subscriber_id", "name", "properties", "occurred_at", "dedup_key"},
        foreign_keys=[("subscriber_id", "subscribers", "id")],
    )
    db.executescript(
        """
        CREATE UNIQUE INDEX jobs_job_id ON jobs(job_id);
        CREATE UNIQUE INDEX jobs_dedup ON jobs(source, dedup_key) WHERE dedup_key IS NOT NULL;
        CREATE INDEX jobs_ready ON jobs(run_at) WHERE status IN ('queued', 'failed');
        CREATE INDEX jobs_leased ON jobs(lease_expires) WHERE status = 'processing';
        CREATE INDEX jobs_dead ON jobs(id) WHERE status = 'dead';
        CREATE UNIQUE INDEX orders_key ON orders(source, order_id);
        CREATE INDEX orders_email ON orders(email);
        CREATE UNIQUE INDEX subscribers_email ON subscribers(email);
        CREATE UNIQUE INDEX events_dedup ON events(dedup_key);
        CREATE INDEX events_subscriber ON events(subscriber_id, id);
        """
    )


def v2(db: sqlite_utils.Database) -> None:
    """Done jobs by finish time, for the retention of done jobs (`queue.prune_done`)."""
    db.execute("CREATE INDEX jobs_done ON jobs(finished_at) WHERE status = 'done'")


def v3(db: sqlite_utils.Database) -> None:
    """Orders by email with what revenue needs of them (`ledger.SPEND_SQL`): the customer's totals are read from
    the index alone, without a lookup in the orders table per order (docs/PERFORMANCE.md)."""
    db.execute("CREATE INDEX orders_spend ON orders(email, cancelled, currency, total_cents, refunded_cents)")
    db.execute("DROP INDEX orders_email")


def v4(db: sqlite_utils.Database) -> None:
    """Durable timers (`store.timers`): one row per (kind, key), read earliest first through `timers_due`."""
    db.execute(
        "CREATE TABLE timers (kind TEXT NOT NULL, key TEXT NOT NULL, due_at INTEGER NOT NULL, PRIMARY KEY (kind, key))"
    )
    db.execute("CREATE INDEX timers_due ON timers(due_at)")


def v5(db: sqlite_utils.Database) -> None:
    """Job lists newest first by status, by source, by both (`job_reads.page`), and the events a job recorded
    (its trace). `jobs_status` covers what `jobs_dead` did."""
    db.execute("CREATE INDEX jobs_status ON jobs(status, id)")
    db.execute("CREATE INDEX jobs_source ON jobs(source, status, id)")
    db.execute("DROP INDEX jobs_dead")
    db.execute("CREATE INDEX events_job ON events(job_id) WHERE job_id IS NOT NULL")


def v8(db: sqlite_utils.Database) -> None:
    """Emails in their normalised form (NFC): one address written two ways becomes one subscriber again, with
    its totals recomputed from the ledger at the next start (`store.email_spellings`)."""
    email_spellings.merge_spellings(db.conn)


def job_attempts(db: sqlite_utils.Database) -> None:
    """A job's failed attempts, for its trace (`queue.fail` writes one row per failure; `job_reads.get` reads them
    oldest first through `job_attempts_job`): the jobs table keeps only the last error."""
    db.execute(
        "CREATE TABLE job_attempts (id INTEGER PRIMARY KEY, job INTEGER NOT NULL, attempt INTEGER NOT NULL,"
        " at INTEGER NOT NULL, error TEXT NOT NULL, next_attempt_at INTEGER)"  # next_attempt_at NULL: went dead
    )
    db.execute("CREATE INDEX job_attempts_job ON job_attempts(job)")


def job_lists_off_the_hot_path(db: sqlite_utils.Database) -> None:
    """Job lists read indexes the worker's completion of a job does not write: jobs by source in id order (a
    job's source never changes), and the unfinished jobs by status (a completed job only leaves it). Done jobs,
    nearly all of them, are listed in id order from the table itself, or from `jobs_source`
    (`job_reads.page`); `jobs_status` and the old `jobs_source` cost every completed job four index writes."""
    for statement in (
        "DROP INDEX jobs_status",
        "DROP INDEX jobs_source",
        "CREATE INDEX jobs_unfinished ON jobs(status, id) WHERE status != 'done'",
        "CREATE INDEX jobs_source ON jobs(source, id)",
    ):
        db.execute(statement)


def events_job_of_deliveries(db: sqlite_utils.Database) -> None:
    """`events_job` indexes only the events of configured sources' deliveries: a Push Order job's events are read
    from its order's dedup keys (`job_reads`), so the worker writes no index entry for them (docs/PERFORMANCE.md)."""
    db.execute("DROP INDEX events_job")
    db.execute("CREATE INDEX events_job ON events(job_id) WHERE job_id IS NOT NULL AND source != 'api'")


def events_dedup_of_keyed_events(db: sqlite_utils.Database) -> None:
    """`events_dedup` indexes only events with a dedup key: a segment event has none (`events.NO_KEY`), its
    transition's number in the subscriber's row records it once, and it writes no index entry."""
    db.execute("DROP INDEX events_dedup")
    db.execute("CREATE UNIQUE INDEX events_dedup ON events(dedup_key) WHERE dedup_key != ''")


def events_ids_never_reused(db: sqlite_utils.Database) -> None:
    """An event id is never given twice (AUTOINCREMENT): an erasure that deleted the newest events let the next
    event take an erased one's id, and a consumer of the feed, polling `after=` its last id, skipped it. The table
    is copied once, with its indexes as they were."""
    conn = db.conn
    indexes = [
        sql
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'events' AND type = 'index' AND sql IS NOT NULL"
        )
    ]
    columns = "id, subscriber_id, name, properties, occurred_at, source, order_id, dedup_key, job_id"
    for statement in (
        "CREATE TABLE events_numbered (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " subscriber_id INTEGER NOT NULL REFERENCES subscribers(id), name TEXT NOT NULL, properties TEXT NOT NULL,"
        " occurred_at INTEGER NOT NULL, source TEXT, order_id TEXT, dedup_key TEXT NOT NULL, job_id TEXT)",
        f"INSERT INTO events_numbered ({columns}) SELECT {columns} FROM events ORDER BY id",
        "DROP TABLE events",
        "ALTER TABLE events_numbered RENAME TO events",
        *indexes,
    ):
        conn.execute(statement)
