-- The risk policy as versions: an operator proposes one, a different operator publishes it
-- (maker-checker). The published version with the highest publication number is in force; a
-- rollback proposes an earlier version's text again as a new version.
CREATE TABLE policy_versions (
    version       INTEGER PRIMARY KEY,
    text          TEXT NOT NULL,
    note          TEXT NOT NULL,
    rollback_of   INTEGER,
    proposed_by   TEXT NOT NULL,
    proposed_at   INTEGER NOT NULL,
    approved_by   TEXT,
    published_at  INTEGER,
    publication   INTEGER UNIQUE
);

-- A backtest replays the events of a time range.
CREATE INDEX events_ts ON events (ts);

-- The audit entries of one target (an account's in the case view, the policy's on the rules
-- page) without reading the whole chain.
CREATE INDEX audit_log_target ON audit_log (target, seq);
