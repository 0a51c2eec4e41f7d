-- The per-agency feed: events addressed to each agency, in the order its cursor gives them.
-- A cursor (seq) is per agency and gap-free: it comes from feed_heads inside the transaction that
-- writes the event, so on either backend two writers to one agency take turns on its head row
-- and cursor order is commit order.
CREATE TABLE feed_heads (
    agency_id   TEXT PRIMARY KEY NOT NULL,
    last_cursor BIGINT NOT NULL
);

CREATE TABLE feed_events (
    agency_id        TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    event_id         TEXT NOT NULL UNIQUE,
    event_type       TEXT NOT NULL,
    resource_name    TEXT NOT NULL,
    resource_version BIGINT NOT NULL,
    event_time       BIGINT NOT NULL,
    actor_agency     TEXT NOT NULL,
    trace_id         TEXT NOT NULL,
    needs_disposal   BIGINT NOT NULL DEFAULT 0 CHECK (needs_disposal IN (0, 1)),
    -- The event as the partner receives it (an encoded FeedEvent with the full resource).
    payload          BLOB NOT NULL,
    PRIMARY KEY (agency_id, seq)
);

-- Where each agency has acknowledged its feed up to.
CREATE TABLE feed_positions (
    agency_id    TEXT PRIMARY KEY NOT NULL,
    acked_cursor BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
