-- Single-use links that freeze an account in one click, sent to the old e-mail address with the
-- announcement of a contact change (only a hash of the token is stored). A link only ever
-- makes the account safer, so it needs no other credential; it expires after its lifetime.
CREATE TABLE freeze_links (
    token_hash  TEXT PRIMARY KEY,
    account     TEXT NOT NULL REFERENCES accounts (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
