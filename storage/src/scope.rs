//! Custom scopes and roles as stored. Built-in ones are constants in the code, never stored,
//! so no write can change them.

use serde::{Deserialize, Serialize};

use crate::AppRecord;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeRecord {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub note: String,
    pub created_at: u64,
    pub updated_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRecord {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub note: String,
    pub scopes: Vec<String>,
    pub is_privileged: bool,
    pub created_at: u64,
    pub updated_at: u64,
}

/// One registry change. Related changes (a scope renamed, and every app and role that named
/// it) are applied together in one transaction.
#[derive(Debug, Clone)]
pub enum RegistryChange {
    PutApp(AppRecord),
    PutScope(ScopeRecord),
    DeleteScope(String),
    PutRole(RoleRecord),
    DeleteRole(String),
    PutUser(UserRecord),
    DeleteUser(String),
    PutService(ServiceRecord),
    DeleteService(String),
    PutApiKey(ApiKeyRecord),
    DeleteApiKey(String),
    /// A user linked to a service: (service id, user id, when).
    LinkUser(String, String, u64),
    UnlinkUser(String, String),
    PutSubscription(SubscriptionRecord),
    /// (service id, user id).
    DeleteSubscription(String, String),
    PutProvider(ProviderRecord),
    DeleteProvider(String),
}

/// A person. Passwords only as Argon2id PHC strings; invitation tokens only as SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub auth_id: String,
    pub username: Option<String>,
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    /// Role names.
    pub roles: Vec<String>,
    pub is_active: bool,
    pub password_hash: Option<String>,
    pub invitation_hash: Option<String>,
    pub invitation_expires_at: Option<u64>,
    pub created_at: u64,
    pub updated_at: u64,
    /// When the user was last deactivated: tokens issued at or before it stay refused after a
    /// re-activation. Absent in records written before it existed.
    #[serde(default)]
    pub disabled_at: Option<u64>,
    /// Who deactivated the user, while it is inactive: a service may not undo an operator.
    #[serde(default)]
    pub disabled_by: Option<DisabledBy>,
}

/// Who turned a user off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DisabledBy {
    /// The admin API or the console.
    Operator,
    /// A service, through the service API.
    Service,
}

/// A backend service of the service API (AuthOS's service API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRecord {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub callback_uris: Vec<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// A service API key: its public id (hex of the selector) and the SHA-256 of its secret part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub service_id: String,
    pub verifier: String,
    pub created_at: u64,
}

/// A user's subscription with a service (AuthOS's service API), one per (service, user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub service_id: String,
    pub user_id: String,
    pub plan: String,
    pub status: String,
    pub current_period_end: Option<u64>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// An OAuth provider that services ask tokens of (AuthOS's service API). `client_secret` is in the clear
/// here; the store seals it with the KEK, when one is set, before it reaches the file.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderRecord {
    pub id: String,
    pub name: String,
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub created_at: u64,
}

impl std::fmt::Debug for ProviderRecord {
    // The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The file's form of a [`ProviderRecord`].
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredProvider {
    pub id: String,
    pub name: String,
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    pub sealed_secret: String,
    pub created_at: u64,
}
