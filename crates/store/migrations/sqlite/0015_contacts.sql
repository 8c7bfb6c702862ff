-- "Is this really the exchange?": the exchange's official contacts (operator-managed, every
-- change audited), and the reports of contacts that claimed to be the exchange, counted per
-- contact from the event log by a background projector whose position is kept beside them.
CREATE TABLE official_contacts (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    channel     TEXT NOT NULL,
    direction   TEXT NOT NULL,
    note        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    UNIQUE (kind, value)
);

-- One row per reported contact in its normal form. `reports` come from accounts (signed-in
-- customers, the exchange's feed), `public_reports` from the public verify page (they are
-- shown, never enough on their own to call a contact a scam); `confirmed_frauds` counts the
-- fraud.confirmed events that named it.
CREATE TABLE contact_reports (
    kind              TEXT NOT NULL,
    value             TEXT NOT NULL,
    reports           INTEGER NOT NULL,
    public_reports    INTEGER NOT NULL,
    confirmed_frauds  INTEGER NOT NULL,
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    last_claimed      TEXT NOT NULL,
    last_channel      TEXT NOT NULL,
    PRIMARY KEY (kind, value)
);

-- How far into the event log the reports above are counted (one row).
CREATE TABLE contact_report_cursor (
    id   INTEGER PRIMARY KEY,
    seq  INTEGER NOT NULL
);
INSERT INTO contact_report_cursor (id, seq) VALUES (1, 0);
