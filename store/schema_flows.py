"""Schema steps of what follows an order: the lifecycle's automations and catalog, segments, and outbound
destinations with their deliveries. `store.schema` applies them in order, with those of `store.schema_orders`."""

import sqlite_utils


def v6(db: sqlite_utils.Database) -> None:
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


def v7(db: sqlite_utils.Database) -> None:
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


def outbound(db: sqlite_utils.Database) -> None:
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


def segment_state(db: sqlite_utils.Database) -> None:
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


def timer_failures(db: sqlite_utils.Database) -> None:
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


def lifecycle_counts(db: sqlite_utils.Database) -> None:
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


def segment_due_dropped(db: sqlite_utils.Database) -> None:
    """A subscriber's segment timer is read from `timers` alone: the copy of its due time in their row goes."""
    db.execute("ALTER TABLE subscribers DROP COLUMN segment_due")


def open_waits(db: sqlite_utils.Database) -> None:
    """Each subscriber's count of active back-in-stock waits and checkouts (`subscribers.open_waits`), kept by
    the triggers that keep the active counts by flow and read with the subscriber an order loads, so that a
    purchase by someone with none looks for none (`gateway.engine.lifecycle`). An automation moved to another
    subscriber (email spellings merged) takes its count along."""
    db.executescript(
        """
        ALTER TABLE subscribers ADD COLUMN open_waits INTEGER NOT NULL DEFAULT 0;
        UPDATE subscribers SET open_waits = (SELECT count(*) FROM automations AS a
            WHERE a.subscriber_id = subscribers.id AND a.flow != 'replenishment' AND a.status = 'active')
            WHERE id IN (SELECT subscriber_id FROM automations WHERE flow != 'replenishment' AND status = 'active');
        DROP TRIGGER automations_counted;
        DROP TRIGGER automations_uncounted;
        DROP TRIGGER automations_ended;
        CREATE TRIGGER automations_counted AFTER INSERT ON automations WHEN new.status = 'active' BEGIN
            UPDATE automation_counts SET active = active + 1 WHERE flow = new.flow;
            UPDATE subscribers SET open_waits = open_waits + 1
                WHERE new.flow != 'replenishment' AND id = new.subscriber_id;
        END;
        CREATE TRIGGER automations_uncounted AFTER DELETE ON automations WHEN old.status = 'active' BEGIN
            UPDATE automation_counts SET active = active - 1 WHERE flow = old.flow;
            UPDATE subscribers SET open_waits = open_waits - 1
                WHERE old.flow != 'replenishment' AND id = old.subscriber_id;
        END;
        CREATE TRIGGER automations_ended AFTER UPDATE OF status ON automations
            WHEN old.status = 'active' AND new.status != 'active' BEGIN
            UPDATE automation_counts SET active = active - 1 WHERE flow = old.flow;
            UPDATE subscribers SET open_waits = open_waits - 1
                WHERE old.flow != 'replenishment' AND id = old.subscriber_id;
        END;
        CREATE TRIGGER automations_moved AFTER UPDATE OF subscriber_id ON automations
            WHEN new.status = 'active' AND new.flow != 'replenishment' AND old.subscriber_id != new.subscriber_id
        BEGIN
            UPDATE subscribers SET open_waits = open_waits - 1 WHERE id = old.subscriber_id;
            UPDATE subscribers SET open_waits = open_waits + 1 WHERE id = new.subscriber_id;
        END;
        """
    )


def automations_fire_at(db: sqlite_utils.Database) -> None:
    """An active automation with a due time is its own timer (`automations.fire_at`, in a partial index of the
    rows set to fire) rather than a `timers` row beside it: one index entry where a timer took a row and two
    (a reminder whose firing failed stays in `timers` with its attempts, as before).

    The active counts by flow no longer take a trigger per automation started: `automation_counts` counts the
    rows up to `automations_counted.up_to`, and a reader adds the active rows after it, which the worker folds
    in after each chunk of jobs (`store.automation_counts.fold`). The triggers still take a row's end off the
    count when it was counted, and keep `subscribers.open_waits` (for the flows it counts)."""
    db.executescript(
        """
        ALTER TABLE automations ADD COLUMN fire_at INTEGER;
        UPDATE automations SET fire_at = (SELECT t.due_at FROM timers AS t
            WHERE t.kind = 'automation' AND t.key = CAST(automations.id AS TEXT))
            WHERE status = 'active' AND CAST(id AS TEXT) IN
                (SELECT key FROM timers WHERE kind = 'automation' AND attempts = 0);
        DELETE FROM timers WHERE kind = 'automation' AND attempts = 0;
        CREATE INDEX automations_due ON automations(flow, fire_at) WHERE fire_at IS NOT NULL;
        CREATE TABLE automations_counted (id INTEGER PRIMARY KEY CHECK (id = 1), up_to INTEGER NOT NULL);
        INSERT INTO automations_counted (id, up_to) VALUES (1, (SELECT coalesce(max(id), 0) FROM automations));
        DROP TRIGGER automations_counted;
        DROP TRIGGER automations_uncounted;
        DROP TRIGGER automations_ended;
        CREATE TRIGGER automations_counted AFTER INSERT ON automations
            WHEN new.status = 'active' AND new.flow != 'replenishment' BEGIN
            UPDATE subscribers SET open_waits = open_waits + 1 WHERE id = new.subscriber_id;
        END;
        CREATE TRIGGER automations_uncounted AFTER DELETE ON automations WHEN old.status = 'active' BEGIN
            UPDATE automation_counts SET active = active - 1
                WHERE flow = old.flow AND old.id <= (SELECT up_to FROM automations_counted);
            UPDATE subscribers SET open_waits = open_waits - 1
                WHERE old.flow != 'replenishment' AND id = old.subscriber_id;
        END;
        CREATE TRIGGER automations_ended AFTER UPDATE OF status ON automations
            WHEN old.status = 'active' AND new.status != 'active' BEGIN
            UPDATE automation_counts SET active = active - 1
                WHERE flow = old.flow AND old.id <= (SELECT up_to FROM automations_counted);
            UPDATE subscribers SET open_waits = open_waits - 1
                WHERE old.flow != 'replenishment' AND id = old.subscriber_id;
        END;
        """
    )


def open_waits_counted_on_start(db: sqlite_utils.Database) -> None:
    """A back-in-stock wait or checkout started is counted in `subscribers.open_waits` by `store.automations.start`
    itself: the trigger that did it ran its program for every automation inserted, the many replenishment ones
    too (~4,900 instructions a row for nothing). Its end, move and erasure are still counted by triggers."""
    db.execute("DROP TRIGGER automations_counted")


def deliveries_narrowed(db: sqlite_utils.Database) -> None:
    """The outbox row the worker writes with every event enters two indexes instead of four (docs/PERFORMANCE.md):
    the webhook-id is derived from the row when read (`store.deliveries.WEBHOOK_ID`: its creation time and id)
    instead of stored and indexed, and the statuses are indexed only where a reader looks for them: due rows
    (pending, failed) by destination and due time, leased rows by lease expiry, dead rows by destination. A
    webhook-id stored before is kept with its row and sent as it was; `legacy_webhook_ids` finds its row."""
    for statement in (
        """CREATE TABLE deliveries_narrowed (
            id INTEGER PRIMARY KEY,
            event_id INTEGER NOT NULL,
            destination TEXT NOT NULL,
            status TEXT NOT NULL,               -- pending | delivering | succeeded | failed | dead
            attempts INTEGER NOT NULL,          -- every attempt made
            tries INTEGER NOT NULL,             -- attempts since the last replay: the retry schedule's position
            next_attempt_at INTEGER,
            lease_owner TEXT,                   -- the sending process of a delivering row
            lease_expires INTEGER,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            stored_webhook_id TEXT              -- a webhook-id written before this migration; NULL since
        )""",
        "INSERT INTO deliveries_narrowed (id, event_id, destination, status, attempts, tries, next_attempt_at,"
        " lease_owner, lease_expires, created_at, updated_at, stored_webhook_id)"
        " SELECT id, event_id, destination, status, attempts, tries, next_attempt_at, lease_owner, lease_expires,"
        " created_at, updated_at, webhook_id FROM deliveries",
        "CREATE TABLE legacy_webhook_ids (webhook_id TEXT PRIMARY KEY, delivery_id INTEGER NOT NULL) WITHOUT ROWID",
        "INSERT INTO legacy_webhook_ids SELECT webhook_id, id FROM deliveries",
        "DROP TABLE deliveries",
        "ALTER TABLE deliveries_narrowed RENAME TO deliveries",
        "CREATE UNIQUE INDEX deliveries_event ON deliveries(event_id, destination)",
        # Written `=` OR `=` (not IN): a query's `status = 'pending'` then implies the index's condition.
        "CREATE INDEX deliveries_due ON deliveries(destination, next_attempt_at, status)"
        " WHERE status = 'pending' OR status = 'failed'",
        "CREATE INDEX deliveries_leased ON deliveries(lease_expires) WHERE status = 'delivering'",
        "CREATE INDEX deliveries_dead ON deliveries(destination, id) WHERE status = 'dead'",
    ):
        db.execute(statement)


def deliveries_by_destination(db: sqlite_utils.Database) -> None:
    """One destination's deliveries are listed by event from the index that keeps an event's delivery unique,
    keyed destination first, and its dead ones likewise: a destination with few deliveries lists fast beside one
    with most, with no index over every row for it (the worker writes the same two entries per delivery)."""
    for statement in (
        "DROP INDEX deliveries_event",
        "CREATE UNIQUE INDEX deliveries_event ON deliveries(destination, event_id)",
        "DROP INDEX deliveries_dead",
        "CREATE INDEX deliveries_dead ON deliveries(destination, event_id) WHERE status = 'dead'",
    ):
        db.execute(statement)
