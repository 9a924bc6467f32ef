//! Registry rows written to redb: a pair key is "service id\0user id", and a put or a delete is
//! one call whatever the table, so every change goes through the same few lines.

use redb::{TableDefinition, WriteTransaction};

use super::db;
use super::tables::{
    API_KEYS, APPS, ISSUERS, PROVIDERS, RESOURCES, ROLES, SCOPES, SERVICE_USERS, SERVICES,
    SUBSCRIPTIONS, USERS,
};
use crate::StoreError;
use crate::registry::{Key, Row, Table};

/// Writes one row inside the caller's transaction.
pub(super) fn write(txn: &WriteTransaction, row: &Row<'_>) -> Result<(), StoreError> {
    match row {
        Row::Record { table, key, value } => {
            set(txn, records(*table), &joined(*key), value.as_deref())
        }
        Row::Link { key, at } => set(txn, SERVICE_USERS, &joined(*key), *at),
        Row::Audit(event) => super::audit::append(txn, event),
    }
}

fn records(table: Table) -> TableDefinition<'static, &'static str, &'static [u8]> {
    match table {
        Table::Apps => APPS,
        Table::Scopes => SCOPES,
        Table::Roles => ROLES,
        Table::Users => USERS,
        Table::Services => SERVICES,
        Table::ApiKeys => API_KEYS,
        Table::Subscriptions => SUBSCRIPTIONS,
        Table::Providers => PROVIDERS,
        Table::Resources => RESOURCES,
        Table::Issuers => ISSUERS,
    }
}

/// Pair keys are joined with NUL, the separator the loads split them back on.
fn joined(key: Key<'_>) -> String {
    match key {
        Key::Id(id) => id.to_string(),
        Key::Pair(service, user) => format!("{service}\0{user}"),
    }
}

/// Puts `value` under `key`, or removes `key` when there is none.
fn set<V: redb::Value + 'static>(
    txn: &WriteTransaction,
    table: TableDefinition<&str, V>,
    key: &str,
    value: Option<V::SelfType<'_>>,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(table).map_err(db)?;
    match value {
        Some(value) => table.insert(key, value).map(drop),
        None => table.remove(key).map(drop),
    }
    .map_err(db)
}
