//! Every table, in one place.

use redb::TableDefinition;

/// app id → encoded [`crate::AppRecord`].
pub(crate) const APPS: TableDefinition<&str, &[u8]> = TableDefinition::new("apps");
/// client id → app id; the uniqueness condition for client ids.
pub(crate) const CLIENT_IDS: TableDefinition<&str, &str> = TableDefinition::new("client_ids");
/// kid → encoded [`crate::KeyRecord`] with its private part sealed.
pub(crate) const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
/// name → small value (bootstrap markers, the version counter).
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// version → "kind:id", the change log a follower node reads "since N".
pub(crate) const CHANGES: TableDefinition<u64, &str> = TableDefinition::new("changes");

pub(crate) const VERSION: &str = "version";

/// lease name → (holder, held until), for jobs one process at a time does.
pub(crate) const LEASES: TableDefinition<&str, (&str, u64)> = TableDefinition::new("leases");

/// SHA-256 of a refresh token → encoded [`crate::RefreshRecord`]. Never the token itself.
pub(crate) const REFRESH_TOKENS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("refresh_tokens");
/// family id → encoded [`crate::FamilyRecord`].
pub(crate) const FAMILIES: TableDefinition<&str, &[u8]> = TableDefinition::new("families");
/// jti of a revoked access token, or id of an ended refresh family (the `sid` of the access
/// tokens issued from it) → until when the revocation matters; pruned after that.
pub(crate) const REVOKED_JTIS: TableDefinition<&str, u64> = TableDefinition::new("revoked_jtis");
/// "client id\0jti" of a used client assertion → its `exp` (RFC 7523 replay cache).
pub(crate) const ASSERTIONS: TableDefinition<&str, u64> = TableDefinition::new("assertions");
/// custom scope id → encoded [`crate::ScopeRecord`].
pub(crate) const SCOPES: TableDefinition<&str, &[u8]> = TableDefinition::new("scopes");
/// custom role id → encoded [`crate::RoleRecord`].
pub(crate) const ROLES: TableDefinition<&str, &[u8]> = TableDefinition::new("roles");
/// auth id → encoded [`crate::UserRecord`].
pub(crate) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// service id → encoded [`crate::ServiceRecord`].
pub(crate) const SERVICES: TableDefinition<&str, &[u8]> = TableDefinition::new("services");
/// API key id → encoded [`crate::ApiKeyRecord`] (never the key).
pub(crate) const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
/// "service id\0user id" → when the user was linked to the service.
pub(crate) const SERVICE_USERS: TableDefinition<&str, u64> = TableDefinition::new("service_users");
/// "service id\0user id" → encoded [`crate::SubscriptionRecord`].
pub(crate) const SUBSCRIPTIONS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("subscriptions");
/// provider id → encoded stored provider, its client secret sealed.
pub(crate) const PROVIDERS: TableDefinition<&str, &[u8]> = TableDefinition::new("providers");
/// resource id → encoded [`crate::ResourceRecord`].
pub(crate) const RESOURCES: TableDefinition<&str, &[u8]> = TableDefinition::new("resources");
/// issuer id → encoded [`crate::IssuerRecord`].
pub(crate) const ISSUERS: TableDefinition<&str, &[u8]> = TableDefinition::new("issuers");
/// connect state (the reauth URL's last segment) → encoded [`crate::ConnectRecord`].
pub(crate) const CONNECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("connects");
/// the state we gave a provider → connect state.
pub(crate) const PROVIDER_STATES: TableDefinition<&str, &str> =
    TableDefinition::new("provider_states");
/// "service\0user\0provider" → a provider grant, its tokens sealed.
pub(crate) const PROVIDER_GRANTS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("provider_grants");
/// position → encoded [`crate::AuditEvent`]; positions only grow, so they are the readers'
/// cursor.
pub(crate) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
