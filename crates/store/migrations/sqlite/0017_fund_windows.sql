-- A key's time-boxed fund window: the fund-moving scopes granted only until a time and,
-- optionally, up to a USD cap, with what has left under it so far. JSON (`FundWindow`), or NULL
-- when the key's scopes are permanent. The scopes stay in `scopes`; they stop counting at the
-- window's end whether or not the lapse sweep has tidied the row yet.
ALTER TABLE api_keys ADD COLUMN fund_window TEXT;
