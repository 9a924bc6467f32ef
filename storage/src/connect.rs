//! Provider-token requests (AuthOS's service API): the one-time, expiring request a service's
//! `action_required` stands for, and the provider grants a completed request leaves behind.
//! Provider tokens are secrets: sealed under the KEK when one is set.

use serde::{Deserialize, Serialize};

use crate::{Kek, StoreError};

/// A pending provider-token request, bound to everything the service asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectRecord {
    pub state: String,
    pub service_id: String,
    pub user_id: String,
    pub provider_id: String,
    pub scopes: Vec<String>,
    pub redirect_uri: String,
    pub client_state: Option<String>,
    pub expires_at: u64,
    /// The state we sent the provider, once the user has been sent there.
    pub provider_state: Option<String>,
    pub is_complete: bool,
}

/// What a user granted a service at a provider.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderGrant {
    pub scopes: Vec<String>,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: Option<u64>,
}

impl std::fmt::Debug for ProviderGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderGrant").field("scopes", &self.scopes).finish_non_exhaustive()
    }
}

/// The stored form of a [`ProviderGrant`], its tokens sealed.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredGrant {
    scopes: Vec<String>,
    access_token: String,
    refresh_token: Option<String>,
    expires_at: Option<u64>,
}

impl StoredGrant {
    /// Seals the tokens bound to `key` ([`grant_key`]), so they cannot be moved to another grant.
    pub(crate) fn seal(
        grant: &ProviderGrant,
        kek: Option<&Kek>,
        key: &str,
    ) -> Result<Self, StoreError> {
        let seal = |t: &str| crate::seal::seal_bytes(kek, t.as_bytes(), key);
        Ok(StoredGrant {
            scopes: grant.scopes.clone(),
            access_token: seal(&grant.access_token)?,
            refresh_token: grant.refresh_token.as_deref().map(seal).transpose()?,
            expires_at: grant.expires_at,
        })
    }

    pub(crate) fn open(self, kek: Option<&Kek>, key: &str) -> Result<ProviderGrant, StoreError> {
        let open = |t: &str| {
            crate::seal::open_bytes(kek, t, key).and_then(|b| {
                String::from_utf8(b).map_err(|_| StoreError::Corrupt("provider token".into()))
            })
        };
        Ok(ProviderGrant {
            scopes: self.scopes,
            access_token: open(&self.access_token)?,
            refresh_token: self.refresh_token.as_deref().map(open).transpose()?,
            expires_at: self.expires_at,
        })
    }
}

/// A grant's key. Its tokens are sealed with it as associated data, so every backend must spell
/// it the same way to open grants another one wrote.
pub(crate) fn grant_key(service: &str, user: &str, provider: &str) -> String {
    format!("{service}\0{user}\0{provider}")
}

/// Why a step of a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectRefusal {
    Unknown,
    Expired,
    Used,
    OtherUser,
}

/// A request's step may go ahead only once, and only while the request is live.
pub(crate) fn check(
    record: Option<ConnectRecord>,
    now: u64,
) -> Result<ConnectRecord, ConnectRefusal> {
    let record = record.ok_or(ConnectRefusal::Unknown)?;
    if record.is_complete {
        return Err(ConnectRefusal::Used);
    }
    if now >= record.expires_at {
        return Err(ConnectRefusal::Expired);
    }
    Ok(record)
}
