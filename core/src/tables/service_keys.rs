//! The published `ServiceKeys`: API key selector → (service, hex SHA-256 of the secret), read
//! by every `X-API-Key` check without a message hop.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dashmap::DashMap;
use sha2::{Digest, Sha256};
use tessera_storage::ApiKeyRecord;

use crate::auth::secret::hex_matches;

pub const API_KEY_PREFIX: &str = "sk_live_";

/// key id → (service id, hex SHA-256 of the secret), read by `X-API-Key` checks.
#[derive(Clone, Default)]
pub struct ServiceKeys(Arc<DashMap<String, (String, String)>>);

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ServiceKeys {
    pub(crate) fn put(&self, key: &ApiKeyRecord) {
        self.0.insert(key.key_id.clone(), (key.service_id.clone(), key.verifier.clone()));
    }

    pub(crate) fn remove(&self, key_id: &str) {
        self.0.remove(key_id);
    }

    /// The service an API key belongs to. Missing, malformed, wrong and revoked keys are one
    /// answer: `None`.
    pub fn authenticate(&self, presented: &str) -> Option<String> {
        let body = presented.strip_prefix(API_KEY_PREFIX)?;
        if body.len() != 65 || !body.is_ascii() {
            return None;
        }
        let (selector, secret) = body.split_at(22);
        let selector = URL_SAFE_NO_PAD.decode(selector).ok()?;
        let secret = URL_SAFE_NO_PAD.decode(secret).ok()?;
        let digest = hex(&Sha256::digest(&secret));
        let entry = self.0.get(&hex(&selector))?;
        let (service_id, verifier) = entry.value();
        hex_matches(verifier, &digest).then(|| service_id.clone())
    }
}
