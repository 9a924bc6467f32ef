//! A proof's public key: read from its `jwk`, verified against, and remembered. A DPoP client
//! signs every proof with one key, so the work of decoding a key (point decompression and
//! validation, the RFC 7638 thumbprint) is done once per key per node, not once per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::{ALGORITHMS, ProofError};

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

    fn decode(&self) -> Result<Decoded, ProofError> {
        match self {
            RawKey::Ed25519(x) => {
                let key =
                    ed25519_dalek::VerifyingKey::from_bytes(x).map_err(|_| ProofError::Key)?;
                // A small-order key "verifies" signatures nobody made; refused here, once, so
                // that every proof by an accepted key can be checked with the cheaper
                // cofactorless equation.
                if key.is_weak() {
                    return Err(ProofError::Key);
                }
                Ok(Decoded::Ed25519(key))
            }
            RawKey::P256 { x, y } => {
                let mut point = [0u8; 65];
                point[0] = 0x04;
                point[1..33].copy_from_slice(x);
                point[33..].copy_from_slice(y);
                p256_verifier(&point)
            }
        }
    }
}

/// A decoded key, ready to verify with.
enum Decoded {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    /// The same curve in formally verified assembly, about four times faster; only where the
    /// CPU has the instructions it needs.
    #[cfg(target_arch = "x86_64")]
    P256Fast(Box<graviola::signing::ecdsa::VerifyingKey<graviola::signing::ecdsa::P256>>),
}

fn p256_verifier(point: &[u8; 65]) -> Result<Decoded, ProofError> {
    #[cfg(target_arch = "x86_64")]
    if fast_p256() {
        return graviola::signing::ecdsa::VerifyingKey::from_x962_uncompressed(point)
            .map(|key| Decoded::P256Fast(Box::new(key)))
            .map_err(|_| ProofError::Key);
    }
    p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map(Decoded::P256)
        .map_err(|_| ProofError::Key)
}

/// Whether this CPU has what graviola requires of an x86-64 (it refuses to run without).
#[cfg(target_arch = "x86_64")]
fn fast_p256() -> bool {
    std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("adx")
        && std::arch::is_x86_feature_detected!("avx")
        && std::arch::is_x86_feature_detected!("avx2")
}

impl Decoded {
    fn verify(&self, signed: &[u8], signature: &[u8]) -> Result<(), ProofError> {
        match self {
            Decoded::Ed25519(key) => {
                let signature = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| ProofError::Signature)?;
                // Not `verify_strict`: the key was checked not to be weak when decoded, and a
                // second spelling of a signature gains nothing, since replay is judged by
                // (key, jti), never by the signature's bytes.
                ed25519_dalek::Verifier::verify(key, signed, &signature)
                    .map_err(|_| ProofError::Signature)
            }
            // JWS ES256 is the 64-byte r‖s form (RFC 7518 §3.4), never DER. Both s and n−s
            // verify, and both are accepted: WebCrypto and RFC 6979 signers emit either.
            Decoded::P256(key) => {
                use p256::ecdsa::signature::Verifier;
                let signature = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| ProofError::Signature)?;
                key.verify(signed, &signature).map_err(|_| ProofError::Signature)
            }
            #[cfg(target_arch = "x86_64")]
            Decoded::P256Fast(key) => key
                .verify::<graviola::hashing::Sha256>(&[signed], signature)
                .map_err(|_| ProofError::Signature),
        }
    }
}

type Shard = HashMap<RawKey, Arc<Known>>;

/// A key as remembered: decoded, with its thumbprint.
struct Known {
    verifier: Decoded,
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
        known.verifier.verify(signed, signature)?;
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

    #[test]
    fn both_p256_verifiers_agree() {
        use p256::ecdsa::signature::Signer;
        let signer = p256::ecdsa::SigningKey::from_slice(&[7; 32]).expect("scalar");
        let point = signer.verifying_key().to_sec1_point(false);
        let point: [u8; 65] = point.as_bytes().try_into().expect("uncompressed");
        let portable = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map(Decoded::P256);
        let chosen = p256_verifier(&point);
        let (Ok(portable), Ok(chosen)) = (portable, chosen) else { panic!("valid point") };
        for message in [&b"a"[..], b"another message", b""] {
            let signature: p256::ecdsa::Signature = signer.sign(message);
            let mut bytes = signature.to_bytes().to_vec();
            assert_eq!(portable.verify(message, &bytes), Ok(()));
            assert_eq!(chosen.verify(message, &bytes), Ok(()));
            // (r, n − s) is the same signature to both.
            let high = p256::ecdsa::Signature::from_scalars(signature.r(), -*signature.s())
                .expect("nonzero")
                .to_bytes();
            assert_eq!(portable.verify(message, &high), Ok(()));
            assert_eq!(chosen.verify(message, &high), Ok(()));
            bytes[40] ^= 1;
            assert_eq!(portable.verify(message, &bytes), Err(ProofError::Signature));
            assert_eq!(chosen.verify(message, &bytes), Err(ProofError::Signature));
            assert_eq!(
                portable.verify(b"other", &signature.to_bytes()),
                Err(ProofError::Signature)
            );
            assert_eq!(chosen.verify(b"other", &signature.to_bytes()), Err(ProofError::Signature));
        }
        let mut off_curve = point;
        off_curve[64] ^= 1;
        assert!(p256_verifier(&off_curve).is_err());
        assert!(p256::ecdsa::VerifyingKey::from_sec1_bytes(&off_curve).is_err());
    }
}
