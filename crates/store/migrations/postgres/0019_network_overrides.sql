-- Operators' overrides on entities of the risk engine's graph (docs/rules.md, "Overrides"):
-- `suppress` (a known-good link) or `force` (counts as confirmed fraud), from `set_at` until
-- it expires or is lifted. Rows are never deleted: the engine replays the event log with every
-- override in force for the events of its time range, so a replay decides as the service did.
CREATE TABLE network_overrides (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    value        TEXT NOT NULL,
    action       TEXT NOT NULL,
    note         TEXT NOT NULL,
    set_by       TEXT NOT NULL,
    set_at       BIGINT NOT NULL,
    expires_at   BIGINT,
    lifted_by    TEXT,
    lifted_at    BIGINT
);
CREATE INDEX network_overrides_entity ON network_overrides (kind, value);
