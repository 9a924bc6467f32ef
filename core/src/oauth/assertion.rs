//! `private_key_jwt` (RFC 7523 §2.2, §3): a client proves itself with a JWT signed by the key it
//! registered. jwt-simple checks signature and time claims; the header rules are ours.

use std::collections::HashSet;

use jwt_simple::prelude::*;

/// Clock skew allowed between a client and us when checking `exp`, `nbf` and `iat`.
pub const CLOCK_TOLERANCE: u64 = 30;

/// A checked assertion: who it speaks for, and what the replay cache must remember.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    pub client_id: String,
    pub jti: String,
    pub exp: u64,
}

/// The client an assertion names (`iss`, which must equal `sub`), read before any key is
/// chosen. Unverified: only used to find the key to verify with.
pub fn claimed_client(assertion: &str) -> Option<String> {
    use base64::Engine;
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

/// Verifies an assertion for `client_id` against its registered key. `audiences` are the
/// values `aud` may carry (the token endpoint URLs and the issuer).
pub fn verify(
    assertion: &str,
    client_id: &str,
    key: &[u8; 32],
    audiences: &[String],
    max_lifetime: u64,
    now: u64,
) -> Option<Assertion> {
    let meta = Token::decode_metadata(assertion).ok()?;
    // RFC 8725 §3.1, §2.1: one algorithm, and never a key the token brings with it.
    if meta.algorithm() != "EdDSA"
        || meta.public_key().is_some()
        || meta.key_set_url().is_some()
        || meta.certificate_url().is_some()
        || meta.certificate_chain().is_some()
        || meta.critical().is_some()
    {
        return None;
    }
    let key = Ed25519PublicKey::from_bytes(key).ok()?;
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from([client_id.to_string()])),
        required_subject: Some(client_id.to_string()),
        allowed_audiences: Some(audiences.iter().cloned().collect()),
        time_tolerance: Some(Duration::from_secs(CLOCK_TOLERANCE)),
        artificial_time: Some(UnixTimeStamp::from_secs(now)),
        max_validity: Some(Duration::from_secs(max_lifetime)),
        ..Default::default()
    };
    let claims = key.verify_token::<NoCustomClaims>(assertion, Some(options)).ok()?;
    let exp = claims.expires_at?.as_secs();
    // RFC 7523 §3: a short-lived assertion, with a jti to refuse replays.
    if exp > now.saturating_add(max_lifetime) {
        return None;
    }
    let jti = claims.jwt_id.filter(|j| !j.is_empty() && j.len() <= 256)?;
    Some(Assertion { client_id: client_id.to_string(), jti, exp })
}
