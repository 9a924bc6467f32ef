-- Version 7: trusted issuers (workload identity federation), the external JWT issuers whose
-- tokens apps may present as client credentials. Apps name them by issuer URL inside their own
-- records, so no column beside the record is needed.
CREATE TABLE issuers (id text PRIMARY KEY, record bytea NOT NULL);
