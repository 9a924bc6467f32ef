//! A whole store as rows, for moving it between backends (`tessera store copy`).
//!
//! Both backends keep the same record bytes (the shared encoding, sealed parts sealed under
//! the KEK), so a dump carries those bytes as they are: a copy is exact, needs no KEK, and the
//! target's nodes open it with the source's. The change log and leases are left behind: the
//! target starts its log at the source's version, and a lease is only ever held for seconds.

/// Every row of a store. Keys are in redb's form (pairs joined by NUL); every table is sorted
/// by key, bytewise, so two dumps of the same data compare equal whatever the backend.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dump {
    pub version: u64,
    /// Named values other than the version: bootstrap markers.
    pub meta: Vec<(String, Vec<u8>)>,
    pub apps: Vec<(String, Vec<u8>)>,
    pub keys: Vec<(String, Vec<u8>)>,
    /// Under the token's selector.
    pub refresh_tokens: Vec<(Vec<u8>, Vec<u8>)>,
    pub families: Vec<(String, Vec<u8>)>,
    pub revoked_jtis: Vec<(String, u64)>,
    /// "client id\0jti" → exp.
    pub assertions: Vec<(String, u64)>,
    pub scopes: Vec<(String, Vec<u8>)>,
    pub roles: Vec<(String, Vec<u8>)>,
    pub users: Vec<(String, Vec<u8>)>,
    pub services: Vec<(String, Vec<u8>)>,
    pub api_keys: Vec<(String, Vec<u8>)>,
    /// "service\0user" → linked at.
    pub service_users: Vec<(String, u64)>,
    /// "service\0user" → record.
    pub subscriptions: Vec<(String, Vec<u8>)>,
    pub providers: Vec<(String, Vec<u8>)>,
    pub resources: Vec<(String, Vec<u8>)>,
    pub issuers: Vec<(String, Vec<u8>)>,
    pub connects: Vec<(String, Vec<u8>)>,
    /// The state we gave a provider → the request's state.
    pub provider_states: Vec<(String, String)>,
    /// "service\0user\0provider" → record.
    pub provider_grants: Vec<(String, Vec<u8>)>,
    /// Position → event.
    pub audit: Vec<(u64, Vec<u8>)>,
}

impl Dump {
    /// Rows per table, in a fixed order: what a copy reports and checks.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("meta", self.meta.len()),
            ("apps", self.apps.len()),
            ("keys", self.keys.len()),
            ("refresh_tokens", self.refresh_tokens.len()),
            ("families", self.families.len()),
            ("revoked_jtis", self.revoked_jtis.len()),
            ("assertions", self.assertions.len()),
            ("scopes", self.scopes.len()),
            ("roles", self.roles.len()),
            ("users", self.users.len()),
            ("services", self.services.len()),
            ("api_keys", self.api_keys.len()),
            ("service_users", self.service_users.len()),
            ("subscriptions", self.subscriptions.len()),
            ("providers", self.providers.len()),
            ("resources", self.resources.len()),
            ("issuers", self.issuers.len()),
            ("connects", self.connects.len()),
            ("provider_states", self.provider_states.len()),
            ("provider_grants", self.provider_grants.len()),
            ("audit", self.audit.len()),
        ]
    }

    /// Sorts every table by key, bytewise: redb's order, whatever collation a database has.
    pub(crate) fn sort(&mut self) {
        fn by_key<K: Ord, V>(rows: &mut [(K, V)]) {
            rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        by_key(&mut self.meta);
        by_key(&mut self.apps);
        by_key(&mut self.keys);
        by_key(&mut self.refresh_tokens);
        by_key(&mut self.families);
        by_key(&mut self.revoked_jtis);
        by_key(&mut self.assertions);
        by_key(&mut self.scopes);
        by_key(&mut self.roles);
        by_key(&mut self.users);
        by_key(&mut self.services);
        by_key(&mut self.api_keys);
        by_key(&mut self.service_users);
        by_key(&mut self.subscriptions);
        by_key(&mut self.providers);
        by_key(&mut self.resources);
        by_key(&mut self.issuers);
        by_key(&mut self.connects);
        by_key(&mut self.provider_states);
        by_key(&mut self.provider_grants);
        by_key(&mut self.audit);
    }
}

/// Splits a key of redb's form into its `N` parts; `Corrupt` when it has another number.
pub(crate) fn split_key<const N: usize>(key: &str) -> Result<[&str; N], crate::StoreError> {
    let parts: Vec<&str> = key.split('\0').collect();
    parts.try_into().map_err(|_| crate::StoreError::Corrupt(format!("a key with {N} parts")))
}
