-- The exchange's own context for a security-center sign-in (channel, device, a call or remote
-- access in progress), carried from the link to the session it opens and stamped on the events
-- of that session: a JSON object in the event contract's `ctx` shape.
ALTER TABLE sign_in_links ADD COLUMN ctx TEXT NOT NULL DEFAULT '{}';
ALTER TABLE customer_sessions ADD COLUMN ctx TEXT NOT NULL DEFAULT '{}';
