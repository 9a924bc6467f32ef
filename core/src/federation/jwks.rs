//! An external issuer's JWK Set (RFC 7517 §5), read into keys jwt-simple verifies with. Keys
//! this server cannot use (encryption keys, other curves, short RSA moduli) are skipped, not
//! fatal: issuers publish sets with keys for other consumers beside ours.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::auth::public_key::PublicKey;

/// The algorithms an external issuer may sign with: what Kubernetes, GitHub Actions and most
/// OIDC providers use (RS256), and the two elliptic-curve ones.
pub const ALGORITHMS: [&str; 3] = ["RS256", "ES256", "EdDSA"];
/// Larger than any real issuer's set; a bigger answer is refused unread.
pub const MAX_JWKS: usize = 256 * 1024;

/// One usable key of a set.
pub struct ExternalKey {
    pub kid: Option<String>,
    pub key: PublicKey,
}

/// The usable keys of a set.
#[derive(Default)]
pub struct KeySet {
    pub keys: Vec<ExternalKey>,
}

/// Why a set could not be read at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwksError {
    #[error("the JWK Set is not JSON with a \"keys\" array")]
    NotASet,
    #[error("the JWK Set is larger than 256 KiB")]
    TooLarge,
    #[error("the JWK Set holds no RS256, ES256 or EdDSA public key")]
    NoUsableKey,
}

impl KeySet {
    pub fn parse(text: &str) -> Result<KeySet, JwksError> {
        if text.len() > MAX_JWKS {
            return Err(JwksError::TooLarge);
        }
        let set: Value = serde_json::from_str(text).map_err(|_| JwksError::NotASet)?;
        let keys = set.get("keys").and_then(Value::as_array).ok_or(JwksError::NotASet)?;
        let keys: Vec<ExternalKey> = keys.iter().filter_map(read_key).collect();
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(KeySet { keys })
    }

    /// The keys a token with this header's `kid` and `alg` may be verified with: the one named,
    /// or with no `kid`, every key of the algorithm.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: &'a str,
    ) -> impl Iterator<Item = &'a ExternalKey> + 'a {
        self.keys
            .iter()
            .filter(move |k| k.key.algorithm() == alg && (kid.is_none() || k.kid.as_deref() == kid))
    }

    pub fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

fn read_key(jwk: &Value) -> Option<ExternalKey> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let bytes = |name: &str| text(name).and_then(|t| URL_SAFE_NO_PAD.decode(t).ok());
    // RFC 7517 §4.2: a key for encryption only is not for us.
    if text("use").is_some_and(|u| u != "sig") {
        return None;
    }
    // A private member means the issuer published its secret: refuse to trust the key.
    if ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|m| jwk.get(*m).is_some()) {
        return None;
    }
    let declared = text("alg");
    let fixed = |b: Vec<u8>| <[u8; 32]>::try_from(b).ok();
    let key = match (text("kty")?, text("crv")) {
        ("RSA", _) if declared.is_none_or(|a| a == "RS256") => {
            PublicKey::rsa(&bytes("n")?, &bytes("e")?)?
        }
        ("EC", Some("P-256")) if declared.is_none_or(|a| a == "ES256") => {
            PublicKey::p256(&fixed(bytes("x")?)?, &fixed(bytes("y")?)?)?
        }
        ("OKP", Some("Ed25519")) if declared.is_none_or(|a| a == "EdDSA" || a == "Ed25519") => {
            PublicKey::ed25519(&fixed(bytes("x")?)?)?
        }
        _ => return None,
    };
    Some(ExternalKey { kid: text("kid").map(str::to_string), key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_simple::prelude::*;

    #[test]
    fn issue_13_usable_keys_are_read_and_others_skipped() {
        let ec = ES256KeyPair::generate();
        let point = ec.public_key().public_key().to_bytes_uncompressed();
        let ed = Ed25519KeyPair::generate();
        let set = serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "ec", "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": URL_SAFE_NO_PAD.encode(ed.public_key().to_bytes())},
            {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "short", "n": URL_SAFE_NO_PAD.encode([0xC5; 128]), "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": URL_SAFE_NO_PAD.encode(ed.public_key().to_bytes())},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        ]});
        let set = KeySet::parse(&set.to_string()).expect("two usable keys");
        let kids: Vec<_> = set.keys.iter().map(|k| k.kid.as_deref().unwrap_or("")).collect();
        assert_eq!(kids, ["ec", "ed"]);
        assert_eq!(set.candidates(Some("ec"), "ES256").count(), 1);
        assert_eq!(set.candidates(Some("ec"), "RS256").count(), 0);
        assert_eq!(set.candidates(None, "EdDSA").count(), 1);
        assert!(set.knows("ed") && !set.knows("hmac"));
    }

    #[test]
    fn issue_13_a_set_with_nothing_usable_is_an_error() {
        assert_eq!(KeySet::parse("[]").err(), Some(JwksError::NotASet));
        assert_eq!(
            KeySet::parse(r#"{"keys":[{"kty":"oct","k":"AA"}]}"#).err(),
            Some(JwksError::NoUsableKey)
        );
        assert_eq!(KeySet::parse(&" ".repeat(MAX_JWKS + 1)).err(), Some(JwksError::TooLarge));
    }
}
