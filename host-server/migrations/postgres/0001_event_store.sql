-- The event store on PostgreSQL. Times are integer milliseconds since the Unix epoch (UTC).
-- Payload and metadata are JSON text. The payload is stored byte for byte as written and the
-- hash chain covers those bytes (`jsonb` would normalize them; `json` keeps them too, but
-- parsing every row on insert cost a tenth of the append rate); the chain covers the
-- metadata's fields (unknown ones are refused on read). correlation_id is an indexed copy of
-- the metadata's field. Cast with `payload::jsonb` to query inside them.

CREATE TABLE events (
    -- Global position: unique, from 1, and contiguous (see events_follow below).
    position       BIGINT  PRIMARY KEY CHECK (position >= 1),
    event_id       UUID    NOT NULL UNIQUE,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL CHECK (schema_version >= 1),
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    version        BIGINT  NOT NULL CHECK (version >= 1),
    timestamp_ms   BIGINT  NOT NULL,
    payload        TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    correlation_id UUID,
    prev_hash      BYTEA   NOT NULL CHECK (length(prev_hash) = 32),
    hash           BYTEA   NOT NULL CHECK (length(hash) = 32),
    CONSTRAINT events_stream_version UNIQUE (aggregate_type, aggregate_id, version)
);

-- Contiguity, checked once per insert statement over all its rows (a foreign key would run a
-- query per row): the new events follow the event before the first of them in the log, with
-- no hole among them, and likewise in each stream they touch: one probe of a unique index
-- per statement and per stream. The log is append-only: no update, delete or truncate.
CREATE FUNCTION events_follow() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    span record;
BEGIN
    SELECT min(position) AS first, max(position) AS last, count(*) AS n INTO span FROM new_events;
    IF span.n <> span.last - span.first + 1
       OR (span.first > 1 AND NOT EXISTS (SELECT 1 FROM events WHERE position = span.first - 1)) THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'events_follow_previous',
            MESSAGE = format('events %s..%s do not follow the log without a gap', span.first, span.last);
    END IF;
    FOR span IN
        SELECT aggregate_type, aggregate_id, min(version) AS first, max(version) AS last, count(*) AS n
        FROM new_events GROUP BY aggregate_type, aggregate_id
    LOOP
        IF span.n <> span.last - span.first + 1
           OR (span.first > 1 AND NOT EXISTS (
                SELECT 1 FROM events
                WHERE aggregate_type = span.aggregate_type AND aggregate_id = span.aggregate_id
                  AND version = span.first - 1)) THEN
            RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'events_follow_stream',
                MESSAGE = format('%s/%s: version %s does not follow its stream without a gap',
                    span.aggregate_type, span.aggregate_id, span.first);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
CREATE TRIGGER events_follow AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION events_follow();

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'restrict_violation', MESSAGE = 'the event log is append-only';
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

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
