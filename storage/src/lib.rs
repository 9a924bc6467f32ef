//! Tessera's durable state behind domain operations.
//!
//! The actors above this crate speak in apps, keys and changes, never in transactions, so that
//! the shared PostgreSQL backend ([`PgStore`]) implements [`Storage`] beside the embedded redb
//! one ([`Store`]) without touching them. Records, their encoding, key sealing and the rows registry changes write are
//! shared by every backend; a backend owns only its tables and transactions. Every write returns
//! only after it is durable: an acknowledged write survives a crash.

mod audit;
mod connect;
mod dump;
mod error;
mod grant;
mod key;
mod postgres;
mod record;
mod redb;
mod registry;
mod seal;

pub use audit::{AuditEvent, AuditOutcome, Logged};
pub use connect::{ConnectRecord, ConnectRefusal, ProviderGrant};
pub use dump::Dump;
pub use error::{RETRY_UNAVAILABLE_AFTER, StoreError, Unavailable};
pub use grant::{
    FamilyRecord, GrantOp, GrantOutcome, RefreshRecord, RefreshStatus, Refusal, TokenKey,
    parse_revocation_entry, revocation_entry,
};
pub use key::{KeyRecord, KeyState};
pub use postgres::PgStore;
#[cfg(feature = "test-postgres")]
pub use postgres::test_cluster;
pub use redb::Store;
pub use registry::{
    ApiKeyRecord, AppRecord, DisabledBy, FederatedIdentity, IssuerRecord, ProviderRecord,
    RegistryChange, RegistryWrite, ResourceRecord, RoleRecord, ScopeRecord, ServiceRecord,
    SubscriptionRecord, TlsClientAuth, TokenQuota, UserRecord, WriteOutcomes,
};
pub use seal::{Kek, KekError};

/// The boundary a backend implements. Operations carry their conditions (create fails on an
/// existing id) so that no caller relies on being the only process.
pub trait Storage: Send + Sync + 'static {
    /// Every app, in id order.
    fn load_apps(&self) -> Result<Vec<AppRecord>, StoreError>;
    /// Every app, one at a time, in no particular order: loading a fleet holds one decoded
    /// record at a time, never all of them.
    fn scan_apps(&self, each: &mut dyn FnMut(AppRecord)) -> Result<(), StoreError>;
    /// Commits `writes` in one durable transaction, in order, each checked against what those
    /// before it left. A write whose condition fails ([`StoreError::is_condition`]) writes
    /// nothing and gets its own error while the others commit; any other error fails them all.
    fn commit_registry(&self, writes: &[RegistryWrite]) -> Result<WriteOutcomes, StoreError>;
    /// Inserts a new app; `Conflict` when the id or client id is taken. Each app write
    /// appends `audit`, when given, in its transaction.
    fn create_app(&self, app: &AppRecord, audit: Option<&AuditEvent>) -> Result<u64, StoreError> {
        let write = RegistryWrite::CreateApp(app.clone(), audit.cloned());
        registry::only(self.commit_registry(&[write]))
    }
    /// Replaces an existing app; `NotFound` when it is gone.
    fn update_app(&self, app: &AppRecord, audit: Option<&AuditEvent>) -> Result<u64, StoreError> {
        let write = RegistryWrite::UpdateApp(app.clone(), audit.cloned());
        registry::only(self.commit_registry(&[write]))
    }
    /// Removes an app; `NotFound` when it is gone.
    fn delete_app(&self, id: &str, audit: Option<&AuditEvent>) -> Result<u64, StoreError> {
        let write = RegistryWrite::DeleteApp(id.to_string(), audit.cloned());
        registry::only(self.commit_registry(&[write]))
    }
    /// Applies related registry changes in one transaction; one version bump each.
    fn apply_registry(&self, changes: &[RegistryChange]) -> Result<u64, StoreError> {
        registry::only(self.commit_registry(&[RegistryWrite::Changes(changes.to_vec())]))
    }
    /// Every custom scope.
    fn load_scopes(&self) -> Result<Vec<ScopeRecord>, StoreError>;
    /// Every custom role.
    fn load_roles(&self) -> Result<Vec<RoleRecord>, StoreError>;
    /// Every user.
    fn load_users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Every service.
    fn load_services(&self) -> Result<Vec<ServiceRecord>, StoreError>;
    /// Every service API key (their digests).
    fn load_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Every (service id, user id, linked at).
    fn load_service_users(&self) -> Result<Vec<(String, String, u64)>, StoreError>;
    /// Every subscription.
    fn load_subscriptions(&self) -> Result<Vec<SubscriptionRecord>, StoreError>;
    /// A provider-token request by its state.
    fn connect_request(&self, state: &str) -> Result<Option<ConnectRecord>, StoreError>;
    /// A provider-token request by the state we gave the provider.
    fn connect_by_provider_state(
        &self,
        provider_state: &str,
    ) -> Result<Option<ConnectRecord>, StoreError>;
    /// What a user granted a service at a provider, tokens opened with the KEK.
    fn provider_grant(
        &self,
        service: &str,
        user: &str,
        provider: &str,
    ) -> Result<Option<ProviderGrant>, StoreError>;
    /// Every resource.
    fn load_resources(&self) -> Result<Vec<ResourceRecord>, StoreError>;
    /// Every trusted issuer.
    fn load_issuers(&self) -> Result<Vec<IssuerRecord>, StoreError>;
    /// Every provider, secrets opened with the KEK.
    fn load_providers(&self) -> Result<Vec<ProviderRecord>, StoreError>;
    /// The signing keys, private parts opened with the KEK.
    fn load_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Replaces the whole key ring in one transaction, whatever it held.
    fn save_keys(&self, keys: &[KeyRecord]) -> Result<u64, StoreError>;
    /// Replaces the whole key ring in one transaction if it is still `expected` (the ring as
    /// the caller last read or wrote it, in any order; empty for the first ring): true when
    /// replaced, false with nothing written when another writer changed it meanwhile, so that
    /// two nodes changing the ring at once cannot undo each other's change.
    /// `audit`, when given, is written in that transaction.
    fn replace_keys(
        &self,
        expected: &[KeyRecord],
        keys: &[KeyRecord],
        audit: Option<&AuditEvent>,
    ) -> Result<bool, StoreError>;
    /// A small named value (bootstrap markers and the like).
    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets a named value.
    fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Creates the root app and sets `marker` to its id in one transaction, so a crash leaves
    /// either both or neither; `Conflict` when the marker is already set.
    fn create_root_app(&self, app: &AppRecord, marker: &str) -> Result<u64, StoreError>;
    /// The version of the last committed change to apps, keys or the registry; it only grows.
    fn version(&self) -> Result<u64, StoreError>;
    /// Applies a batch of grant operations in one durable transaction and answers each in
    /// order. An operation that fails its condition is answered, not an error; an `Err` means
    /// the whole batch was not committed. Every access-token revocation an operation answers
    /// (its [`GrantOutcome::revoked_jtis`]) is also logged, one [`revocation_entry`] and one
    /// version each, in that transaction; other grant changes are not followed and log nothing.
    fn apply_grants(&self, ops: &[GrantOp]) -> Result<Vec<GrantOutcome>, StoreError>;
    /// A refresh token's record and family, if it is known.
    fn refresh_status(&self, token: &TokenKey) -> Result<Option<RefreshStatus>, StoreError>;
    /// Every revoked access token still in the table: (jti, exp).
    fn revoked_access_tokens(&self) -> Result<Vec<(String, u64)>, StoreError>;
    /// Changes committed after `since`, as `(version, "kind:id")`, oldest first.
    fn changes_since(&self, since: u64) -> Result<Vec<(u64, String)>, StoreError>;
    /// Blocks until another process may have committed a change, or for `timeout`, whichever
    /// comes first (at once if one came since the last wait): when a follower reads the log.
    /// A hint only: correctness never rests on being woken.
    fn wait_for_change(&self, timeout: std::time::Duration);
    /// How long ago, by the store's own clock, change `version` was written: the follower's
    /// lag once it has applied it. `None` where the store keeps no times (the embedded store,
    /// which no other node follows) or the change is not in the log.
    fn change_age(&self, version: u64) -> Result<Option<std::time::Duration>, StoreError>;
    /// Takes or renews the lease `name` for `holder` until `now + ttl`: true when `holder`
    /// holds it after the call (it was free, had expired, or was `holder`'s already), false
    /// while another holder's lease runs, to its last second included. Of several nodes taking
    /// one lease at once, one gets it. A lease is no change to follow: no version, no entry.
    fn try_lease(&self, name: &str, holder: &str, now: u64, ttl: u64) -> Result<bool, StoreError>;
    /// Up to `limit` audit events after cursor `after` (0 for the first), oldest first.
    fn audit_after(&self, after: u64, limit: usize) -> Result<Vec<Logged>, StoreError>;
    /// Every row, one consistent snapshot, for moving the store to another backend.
    fn export(&self) -> Result<Dump, StoreError>;
    /// Writes `dump` into this store in one transaction, its version included; `NotEmpty`,
    /// with nothing written, when the store already holds anything.
    fn import(&self, dump: &Dump) -> Result<(), StoreError>;
    /// Whether the store can be used now, for readiness checks: `Unavailable` while a shared
    /// database cannot be reached.
    fn ping(&self) -> Result<(), StoreError>;
}
