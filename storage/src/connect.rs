//! Provider-token requests (AuthOS's service API): the one-time, expiring request a service's
//! `action_required` stands for, and the provider grants a completed request leaves behind.
//! Provider tokens are secrets: sealed under the KEK when one is set.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::error::db;
use crate::record::{decode, encode};
use crate::tables::{CONNECTS, PROVIDER_GRANTS, PROVIDER_STATES};
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

#[derive(Serialize, Deserialize)]
struct StoredGrant {
    scopes: Vec<String>,
    access_token: String,
    refresh_token: Option<String>,
    expires_at: Option<u64>,
}

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

pub(crate) fn create(txn: &WriteTransaction, record: &ConnectRecord) -> Result<(), StoreError> {
    txn.open_table(CONNECTS)
        .map_err(db)?
        .insert(record.state.as_str(), encode(record).as_slice())
        .map_err(db)?;
    Ok(())
}

fn get(txn: &WriteTransaction, state: &str) -> Result<Option<ConnectRecord>, StoreError> {
    let table = txn.open_table(CONNECTS).map_err(db)?;
    let value = table.get(state).map_err(db)?;
    value.map(|v| decode(v.value())).transpose()
}

fn check(record: Option<ConnectRecord>, now: u64) -> Result<ConnectRecord, ConnectRefusal> {
    let record = record.ok_or(ConnectRefusal::Unknown)?;
    if record.is_complete {
        return Err(ConnectRefusal::Used);
    }
    if now >= record.expires_at {
        return Err(ConnectRefusal::Expired);
    }
    Ok(record)
}

/// The signed-in user is sent to the provider: only the bound user, only while the request is
/// live; records the state we give the provider.
pub(crate) fn begin(
    txn: &WriteTransaction,
    state: &str,
    user_id: &str,
    provider_state: &str,
    now: u64,
) -> Result<Result<ConnectRecord, ConnectRefusal>, StoreError> {
    let mut record = match check(get(txn, state)?, now) {
        Ok(r) => r,
        Err(why) => return Ok(Err(why)),
    };
    if record.user_id != user_id {
        return Ok(Err(ConnectRefusal::OtherUser));
    }
    if let Some(old) = record.provider_state.take() {
        txn.open_table(PROVIDER_STATES).map_err(db)?.remove(old.as_str()).map_err(db)?;
    }
    record.provider_state = Some(provider_state.to_string());
    create(txn, &record)?;
    txn.open_table(PROVIDER_STATES).map_err(db)?.insert(provider_state, state).map_err(db)?;
    Ok(Ok(record))
}

/// The provider's callback: completes the request once and keeps the grant.
pub(crate) fn complete(
    txn: &WriteTransaction,
    kek: Option<&Kek>,
    provider_state: &str,
    grant: &ProviderGrant,
    now: u64,
) -> Result<Result<ConnectRecord, ConnectRefusal>, StoreError> {
    let state = {
        let table = txn.open_table(PROVIDER_STATES).map_err(db)?;
        let value = table.get(provider_state).map_err(db)?;
        value.map(|v| v.value().to_string())
    };
    let Some(state) = state else { return Ok(Err(ConnectRefusal::Unknown)) };
    let mut record = match check(get(txn, &state)?, now) {
        Ok(r) => r,
        Err(why) => return Ok(Err(why)),
    };
    record.is_complete = true;
    create(txn, &record)?;
    txn.open_table(PROVIDER_STATES).map_err(db)?.remove(provider_state).map_err(db)?;
    let key = grant_key(&record.service_id, &record.user_id, &record.provider_id);
    put_grant(txn, kek, &key, grant)?;
    Ok(Ok(record))
}

pub(crate) fn put_grant(
    txn: &WriteTransaction,
    kek: Option<&Kek>,
    key: &str,
    grant: &ProviderGrant,
) -> Result<(), StoreError> {
    let seal = |t: &str| crate::seal::seal_bytes(kek, t.as_bytes(), key);
    let stored = StoredGrant {
        scopes: grant.scopes.clone(),
        access_token: seal(&grant.access_token)?,
        refresh_token: grant.refresh_token.as_deref().map(seal).transpose()?,
        expires_at: grant.expires_at,
    };
    txn.open_table(PROVIDER_GRANTS)
        .map_err(db)?
        .insert(key, encode(&stored).as_slice())
        .map_err(db)?;
    Ok(())
}

/// Drops requests past their expiry (and the provider states pointing at them).
pub(crate) fn cleanup(txn: &WriteTransaction, now: u64) -> Result<usize, StoreError> {
    let expired: Vec<ConnectRecord> = {
        let table = txn.open_table(CONNECTS).map_err(db)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (_, value) = entry.map_err(db)?;
            let record: ConnectRecord = decode(value.value())?;
            if record.expires_at <= now {
                out.push(record);
            }
        }
        out
    };
    let mut connects = txn.open_table(CONNECTS).map_err(db)?;
    let mut states = txn.open_table(PROVIDER_STATES).map_err(db)?;
    for record in &expired {
        connects.remove(record.state.as_str()).map_err(db)?;
        if let Some(ps) = &record.provider_state {
            states.remove(ps.as_str()).map_err(db)?;
        }
    }
    Ok(expired.len())
}

pub(crate) fn open_grant(
    kek: Option<&Kek>,
    key: &str,
    bytes: &[u8],
) -> Result<ProviderGrant, StoreError> {
    let stored: StoredGrant = decode(bytes)?;
    let open = |t: &str| {
        crate::seal::open_bytes(kek, t, key).and_then(|b| {
            String::from_utf8(b).map_err(|_| StoreError::Corrupt("provider token".into()))
        })
    };
    Ok(ProviderGrant {
        scopes: stored.scopes,
        access_token: open(&stored.access_token)?,
        refresh_token: stored.refresh_token.as_deref().map(open).transpose()?,
        expires_at: stored.expires_at,
    })
}

pub(crate) fn read_connect<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
    state: &str,
) -> Result<Option<ConnectRecord>, StoreError> {
    let value = table.get(state).map_err(db)?;
    value.map(|v| decode(v.value())).transpose()
}
