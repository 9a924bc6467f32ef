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
    /// `tls_client_auth` (RFC 8705 §2.1): the one name its CA-issued certificate must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth: Option<TlsClientAuth>,
    /// `self_signed_tls_client_auth` (RFC 8705 §2.2): its certificates, PEM.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub self_signed_certificates: Vec<String>,
    /// External identities that authenticate as this app with no secret (workload identity
    /// federation): a token from `issuer` whose `sub` matches `subject` (exact, or `*` for one
    /// path segment), whose `aud` is `audience` when given, and whose claims equal `claims`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated_identities: Vec<FederatedIdentity>,
    /// May use token exchange (RFC 8693) to act on behalf of the subject of a token it holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub can_exchange: bool,
    /// Token reuse (docs/api.md, Token reuse): `Some` overrides the server's `token_reuse`,
    /// `None` follows it. Absent in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_reuse: Option<bool>,
    /// How many tokens a node issues the app per minute (docs/api.md, Issuance quotas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_quota: Option<TokenQuota>,
}

/// An app's issuance quota, counted at each node on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenQuota {
    pub per_minute: u32,
}

/// One external identity an app accepts in place of a secret: a token of a registered issuer
/// whose claims match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedIdentity {
    /// An issuer's `issuer` URL, as registered.
    pub issuer: String,
    pub subject: String,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
}

/// The name a `tls_client_auth` app's certificate carries: exactly one of these, as the RFC
/// 8705 §2.1.2 metadata names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsClientAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_dn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub san_dns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub san_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub san_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub san_email: Option<String>,
}
