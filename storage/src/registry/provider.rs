//! OAuth providers that services ask tokens of. Their client secrets are sealed under the KEK,
//! bound to the provider id, before any backend sees them.

use serde::{Deserialize, Serialize};

use crate::{Kek, StoreError};

/// An OAuth provider that services ask tokens of (AuthOS's service API). `client_secret` is in the clear
/// here; the store seals it with the KEK, when one is set, before it reaches the file.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderRecord {
    pub id: String,
    pub name: String,
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub created_at: u64,
}

impl std::fmt::Debug for ProviderRecord {
    // The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The file's form of a [`ProviderRecord`].
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredProvider {
    pub id: String,
    pub name: String,
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    pub sealed_secret: String,
    pub created_at: u64,
}

impl StoredProvider {
    pub(crate) fn seal(p: &ProviderRecord, kek: Option<&Kek>) -> Result<Self, StoreError> {
        Ok(StoredProvider {
            id: p.id.clone(),
            name: p.name.clone(),
            authorize_url: p.authorize_url.clone(),
            token_url: p.token_url.clone(),
            client_id: p.client_id.clone(),
            sealed_secret: crate::seal::seal_bytes(kek, p.client_secret.as_bytes(), &p.id)?,
            created_at: p.created_at,
        })
    }

    pub(crate) fn open(self, kek: Option<&Kek>) -> Result<ProviderRecord, StoreError> {
        let secret = crate::seal::open_bytes(kek, &self.sealed_secret, &self.id)?;
        Ok(ProviderRecord {
            client_secret: String::from_utf8(secret)
                .map_err(|_| StoreError::Corrupt("provider secret".into()))?,
            id: self.id,
            name: self.name,
            authorize_url: self.authorize_url,
            token_url: self.token_url,
            client_id: self.client_id,
            created_at: self.created_at,
        })
    }
}
