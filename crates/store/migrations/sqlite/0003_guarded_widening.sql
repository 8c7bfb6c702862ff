-- Guarded widening: per-account protections and TOTP enrolment (a JSON document), pending
-- changes with their cool-downs, single-use step-up grants, and withdrawal addresses.
CREATE TABLE account_guards (
    account     TEXT PRIMARY KEY REFERENCES accounts (id),
    doc         TEXT NOT NULL,
    version     INTEGER NOT NULL
);

CREATE TABLE pending_changes (
    id                 TEXT PRIMARY KEY,
    account            TEXT NOT NULL REFERENCES accounts (id),
    status             TEXT NOT NULL,
    applies_at         INTEGER NOT NULL,
    requested_at       INTEGER NOT NULL,
    cancel_token_hash  TEXT NOT NULL UNIQUE,
    doc                TEXT NOT NULL,
    version            INTEGER NOT NULL
);
CREATE INDEX pending_changes_due ON pending_changes (status, applies_at);
CREATE INDEX pending_changes_account ON pending_changes (account, requested_at);

CREATE TABLE step_up_grants (
    token_hash  TEXT PRIMARY KEY,
    account     TEXT NOT NULL REFERENCES accounts (id),
    method      TEXT NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    spent_at    INTEGER
);

CREATE TABLE withdrawal_addresses (
    account       TEXT NOT NULL REFERENCES accounts (id),
    network       TEXT NOT NULL,
    address       TEXT NOT NULL,
    asset         TEXT NOT NULL,
    label         TEXT NOT NULL,
    requested_at  INTEGER NOT NULL,
    usable_from   INTEGER NOT NULL,
    PRIMARY KEY (account, network, address)
);
