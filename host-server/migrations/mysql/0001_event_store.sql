-- The event store on MariaDB/MySQL (InnoDB). Ids are BINARY(16), hashes BINARY(32), times
-- integer milliseconds since the Unix epoch (UTC). Text uses a binary collation (utf8mb4_bin,
-- which still ignores trailing spaces): symbols are case-sensitive; idempotency keys are VARBINARY, so they compare
-- byte for byte, trailing spaces included. Payload and metadata are JSON text. The payload is
-- stored byte for byte as written and the hash chain covers those bytes; the chain covers the
-- metadata's fields (unknown ones are refused on read). correlation_id is an indexed copy of
-- the metadata's field.

CREATE TABLE events (
    -- Global position: unique (the clustered key), from 1, and contiguous: every event but
    -- the first references the one before it, so no gap can be written or made by a delete.
    -- Stream versions likewise: unique per stream, and each references the version before.
    position       BIGINT       NOT NULL PRIMARY KEY,
    prev_position  BIGINT       AS (NULLIF(position - 1, 0)) STORED,
    event_id       BINARY(16)   NOT NULL,
    event_type     VARCHAR(64)  NOT NULL,
    schema_version INT          NOT NULL,
    aggregate_type VARCHAR(32)  NOT NULL,
    aggregate_id   VARCHAR(64)  NOT NULL,
    version        BIGINT       NOT NULL,
    prev_version   BIGINT       AS (NULLIF(version - 1, 0)) STORED,
    timestamp_ms   BIGINT       NOT NULL,
    payload        LONGTEXT     NOT NULL,
    metadata       TEXT         NOT NULL,
    correlation_id BINARY(16)   NULL,
    prev_hash      BINARY(32)   NOT NULL,
    hash           BINARY(32)   NOT NULL,
    CONSTRAINT events_position_from_1 CHECK (position >= 1),
    CONSTRAINT events_version_from_1 CHECK (version >= 1),
    CONSTRAINT events_schema_version_from_1 CHECK (schema_version >= 1),
    UNIQUE KEY events_event_id (event_id),
    UNIQUE KEY events_stream_version (aggregate_type, aggregate_id, version),
    KEY events_by_type (event_type, position),
    KEY events_by_time (timestamp_ms),
    KEY events_by_correlation (correlation_id, position),
    CONSTRAINT events_follow_previous FOREIGN KEY (prev_position) REFERENCES events (position),
    CONSTRAINT events_follow_stream FOREIGN KEY (aggregate_type, aggregate_id, prev_version)
        REFERENCES events (aggregate_type, aggregate_id, version)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The log is append-only.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the event log is append-only';
CREATE TRIGGER events_no_delete BEFORE DELETE ON events FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'the event log is append-only';

-- The head of the log: the last committed position and its hash. Every append locks and
-- moves it in the same transaction as its events.
CREATE TABLE log_head (
    id       INT        NOT NULL PRIMARY KEY,
    position BIGINT     NOT NULL,
    hash     BINARY(32) NOT NULL,
    CONSTRAINT log_head_one_row CHECK (id = 1),
    CONSTRAINT log_head_position CHECK (position >= 0)
) ENGINE = InnoDB;
INSERT INTO log_head (id, position, hash) VALUES (1, 0, REPEAT(CHAR(0), 32));

CREATE TABLE snapshots (
    aggregate_type VARCHAR(32) NOT NULL,
    aggregate_id   VARCHAR(64) NOT NULL,
    version        BIGINT      NOT NULL,
    position       BIGINT      NOT NULL,
    format_version INT         NOT NULL,
    state          LONGTEXT    NOT NULL,
    taken_at_ms    BIGINT      NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, version)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE idempotency_records (
    idempotency_key VARBINARY(255) NOT NULL PRIMARY KEY,
    fingerprint     BINARY(32)   NOT NULL,
    outcome         LONGTEXT     NOT NULL,
    position        BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE projection_checkpoints (
    name     VARCHAR(64) NOT NULL PRIMARY KEY,
    position BIGINT      NOT NULL,
    CONSTRAINT projection_checkpoints_position CHECK (position >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
