//! Registry rows written to PostgreSQL: a pair key is two columns, and a put is an upsert, a
//! delete a delete, whatever the table, so every change goes through the same few lines.

use deadpool_postgres::Transaction;

use super::sql::{execute, int, is_unique_violation};
use crate::record::decode;
use crate::registry::{Key, Row, Table};
use crate::{AppRecord, AuditEvent, StoreError};

/// A row in owned form, so that it can travel to the store's runtime.
pub(super) struct Write {
    table: Option<Table>,
    key: (String, Option<String>),
    value: Value,
    logged: Option<String>,
}

enum Value {
    Record(Vec<u8>),
    /// An app's record, with the client id its unique column holds.
    App {
        client_id: String,
        record: Vec<u8>,
    },
    Link(u64),
    Delete,
    Audit(AuditEvent),
}

impl Write {
    pub(super) fn new(row: &Row<'_>) -> Result<Write, StoreError> {
        let (table, key, value) = match row {
            Row::Audit(event) => {
                let (key, value) = ((String::new(), None), Value::Audit((*event).clone()));
                return Ok(Write { table: None, key, value, logged: None });
            }
            Row::Record { table, key, value: Some(bytes) } if *table == Table::Apps => {
                let app: AppRecord = decode(bytes)?;
                (Some(*table), key, Value::App { client_id: app.client_id, record: bytes.clone() })
            }
            Row::Record { table, key, value } => (
                Some(*table),
                key,
                value.as_ref().map_or(Value::Delete, |v| Value::Record(v.clone())),
            ),
            Row::Link { key, at } => (None, key, at.map_or(Value::Delete, Value::Link)),
        };
        let key = match key {
            Key::Id(id) => (id.to_string(), None),
            Key::Pair(service, user) => (service.to_string(), Some(user.to_string())),
        };
        Ok(Write { table, key, value, logged: row.logged() })
    }

    /// The change-log entry, if the row is followed.
    pub(super) fn logged(&self) -> Option<&str> {
        self.logged.as_deref()
    }

    /// Writes the row inside the caller's transaction.
    pub(super) async fn apply(&self, txn: &Transaction<'_>) -> Result<(), StoreError> {
        let name = self.table.map_or("service_users", table_name);
        let (id, pair) = (&self.key.0, &self.key.1);
        match (&self.value, pair) {
            (Value::Audit(event), _) => super::audit::append(txn, event).await,
            (Value::App { client_id, record }, _) => {
                let upsert = "INSERT INTO apps (id, client_id, record) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, \
                     record = excluded.record";
                // The registry's owner has checked the client id; should another node have
                // taken it meanwhile, the database refuses it rather than hold it twice.
                match execute(txn, upsert, &[id, client_id, record]).await {
                    Err(StoreError::Sql(e)) if is_unique_violation(&e) => {
                        Err(StoreError::Conflict("client id"))
                    }
                    other => other.map(drop),
                }
            }
            (Value::Record(record), None) => {
                let upsert = format!(
                    "INSERT INTO {name} (id, record) VALUES ($1, $2) \
                     ON CONFLICT (id) DO UPDATE SET record = excluded.record"
                );
                execute(txn, &upsert, &[id, record]).await.map(drop)
            }
            (Value::Record(record), Some(user)) => {
                let upsert = format!(
                    "INSERT INTO {name} (service_id, user_id, record) VALUES ($1, $2, $3) \
                     ON CONFLICT (service_id, user_id) DO UPDATE SET record = excluded.record"
                );
                execute(txn, &upsert, &[id, user, record]).await.map(drop)
            }
            (Value::Link(at), Some(user)) => {
                let upsert = "INSERT INTO service_users (service_id, user_id, linked_at) \
                     VALUES ($1, $2, $3) \
                     ON CONFLICT (service_id, user_id) DO UPDATE SET linked_at = excluded.linked_at";
                execute(txn, upsert, &[id, user, &int(*at)]).await.map(drop)
            }
            (Value::Delete, None) => {
                execute(txn, &format!("DELETE FROM {name} WHERE id = $1"), &[id]).await.map(drop)
            }
            (Value::Delete, Some(user)) => {
                let delete = format!("DELETE FROM {name} WHERE service_id = $1 AND user_id = $2");
                execute(txn, &delete, &[id, user]).await.map(drop)
            }
            (Value::Link(_), None) => Err(StoreError::Corrupt("a link without a pair".into())),
        }
    }
}

/// The table a record lives in; names come only from here, never from input.
pub(super) fn table_name(table: Table) -> &'static str {
    match table {
        Table::Apps => "apps",
        Table::Scopes => "scopes",
        Table::Roles => "roles",
        Table::Users => "users",
        Table::Services => "services",
        Table::ApiKeys => "api_keys",
        Table::Subscriptions => "subscriptions",
        Table::Providers => "providers",
        Table::Resources => "resources",
        Table::Issuers => "issuers",
    }
}
