use serde::{Deserialize, Serialize};

/// An API that accepts Tessera's tokens (RFC 8707): the `aud` a token names it by, and the
/// scopes apps may be granted for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRecord {
    pub id: String,
    /// An absolute URI without a fragment, unique among resources.
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// Overrides the app's and the server's lifetime for tokens naming this resource.
    #[serde(default)]
    pub access_token_ttl_secs: Option<u64>,
    pub created_at: u64,
    pub updated_at: u64,
}
