//! A proof's public key: read from its `jwk`, verified against, and remembered. A DPoP client
//! signs every proof with one key, so the work of decoding a key (point decompression and
//! validation, the RFC 7638 thumbprint) is done once per key per node, not once per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::{ALGORITHMS, ProofError};
use crate::auth::public_key::PublicKey;

/// Independent locks, as in the replay window.
const SHARDS: usize = 16;

/// The members of a proof's `jwk` that matter: the public ones, and whether any private or
/// symmetric member (RFC 7518 §6) is present, which makes the whole proof invalid.
#[derive(serde::Deserialize)]
pub(super) struct Jwk<'a> {
    #[serde(borrow, default)]
    kty: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    crv: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    x: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    y: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    d: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    p: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    q: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    dp: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    dq: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    qi: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    k: Option<serde::de::IgnoredAny>,
}

impl Jwk<'_> {
    fn has_private_member(&self) -> bool {
        [&self.d, &self.p, &self.q, &self.dp, &self.dq, &self.qi, &self.k]
            .iter()
            .any(|m| m.is_some())
    }
}

/// A public key's own bytes: what identifies it, whatever the JSON spelling of its `jwk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum RawKey {
    Ed25519([u8; 32]),
    P256 { x: [u8; 32], y: [u8; 32] },
}

impl RawKey {
    /// The key a `jwk` holds, if it is a public key of the kind `alg` names.
    pub(super) fn from_jwk(alg: &str, jwk: &Jwk<'_>) -> Result<RawKey, ProofError> {
        if !ALGORITHMS.contains(&alg) {
            return Err(ProofError::Algorithm);
        }
        if jwk.has_private_member() {
            return Err(ProofError::Key);
        }
        let member = |value: &Option<std::borrow::Cow<'_, str>>| -> Result<[u8; 32], ProofError> {
            let text = value.as_deref().ok_or(ProofError::Key)?;
            let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| ProofError::Key)?;
            bytes.try_into().map_err(|_| ProofError::Key)
        };
        let (kty, crv) = (jwk.kty.as_deref(), jwk.crv.as_deref());
        match alg {
            "EdDSA" | "Ed25519" if kty == Some("OKP") && crv == Some("Ed25519") => {
                Ok(RawKey::Ed25519(member(&jwk.x)?))
            }
            "ES256" if kty == Some("EC") && crv == Some("P-256") => {
                Ok(RawKey::P256 { x: member(&jwk.x)?, y: member(&jwk.y)? })
            }
            _ => Err(ProofError::Key),
        }
    }

    /// RFC 7638 §3: the required members, in lexicographic order, no whitespace; the key's
    /// own bytes re-encoded, so two spellings of one key have one thumbprint.
    pub(super) fn thumbprint(&self) -> String {
        let json = match self {
            RawKey::Ed25519(x) => {
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(x))
            }
            RawKey::P256 { x, y } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(x),
                URL_SAFE_NO_PAD.encode(y)
            ),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()))
    }

    fn decode(&self) -> Result<PublicKey, ProofError> {
        let key = match self {
            RawKey::Ed25519(x) => PublicKey::ed25519(x),
            RawKey::P256 { x, y } => PublicKey::p256(x, y),
        };
        key.ok_or(ProofError::Key)
    }
}

type Shard = HashMap<RawKey, Arc<Known>>;

/// A key as remembered: decoded, with its thumbprint.
struct Known {
    verifier: PublicKey,
    jkt: String,
}

/// The keys this node has seen proofs by, in bounded memory: a shard that fills is emptied
/// whole, which costs a decode per key again and nothing else.
pub struct Keys {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

impl Keys {
    /// Remembers up to about `capacity` keys.
    pub fn new(capacity: usize) -> Keys {
        let shards = (0..SHARDS).map(|_| Mutex::default()).collect();
        Keys { shards, per_shard: capacity.div_ceil(SHARDS).max(1) }
    }

    /// Verifies `signature` over `signed` by `key`, and answers the key's thumbprint.
    pub(super) fn verify(
        &self,
        key: &RawKey,
        signed: &[u8],
        signature: &[u8],
    ) -> Result<String, ProofError> {
        let known = self.known(key)?;
        if !known.verifier.verify(signed, signature) {
            return Err(ProofError::Signature);
        }
        Ok(known.jkt.clone())
    }

    fn known(&self, key: &RawKey) -> Result<Arc<Known>, ProofError> {
        let shard = &self.shards[self.shard(key)];
        if let Some(known) = lock(shard).get(key) {
            return Ok(known.clone());
        }
        // Decoded outside the lock: decompression is the expensive part.
        let known = Arc::new(Known { verifier: key.decode()?, jkt: key.thumbprint() });
        let mut keys = lock(shard);
        if keys.len() >= self.per_shard {
            keys.clear();
        }
        keys.insert(*key, known.clone());
        Ok(known)
    }

    fn shard(&self, key: &RawKey) -> usize {
        // A key's bytes are a curve point or its encoding: uniform enough to pick a shard by,
        // and a client choosing keys to crowd one shard only evicts its own.
        let byte = match key {
            RawKey::Ed25519(x) => x[7],
            RawKey::P256 { x, .. } => x[7],
        };
        byte as usize % SHARDS
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_shard_starts_again_and_still_verifies() {
        let keys = Keys::new(1);
        let signer = |seed: u8| ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        for seed in 1..40u8 {
            let signer = signer(seed);
            let raw = RawKey::Ed25519(signer.verifying_key().to_bytes());
            let signature = ed25519_dalek::Signer::sign(&signer, b"m").to_bytes();
            assert_eq!(keys.verify(&raw, b"m", &signature), Ok(raw.thumbprint()));
            assert_eq!(keys.verify(&raw, b"n", &signature), Err(ProofError::Signature));
        }
        assert!(keys.shards.iter().all(|s| lock(s).len() <= keys.per_shard));
    }

    #[test]
    fn a_small_order_key_is_refused() {
        // The identity point: every signature with R = identity and s = 0 "verifies" under it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let keys = Keys::new(16);
        let mut signature = [0u8; 64];
        signature[0] = 1;
        let raw = RawKey::Ed25519(identity);
        assert_eq!(keys.verify(&raw, b"anything", &signature), Err(ProofError::Key));
    }
}
