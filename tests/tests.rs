//! Tessera's integration tests: one binary, real HTTP against servers on `127.0.0.1:0`.
#![allow(clippy::unwrap_used)] // tests state their expectations by unwrapping

// Starting servers, HTTP helpers, cookie jars and shared fixtures.
mod support;

// The admin API's bearer checks, apps CRUD and secret rotation.
mod admin;
// Heap allocations per token request, by a counting global allocator.
mod allocations;
// The audit log: each admin write in its commit, refusals, rotations, reuse, limits.
mod audit;
// The `tessera` command line, against a data directory and a running server.
mod cli;
// Provider tokens and the hosted reauth flow, against a stand-in OAuth provider.
mod connect;
// DPoP (RFC 9449): bound tokens at the token endpoint and the admin API, bad proofs.
mod dpop;
// Acknowledged writes survive restarts and `kill -9`; a second process is refused.
mod durability;
// The escalation rules as properties, over HTTP and the registry, against a reference model.
mod escalation;
// Token exchange (RFC 8693): delegation chains with `act`.
mod exchange;
// Workload identity federation, against a stand-in OIDC issuer.
mod federation;
// Every saved fuzz input replayed through the fuzz targets' property checks.
mod fuzz_corpus;
// Refresh tokens, revocation, introspection, `private_key_jwt` and cleanup.
mod grants;
// Password guessing: counted before Argon2id runs, a bounded queue, one key per person.
mod guesses;
// Privileged targets, strict delegation and registration (issue 8).
mod hardening;
// Bulk import of apps: JSON Lines, all or none, over HTTP and the CLI.
mod import;
// Scopes and roles: built-ins fixed, custom ones managed, no path to root.
mod identity;
// Keys, the JWKS and the rotation invariant as a property.
mod keys;
// Disabling or deleting ends what was issued before; re-enabling revives nothing (issue 8).
mod lifecycle;
// HTTPS and client certificates (RFC 8705), with certificates made in the test and curl.
mod mtls;
// Three `tessera serve` processes on one real PostgreSQL database.
mod nodes;
// `/metrics` and where it is answered, request ids, the home page.
mod operating;
// Regression tests, named after the issue that found them.
mod regression;
// Resources (RFC 8707): registered APIs, per-app grants, tokens that name them.
mod resources;
// Token reuse and issuance quotas (issue 14).
mod reuse;
// Services and API keys: admin management and `X-API-Key` authentication.
mod services;
// The token endpoint and the tokens it writes.
mod token;
// Users, invitations, consumer login and the privileged-role rule.
mod users;
