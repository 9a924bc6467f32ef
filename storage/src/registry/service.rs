//! Backend services of the service API, their API keys and their users' subscriptions. A
//! service-user link carries no record of its own, only when it was made
//! ([`crate::RegistryChange::LinkUser`]).

use serde::{Deserialize, Serialize};

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
