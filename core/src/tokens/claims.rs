//! Access-token claims (RFC 9068): how they are written on the hot path and read back.

use serde::{Deserialize, Serialize};

/// Claims a client's `tokenClaims` may not set: the registered ones and ours.
pub const REGISTERED_CLAIMS: [&str; 13] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "typ",
    "sid",
    "cnf",
    "act",
];

/// RFC 7800 `cnf`: what a token is bound to — a DPoP key's thumbprint (RFC 9449 §6.1) or a
/// client certificate's (RFC 8705 §3.1). Empty for a bearer token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Confirmation<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jkt: Option<&'a str>,
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<&'a str>,
}

impl Confirmation<'_> {
    pub fn is_empty(&self) -> bool {
        self.jkt.is_none() && self.x5t_s256.is_none()
    }
}

/// `cnf` as read back from a verified token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundTo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    #[serde(default, rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
}

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
    #[serde(skip_serializing_if = "Confirmation::is_empty")]
    pub cnf: Confirmation<'a>,
    /// RFC 8693 §4.1: who acts on the subject's behalf, for a token made by token exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<&'a Actor>,
}

/// RFC 8693 §4.1: the current actor, with the actor before it nested inside, and so on back
/// to the first. Only `sub` is kept at each level: the app that acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// How many actors the chain names.
    pub fn depth(&self) -> usize {
        1 + self.act.as_ref().map_or(0, |a| a.depth())
    }
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
    #[serde(default)]
    pub cnf: Option<BoundTo>,
    #[serde(default)]
    pub act: Option<Actor>,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// The DPoP key the token is bound to, if any.
    pub fn jkt(&self) -> Option<&str> {
        self.cnf.as_ref().and_then(|c| c.jkt.as_deref())
    }

    /// Live at `now`: not expired and not before its `nbf`.
    pub fn is_live(&self, now: u64) -> bool {
        self.nbf <= now && now < self.exp
    }
}
