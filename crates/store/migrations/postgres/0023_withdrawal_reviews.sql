-- Operators' reviews of withdrawals the risk engine held: the first operator's approval of a
-- release (a hold the engine made needs a second operator to complete it), then released or
-- cancelled. A finished review never changes; `version` guards against two operators at once.
CREATE TABLE withdrawal_reviews (
    event_id     TEXT PRIMARY KEY,
    account      TEXT NOT NULL,
    state        TEXT NOT NULL,
    approved_by  TEXT,
    resolved_by  TEXT,
    updated_at   BIGINT NOT NULL,
    version      BIGINT NOT NULL
);
CREATE INDEX withdrawal_reviews_account ON withdrawal_reviews (account);
