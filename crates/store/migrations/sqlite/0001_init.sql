-- Portcullis schema, SQLite. Times are milliseconds since the epoch (UTC).
CREATE TABLE operators (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE accounts (
    id                  TEXT PRIMARY KEY,
    display_name        TEXT NOT NULL,
    email               TEXT,
    phone               TEXT,
    anti_phishing_code  TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    version             INTEGER NOT NULL
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
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    expires_at      INTEGER,
    last_used_at    INTEGER,
    last_used_ip    TEXT,
    revoked_at      INTEGER,
    idle_warned_at  INTEGER,
    version         INTEGER NOT NULL,
    change_seq      INTEGER NOT NULL
);
CREATE INDEX api_keys_by_account ON api_keys(account);
CREATE INDEX api_keys_by_change ON api_keys(change_seq);

CREATE TABLE key_secrets (
    key_id          TEXT NOT NULL REFERENCES api_keys(key_id),
    generation      INTEGER NOT NULL,
    master_key_id   TEXT NOT NULL,
    nonce           BLOB NOT NULL,
    ciphertext      BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    valid_until     INTEGER,
    PRIMARY KEY (key_id, generation)
);
CREATE INDEX key_secrets_by_master ON key_secrets(master_key_id);

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);

-- The newest audit entry. Every commit updates this row first, which serialises writers.
CREATE TABLE audit_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    seq     INTEGER NOT NULL,
    hash    TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    ts          INTEGER NOT NULL,
    account     TEXT,
    type        TEXT NOT NULL,
    body        TEXT NOT NULL
);
