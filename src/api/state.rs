//! What every handler reads, built once by `server::prepare`: the core's handles and
//! snapshots, and the settings. HTTP owns this type so that no handler reaches back into the
//! server's assembly.

use std::sync::Arc;

use tessera_core::audit::AuditLog;
use tessera_core::auth::password::PasswordPool;
use tessera_core::follower::StoreHealth;
use tessera_core::grants::{GrantStore, ProviderFlow};
use tessera_core::keys::KeyRingHandle;
use tessera_core::registry::RegistryHandle;
use tessera_core::tables::service_keys::ServiceKeys;
use tessera_core::tokens::issuer::Issuer;

use crate::config::Config;

/// Everything a handler reads. Cheap to share: snapshots and actor addresses.
pub struct AppState {
    pub issuer: Arc<Issuer>,
    pub registry: RegistryHandle,
    /// The grant store's handle: commits of grant state and reads that need no ordering.
    pub grants: GrantStore,
    /// The provider-token flow's domain steps, with the one client of providers' token URLs.
    pub provider_flow: ProviderFlow,
    pub keyring: KeyRingHandle,
    pub config: Config,
    /// RFC 8414 metadata, serialized once.
    pub metadata: Vec<u8>,
    /// `/openapi.json`, serialized once.
    pub openapi: Vec<u8>,
    /// Argon2id off the workers, at the lowest priority.
    pub passwords: PasswordPool,
    /// Service API keys, for `X-API-Key`.
    pub service_keys: ServiceKeys,
    /// Whether the store answered the follower's last poll, for `/readyz`.
    pub store_health: StoreHealth,
    pub metrics: Arc<crate::api::metrics::Metrics>,
    /// The audit log's reader.
    pub audit: AuditLog,
    /// HTTPS and the client CA, when served.
    pub tls: Option<Arc<crate::tls::Tls>>,
}
