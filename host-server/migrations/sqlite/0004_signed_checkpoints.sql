-- Signed checkpoints (docs/AUDIT.md §10): the log's head — its size, the chain hash of its
-- last event, the Merkle root over its events, a time — signed with Ed25519 by the writer.
-- One per size; rows are only ever added. Hex text throughout, as the API gives them. The
-- public key is kept with each row so that a checkpoint signed before a key rotation still
-- verifies; which keys to trust is the auditor's to decide, out of band.
CREATE TABLE signed_checkpoints (
    tree_size    INTEGER      NOT NULL PRIMARY KEY,
    chain_hash   VARCHAR(64)  NOT NULL,
    root_hash    VARCHAR(64)  NOT NULL,
    timestamp_ms INTEGER      NOT NULL,
    key_id       VARCHAR(16)  NOT NULL,
    public_key   VARCHAR(64)  NOT NULL,
    signature    VARCHAR(128) NOT NULL
);
