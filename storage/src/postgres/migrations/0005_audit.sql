-- Version 5: the audit log. Positions are handed out under the writer lock (the `version` row),
-- so they follow commit order and a reader paging by position never skips an event.
CREATE TABLE audit (
    seq bigint PRIMARY KEY,
    at bigint NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX audit_at ON audit (at);
