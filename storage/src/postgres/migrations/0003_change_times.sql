-- Version 3: when each change was written, so that a node can tell how late it applies one
-- (its change lag), by the database's clock alone: no two nodes' clocks are compared.
ALTER TABLE changes ADD COLUMN written_at timestamptz NOT NULL DEFAULT clock_timestamp();

-- Followers LISTEN on `tessera_changes` to read the log as soon as a change commits rather than
-- at their next poll. PostgreSQL delivers a notification at commit, and once per transaction
-- however many changes it logged; polling stays, so a lost notification only delays.
CREATE FUNCTION tessera_notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_changes', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER changes_notify AFTER INSERT ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_notify_changes();
