-- Version 6: resources (RFC 8707), the APIs apps are granted scopes for. Apps name them by
-- identifier inside their own records, so no column beside the record is needed.
CREATE TABLE resources (id text PRIMARY KEY, record bytea NOT NULL);
