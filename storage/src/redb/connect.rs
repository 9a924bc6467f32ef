//! Provider-token request steps against redb, inside the caller's write transaction: the check
//! and the write of each step share it, so a request completes at most once.

use redb::{ReadableTable, WriteTransaction};

use super::db;
use super::tables::{CONNECTS, PROVIDER_GRANTS, PROVIDER_STATES};
use crate::connect::{StoredGrant, check, grant_key};
use crate::record::{decode, encode};
use crate::{ConnectRecord, ConnectRefusal, Kek, ProviderGrant, StoreError};

pub(super) fn create(txn: &WriteTransaction, record: &ConnectRecord) -> Result<(), StoreError> {
    txn.open_table(CONNECTS)
        .map_err(db)?
        .insert(record.state.as_str(), encode(record).as_slice())
        .map_err(db)?;
    Ok(())
}

fn get(txn: &WriteTransaction, state: &str) -> Result<Option<ConnectRecord>, StoreError> {
    read_connect(&txn.open_table(CONNECTS).map_err(db)?, state)
}

/// The signed-in user is sent to the provider: only the bound user, only while the request is
/// live; records the state we give the provider.
pub(super) fn begin(
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
pub(super) fn complete(
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

pub(super) fn put_grant(
    txn: &WriteTransaction,
    kek: Option<&Kek>,
    key: &str,
    grant: &ProviderGrant,
) -> Result<(), StoreError> {
    let stored = StoredGrant::seal(grant, kek, key)?;
    txn.open_table(PROVIDER_GRANTS)
        .map_err(db)?
        .insert(key, encode(&stored).as_slice())
        .map_err(db)?;
    Ok(())
}

/// Drops requests past their expiry (and the provider states pointing at them).
pub(super) fn cleanup(txn: &WriteTransaction, now: u64) -> Result<usize, StoreError> {
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

pub(super) fn open_grant(
    kek: Option<&Kek>,
    key: &str,
    bytes: &[u8],
) -> Result<ProviderGrant, StoreError> {
    decode::<StoredGrant>(bytes)?.open(kek, key)
}

pub(super) fn read_connect<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
    state: &str,
) -> Result<Option<ConnectRecord>, StoreError> {
    let value = table.get(state).map_err(db)?;
    value.map(|v| decode(v.value())).transpose()
}
