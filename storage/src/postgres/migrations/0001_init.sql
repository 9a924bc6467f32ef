-- Version 1: one table per redb table (storage/src/redb/tables.rs). Each `record` is the shared
-- encoding (a version byte, then JSON), so both backends read the same bytes; a column beside
-- it exists only where a condition or the sweep needs the database to see a field. Integers the
-- code holds as u64 are stored clamped to bigint's range. Pairs are two columns: text cannot
-- hold the NUL that joins redb's pair keys.

-- Bootstrap markers, and `version` (8 bytes, big-endian, as redb keeps it). Every writing
-- transaction locks the `version` row first, so writers commit one at a time, in version order.
CREATE TABLE meta (name text PRIMARY KEY, value bytea NOT NULL);
INSERT INTO meta (name, value) VALUES ('version', decode('0000000000000000', 'hex'));

-- The change log followers read "since N".
CREATE TABLE changes (version bigint PRIMARY KEY, what text NOT NULL);

CREATE TABLE apps (
    id text PRIMARY KEY,
    client_id text NOT NULL UNIQUE,
    record bytea NOT NULL
);

-- Private parts sealed under the KEK when one is set.
CREATE TABLE signing_keys (kid text PRIMARY KEY, record bytea NOT NULL);

-- Under the token's selector; the secret part only as a digest inside the record.
CREATE TABLE refresh_tokens (
    selector bytea PRIMARY KEY,
    -- So that a token and its family are read in one statement, one snapshot.
    family text NOT NULL,
    expires_at bigint NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

CREATE TABLE families (
    id text PRIMARY KEY,
    client_id text NOT NULL,
    subject text NOT NULL,
    expires_at bigint NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX families_client ON families (client_id, subject);
CREATE INDEX families_expiry ON families (expires_at);

-- A revoked access token's jti, or an ended family's id (the `sid` of its access tokens).
CREATE TABLE revoked_jtis (jti text PRIMARY KEY, expires_at bigint NOT NULL);

-- "client id\0jti" of a used client assertion, as bytes (text cannot hold the NUL): the primary
-- key is the replay check.
CREATE TABLE assertions (id bytea PRIMARY KEY, expires_at bigint NOT NULL);

CREATE TABLE scopes (id text PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE roles (id text PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE users (id text PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE services (id text PRIMARY KEY, record bytea NOT NULL);
CREATE TABLE api_keys (id text PRIMARY KEY, record bytea NOT NULL);
-- Client secrets sealed under the KEK when one is set.
CREATE TABLE providers (id text PRIMARY KEY, record bytea NOT NULL);

CREATE TABLE service_users (
    service_id text NOT NULL,
    user_id text NOT NULL,
    linked_at bigint NOT NULL,
    PRIMARY KEY (service_id, user_id)
);

CREATE TABLE subscriptions (
    service_id text NOT NULL,
    user_id text NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (service_id, user_id)
);

CREATE TABLE connects (state text PRIMARY KEY, expires_at bigint NOT NULL, record bytea NOT NULL);
CREATE INDEX connects_expiry ON connects (expires_at);

-- The state we gave a provider → its request, while the provider's answer is awaited.
CREATE TABLE provider_states (provider_state text PRIMARY KEY, state text NOT NULL);

-- Tokens sealed under the KEK when one is set, bound to "service\0user\0provider".
CREATE TABLE provider_grants (
    service_id text NOT NULL,
    user_id text NOT NULL,
    provider_id text NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (service_id, user_id, provider_id)
);
