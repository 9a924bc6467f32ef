//! The database's rows as a [`Dump`], and a dump written into an empty database: pair keys
//! become their columns, and the columns beside a record (a client id, an expiry) are read
//! back out of the record, as the ordinary writes fill them.

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::sql::{Writer, col, execute, int, row, rows, uint};
use crate::dump::split_key;
use crate::record::decode;
use crate::{AppRecord, AuditEvent, ConnectRecord, Dump, FamilyRecord, RefreshRecord, StoreError};

/// Every table a copy fills, and the ones it must find empty besides.
const TABLES: &[&str] = &[
    "apps",
    "signing_keys",
    "refresh_tokens",
    "families",
    "revoked_jtis",
    "assertions",
    "scopes",
    "roles",
    "users",
    "services",
    "api_keys",
    "service_users",
    "subscriptions",
    "providers",
    "resources",
    "issuers",
    "connects",
    "provider_states",
    "provider_grants",
    "audit",
    "changes",
    "leases",
];

/// Rows per insert: one statement carries a chunk as arrays, so a large store moves in few
/// round trips.
const CHUNK: usize = 5_000;

/// Reads every table; the caller runs it in one repeatable-read transaction.
pub(super) async fn export(client: &impl GenericClient) -> Result<Dump, StoreError> {
    let version = super::sql::version_of(row(client, super::sql::READ_VERSION, &[]).await?)?;
    let records = |r: &Row| Ok((col(r, 0)?, col(r, 1)?));
    let times = |r: &Row| Ok((col(r, 0)?, uint(col(r, 1)?)));
    let mut dump = Dump {
        version,
        meta: read(client, "SELECT name, value FROM meta WHERE name <> 'version'", records).await?,
        apps: read(client, "SELECT id, record FROM apps", records).await?,
        keys: read(client, "SELECT kid, record FROM signing_keys", records).await?,
        refresh_tokens: read(client, "SELECT selector, record FROM refresh_tokens", |r| {
            Ok((col(r, 0)?, col(r, 1)?))
        })
        .await?,
        families: read(client, "SELECT id, record FROM families", records).await?,
        revoked_jtis: read(client, "SELECT jti, expires_at FROM revoked_jtis", times).await?,
        assertions: read(client, "SELECT id, expires_at FROM assertions", |r| {
            let id = String::from_utf8(col(r, 0)?)
                .map_err(|_| StoreError::Corrupt("an assertion key".into()))?;
            Ok((id, uint(col(r, 1)?)))
        })
        .await?,
        scopes: read(client, "SELECT id, record FROM scopes", records).await?,
        roles: read(client, "SELECT id, record FROM roles", records).await?,
        users: read(client, "SELECT id, record FROM users", records).await?,
        services: read(client, "SELECT id, record FROM services", records).await?,
        api_keys: read(client, "SELECT id, record FROM api_keys", records).await?,
        service_users: read(
            client,
            "SELECT service_id, user_id, linked_at FROM service_users",
            |r| Ok((joined(&[col(r, 0)?, col(r, 1)?]), uint(col(r, 2)?))),
        )
        .await?,
        subscriptions: read(client, "SELECT service_id, user_id, record FROM subscriptions", |r| {
            Ok((joined(&[col(r, 0)?, col(r, 1)?]), col(r, 2)?))
        })
        .await?,
        providers: read(client, "SELECT id, record FROM providers", records).await?,
        resources: read(client, "SELECT id, record FROM resources", records).await?,
        issuers: read(client, "SELECT id, record FROM issuers", records).await?,
        connects: read(client, "SELECT state, record FROM connects", records).await?,
        provider_states: read(client, "SELECT provider_state, state FROM provider_states", |r| {
            Ok((col(r, 0)?, col(r, 1)?))
        })
        .await?,
        provider_grants: read(
            client,
            "SELECT service_id, user_id, provider_id, record FROM provider_grants",
            |r| Ok((joined(&[col(r, 0)?, col(r, 1)?, col(r, 2)?]), col(r, 3)?)),
        )
        .await?,
        audit: read(client, "SELECT seq, record FROM audit", |r| {
            Ok((uint(col(r, 0)?), col(r, 1)?))
        })
        .await?,
    };
    dump.sort();
    Ok(dump)
}

/// Every row `query` answers, each made into a `T` by `each`.
async fn read<T>(
    client: &impl GenericClient,
    query: &str,
    each: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows(client, query, &[]).await?.iter().map(each).collect()
}

/// Writes `dump` under the writer lock, refusing a database that holds anything, and sets the
/// version to the source's.
pub(super) async fn import(w: &Writer<'_>, dump: &Dump) -> Result<(), StoreError> {
    let txn = w.txn();
    check_empty(txn, w.version()).await?;
    let id_record = |rows: &[(String, Vec<u8>)]| -> Result<Vec<Column>, StoreError> {
        Ok(vec![texts(rows.iter().map(|r| r.0.clone())), bytes(rows.iter().map(|r| r.1.clone()))])
    };
    insert(txn, "meta (name, value)", &dump.meta, id_record).await?;
    execute(
        txn,
        "UPDATE meta SET value = $1 WHERE name = 'version'",
        &[&dump.version.to_be_bytes().as_slice()],
    )
    .await?;
    insert(txn, "apps (id, client_id, record)", &dump.apps, |rows| {
        let client_ids = rows
            .iter()
            .map(|(_, r)| Ok(decode::<AppRecord>(r)?.client_id))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(vec![
            texts(rows.iter().map(|r| r.0.clone())),
            Column::Text(client_ids),
            bytes(rows.iter().map(|r| r.1.clone())),
        ])
    })
    .await?;
    insert(txn, "signing_keys (kid, record)", &dump.keys, id_record).await?;
    let tokens = "refresh_tokens (selector, family, expires_at, record)";
    insert(txn, tokens, &dump.refresh_tokens, |rows| {
        let decoded = rows
            .iter()
            .map(|(_, r)| decode::<RefreshRecord>(r))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(vec![
            bytes(rows.iter().map(|r| r.0.clone())),
            texts(decoded.iter().map(|r| r.family.clone())),
            Column::Int(decoded.iter().map(|r| int(r.expires_at)).collect()),
            bytes(rows.iter().map(|r| r.1.clone())),
        ])
    })
    .await?;
    let families = "families (id, client_id, subject, expires_at, record)";
    insert(txn, families, &dump.families, |rows| {
        let decoded = rows
            .iter()
            .map(|(_, r)| decode::<FamilyRecord>(r))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(vec![
            texts(rows.iter().map(|r| r.0.clone())),
            texts(decoded.iter().map(|f| f.client_id.clone())),
            texts(decoded.iter().map(|f| f.subject.clone())),
            Column::Int(decoded.iter().map(|f| int(f.expires_at)).collect()),
            bytes(rows.iter().map(|r| r.1.clone())),
        ])
    })
    .await?;
    insert(txn, "revoked_jtis (jti, expires_at)", &dump.revoked_jtis, |rows| {
        Ok(vec![texts(rows.iter().map(|r| r.0.clone())), ints(rows.iter().map(|r| r.1))])
    })
    .await?;
    insert(txn, "assertions (id, expires_at)", &dump.assertions, |rows| {
        Ok(vec![
            bytes(rows.iter().map(|r| r.0.clone().into_bytes())),
            ints(rows.iter().map(|r| r.1)),
        ])
    })
    .await?;
    for (table, rows) in [
        ("scopes", &dump.scopes),
        ("roles", &dump.roles),
        ("users", &dump.users),
        ("services", &dump.services),
        ("api_keys", &dump.api_keys),
        ("providers", &dump.providers),
        ("resources", &dump.resources),
        ("issuers", &dump.issuers),
    ] {
        insert(txn, &format!("{table} (id, record)"), rows, id_record).await?;
    }
    let links = "service_users (service_id, user_id, linked_at)";
    insert(txn, links, &dump.service_users, |rows| {
        let [services, users] = split_all::<2>(rows.iter().map(|r| r.0.as_str()))?;
        Ok(vec![services, users, ints(rows.iter().map(|r| r.1))])
    })
    .await?;
    insert(txn, "subscriptions (service_id, user_id, record)", &dump.subscriptions, |rows| {
        let [services, users] = split_all::<2>(rows.iter().map(|r| r.0.as_str()))?;
        Ok(vec![services, users, bytes(rows.iter().map(|r| r.1.clone()))])
    })
    .await?;
    insert(txn, "connects (state, expires_at, record)", &dump.connects, |rows| {
        let expiries = rows
            .iter()
            .map(|(_, r)| Ok(int(decode::<ConnectRecord>(r)?.expires_at)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(vec![
            texts(rows.iter().map(|r| r.0.clone())),
            Column::Int(expiries),
            bytes(rows.iter().map(|r| r.1.clone())),
        ])
    })
    .await?;
    let states = "provider_states (provider_state, state)";
    insert(txn, states, &dump.provider_states, |rows| {
        Ok(vec![texts(rows.iter().map(|r| r.0.clone())), texts(rows.iter().map(|r| r.1.clone()))])
    })
    .await?;
    let grants = "provider_grants (service_id, user_id, provider_id, record)";
    insert(txn, grants, &dump.provider_grants, |rows| {
        let [services, users, providers] = split_all::<3>(rows.iter().map(|r| r.0.as_str()))?;
        Ok(vec![services, users, providers, bytes(rows.iter().map(|r| r.1.clone()))])
    })
    .await?;
    insert(txn, "audit (seq, at, record)", &dump.audit, |rows| {
        let times = rows
            .iter()
            .map(|(_, r)| Ok(int(decode::<AuditEvent>(r)?.at)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(vec![
            ints(rows.iter().map(|r| r.0)),
            Column::Int(times),
            bytes(rows.iter().map(|r| r.1.clone())),
        ])
    })
    .await
}

/// Empty means nothing was ever written: version 0 and no row but the version's.
async fn check_empty(txn: &Transaction<'_>, version: u64) -> Result<(), StoreError> {
    let any = TABLES
        .iter()
        .map(|t| format!("EXISTS (SELECT 1 FROM {t})"))
        .chain(["EXISTS (SELECT 1 FROM meta WHERE name <> 'version')".to_string()])
        .collect::<Vec<_>>()
        .join(" OR ");
    let found = row(txn, &format!("SELECT {any}"), &[]).await?;
    let holds_rows = found.map(|r| col::<bool>(&r, 0)).transpose()?.unwrap_or(false);
    if version == 0 && !holds_rows { Ok(()) } else { Err(StoreError::NotEmpty) }
}

/// One column of a chunk, sent as one array parameter.
enum Column {
    Text(Vec<String>),
    Bytes(Vec<Vec<u8>>),
    Int(Vec<i64>),
}

impl Column {
    fn sql_type(&self) -> &'static str {
        match self {
            Column::Text(_) => "text[]",
            Column::Bytes(_) => "bytea[]",
            Column::Int(_) => "bigint[]",
        }
    }

    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Column::Text(v) => v,
            Column::Bytes(v) => v,
            Column::Int(v) => v,
        }
    }
}

fn texts(values: impl Iterator<Item = String>) -> Column {
    Column::Text(values.collect())
}

fn bytes(values: impl Iterator<Item = Vec<u8>>) -> Column {
    Column::Bytes(values.collect())
}

fn ints(values: impl Iterator<Item = u64>) -> Column {
    Column::Int(values.map(int).collect())
}

/// Inserts `rows` into `target` ("table (columns)") a chunk at a time, each chunk turned into
/// its columns by `columns`.
async fn insert<R>(
    txn: &Transaction<'_>,
    target: &str,
    rows: &[R],
    columns: impl Fn(&[R]) -> Result<Vec<Column>, StoreError>,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(CHUNK) {
        let columns = columns(chunk)?;
        let arrays: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::{}", i + 1, c.sql_type()))
            .collect();
        let query = format!("INSERT INTO {target} SELECT * FROM unnest({})", arrays.join(", "));
        let params: Vec<&(dyn ToSql + Sync)> = columns.iter().map(Column::param).collect();
        execute(txn, &query, &params).await?;
    }
    Ok(())
}

/// The parts of keys of redb's form, as `N` columns.
fn split_all<'a, const N: usize>(
    keys: impl Iterator<Item = &'a str>,
) -> Result<[Column; N], StoreError> {
    let mut columns: [Vec<String>; N] = std::array::from_fn(|_| Vec::new());
    for key in keys {
        for (column, part) in columns.iter_mut().zip(split_key::<N>(key)?) {
            column.push(part.to_string());
        }
    }
    Ok(columns.map(Column::Text))
}

fn joined(parts: &[String]) -> String {
    parts.join("\0")
}
