//! The published `ServiceKeys`: API key selector → (service, hex SHA-256 of the secret), read
//! by every `X-API-Key` check without a message hop.

use std::sync::Arc;

use dashmap::DashMap;
use tessera_storage::ApiKeyRecord;

use crate::auth::secret::{hex_matches, parse_split_secret, to_hex};

pub const API_KEY_PREFIX: &str = "sk_live_";

/// key id → (service id, hex SHA-256 of the secret), read by `X-API-Key` checks.
#[derive(Clone, Default)]
pub struct ServiceKeys(Arc<DashMap<String, (String, String)>>);

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
        let presented = parse_split_secret(presented.strip_prefix(API_KEY_PREFIX)?)?;
        let entry = self.0.get(&to_hex(&presented.selector))?;
        let (service_id, verifier) = entry.value();
        hex_matches(verifier, &to_hex(&presented.verifier)).then(|| service_id.clone())
    }
}
