-- The daily security digest an account asked for: sent at `hour_utc` every day, next at
-- `next_at` (milliseconds), moved on in the same commit that queues the digest, so each is sent
-- once across restarts and processes.
CREATE TABLE digest_subscriptions (
    account     TEXT PRIMARY KEY,
    hour_utc    INTEGER NOT NULL,
    next_at     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX digest_subscriptions_due ON digest_subscriptions (next_at);

-- The digest reads one account's events over a day (and the thirty days before).
CREATE INDEX events_account_ts ON events (account, ts);
