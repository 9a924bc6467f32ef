use serde::{Deserialize, Serialize};

/// An external token issuer whose signed JWTs apps may present as client credentials
/// (workload identity federation): Kubernetes, GitHub Actions, SPIFFE, any OIDC provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRecord {
    pub id: String,
    /// The exact `iss` its tokens carry; unique among issuers.
    pub issuer: String,
    /// Where its JWK Set is fetched from; with neither this nor `jwks`, OIDC discovery at the issuer.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// A JWK Set given by the operator, as JSON text, for issuers that cannot be reached.
    #[serde(default)]
    pub jwks: Option<String>,
    /// Signature algorithms accepted from it: a subset of RS256, ES256, EdDSA.
    pub algorithms: Vec<String>,
    /// The oldest a token may be (now − iat), in seconds.
    #[serde(default)]
    pub max_token_age_secs: Option<u64>,
    pub created_at: u64,
    pub updated_at: u64,
}
