-- Campaign alerts from the risk engine's entity graph (docs/rules.md, "The entity graph"):
-- one row per alert, its evidence as JSON, and an operator's confirmation.
CREATE TABLE network_alerts (
    id                  TEXT PRIMARY KEY,
    kind                TEXT NOT NULL,
    entity_kind         TEXT NOT NULL,
    value               TEXT NOT NULL,
    opened_at           BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    unrelated_accounts  BIGINT NOT NULL,
    evidence            TEXT NOT NULL,
    confirmed_by        TEXT,
    confirmed_at        BIGINT
);
CREATE INDEX network_alerts_updated ON network_alerts (updated_at, id);
