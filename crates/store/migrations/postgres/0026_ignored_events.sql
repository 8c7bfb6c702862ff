-- The partitioned risk engine: an event a partition did not decide because one engine ignores
-- it (its id was used before, or it is older than the dedup horizon), so that
-- `POST /v1/decisions` waiting for it answers at once instead of timing out.
CREATE TABLE ignored_events (
    event_id    TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    event_ts    BIGINT NOT NULL
);
