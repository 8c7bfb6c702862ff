-- Notifications waiting for (or done with) delivery through the official channels. Rows are
-- queued in the same transaction as the change they announce; delivery state lives beside the
-- immutable rendered message.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    account         TEXT NOT NULL,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT,
    created_at      INTEGER NOT NULL,
    dedupe_key      TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_token     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    delivered_at    INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_by_account ON outbox (account, created_at);
