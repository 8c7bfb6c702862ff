-- Portcullis schema, PostgreSQL. Times are milliseconds since the epoch (UTC).
CREATE TABLE operators (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE accounts (
    id                  TEXT PRIMARY KEY,
    display_name        TEXT NOT NULL,
    email               TEXT,
    phone               TEXT,
    anti_phishing_code  TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    version             BIGINT NOT NULL
);

CREATE TABLE api_keys (
    key_id          TEXT PRIMARY KEY,
    api_key         TEXT NOT NULL UNIQUE,
    account         TEXT NOT NULL REFERENCES accounts(id),
    label           TEXT NOT NULL,
    algorithm       TEXT NOT NULL,
    public_key      TEXT,
    scopes          TEXT NOT NULL,
    ip_allowlist    TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    last_used_at    BIGINT,
    last_used_ip    TEXT,
    revoked_at      BIGINT,
    idle_warned_at  BIGINT,
    version         BIGINT NOT NULL,
    change_seq      BIGINT NOT NULL
);
CREATE INDEX api_keys_by_account ON api_keys(account);
CREATE INDEX api_keys_by_change ON api_keys(change_seq);

CREATE TABLE key_secrets (
    key_id          TEXT NOT NULL REFERENCES api_keys(key_id),
    generation      BIGINT NOT NULL,
    master_key_id   TEXT NOT NULL,
    nonce           BYTEA NOT NULL,
    ciphertext      BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    valid_until     BIGINT,
    PRIMARY KEY (key_id, generation)
);
CREATE INDEX key_secrets_by_master ON key_secrets(master_key_id);

CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);

-- The newest audit entry. Every commit updates this row first, which serialises writers.
CREATE TABLE audit_head (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    seq     BIGINT NOT NULL,
    hash    TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    ts          BIGINT NOT NULL,
    account     TEXT,
    type        TEXT NOT NULL,
    body        TEXT NOT NULL
);
