-- The analyst console: operators' single-use enrolment links, their passkeys and WebAuthn
-- ceremonies, their console sessions (only hashes of the link and session tokens are stored),
-- and who works each queue item.
CREATE TABLE operator_enrolment_links (
    token_hash  TEXT PRIMARY KEY,
    operator    TEXT NOT NULL REFERENCES operators (id),
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE operator_passkeys (
    credential_id  TEXT PRIMARY KEY,
    operator       TEXT NOT NULL REFERENCES operators (id),
    passkey        TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_used_at   BIGINT
);
CREATE INDEX operator_passkeys_operator ON operator_passkeys (operator);

CREATE TABLE operator_ceremonies (
    id          TEXT PRIMARY KEY,
    operator    TEXT NOT NULL REFERENCES operators (id),
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE operator_sessions (
    token_hash    TEXT PRIMARY KEY,
    operator      TEXT NOT NULL REFERENCES operators (id),
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);

CREATE TABLE console_assignments (
    item         TEXT PRIMARY KEY,
    assignee     TEXT NOT NULL REFERENCES operators (id),
    assigned_by  TEXT NOT NULL,
    assigned_at  BIGINT NOT NULL
);

-- The queue reads the engine's holds on withdrawals.
CREATE INDEX decisions_decision ON decisions (decision, decided_at);
