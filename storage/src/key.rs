use serde::{Deserialize, Serialize};

/// Where a signing key stands in its life (docs/api.md, Key rotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published in the JWKS, not yet signing.
    Next,
    /// Signing; exactly one key is current.
    Current,
    /// Published so that the tokens it signed still verify; no longer signing.
    Retiring,
}

/// A signing key as the key ring sees it. `secret` is the Ed25519 seed in the clear here; the
/// store seals it with the KEK, when one is set, before it reaches the file.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub kid: String,
    pub state: KeyState,
    pub secret: [u8; 32],
    pub created_at: u64,
    /// When the key entered the published JWKS.
    pub published_at: u64,
    /// True for keys published before any JWKS was served: no verifier can lack them.
    pub is_in_every_jwks: bool,
    pub activated_at: Option<u64>,
    pub retired_at: Option<u64>,
    /// A retiring key leaves the JWKS after this time: every token it signed has expired.
    pub remove_after: Option<u64>,
}

impl std::fmt::Debug for KeyRecord {
    // The seed never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .field("published_at", &self.published_at)
            .field("is_in_every_jwks", &self.is_in_every_jwks)
            .field("activated_at", &self.activated_at)
            .field("remove_after", &self.remove_after)
            .finish_non_exhaustive()
    }
}

/// The file's form of a [`KeyRecord`]: the seed sealed (or marked plain) as text.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredKey {
    kid: String,
    state: KeyState,
    seed: String,
    created_at: u64,
    published_at: u64,
    is_in_every_jwks: bool,
    activated_at: Option<u64>,
    retired_at: Option<u64>,
    remove_after: Option<u64>,
}

impl StoredKey {
    pub(crate) fn seal(
        key: &KeyRecord,
        kek: Option<&crate::Kek>,
    ) -> Result<Self, crate::StoreError> {
        Ok(StoredKey {
            kid: key.kid.clone(),
            state: key.state,
            seed: crate::seal::seal(kek, &key.secret, &key.kid)?,
            created_at: key.created_at,
            published_at: key.published_at,
            is_in_every_jwks: key.is_in_every_jwks,
            activated_at: key.activated_at,
            retired_at: key.retired_at,
            remove_after: key.remove_after,
        })
    }

    pub(crate) fn open(self, kek: Option<&crate::Kek>) -> Result<KeyRecord, crate::StoreError> {
        Ok(KeyRecord {
            secret: crate::seal::open(kek, &self.seed, &self.kid)?,
            kid: self.kid,
            state: self.state,
            created_at: self.created_at,
            published_at: self.published_at,
            is_in_every_jwks: self.is_in_every_jwks,
            activated_at: self.activated_at,
            retired_at: self.retired_at,
            remove_after: self.remove_after,
        })
    }
}

/// Whether `stored` is the ring `expected`, in whatever order each lists its keys: every field
/// and seed alike, so a ring re-stamped or re-sealed since is another ring.
pub(crate) fn is_same_ring(mut stored: Vec<KeyRecord>, expected: &[KeyRecord]) -> bool {
    let mut expected: Vec<&KeyRecord> = expected.iter().collect();
    stored.sort_unstable_by(|a, b| a.kid.cmp(&b.kid));
    expected.sort_unstable_by(|a, b| a.kid.cmp(&b.kid));
    stored.len() == expected.len() && stored.iter().zip(expected).all(|(a, b)| a == b)
}
