-- The risk engine's latest checkpoint: its state as of a log position, so a restart replays
-- only the events after it. One row per engine (partition).
CREATE TABLE engine_checkpoints (
    name        TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    state       BYTEA NOT NULL
);
