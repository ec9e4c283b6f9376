-- The event store on SQLite. Ids are 16-byte BLOBs, hashes 32-byte BLOBs, times integer
-- milliseconds since the Unix epoch (UTC). Payload and metadata are JSON text. The
-- payload is stored byte for byte as written and the hash chain covers those bytes; the chain
-- covers the metadata's fields (unknown ones are refused on read). correlation_id is an
-- indexed copy of the metadata's field.

CREATE TABLE events (
    -- Global position: unique (the rowid), from 1, and contiguous: every event but the
    -- first references the one before it, so no gap can be written or made by a delete by a
    -- connection with foreign keys on (SQLite checks them per connection; the store's are).
    -- Stream versions likewise: unique per stream, and each references the version before.
    position       INTEGER PRIMARY KEY CHECK (position >= 1),
    prev_position  INTEGER GENERATED ALWAYS AS (NULLIF(position - 1, 0)) STORED
                   REFERENCES events (position),
    event_id       BLOB    NOT NULL UNIQUE CHECK (length(event_id) = 16),
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL CHECK (schema_version >= 1),
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1),
    prev_version   INTEGER GENERATED ALWAYS AS (NULLIF(version - 1, 0)) STORED,
    timestamp_ms   INTEGER NOT NULL,
    payload        TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    correlation_id BLOB,
    prev_hash      BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash           BLOB    NOT NULL CHECK (length(hash) = 32),
    CONSTRAINT events_stream_version UNIQUE (aggregate_type, aggregate_id, version),
    CONSTRAINT events_follow_stream FOREIGN KEY (aggregate_type, aggregate_id, prev_version)
        REFERENCES events (aggregate_type, aggregate_id, version)
) STRICT;

-- The log is append-only.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;

CREATE INDEX events_by_type ON events (event_type, position);
CREATE INDEX events_by_time ON events (timestamp_ms);
CREATE INDEX events_by_correlation ON events (correlation_id, position) WHERE correlation_id IS NOT NULL;

-- The head of the log: the last committed position and its hash. Every append locks and
-- moves it in the same transaction as its events.
CREATE TABLE log_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL CHECK (position >= 0),
    hash     BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;
INSERT INTO log_head (id, position, hash) VALUES (1, 0, zeroblob(32));

CREATE TABLE snapshots (
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    position       INTEGER NOT NULL,
    format_version INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    taken_at_ms    INTEGER NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, version)
) STRICT;

CREATE TABLE idempotency_records (
    idempotency_key TEXT    PRIMARY KEY,
    fingerprint     BLOB    NOT NULL CHECK (length(fingerprint) = 32),
    outcome         TEXT    NOT NULL,
    position        INTEGER NOT NULL
) STRICT;

CREATE TABLE projection_checkpoints (
    name     TEXT    PRIMARY KEY,
    position INTEGER NOT NULL CHECK (position >= 0)
) STRICT;
