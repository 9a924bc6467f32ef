use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An M2M app as stored. Secrets are present only as SHA-256 digests (hex).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRecord {
    pub id: String,
    pub client_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub is_active: bool,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub token_claims: Map<String, Value>,
    #[serde(default)]
    pub access_token_ttl_secs: Option<u64>,
    #[serde(default)]
    pub public_key_jwk: Option<Value>,
    pub secret_hash: String,
    /// The second secret accepted while a Stytch-style rotation is under way.
    #[serde(default)]
    pub next_secret_hash: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
    /// When the app was last disabled: tokens issued at or before it stay refused after a
    /// re-enable. Absent in records written before it existed.
    #[serde(default)]
    pub disabled_at: Option<u64>,
    /// Scopes granted per resource (RFC 8707): resource identifier → scopes, each list within
    /// that resource's scopes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, Vec<String>>,
    /// Every token request must carry a DPoP proof (RFC 9449 §5).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_dpop: bool,
}
