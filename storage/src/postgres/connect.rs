//! Provider-token request steps against PostgreSQL, inside the caller's transaction: the check
//! and the write of each step share it (and the writer lock), so a request completes at most
//! once, whichever node the provider's answer reaches.

use deadpool_postgres::Transaction;

use super::sql::{col, execute, int, row, storable};
use crate::connect::{StoredGrant, check, grant_key};
use crate::record::{decode, encode};
use crate::{ConnectRecord, ConnectRefusal, Kek, ProviderGrant, StoreError};

pub(super) async fn create(
    txn: &Transaction<'_>,
    record: &ConnectRecord,
) -> Result<(), StoreError> {
    let upsert = "INSERT INTO connects (state, expires_at, record) VALUES ($1, $2, $3) \
         ON CONFLICT (state) DO UPDATE SET expires_at = excluded.expires_at, \
         record = excluded.record";
    execute(txn, upsert, &[&record.state, &int(record.expires_at), &encode(record)]).await?;
    Ok(())
}

async fn get(txn: &Transaction<'_>, state: &str) -> Result<Option<ConnectRecord>, StoreError> {
    let found =
        row(txn, "SELECT record FROM connects WHERE state = $1 FOR UPDATE", &[&state]).await?;
    found.map(|r| decode(&col::<Vec<u8>>(&r, 0)?)).transpose()
}

/// The signed-in user is sent to the provider: only the bound user, only while the request is
/// live; records the state we give the provider.
pub(super) async fn begin(
    txn: &Transaction<'_>,
    state: &str,
    user_id: &str,
    provider_state: &str,
    now: u64,
) -> Result<Result<ConnectRecord, ConnectRefusal>, StoreError> {
    if !storable(state) {
        return Ok(Err(ConnectRefusal::Unknown));
    }
    let mut record = match check(get(txn, state).await?, now) {
        Ok(r) => r,
        Err(why) => return Ok(Err(why)),
    };
    if record.user_id != user_id {
        return Ok(Err(ConnectRefusal::OtherUser));
    }
    if let Some(old) = record.provider_state.take() {
        execute(txn, "DELETE FROM provider_states WHERE provider_state = $1", &[&old]).await?;
    }
    record.provider_state = Some(provider_state.to_string());
    create(txn, &record).await?;
    let upsert = "INSERT INTO provider_states (provider_state, state) VALUES ($1, $2) \
         ON CONFLICT (provider_state) DO UPDATE SET state = excluded.state";
    execute(txn, upsert, &[&provider_state, &state]).await?;
    Ok(Ok(record))
}

/// The provider's callback: completes the request once and keeps the grant.
pub(super) async fn complete(
    txn: &Transaction<'_>,
    kek: Option<&Kek>,
    provider_state: &str,
    grant: &ProviderGrant,
    now: u64,
) -> Result<Result<ConnectRecord, ConnectRefusal>, StoreError> {
    if !storable(provider_state) {
        return Ok(Err(ConnectRefusal::Unknown));
    }
    let query = "SELECT state FROM provider_states WHERE provider_state = $1 FOR UPDATE";
    let Some(found) = row(txn, query, &[&provider_state]).await? else {
        return Ok(Err(ConnectRefusal::Unknown));
    };
    let state: String = col(&found, 0)?;
    let mut record = match check(get(txn, &state).await?, now) {
        Ok(r) => r,
        Err(why) => return Ok(Err(why)),
    };
    record.is_complete = true;
    create(txn, &record).await?;
    execute(txn, "DELETE FROM provider_states WHERE provider_state = $1", &[&provider_state])
        .await?;
    put_grant(txn, kek, (&record.service_id, &record.user_id, &record.provider_id), grant).await?;
    Ok(Ok(record))
}

/// Keeps a grant, its tokens sealed bound to the key every backend spells the same way.
pub(super) async fn put_grant(
    txn: &Transaction<'_>,
    kek: Option<&Kek>,
    (service, user, provider): (&str, &str, &str),
    grant: &ProviderGrant,
) -> Result<(), StoreError> {
    let stored = StoredGrant::seal(grant, kek, &grant_key(service, user, provider))?;
    let upsert = "INSERT INTO provider_grants (service_id, user_id, provider_id, record) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (service_id, user_id, provider_id) DO UPDATE SET record = excluded.record";
    execute(txn, upsert, &[&service, &user, &provider, &encode(&stored)]).await?;
    Ok(())
}

/// Drops requests past their expiry (and the provider states pointing at them).
pub(super) async fn cleanup(txn: &Transaction<'_>, now: u64) -> Result<usize, StoreError> {
    let states = "DELETE FROM provider_states \
         WHERE state IN (SELECT state FROM connects WHERE expires_at <= $1)";
    execute(txn, states, &[&int(now)]).await?;
    let removed = execute(txn, "DELETE FROM connects WHERE expires_at <= $1", &[&int(now)]).await?;
    Ok(usize::try_from(removed).unwrap_or(usize::MAX))
}

pub(super) fn open_grant(
    kek: Option<&Kek>,
    key: &str,
    bytes: &[u8],
) -> Result<ProviderGrant, StoreError> {
    decode::<StoredGrant>(bytes)?.open(kek, key)
}
