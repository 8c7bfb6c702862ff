-- The case view reads an account's audit entries (its own and its keys'), newest first: without
-- this index that read scanned the whole audit log, which grows with every customer.
CREATE INDEX audit_log_target ON audit_log (target, seq);
