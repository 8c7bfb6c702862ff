-- Guarded widening: per-account protections and TOTP enrolment (a JSON document), pending
-- changes with their cool-downs, single-use step-up grants, and withdrawal addresses.
CREATE TABLE account_guards (
    account     TEXT PRIMARY KEY REFERENCES accounts (id),
    doc         TEXT NOT NULL,
    version     BIGINT NOT NULL
);

CREATE TABLE pending_changes (
    id                 TEXT PRIMARY KEY,
    account            TEXT NOT NULL REFERENCES accounts (id),
    status             TEXT NOT NULL,
    applies_at         BIGINT NOT NULL,
    requested_at       BIGINT NOT NULL,
    cancel_token_hash  TEXT NOT NULL UNIQUE,
    doc                TEXT NOT NULL,
    version            BIGINT NOT NULL
);
CREATE INDEX pending_changes_due ON pending_changes (status, applies_at);
CREATE INDEX pending_changes_account ON pending_changes (account, requested_at);

CREATE TABLE step_up_grants (
    token_hash  TEXT PRIMARY KEY,
    account     TEXT NOT NULL REFERENCES accounts (id),
    method      TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    spent_at    BIGINT
);

CREATE TABLE withdrawal_addresses (
    account       TEXT NOT NULL REFERENCES accounts (id),
    network       TEXT NOT NULL,
    address       TEXT NOT NULL,
    asset         TEXT NOT NULL,
    label         TEXT NOT NULL,
    requested_at  BIGINT NOT NULL,
    usable_from   BIGINT NOT NULL,
    PRIMARY KEY (account, network, address)
);

-- Passkeys (WebAuthn credentials, as webauthn-rs serialises them: public key and counter only)
-- and the state of ceremonies in flight (a challenge is answered once, before it expires).
CREATE TABLE passkeys (
    credential_id  TEXT PRIMARY KEY,
    account        TEXT NOT NULL REFERENCES accounts (id),
    label          TEXT NOT NULL,
    passkey        TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_used_at   BIGINT
);
CREATE INDEX passkeys_account ON passkeys (account);

CREATE TABLE webauthn_ceremonies (
    id          TEXT PRIMARY KEY,
    account     TEXT NOT NULL REFERENCES accounts (id),
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

-- The customer security center in standalone mode: single-use sign-in links minted by the
-- exchange's backend, and the sessions they open (only hashes of either token are stored).
CREATE TABLE sign_in_links (
    token_hash  TEXT PRIMARY KEY,
    account     TEXT NOT NULL REFERENCES accounts (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE customer_sessions (
    token_hash  TEXT PRIMARY KEY,
    account     TEXT NOT NULL REFERENCES accounts (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
