//! The file's rows as a [`Dump`], and a dump written into an empty file.

use redb::{
    Key, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, Value,
    WriteTransaction,
};

use super::db;
use super::store::u64_from;
use super::tables::{
    API_KEYS, APPS, ASSERTIONS, AUDIT, CHANGES, CLIENT_IDS, CONNECTS, FAMILIES, ISSUERS, KEYS,
    LEASES, META, PROVIDER_GRANTS, PROVIDER_STATES, PROVIDERS, REFRESH_TOKENS, RESOURCES,
    REVOKED_JTIS, ROLES, SCOPES, SERVICE_USERS, SERVICES, SUBSCRIPTIONS, USERS, VERSION,
};
use crate::record::decode;
use crate::{AppRecord, Dump, StoreError};

type Records = TableDefinition<'static, &'static str, &'static [u8]>;
type Times = TableDefinition<'static, &'static str, u64>;

/// Every table read in one transaction, so the dump is one consistent snapshot.
pub(super) fn export(txn: &ReadTransaction) -> Result<Dump, StoreError> {
    let records = |def: Records| -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        all(txn, def, |k, v| (k.to_string(), v.to_vec()))
    };
    let times = |def: Times| -> Result<Vec<(String, u64)>, StoreError> {
        all(txn, def, |k, v| (k.to_string(), v))
    };
    let mut meta = records(META)?;
    let version = match meta.iter().position(|(name, _)| name == VERSION) {
        Some(at) => u64_from(&meta.remove(at).1)?,
        None => 0,
    };
    let mut dump = Dump {
        version,
        meta,
        apps: records(APPS)?,
        keys: records(KEYS)?,
        refresh_tokens: all(txn, REFRESH_TOKENS, |k, v| (k.to_vec(), v.to_vec()))?,
        families: records(FAMILIES)?,
        revoked_jtis: times(REVOKED_JTIS)?,
        assertions: times(ASSERTIONS)?,
        scopes: records(SCOPES)?,
        roles: records(ROLES)?,
        users: records(USERS)?,
        services: records(SERVICES)?,
        api_keys: records(API_KEYS)?,
        service_users: times(SERVICE_USERS)?,
        subscriptions: records(SUBSCRIPTIONS)?,
        providers: records(PROVIDERS)?,
        resources: records(RESOURCES)?,
        issuers: records(ISSUERS)?,
        connects: records(CONNECTS)?,
        provider_states: all(txn, PROVIDER_STATES, |k, v| (k.to_string(), v.to_string()))?,
        provider_grants: records(PROVIDER_GRANTS)?,
        audit: all(txn, AUDIT, |k, v| (k, v.to_vec()))?,
    };
    dump.sort();
    Ok(dump)
}

/// Writes `dump` inside the caller's transaction, refusing a file that holds anything: a copy
/// never merges into live data.
pub(super) fn import(txn: &WriteTransaction, dump: &Dump) -> Result<(), StoreError> {
    check_empty(txn)?;
    let put_records = |def: Records, rows: &[(String, Vec<u8>)]| -> Result<(), StoreError> {
        let mut table = txn.open_table(def).map_err(db)?;
        for (k, v) in rows {
            table.insert(k.as_str(), v.as_slice()).map_err(db)?;
        }
        Ok(())
    };
    let put_times = |def: Times, rows: &[(String, u64)]| -> Result<(), StoreError> {
        let mut table = txn.open_table(def).map_err(db)?;
        for (k, v) in rows {
            table.insert(k.as_str(), *v).map_err(db)?;
        }
        Ok(())
    };
    put_records(META, &dump.meta)?;
    txn.open_table(META)
        .map_err(db)?
        .insert(VERSION, dump.version.to_be_bytes().as_slice())
        .map_err(db)?;
    put_records(APPS, &dump.apps)?;
    {
        // The uniqueness index redb keeps beside the apps.
        let mut ids = txn.open_table(CLIENT_IDS).map_err(db)?;
        for (id, record) in &dump.apps {
            let app: AppRecord = decode(record)?;
            ids.insert(app.client_id.as_str(), id.as_str()).map_err(db)?;
        }
    }
    put_records(KEYS, &dump.keys)?;
    {
        let mut tokens = txn.open_table(REFRESH_TOKENS).map_err(db)?;
        for (k, v) in &dump.refresh_tokens {
            tokens.insert(k.as_slice(), v.as_slice()).map_err(db)?;
        }
    }
    put_records(FAMILIES, &dump.families)?;
    put_times(REVOKED_JTIS, &dump.revoked_jtis)?;
    put_times(ASSERTIONS, &dump.assertions)?;
    put_records(SCOPES, &dump.scopes)?;
    put_records(ROLES, &dump.roles)?;
    put_records(USERS, &dump.users)?;
    put_records(SERVICES, &dump.services)?;
    put_records(API_KEYS, &dump.api_keys)?;
    put_times(SERVICE_USERS, &dump.service_users)?;
    put_records(SUBSCRIPTIONS, &dump.subscriptions)?;
    put_records(PROVIDERS, &dump.providers)?;
    put_records(RESOURCES, &dump.resources)?;
    put_records(ISSUERS, &dump.issuers)?;
    put_records(CONNECTS, &dump.connects)?;
    {
        let mut states = txn.open_table(PROVIDER_STATES).map_err(db)?;
        for (k, v) in &dump.provider_states {
            states.insert(k.as_str(), v.as_str()).map_err(db)?;
        }
    }
    put_records(PROVIDER_GRANTS, &dump.provider_grants)?;
    let mut audit = txn.open_table(AUDIT).map_err(db)?;
    for (seq, event) in &dump.audit {
        audit.insert(*seq, event.as_slice()).map_err(db)?;
    }
    Ok(())
}

/// Empty means nothing was ever written: no row in any table, and the version row at most.
fn check_empty(txn: &WriteTransaction) -> Result<(), StoreError> {
    fn count<K: Key + 'static, V: Value + 'static>(
        txn: &WriteTransaction,
        def: TableDefinition<K, V>,
    ) -> Result<u64, StoreError> {
        txn.open_table(def).map_err(db)?.len().map_err(db)
    }
    let meta = txn.open_table(META).map_err(db)?;
    let version = meta.get(VERSION).map_err(db)?.map(|v| u64_from(v.value())).transpose()?;
    let only_version = meta.len().map_err(db)? == u64::from(version.is_some());
    drop(meta);
    let counts = [
        count(txn, APPS)?,
        count(txn, CLIENT_IDS)?,
        count(txn, KEYS)?,
        count(txn, CHANGES)?,
        count(txn, LEASES)?,
        count(txn, REFRESH_TOKENS)?,
        count(txn, FAMILIES)?,
        count(txn, REVOKED_JTIS)?,
        count(txn, ASSERTIONS)?,
        count(txn, SCOPES)?,
        count(txn, ROLES)?,
        count(txn, USERS)?,
        count(txn, SERVICES)?,
        count(txn, API_KEYS)?,
        count(txn, SERVICE_USERS)?,
        count(txn, SUBSCRIPTIONS)?,
        count(txn, PROVIDERS)?,
        count(txn, RESOURCES)?,
        count(txn, ISSUERS)?,
        count(txn, CONNECTS)?,
        count(txn, PROVIDER_STATES)?,
        count(txn, PROVIDER_GRANTS)?,
        count(txn, AUDIT)?,
    ];
    if only_version && version.unwrap_or(0) == 0 && counts.iter().all(|&n| n == 0) {
        Ok(())
    } else {
        Err(StoreError::NotEmpty)
    }
}

fn all<K, V, T>(
    txn: &ReadTransaction,
    def: TableDefinition<K, V>,
    row: impl Fn(K::SelfType<'_>, V::SelfType<'_>) -> T,
) -> Result<Vec<T>, StoreError>
where
    K: Key + 'static,
    V: Value + 'static,
{
    let table = match txn.open_table(def) {
        Ok(table) => table,
        // A file written before a table existed has none of its rows.
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(db(e)),
    };
    let mut out = Vec::new();
    for entry in table.iter().map_err(db)? {
        let (k, v) = entry.map_err(db)?;
        out.push(row(k.value(), v.value()));
    }
    Ok(out)
}
