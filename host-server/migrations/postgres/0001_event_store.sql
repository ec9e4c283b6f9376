-- The event store on PostgreSQL. Times are integer milliseconds since the Unix epoch (UTC).
-- Payload and metadata are `json`, which keeps the text byte for byte as written (unlike
-- `jsonb`): the hash chain covers those exact bytes.

CREATE TABLE events (
    -- Global position: unique, from 1, and contiguous: every event but the first references
    -- the one before it, so no gap can be written or made by a delete. Stream versions
    -- likewise: unique per stream, and each references the version before it.
    position       BIGINT  PRIMARY KEY CHECK (position >= 1),
    prev_position  BIGINT  GENERATED ALWAYS AS (NULLIF(position - 1, 0)) STORED
                   REFERENCES events (position),
    event_id       UUID    NOT NULL UNIQUE,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL CHECK (schema_version >= 1),
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    version        BIGINT  NOT NULL CHECK (version >= 1),
    prev_version   BIGINT  GENERATED ALWAYS AS (NULLIF(version - 1, 0)) STORED,
    timestamp_ms   BIGINT  NOT NULL,
    payload        JSON    NOT NULL,
    metadata       JSON    NOT NULL,
    correlation_id UUID,
    prev_hash      BYTEA   NOT NULL CHECK (length(prev_hash) = 32),
    hash           BYTEA   NOT NULL CHECK (length(hash) = 32),
    CONSTRAINT events_stream_version UNIQUE (aggregate_type, aggregate_id, version),
    CONSTRAINT events_follow_stream FOREIGN KEY (aggregate_type, aggregate_id, prev_version)
        REFERENCES events (aggregate_type, aggregate_id, version)
);

CREATE INDEX events_by_type ON events (event_type, position);
CREATE INDEX events_by_time ON events (timestamp_ms);
CREATE INDEX events_by_correlation ON events (correlation_id, position) WHERE correlation_id IS NOT NULL;

-- The head of the log: the last committed position and its hash. Every append locks and
-- moves it in the same transaction as its events.
CREATE TABLE log_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position BIGINT  NOT NULL CHECK (position >= 0),
    hash     BYTEA   NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO log_head (id, position, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

CREATE TABLE snapshots (
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    version        BIGINT  NOT NULL,
    position       BIGINT  NOT NULL,
    format_version INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    taken_at_ms    BIGINT  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, version)
);

CREATE TABLE idempotency_records (
    idempotency_key TEXT   PRIMARY KEY,
    fingerprint     BYTEA  NOT NULL CHECK (length(fingerprint) = 32),
    outcome         TEXT   NOT NULL,
    position        BIGINT NOT NULL
);

CREATE TABLE projection_checkpoints (
    name     TEXT   PRIMARY KEY,
    position BIGINT NOT NULL CHECK (position >= 0)
);
