-- Version 4, PostgreSQL only (skipped on CockroachDB, which has no LISTEN): followers LISTEN on
-- `tessera_changes` to read the log as soon as a change commits rather than at their next poll.
-- PostgreSQL delivers a notification at commit, once per transaction however many changes it
-- logged; polling stays, so a lost notification only delays.
CREATE FUNCTION tessera_notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_changes', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER changes_notify AFTER INSERT ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_notify_changes();
