-- The audit chain becomes keyed: each new entry is sealed with an HMAC-SHA256 key derived from
-- the master keyring (never stored here), named in mac_key_id. Entries already written keep
-- their plain SHA-256 link and mac_key_id NULL ("legacy"); the first keyed entry links to the
-- last of them.
ALTER TABLE audit_log ADD COLUMN mac_key_id TEXT;

-- Entries up to this position may be legacy; the verifier refuses an unkeyed entry after it.
ALTER TABLE audit_head ADD COLUMN legacy_until BIGINT NOT NULL DEFAULT 0;
UPDATE audit_head SET legacy_until = seq WHERE id = 1;
