//! DPoP proofs (RFC 9449 §4): a JWT the client signs with a key of its own for each request,
//! so a token bound to that key is useless to whoever copies it. Checked here, without actix,
//! in the order of RFC 9449 §4.3; this is the code the fuzzer drives.

mod key;
mod replay;

pub use key::Keys;
pub use replay::{ReplayWindow, Seen};

use key::{Jwk, RawKey};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// The `alg` values a proof may use: what most DPoP clients sign with (ES256), and Ed25519
/// under both its names (`EdDSA`, and the fully-specified `Ed25519` newer clients send).
pub const ALGORITHMS: [&str; 3] = ["ES256", "EdDSA", "Ed25519"];
/// How far a proof's `iat` may be from the server's clock, either way (RFC 9449 §11.1).
pub const MAX_SKEW: u64 = 60;
/// Longer than any honest proof (a P-256 key, a long URL, a token hash).
pub const MAX_PROOF: usize = 4096;
const MAX_JTI: usize = 256;

/// What the request a proof came with looks like to the server.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request's method.
    pub htm: &'a str,
    /// The request's URL as the client reached it, without query or fragment.
    pub htu: &'a str,
    pub now: u64,
    /// The access token the request carries, whose hash the proof must name (`ath`).
    pub access_token: Option<&'a str>,
}

/// A proof that passed every check but replay: its key's thumbprint and its `jti`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// RFC 7638 JWK SHA-256 thumbprint, base64url: a bound token's `cnf.jkt`.
    pub jkt: String,
    pub jti: String,
    pub iat: u64,
}

/// Why a proof was refused; each is answered as `invalid_dpop_proof` with its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    Missing,
    /// More than one `DPoP` header (RFC 9449 §4.3 point 1).
    Repeated,
    Malformed,
    Type,
    Algorithm,
    /// The `jwk` is not a public key of the `alg`, or carries private members.
    Key,
    Signature,
    Method,
    Uri,
    Time,
    TokenHash,
    Replayed,
    /// The proof's key is not the key the token or grant is bound to.
    WrongKey,
    /// The node has remembered as many proofs as it may; nothing was checked against it.
    Full,
}

impl ProofError {
    pub fn description(self) -> &'static str {
        match self {
            ProofError::Missing => "a DPoP proof is required",
            ProofError::Repeated => "exactly one DPoP header is allowed",
            ProofError::Malformed => "the DPoP proof is not a well-formed JWT",
            ProofError::Type => "the DPoP proof's typ must be dpop+jwt",
            ProofError::Algorithm => "the DPoP proof's alg must be ES256, EdDSA or Ed25519",
            ProofError::Key => "the DPoP proof's jwk must be a public key for its alg",
            ProofError::Signature => "the DPoP proof's signature does not verify",
            ProofError::Method => "the DPoP proof's htm is not this request's method",
            ProofError::Uri => "the DPoP proof's htu is not this request's URL",
            ProofError::Time => "the DPoP proof's iat is not within 60 seconds of now",
            ProofError::TokenHash => "the DPoP proof's ath is not the hash of the access token",
            ProofError::Replayed => "the DPoP proof's jti was already used",
            ProofError::WrongKey => "the DPoP proof is not signed by the key the token is bound to",
            ProofError::Full => "too many DPoP proofs are being remembered; retry shortly",
        }
    }
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    typ: Cow<'a, str>,
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow)]
    jwk: Jwk<'a>,
    /// RFC 7515 §4.1.11: a critical extension we do not know makes the JWS invalid.
    #[serde(default)]
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct Claims<'a> {
    jti: String,
    #[serde(borrow)]
    htm: Cow<'a, str>,
    #[serde(borrow)]
    htu: Cow<'a, str>,
    iat: u64,
    #[serde(default)]
    ath: Option<String>,
}

/// Checks a proof against the request it came with: every rule of RFC 9449 §4.3 but the
/// `jti` replay check, which needs the node's memory ([`ReplayWindow`]).
pub fn check(proof: &str, expected: &Expected<'_>, keys: &Keys) -> Result<Proof, ProofError> {
    if proof.len() > MAX_PROOF {
        return Err(ProofError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(h64), Some(c64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| ProofError::Malformed);
    let header = decode(h64)?;
    let header: Header = serde_json::from_slice(&header).map_err(|_| ProofError::Malformed)?;
    if !header.typ.eq_ignore_ascii_case("dpop+jwt") {
        return Err(ProofError::Type);
    }
    if header.crit.is_some() {
        return Err(ProofError::Malformed);
    }
    let key = RawKey::from_jwk(&header.alg, &header.jwk)?;
    let signature = decode(s64)?;
    let signed = &proof[..h64.len() + 1 + c64.len()];
    let jkt = keys.verify(&key, signed.as_bytes(), &signature)?;
    let claims = decode(c64)?;
    let claims: Claims = serde_json::from_slice(&claims).map_err(|_| ProofError::Malformed)?;
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI {
        return Err(ProofError::Malformed);
    }
    if claims.htm != expected.htm {
        return Err(ProofError::Method);
    }
    if !same_target(&claims.htu, expected.htu) {
        return Err(ProofError::Uri);
    }
    if claims.iat.abs_diff(expected.now) > MAX_SKEW {
        return Err(ProofError::Time);
    }
    if let Some(token) = expected.access_token {
        let hash = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        if claims.ath.as_deref() != Some(hash.as_str()) {
            return Err(ProofError::TokenHash);
        }
    }
    Ok(Proof { jkt, jti: claims.jti, iat: claims.iat })
}

/// RFC 9449 §4.3 point 9: the URLs compared without query and fragment, after the
/// normalization of RFC 3986 §6 that the WHATWG parser applies (case of scheme and host,
/// default port, dot segments).
fn same_target(htu: &str, expected: &str) -> bool {
    // Most clients send the URL exactly as the server knows it: equal bytes are equal URLs.
    if htu.split(['?', '#']).next() == Some(expected) {
        return true;
    }
    let strip = |u: &str| {
        let mut url = url::Url::parse(u).ok()?;
        url.set_query(None);
        url.set_fragment(None);
        Some(url)
    };
    match (strip(htu), strip(expected)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// RFC 7638 thumbprint of an Ed25519 or P-256 public JWK, as a bound token's `cnf.jkt` names
/// it; `None` for any other key.
pub fn thumbprint(jwk: &serde_json::Map<String, Value>) -> Option<String> {
    let alg = match jwk.get("kty").and_then(Value::as_str) {
        Some("OKP") => "EdDSA",
        Some("EC") => "ES256",
        _ => return None,
    };
    let jwk = Value::Object(jwk.clone());
    let jwk = Jwk::deserialize(&jwk).ok()?;
    RawKey::from_jwk(alg, &jwk).ok().map(|k| k.thumbprint())
}
