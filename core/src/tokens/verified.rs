//! Tokens this node has verified lately. An operator's tooling and a fleet's services send the
//! same bearer token on every call for its whole life, and its Ed25519 verification is most of
//! the cost of a small admin call; so the outcome of the signature check is kept by the
//! token's SHA-256. Only that is remembered — "these exact bytes were signed by the key with
//! this header" stays true — and a hit counts only while that key is still published.
//! Lifetime, revocation and the subject's state are checked on every call as before.

use dashmap::DashMap;
use sha2::{Digest, Sha256};

use super::claims::AccessClaims;
use crate::keys::keyset::KeySet;

/// Past this many entries the cache starts over: a bound on memory (a few MB) that only a
/// caller minting fresh tokens for every call could reach, and which then costs it nothing
/// more than verifying as if there were no cache.
const CAPACITY: usize = 8192;

#[derive(Default)]
pub struct VerifiedTokens {
    by_digest: DashMap<[u8; 32], AccessClaims>,
}

/// A token's key in the cache.
pub struct TokenDigest([u8; 32]);

impl VerifiedTokens {
    pub fn digest(token: &str) -> TokenDigest {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    /// The claims of `token` if it verified here before and the key that signed it is still
    /// published.
    pub fn get(&self, digest: &TokenDigest, token: &str, keys: &KeySet) -> Option<AccessClaims> {
        let claims = self.by_digest.get(&digest.0)?.clone();
        let header = token.split('.').next()?;
        keys.published.iter().any(|k| k.header_b64 == header).then_some(claims)
    }

    /// Remembers a token whose signature and issuer just checked out.
    pub fn put(&self, digest: TokenDigest, claims: &AccessClaims) {
        if self.by_digest.len() >= CAPACITY {
            self.by_digest.clear();
        }
        self.by_digest.insert(digest.0, claims.clone());
    }
}
