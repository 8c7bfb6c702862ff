-- Risk decisions, one per deciding event, with what the rules saw.
CREATE TABLE decisions (
    event_id    TEXT PRIMARY KEY,
    decided_at  BIGINT NOT NULL,
    decision    TEXT NOT NULL,
    score       BIGINT NOT NULL,
    reasons     TEXT NOT NULL,
    features    TEXT NOT NULL
);
