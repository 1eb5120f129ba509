"""Schema and migrations, numbered by PRAGMA user_version; sqlite-utils builds the tables."""

import sqlite3
from collections.abc import Callable

import sqlite_utils

from store import email_spellings


def _v1(db: sqlite_utils.Database) -> None:
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


def _v2(db: sqlite_utils.Database) -> None:
    """Done jobs by finish time, for the retention of done jobs (`queue.prune_done`)."""
    db.execute("CREATE INDEX jobs_done ON jobs(finished_at) WHERE status = 'done'")


def _v3(db: sqlite_utils.Database) -> None:
    """Orders by email with what revenue needs of them (`ledger.SPEND_SQL`): the customer's totals are read from
    the index alone, without a lookup in the orders table per order (docs/PERFORMANCE.md)."""
    db.execute("CREATE INDEX orders_spend ON orders(email, cancelled, currency, total_cents, refunded_cents)")
    db.execute("DROP INDEX orders_email")


def _v4(db: sqlite_utils.Database) -> None:
    """Durable timers (`store.timers`): one row per (kind, key), read earliest first through `timers_due`."""
    db.execute(
        "CREATE TABLE timers (kind TEXT NOT NULL, key TEXT NOT NULL, due_at INTEGER NOT NULL, PRIMARY KEY (kind, key))"
    )
    db.execute("CREATE INDEX timers_due ON timers(due_at)")


def _v5(db: sqlite_utils.Database) -> None:
    """Job lists newest first by status, by source, by both (`job_reads.page`), and the events a job recorded
    (its trace). `jobs_status` covers what `jobs_dead` did."""
    db.execute("CREATE INDEX jobs_status ON jobs(status, id)")
    db.execute("CREATE INDEX jobs_source ON jobs(source, status, id)")
    db.execute("DROP INDEX jobs_dead")
    db.execute("CREATE INDEX events_job ON events(job_id) WHERE job_id IS NOT NULL")


def _v6(db: sqlite_utils.Database) -> None:
    """Lifecycle: automations (`store.automations`) and the product catalog (`store.catalog`). Automations are
    read by subscriber (the read API, an order's reminders) and, for back-in-stock waits and checkouts, by key;
    replenishment rows, the many, stay out of the key index."""
    db.executescript(
        """
        CREATE TABLE automations (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
            flow TEXT NOT NULL,
            key TEXT NOT NULL,
            status TEXT NOT NULL,
            source TEXT,
            order_id TEXT,
            ordered_at INTEGER,
            started_at INTEGER NOT NULL,
            due_at INTEGER,
            fired_at INTEGER,
            stopped_at INTEGER,
            reason TEXT,
            data TEXT NOT NULL
        );
        CREATE INDEX automations_subscriber ON automations(subscriber_id, flow, key);
        CREATE INDEX automations_key ON automations(flow, key) WHERE flow != 'replenishment';
        CREATE TABLE products (
            product_id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            data TEXT NOT NULL,
            replenishment TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        """
    )


def _v7(db: sqlite_utils.Database) -> None:
    """Segments: each definition as built (its fingerprint) with its member count, and who is in each segment
    (a row per subscriber and segment once they have entered: `changes` numbers the transitions). When a
    withinDays window moves a subscriber's membership is a durable timer (`store.timers`, kind `segment`)."""
    for statement in (
        "CREATE TABLE segments (name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,"
        " members INTEGER NOT NULL DEFAULT 0, built_at INTEGER NOT NULL)",
        "CREATE TABLE segment_members (subscriber_id INTEGER NOT NULL, segment TEXT NOT NULL,"
        " member INTEGER NOT NULL, changes INTEGER NOT NULL, changed_at INTEGER NOT NULL,"
        " PRIMARY KEY (subscriber_id, segment)) WITHOUT ROWID",
        "CREATE INDEX segment_members_listing ON segment_members(segment, subscriber_id) WHERE member",
    ):
        db.execute(statement)


def _v8(db: sqlite_utils.Database) -> None:
    """Emails in their normalised form (NFC): one address written two ways becomes one subscriber again, with
    its totals recomputed from the ledger at the next start (`store.email_spellings`)."""
    email_spellings.merge_spellings(db.conn)


def _outbound(db: sqlite_utils.Database) -> None:
    """Outbound destinations (docs/destinations.md): their routing and state, one delivery row per event and
    destination (the outbox, written with the event), and every attempt made."""
    db.executescript(
        """
        CREATE TABLE destinations (
            name TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            events TEXT NOT NULL,               -- JSON list of shell-style patterns; [] is every event
            include_historical INTEGER NOT NULL,
            configured INTEGER NOT NULL,        -- 0: removed from the config; its history stays
            configured_at INTEGER NOT NULL,
            enabled INTEGER NOT NULL,
            disabled_at INTEGER,
            disabled_reason TEXT,
            failing_since INTEGER,              -- the first failure after the last success
            last_success_at INTEGER,
            last_failure_at INTEGER
        );
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            webhook_id TEXT NOT NULL,           -- the webhook-id header and the API's deliveryId
            event_id INTEGER NOT NULL,
            destination TEXT NOT NULL,
            status TEXT NOT NULL,               -- pending | delivering | succeeded | failed | dead
            attempts INTEGER NOT NULL,          -- every attempt made
            tries INTEGER NOT NULL,             -- attempts since the last replay: the retry schedule's position
            next_attempt_at INTEGER,
            lease_owner TEXT,                   -- the sending process of a delivering row
            lease_expires INTEGER,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE UNIQUE INDEX deliveries_webhook_id ON deliveries(webhook_id);
        CREATE UNIQUE INDEX deliveries_event ON deliveries(event_id, destination);
        CREATE INDEX deliveries_due ON deliveries(destination, next_attempt_at) WHERE status IN ('pending', 'failed');
        CREATE INDEX deliveries_leased ON deliveries(lease_expires) WHERE status = 'delivering';
        CREATE INDEX deliveries_by_status ON deliveries(destination, status, id);
        CREATE TABLE delivery_attempts (
            id INTEGER PRIMARY KEY,
            delivery_id INTEGER NOT NULL,
            at INTEGER NOT NULL,
            status_code INTEGER,
            duration_ms INTEGER NOT NULL,
            error TEXT,
            response_body TEXT                  -- the first 1 KiB
        );
        CREATE INDEX delivery_attempts_delivery ON delivery_attempts(delivery_id, id);
        """
    )


def _segment_state(db: sqlite_utils.Database) -> None:
    """Segments, read faster: a subscriber's transitions per segment and their segment timer's due time live in
    their own row (one read with the profile every evaluation needs), and `segment_members` holds members only,
    keyed for listing."""
    for statement in (
        "ALTER TABLE subscribers ADD COLUMN segment_changes TEXT",
        "ALTER TABLE subscribers ADD COLUMN segment_due INTEGER",
        "UPDATE subscribers SET segment_changes = (SELECT group_concat(m.segment || ' ' || m.changes, ',')"
        " FROM segment_members AS m WHERE m.subscriber_id = subscribers.id)"
        " WHERE id IN (SELECT subscriber_id FROM segment_members)",
        "UPDATE subscribers SET segment_due = (SELECT t.due_at FROM timers AS t WHERE t.kind = 'segment'"
        " AND t.key = CAST(subscribers.id AS TEXT)) WHERE CAST(id AS TEXT) IN"
        " (SELECT key FROM timers WHERE kind = 'segment')",
        "CREATE TABLE segment_members_v8 (segment TEXT NOT NULL, subscriber_id INTEGER NOT NULL,"
        " PRIMARY KEY (segment, subscriber_id)) WITHOUT ROWID",
        "INSERT INTO segment_members_v8 SELECT segment, subscriber_id FROM segment_members WHERE member",
        "DROP TABLE segment_members",
        "ALTER TABLE segment_members_v8 RENAME TO segment_members",
        # Subscribers merged into one (v8) leave no member behind.
        "DELETE FROM segment_members WHERE subscriber_id NOT IN (SELECT id FROM subscribers)",
    ):
        db.execute(statement)


def _timer_failures(db: sqlite_utils.Database) -> None:
    """A timer whose firing fails counts its attempts and keeps its error (`timers_failed` lists those), and after
    the last attempt is dead, in a table of its own (`store.timers.bury`)."""
    for statement in (
        "ALTER TABLE timers ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE timers ADD COLUMN error TEXT",
        "CREATE INDEX timers_failed ON timers(kind) WHERE attempts > 0",
        "CREATE TABLE dead_timers (kind TEXT NOT NULL, key TEXT NOT NULL, due_at INTEGER NOT NULL,"
        " attempts INTEGER NOT NULL, error TEXT NOT NULL, died_at INTEGER NOT NULL, PRIMARY KEY (kind, key))",
    ):
        db.execute(statement)


def _job_attempts(db: sqlite_utils.Database) -> None:
    """A job's failed attempts, for its trace (`queue.fail` writes one row per failure; `job_reads.get` reads them
    oldest first through `job_attempts_job`): the jobs table keeps only the last error."""
    db.execute(
        "CREATE TABLE job_attempts (id INTEGER PRIMARY KEY, job INTEGER NOT NULL, attempt INTEGER NOT NULL,"
        " at INTEGER NOT NULL, error TEXT NOT NULL, next_attempt_at INTEGER)"  # next_attempt_at NULL: went dead
    )
    db.execute("CREATE INDEX job_attempts_job ON job_attempts(job)")


def _job_lists_off_the_hot_path(db: sqlite_utils.Database) -> None:
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


def _lifecycle_counts(db: sqlite_utils.Database) -> None:
    """Kept by triggers, so that no reader scans: active automations by flow (the metrics gauge), and the
    generation of the catalog's replenishment rules, a fresh random number whenever a product's rule is set,
    changed or removed, by which the worker knows its in-memory copy of the rules still holds
    (`gateway.engine.catalog.Rules`); random rather than counted, so that a change rolled back and another one
    made never show the same number. The rules are indexed apart, so reading them all reads no product data."""
    db.executescript(
        """
        CREATE TABLE automation_counts (flow TEXT PRIMARY KEY, active INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO automation_counts (flow, active)
            VALUES ('replenishment', 0), ('back_in_stock', 0), ('checkout', 0);
        UPDATE automation_counts SET active = (SELECT count(*) FROM automations AS a
            WHERE a.flow = automation_counts.flow AND a.status = 'active');
        CREATE TRIGGER automations_counted AFTER INSERT ON automations WHEN new.status = 'active' BEGIN
            UPDATE automation_counts SET active = active + 1 WHERE flow = new.flow;
        END;
        CREATE TRIGGER automations_uncounted AFTER DELETE ON automations WHEN old.status = 'active' BEGIN
            UPDATE automation_counts SET active = active - 1 WHERE flow = old.flow;
        END;
        CREATE TRIGGER automations_ended AFTER UPDATE OF status ON automations
            WHEN old.status = 'active' AND new.status != 'active' BEGIN
            UPDATE automation_counts SET active = active - 1 WHERE flow = old.flow;
        END;
        CREATE INDEX products_replenishment ON products(product_id, replenishment) WHERE replenishment IS NOT NULL;
        CREATE TABLE replenishment_generation (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL);
        INSERT INTO replenishment_generation (id, generation) VALUES (1, random());
        CREATE TRIGGER products_rule_set AFTER INSERT ON products WHEN new.replenishment IS NOT NULL BEGIN
            UPDATE replenishment_generation SET generation = random();
        END;
        CREATE TRIGGER products_rule_changed AFTER UPDATE OF replenishment ON products
            WHEN old.replenishment IS NOT new.replenishment BEGIN
            UPDATE replenishment_generation SET generation = random();
        END;
        CREATE TRIGGER products_rule_removed AFTER DELETE ON products WHEN old.replenishment IS NOT NULL BEGIN
            UPDATE replenishment_generation SET generation = random();
        END;
        """
    )


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1,
    _v2,
    _v3,
    _v4,
    _v5,
    _v6,
    _v7,
    _v8,
    _outbound,
    _segment_state,
    _timer_failures,
    _job_attempts,
    _job_lists_off_the_hot_path,
    _lifecycle_counts,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest schema; safe to run from several processes at once."""
    db = sqlite_utils.Database(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
            step(db)
            conn.execute(f"PRAGMA user_version={number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)
