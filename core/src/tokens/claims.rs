//! Access-token claims (RFC 9068): how they are written on the hot path and read back.

use serde::{Deserialize, Serialize};

/// Claims a client's `tokenClaims` may not set: the registered ones and ours.
pub const REGISTERED_CLAIMS: [&str; 11] =
    ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "typ", "sid"];

/// The claims as written: borrowed, so minting allocates only the output.
#[derive(Serialize)]
pub(crate) struct OutgoingClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: &'a str,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub jti: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    /// The refresh family a token was issued from (its "session"); revoked with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<&'a str>,
}

/// The claims as read back from a verified token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub jti: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub sid: Option<String>,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// Live at `now`: not expired and not before its `nbf`.
    pub fn is_live(&self, now: u64) -> bool {
        self.nbf <= now && now < self.exp
    }
}
