-- Values a database backup must not reveal are sealed with the master keyring (AES-256-GCM,
-- bound to their table, column and row; the keyring is never stored here): the anti-phishing
-- code, and the rendered bodies of queued notices (which quote that code and carry live cancel
-- links). The column names the master key that sealed the value; NULL means the value was
-- written in plain text before this migration. Readers accept both, and `POST
-- /v1/secrets/rewrap` seals what is still plain.
ALTER TABLE accounts ADD COLUMN anti_phishing_sealed_by TEXT;
ALTER TABLE outbox ADD COLUMN sealed_by TEXT;
