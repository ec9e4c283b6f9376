-- The server's own tables. Users and their API tokens are operational data, not exchange
-- state: a user's account is created by a CreateAccount event in the log; the user row only
-- links a token to it. Tokens are stored as SHA-256 digests (hex), never in clear.
CREATE TABLE users (
    user_id    VARCHAR(36)  NOT NULL PRIMARY KEY,
    name       VARCHAR(200) NOT NULL,
    role       VARCHAR(16)  NOT NULL CHECK (role IN ('trader', 'auditor', 'admin')),
    token_hash VARCHAR(64)  NOT NULL UNIQUE,
    account_id VARCHAR(36),
    created_at BIGINT       NOT NULL
);

-- Each read model (projection): the generation of its tables now serving queries, the
-- global position they reflect (the checkpoint, written in the same transaction as the rows),
-- and a rebuild in progress into the next generation.
CREATE TABLE read_models (
    name               VARCHAR(32) NOT NULL PRIMARY KEY,
    generation         BIGINT      NOT NULL,
    position           BIGINT      NOT NULL,
    rebuild_generation BIGINT,
    rebuild_position   BIGINT
);
