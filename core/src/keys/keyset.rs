//! The published key snapshot: what the hot path signs with and what verifiers are served.
//! The key ring builds a new one after every change and swaps it in whole.

use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use tessera_storage::{KeyRecord, KeyState};

/// The current signer with its JWS header already encoded: signing does no header work.
pub struct Signer {
    pub kid: String,
    pub key: SigningKey,
    /// base64url of `{"alg":"EdDSA","typ":"at+jwt","kid":"…"}`.
    pub header_b64: String,
}

/// A published key as verifiers see it.
pub struct PublishedKey {
    pub kid: String,
    pub state: KeyState,
    pub key: VerifyingKey,
    /// The exact header segment our signer produces with this key; a token whose header
    /// differs by a byte was not made here.
    pub header_b64: String,
}

pub struct KeySet {
    pub signer: Option<Signer>,
    pub published: Vec<PublishedKey>,
    pub jwks: Arc<[u8]>,
    pub etag: String,
}

/// How every reader holds the snapshot.
pub type SharedKeySet = Arc<ArcSwap<KeySet>>;

pub fn header_b64(kid: &str) -> String {
    let header = serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
    URL_SAFE_NO_PAD.encode(header.to_string())
}

impl KeySet {
    /// A set with nothing to sign with; `/readyz` answers 503 while this is published.
    pub fn empty() -> KeySet {
        KeySet::build(&[])
    }

    pub fn build(records: &[KeyRecord]) -> KeySet {
        let current = records.iter().find(|r| r.state == KeyState::Current);
        KeySet::build_signing(records, current.map(|r| r.kid.as_str()))
    }

    /// A set that signs with `signer_kid` (one of `records`), which need not be the current
    /// key: a node that learned of the current key late signs with the one before it until its
    /// own JWKS has carried the new one for one max-age.
    pub fn build_signing(records: &[KeyRecord], signer_kid: Option<&str>) -> KeySet {
        let mut signer = None;
        let mut published = Vec::with_capacity(records.len());
        for record in records {
            let signing = SigningKey::from_bytes(&record.secret);
            let header = header_b64(&record.kid);
            if Some(record.kid.as_str()) == signer_kid {
                signer = Some(Signer {
                    kid: record.kid.clone(),
                    key: signing.clone(),
                    header_b64: header.clone(),
                });
            }
            published.push(PublishedKey {
                kid: record.kid.clone(),
                state: record.state,
                key: signing.verifying_key(),
                header_b64: header,
            });
        }
        // The current key first: clients that take the first key still get the signing one.
        published.sort_by_key(|k| match k.state {
            KeyState::Current => 0,
            KeyState::Next => 1,
            KeyState::Retiring => 2,
        });
        let keys: Vec<_> = published
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(k.key.to_bytes()),
                    "kid": k.kid,
                    "use": "sig",
                    "alg": "EdDSA",
                })
            })
            .collect();
        let jwks = serde_json::json!({ "keys": keys }).to_string().into_bytes();
        let digest = Sha256::digest(&jwks);
        let etag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16]));
        KeySet { signer, published, jwks: jwks.into(), etag }
    }
}
