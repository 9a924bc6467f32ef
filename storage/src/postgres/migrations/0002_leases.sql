-- Version 2: leases, for a job that one node of several does at a time (scheduled key rotation).
-- A lease is taken or renewed by one conditional upsert, outside the writer lock: it is no
-- change to follow, so it bumps no version.
CREATE TABLE leases (name text PRIMARY KEY, holder text NOT NULL, expires_at bigint NOT NULL);
